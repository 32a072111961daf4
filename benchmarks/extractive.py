"""Extractive answers (``--llm none``): do the quoted sentences hold the answer?

    python benchmarks/extractive.py                 # ingest the archive into a temp file
    python benchmarks/extractive.py --db /tmp/d.db  # reuse (or create) a Milvus Lite file
    python benchmarks/extractive.py --write docs/answers.md

Ingests ``../shared/corpus/milvus_docs_2.4.x_en.zip`` with the default settings, then
for each answerable question of ``../shared/eval/dev.jsonl`` and
``benchmarks/data/fresh.jsonl`` retrieves the passages ``ragloom ask`` sends (k = 5,
cut to the context budget) and builds the extractive answer two ways: sentences chosen
by the question words they share (what ragloom does when the collection's embedder is
a remote API), and chosen first by meaning with the bundled model (the default). An
answer counts when it quotes one of the question's answer keys (the first 60
characters, markup and case aside); questions whose passages hold no key are counted
apart, since no choice of sentences can answer them. Also times the answer.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _docs import replace_section
from _measure import SHARED_HINT, machine, require

from ragloom import RAG
from ragloom.answer import fit_passages
from ragloom.asking import ASK_K
from ragloom.eval import load_items
from ragloom.llms.extractive import extract

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ARCHIVE = SHARED / "corpus" / "milvus_docs_2.4.x_en.zip"
SETS = {"dev": SHARED / "eval" / "dev.jsonl", "fresh": ROOT / "benchmarks" / "data" / "fresh.jsonl"}
_MARKUP = re.compile(r"[`*_]")


def norm(text: str) -> str:
    """Lower case, markup and runs of spaces removed."""
    return " ".join(_MARKUP.sub("", text).casefold().split())


def quotes(text: str, keys: Sequence[str]) -> bool:
    """Whether ``text`` holds one of the answer ``keys``."""
    return any(norm(key)[:60] in norm(text) for key in keys)


def main() -> None:
    """Ingest (or reuse) the archive, answer each question both ways, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="Milvus Lite file to (re)use; default: a temp file")
    parser.add_argument("--write", type=Path, help="replace the table in this markdown file")
    args = parser.parse_args()
    require([ARCHIVE, *SETS.values()], SHARED_HINT)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, RAG(uri=args.db or f"{tmp}/x.db") as rag:
        report = rag.ingest([str(ARCHIVE)])
        print(f"ingest: {report.files} documents, {report.chunks} chunks", file=sys.stderr)
        embed = getattr(rag.get_llm("none"), "embed", None)
        if embed is None:
            raise SystemExit("the collection's embedder does not run in process")
        for name, path in SETS.items():
            counts = {"questions": 0, "key in passages": 0, "words": 0, "meaning": 0}
            times: dict[str, list[float]] = {"words": [], "meaning": []}
            for item in load_items(path):
                if not item.answerable:
                    continue
                found = rag.search(item.question, ASK_K)
                hits = fit_passages(found, rag.settings.context_tokens)
                texts, heads = [h.text for h in hits], [h.heading for h in hits]
                counts["questions"] += 1
                if not any(quotes(t, item.answer_keys) for t in texts):
                    continue
                counts["key in passages"] += 1
                for way, model in (("words", None), ("meaning", embed)):
                    start = time.perf_counter()
                    answer = extract(item.question, texts, headings=heads, embed=model)
                    times[way].append((time.perf_counter() - start) * 1000)
                    counts[way] += quotes(answer, item.answer_keys)
            rows.append((name, counts, {w: statistics.median(t) for w, t in times.items()}))
    lines = [
        f"Machine: {machine()}; bundled all-MiniLM-L6-v2; Milvus Lite; the whole archive;"
        f" k = {ASK_K} passages per question, as `ragloom ask` sends them.",
        "",
        "| set | answerable questions | answer key in the passages | quoted, by shared words"
        " | quoted, by meaning (default) | ms per answer, words / meaning |",
        "|---|---|---|---|---|---|",
    ]
    for name, c, ms in rows:
        lines.append(
            f"| {name} | {c['questions']} | {c['key in passages']} | {c['words']}"
            f" | **{c['meaning']}** | {ms['words']:.1f} / {ms['meaning']:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.write:
        replace_section(args.write, "extractive", table)


if __name__ == "__main__":
    main()
