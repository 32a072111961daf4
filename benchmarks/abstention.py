"""Abstention: how often ragloom declines answerable and unanswerable questions.

    python benchmarks/abstention.py                 # ingest the archive into a temp file
    python benchmarks/abstention.py --archive PATH  # another copy of the archive
    python benchmarks/abstention.py --db /tmp/d.db  # reuse (or create) a Milvus Lite file
    python benchmarks/abstention.py --write docs/answers.md
    python benchmarks/abstention.py --faq --write docs/answers.md   # the FAQ pages only

Ingests ``../shared/corpus/milvus_docs_2.4.x_en.zip`` with the default settings (the
bundled embedder), then runs, for each question, the check ``ragloom ask`` makes before
calling a model (``RAG.coverage``: the best passage's dense score against the calibrated
threshold, names the documents never mention, and names none of the passages
mention).  Nine sets: answerable (``../shared/eval/dev.jsonl`` and
``benchmarks/data/fresh.jsonl``), unanswerable (features the Milvus docs do not have:
``benchmarks/unanswerable.jsonl``, used while the name check was designed, and
``benchmarks/data/unanswerable_fresh.jsonl``, written before it was measured), a pair
written before the passage check was measured on them (``answerable_names.jsonl``:
questions naming products in passing; ``unanswerable_names.jsonl``), a pair written
before the check on rare words was measured (``answerable_vocab.jsonl``, paraphrasing
the docs; ``unanswerable_vocab.jsonl``, asked in the docs' own words), and off-topic
(``benchmarks/offtopic.jsonl``).  Prints each
set's dense scores, its abstain rate by reason, and a threshold sweep.  No network, no
LLM: what a model says about the passages it is sent is not measured here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _docs import replace_section
from _measure import SHARED_HINT, require

from ragloom import RAG

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ARCHIVE = SHARED / "corpus" / "milvus_docs_2.4.x_en.zip"
DATA = ROOT / "benchmarks"
SETS = {
    "answerable (dev)": (SHARED / "eval" / "dev.jsonl", True),
    "answerable (fresh)": (DATA / "data" / "fresh.jsonl", True),
    "unanswerable": (DATA / "unanswerable.jsonl", False),
    "unanswerable (fresh)": (DATA / "data" / "unanswerable_fresh.jsonl", False),
    "answerable, naming products": (DATA / "data" / "answerable_names.jsonl", True),
    "unanswerable, naming products": (DATA / "data" / "unanswerable_names.jsonl", False),
    "answerable, paraphrased": (DATA / "data" / "answerable_vocab.jsonl", True),
    "unanswerable, in the docs' words": (DATA / "data" / "unanswerable_vocab.jsonl", False),
    "off-topic": (DATA / "offtopic.jsonl", False),
}


FAQ_GLOB = "en/faq/*.md"
FAQ_NOTE = (
    f"; only the archive's FAQ pages ingested ({FAQ_GLOB}, the tutorials' collection), so"
    " only the answerable questions about those pages are asked"
)


def load(path: Path) -> list[dict[str, object]]:
    """One question per JSON line."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def abstain_rate(scores: list[float], threshold: float) -> float:
    """Share of questions whose best dense score is below ``threshold``."""
    return sum(s < threshold for s in scores) / len(scores)


