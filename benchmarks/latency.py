"""Warm query latency in process: right after an ingest, and on the reopened file.

    .venv/bin/python benchmarks/latency.py [--archive PATH] [--db FILE] [--passes 5]
        [--write docs/retrieval.md]

Ingests the Milvus 2.4 docs archive (``../shared/corpus``) into a Milvus Lite file with
the default settings (vectors come from the embedding cache after a first run), then, in
the same process, times ``RAG.search`` (question embedding plus search, k = 10) for every
question of the development and fresh sets, ``--passes`` times, dense and hybrid (and, for
comparison, hybrid with the question embedded before the BM25 search); then
closes the file, reopens it in a new ``RAG`` and measures again.  Prints p50/p90/p99 per
mode and state, the machine, and its load average (other jobs on a 2-core machine move
these figures by tens of percent).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _docs import replace_section
from _measure import SHARED_HINT, require

from ragloom import RAG
from ragloom.embedders.local import LocalEmbedder

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ARCHIVE = SHARED / "corpus" / "milvus_docs_2.4.x_en.zip"
QUESTIONS = [SHARED / "eval" / "dev.jsonl", ROOT / "benchmarks" / "data" / "fresh.jsonl"]
# (label, mode, question embedded before the BM25 search)
VARIANTS = (
    ("dense", "dense", False),
    ("hybrid", "hybrid", False),
    ("hybrid, question embedded first (comparison)", "hybrid", True),
)


def questions() -> list[str]:
    """Every question of the development and fresh sets."""
    return [
        json.loads(line)["question"]
        for path in QUESTIONS
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def embedded_first(on: bool) -> Iterator[None]:
    """With ``on``, hybrid search embeds the question before its BM25 search instead of
    meanwhile (the local model's ``embed_soon`` hidden), for comparison."""
    saved = LocalEmbedder.embed_soon
    if on:
        LocalEmbedder.embed_soon = None  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        LocalEmbedder.embed_soon = saved  # type: ignore[method-assign]


def measure(rag: RAG, asked: list[str], passes: int) -> dict[str, list[float]]:
    """Milliseconds per search, per mode (and hybrid with the question embedded first),
    after one untimed warm-up search each; the variants take turns question by question."""
    times: dict[str, list[float]] = {label: [] for label, _, _ in VARIANTS}
    for _, mode, _ in VARIANTS:
        rag.search(asked[0], 10, mode=mode)  # type: ignore[arg-type]
    for _ in range(passes):
        for question in asked:
            for label, mode, first in VARIANTS:
                with embedded_first(first):
                    started = time.perf_counter()
                    rag.search(question, 10, mode=mode)  # type: ignore[arg-type]
                    times[label].append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    """Ingest, measure in the same process, reopen, measure again; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="Milvus Lite file (default: a temporary one)")
    parser.add_argument("--passes", type=int, default=5, help="passes over the questions")
    parser.add_argument("--write", type=Path, help="replace the table in this markdown file")
    parser.add_argument("--archive", type=Path, default=ARCHIVE, help="the docs archive")
    args = parser.parse_args()
    require([args.archive, *QUESTIONS], SHARED_HINT)
    asked = questions()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "latency.db")
        with RAG(uri=db) as rag:
            report = rag.ingest([str(args.archive)])
            device = getattr(rag.embedder, "device", "cpu")
            rows.append(("right after the ingest, same process", measure(rag, asked, args.passes)))
        with RAG(uri=db) as rag:
            rows.append(("reopened file", measure(rag, asked, args.passes)))
    load = os.getloadavg()
    lines = [
        f"Machine: {os.cpu_count()} CPU cores ({platform.machine()}), embedder on {device},"
        f" Python {platform.python_version()}; Milvus Lite; the whole archive, {report.chunks}"
        f" chunks; {len(asked)} questions x {args.passes} passes per mode; load average"
        f" {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end.",
        "",
        "| state | mode | p50 ms | p90 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|---|",
    ]
    for state, times in rows:
        for mode, values in times.items():
            lines.append(
                f"| {state} | {mode} | {percentile(values, 0.5):.1f} |"
                f" {percentile(values, 0.9):.1f} | {percentile(values, 0.99):.1f} |"
                f" {statistics.fmean(values):.1f} |"
            )
    table = "\n".join(lines)
    print(table)
    if args.write:
        replace_section(args.write, "warm-latency", table)


if __name__ == "__main__":
    main()
