"""Retrieval benchmark: the docs archive ingested with defaults, every mode on two question sets.

    .venv/bin/python benchmarks/retrieval.py [--db PATH] [--rebuild] [--write docs/retrieval.md]

1. Ingests ``../shared/corpus/milvus_docs_2.4.x_en.zip`` with default settings into a
   Milvus Lite file (kept: a later run reuses it unless ``--rebuild``).  The searches
   then run in the same process, right after the ingest, as a server would.
2. Runs ``ragloom eval``'s measurement (``ragloom.eval``) on ``../shared/eval/dev.jsonl``
   and ``benchmarks/data/fresh.jsonl`` in each mode: dense, bm25, hybrid (the default),
   and, to show what each part of the default gives, hybrid through Milvus's own RRF,
   hybrid without joining neighbouring chunks, and dense without joining.
3. Prints a markdown table (and with ``--write`` puts it between the markers in the
   file).  Latency is per query (question embedding + search, in process): each set is
   searched ``--rounds`` times and the median round's p50/p99 is reported, since other
   processes on the machine add noise.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _docs import replace_section
from _measure import SHARED_HINT, require

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_ARCHIVE = SHARED / "corpus" / "milvus_docs_2.4.x_en.zip"
SETS = {"dev": SHARED / "eval" / "dev.jsonl", "fresh": ROOT / "benchmarks" / "data" / "fresh.jsonl"}

# (label, search mode, options that differ from the defaults)
CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("dense", "dense", {}),
    ("bm25", "bm25", {}),
    ("**hybrid (default)**", "hybrid", {}),
    ("hybrid, Milvus RRF (k=60)", "hybrid", {"fusion": "rrf"}),
    ("hybrid, chunks not joined", "hybrid", {"join_neighbours": False}),
    ("dense, chunks not joined", "dense", {"join_neighbours": False}),
]


def machine() -> str:
    """One line about where the numbers come from."""
    return (
        f"{os.cpu_count()} CPU cores ({platform.machine()}), no GPU, Python"
        f" {platform.python_version()}"
    )


def evaluate(rag: Any, items: list[Any], mode: str, options: Any, rounds: int) -> dict[str, Any]:
    """Quality from the first round, latency as the median round's p50 and p99."""
    from ragloom import eval as metrics
    from ragloom.retrieval import retrieve

    embedder = rag._query_embedder()

    def search(question: str) -> list[Any]:
        return retrieve(rag.store, embedder, question, 10, mode, options=options)  # type: ignore[arg-type]

    reports = [metrics.report(metrics.run(items, search)) for _ in range(rounds)]
    p50 = statistics.median(r["latency_ms"]["p50"] for r in reports)
    p99 = statistics.median(r["latency_ms"]["p99"] for r in reports)
    return {**reports[0], "latency_ms": {"p50": p50, "p99": p99}}


def cell(q: dict[str, Any], key: str) -> str:
    return "-" if q.get(key) is None else f"{q[key]:.2f}"


def main() -> None:
    """Ingest if needed, evaluate every configuration, print (and record) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--db", type=Path, default=Path("/tmp/ragloom-bench/retrieval.db"))
    parser.add_argument("--rebuild", action="store_true", help="ingest again from scratch")
    parser.add_argument("--rounds", type=int, default=3, help="searches of each set per row")
    parser.add_argument("--write", type=Path, help="replace the table in this markdown file")
    opts = parser.parse_args()
    require([opts.archive], "pass --archive PATH")
    require(list(SETS.values()), SHARED_HINT)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ragloom import eval as metrics
    from ragloom.rag import RAG
    from ragloom.retrieval import SearchOptions

    opts.db.parent.mkdir(parents=True, exist_ok=True)
    items = {name: metrics.load_items(path) for name, path in SETS.items()}
    with RAG(uri=str(opts.db)) as rag:
        ingest_note = "reused"
        if opts.rebuild or rag.store.info() is None:
            started = time.perf_counter()
            report = rag.ingest([str(opts.archive)], rebuild=True)
            ingest_note = (
                f"ingested in {time.perf_counter() - started:.0f} s, {report.embedded} chunks"
                " embedded, the rest read from the embedding cache"
            )
            print(f"{report.files} files, {report.chunks} chunks, {ingest_note}", file=sys.stderr)
        chunks = rag.store.count()
        rows = []
        for label, mode, changes in CONFIGS:
            options = SearchOptions.from_settings(rag.settings, **changes)
            for set_name, questions in items.items():
                result = evaluate(rag, questions, mode, options, opts.rounds)
                rows.append((set_name, label, result))
                print(
                    f"{set_name:5} {label:28} hit@3 {result['hit@3']:.3f}"
                    f" mrr {result['mrr@10']:.3f} p50 {result['latency_ms']['p50']:.1f} ms",
                    file=sys.stderr,
                )
    lines = [
        f"Machine: {machine()}; bundled all-MiniLM-L6-v2; Milvus Lite; the whole archive,"
        f" {chunks} chunks (collection {ingest_note}); k = 10.",
        "",
        "| set | search | hit@1 | hit@3 | hit@10 | MRR@10 | faq hit@3 / MRR | docs hit@3 / MRR"
        " | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for set_name, label, r in sorted(rows, key=lambda row: row[0] != "dev"):
        kinds = r["by_kind"]
        per_kind = [
            f"{cell(kinds[k], 'hit@3')} / {cell(kinds[k], 'mrr@10')}" if k in kinds else "-"
            for k in ("faq", "docs")
        ]
        lines.append(
            f"| {set_name} ({r['n']}) | {label} | {cell(r, 'hit@1')} | {cell(r, 'hit@3')}"
            f" | {cell(r, 'hit@10')} | {cell(r, 'mrr@10')} | {per_kind[0]} | {per_kind[1]}"
            f" | {r['latency_ms']['p50']:.1f} | {r['latency_ms']['p99']:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    if opts.write:
        replace_section(opts.write, "retrieval-benchmark", table)


if __name__ == "__main__":
    main()