def measure(rag: RAG, show: bool, faq: bool = False) -> tuple[list[str], bool]:
    """The tables (markdown lines), and whether the answerable sets meet the target.
    ``faq``: only the FAQ pages were ingested, so only FAQ questions are answerable."""
    threshold = rag.abstain_threshold()
    scores: dict[str, list[float]] = {}
    reasons: dict[str, dict[str, int]] = {}
    for name, (path, answerable) in SETS.items():
        scores[name], reasons[name] = [], {"retrieval": 0, "unknown_names": 0, "absent_names": 0}
        for item in load(path):
            if faq and answerable and not str(item.get("source", "")).startswith("faq/"):
                continue
            question = str(item["question"])
            hits = rag.search(question, 5)
            coverage = rag.coverage(question, hits)
            scores[name].append(coverage.relevance if coverage.relevance is not None else -1.0)
            if coverage.reason:
                reasons[name][coverage.reason] += 1
            if show:
                row = {"set": name, "id": item["id"], "score": coverage.relevance}
                row.update(abstain=coverage.reason, names=coverage.unknown_names)
                row.update(absent=coverage.absent_names)
                print(json.dumps(row))
    scores = {name: values for name, values in scores.items() if values}
    lines = [
        f"Threshold {threshold:.2f} (calibrated for {rag.embedder.name}); Milvus Lite, default"
        " (hybrid) search" + (FAQ_NOTE if faq else "") + ".",
        "",
        "| set | questions | dense score min / median / max | declined: weak retrieval"
        " | declined: name unknown to the documents | declined: name in none of the passages"
        " | declined in all |",
        "|---|---|---|---|---|---|---|",
    ]
    answerable_declined = answerable_total = 0
    for name, values in scores.items():
        counts = reasons[name]
        weak, unknown, absent = (counts[r] for r in ("retrieval", "unknown_names", "absent_names"))
        total = (weak + unknown + absent) / len(values)
        if SETS[name][1]:
            answerable_declined += weak + unknown + absent
            answerable_total += len(values)
        lines.append(
            f"| {name} | {len(values)} | {min(values):.3f} / {statistics.median(values):.3f}"
            f" / {max(values):.3f} | {weak / len(values):.0%} | {unknown / len(values):.0%}"
            f" | {absent / len(values):.0%} | **{total:.0%}** |"
        )
    share = answerable_declined / answerable_total
    ok = share <= 0.05
    lines += [
        "",
        f"All answerable questions: {answerable_declined} of {answerable_total} declined"
        f" ({share:.1%}).",
        "",
        "Threshold alone (no name check):",
        "",
    ]
    lines.append("| threshold | " + " | ".join(scores) + " |")
    lines.append("|---" * (len(scores) + 1) + "|")
    for t in sorted({round(0.20 + 0.04 * i, 2) for i in range(7)} | {threshold or 0.0}):
        mark = " (default)" if threshold is not None and abs(t - threshold) < 1e-9 else ""
        rates = " | ".join(f"{abstain_rate(v, t):.0%}" for v in scores.values())
        lines.append(f"| {t:.2f}{mark} | {rates} |")
    answerable = sorted(v for name, vs in scores.items() if SETS[name][1] for v in vs)
    offtopic = max(scores["off-topic"])
    lines += [
        "",
        f"Highest off-topic score {offtopic:.3f}; lowest answerable {answerable[0]:.3f}; the"
        f" highest threshold still answering 95% of the answerable questions:"
        f" {answerable[int(len(answerable) * 0.05)]:.3f}.",
    ]
    return lines, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--db", help="Milvus Lite file to (re)use; default: a temp file")
    parser.add_argument("--json", action="store_true", help="print each question's result")
    parser.add_argument("--faq", action="store_true", help=f"ingest only {FAQ_GLOB}")
    parser.add_argument("--write", type=Path, help="replace the table in this markdown file")
    args = parser.parse_args()
    require([args.archive], "pass --archive PATH")
    require([path for path, _ in SETS.values()], SHARED_HINT)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "abstention.db")
        with RAG(uri=db) as rag:
            started = time.perf_counter()
            report = rag.ingest([str(args.archive)], glob=FAQ_GLOB if args.faq else None)
            print(
                f"ingest: {report.files} documents, {report.chunks} chunks, embedded "
                f"{report.embedded} in {time.perf_counter() - started:.0f}s "
                f"(embedder {rag.embedder.name})"
            )
            lines, ok = measure(rag, args.json, args.faq)
    table = "\n".join(lines)
    print(table)
    if args.write:
        replace_section(args.write, "abstention-faq" if args.faq else "abstention", table)
    print(f"\nanswers >= 95% of the answerable questions: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
