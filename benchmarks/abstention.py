"""Calibrate abstention: how often ragloom declines answerable and unanswerable questions.

    python benchmarks/abstention.py                 # ingest the archive into a temp file
    python benchmarks/abstention.py --db /tmp/d.db  # reuse (or create) a Milvus Lite file

Ingests ``../shared/corpus/milvus_docs_2.4.x_en.zip`` with the default settings (the
bundled embedder), then computes for each question the score retrieval abstention looks
at, ``RAG.relevance``: the dense cosine of the best passage.  Three sets:
``../shared/eval/dev.jsonl`` (answerable), ``benchmarks/unanswerable.jsonl`` (features
the Milvus docs do not have) and ``benchmarks/offtopic.jsonl`` (questions about other
things).  Prints the abstain rate of each set at the configured threshold and for a
sweep, the highest threshold that still answers >= 95% of the answerable questions,
and the lowest that declines every off-topic one.  No network, no LLM.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ragloom import RAG

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ARCHIVE = SHARED / "corpus" / "milvus_docs_2.4.x_en.zip"
ANSWERABLE = SHARED / "eval" / "dev.jsonl"
UNANSWERABLE = ROOT / "benchmarks" / "unanswerable.jsonl"
OFFTOPIC = ROOT / "benchmarks" / "offtopic.jsonl"


def load(path: Path) -> list[dict[str, object]]:
    """One question per JSON line."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def abstain_rate(scores: list[float], threshold: float) -> float:
    """Share of questions whose best dense score is below ``threshold``."""
    return sum(s < threshold for s in scores) / len(scores)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="Milvus Lite file to (re)use; default: a temp file")
    parser.add_argument("--json", action="store_true", help="print per-question scores")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "abstention.db")
        with RAG(uri=db) as rag:
            started = time.perf_counter()
            report = rag.ingest([str(ARCHIVE)])
            print(
                f"ingest: {report.files} documents, {report.chunks} chunks, embedded "
                f"{report.embedded} in {time.perf_counter() - started:.0f}s "
                f"(embedder {rag.embedder.name})"
            )
            threshold = rag.abstain_threshold()
            sets = {
                "answerable": load(ANSWERABLE),
                "unanswerable": load(UNANSWERABLE),
                "off-topic": load(OFFTOPIC),
            }
            scores: dict[str, list[float]] = {}
            for name, items in sets.items():
                scores[name] = []
                for item in items:
                    score = rag.relevance(str(item["question"])) or -1.0
                    scores[name].append(score)
                    if args.json:
                        print(json.dumps({"set": name, "id": item["id"], "score": score}))
    print()
    print("| set | questions | min | median | max |")
    print("|---|---|---|---|---|")
    for name, values in scores.items():
        print(
            f"| {name} | {len(values)} | {min(values):.3f} | "
            f"{statistics.median(values):.3f} | {max(values):.3f} |"
        )
    print()
    print("| threshold | " + " | ".join(f"abstains on {name}" for name in scores) + " |")
    print("|---" * (len(scores) + 1) + "|")
    sweep = sorted({round(0.20 + 0.02 * i, 2) for i in range(16)} | {threshold or 0.0})
    for t in sweep:
        mark = " (configured)" if threshold is not None and abs(t - threshold) < 1e-9 else ""
        rates = " | ".join(f"{abstain_rate(v, t):.0%}" for v in scores.values())
        print(f"| {t:.2f}{mark} | {rates} |")
    ordered = sorted(scores["answerable"])
    allowed = int(len(ordered) * 0.05)  # answer >= 95%: at most this many may fall below
    print(f"\nhighest threshold answering >= 95% of answerable questions: {ordered[allowed]:.3f}")
    print(f"lowest threshold declining every off-topic question: {max(scores['off-topic']):.3f}")
    if threshold is not None:
        ok = abstain_rate(scores["answerable"], threshold) <= 0.05
        print(f"configured threshold {threshold:.3f}: {'meets' if ok else 'MISSES'} the target")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
