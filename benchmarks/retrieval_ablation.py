"""Retrieval ablation: what each choice of the default pipeline adds, one step at a time.

    .venv/bin/python benchmarks/retrieval_ablation.py [--write docs/retrieval.md]

Every variant needs its own chunks (and so its own vectors), so instead of ingesting the
archive into Milvus once per row this runs the pipeline on an exact in-memory stand-in
for the store: the real loader, chunker, embedder (through ragloom's embedding cache, so
a second run embeds nothing), lexical normaliser, fusion and neighbour joining, with
brute-force cosine search for the HNSW index and Milvus Lite's BM25 formula (k1 1.5,
b 0.75, IDF log((N - df + 0.5) / (df + 0.5) + 1), query term counts as weights) for its
BM25 function.  ``benchmarks/retrieval.py`` measures the finished pipeline on Milvus Lite
itself; its dense and hybrid rows match the last row here.

Rows, each adding one thing to the one above:

1. the foundation's pipeline: heading chunks that merge sections under 48 tokens, dense;
2. plain hybrid: BM25 on the raw text, fused by RRF (k = 60) as ``hybrid_search`` does;
3. back to dense, with only sections under 16 tokens merged;
4. hybrid with weighted fusion (BM25 weight 0.5) on the raw text;
5. the lexical text and the question normalised (stems, stop words, identifiers);
6. adjacent candidate chunks joined into one passage: the default.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from _docs import replace_section
from _measure import SHARED_HINT, require

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ARCHIVE = SHARED / "corpus" / "milvus_docs_2.4.x_en.zip"
SETS = {"dev": SHARED / "eval" / "dev.jsonl", "fresh": ROOT / "benchmarks" / "data" / "fresh.jsonl"}
POOL = 20
_WORD = re.compile(r"\w+")


class Bm25:
    """Milvus Lite's BM25 over one segment holding every chunk."""

    def __init__(self, texts: list[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        counts = [Counter(_WORD.findall(t.lower())) for t in texts]
        self.lengths = [sum(c.values()) for c in counts]
        self.avgdl = sum(self.lengths) / max(1, len(texts))
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, c in enumerate(counts):
            for term, tf in c.items():
                self.postings[term].append((i, tf))
        self.n = len(texts)

    def top(self, query: str, limit: int) -> list[tuple[int, float]]:
        scores: dict[int, float] = defaultdict(float)
        for term, weight in Counter(_WORD.findall(query.lower())).items():
            posting = self.postings.get(term, [])
            idf = math.log((self.n - len(posting) + 0.5) / (len(posting) + 0.5) + 1.0)
            for i, tf in posting:
                norm = tf + self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avgdl)
                scores[i] += weight * idf * tf * (self.k1 + 1) / norm
        return sorted(scores.items(), key=lambda pair: -pair[1])[:limit]


def main() -> None:
    """Build each variant, score both question sets, print (and record) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="replace the table in this markdown file")
    opts = parser.parse_args()
    require([ARCHIVE, *SETS.values()], SHARED_HINT)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np

    from ragloom import eval as metrics
    from ragloom import lexical
    from ragloom.chunking import ChunkSettings, chunk_document
    from ragloom.config import load_settings
    from ragloom.embedders.cache import CachingEmbedder, EmbeddingCache
    from ragloom.embedders.local import LocalEmbedder
    from ragloom.loaders import load_sources
    from ragloom.retrieval import fuse_weighted, join_neighbours
    from ragloom.types import Document, Hit

    model = LocalEmbedder(cache_dir=load_settings().cache_dir or None)
    cache_dir = Path(load_settings().cache_dir or "/tmp/ragloom-cache")
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = EmbeddingCache(cache_dir / "embeddings.sqlite")
    embedder = CachingEmbedder(model, cache)
    docs = [d for d in load_sources([str(ARCHIVE)]) if isinstance(d, Document)]
    items = {name: metrics.load_items(path) for name, path in SETS.items()}
    questions = sorted({i.question for group in items.values() for i in group})
    qvec = dict(zip(questions, np.asarray(model.embed(questions, "query")), strict=True))

    def index(min_tokens: int) -> tuple[list[Any], Any]:
        settings = ChunkSettings(max_tokens=model.max_tokens, min_tokens=min_tokens)
        chunks = [c for d in docs for c in chunk_document(d, settings, model.count_tokens)]
        vectors = np.asarray(embedder.embed([c.embed_text for c in chunks], "document"))
        return chunks, vectors

    def hits(chunks: list[Any], ranked: list[tuple[int, float]]) -> list[Hit]:
        return [
            Hit(n, s, chunks[i].text, chunks[i].source, chunks[i].heading, chunks[i].id,
                chunks[i].position)
            for n, (i, s) in enumerate(ranked, 1)
        ]  # fmt: skip

    def rrf(routes: list[list[Hit]], k: int = 60) -> list[Hit]:
        total: dict[str, float] = defaultdict(float)
        first: dict[str, Hit] = {}
        for route in routes:
            for rank, hit in enumerate(route, 1):
                total[hit.chunk_id] += 1 / (k + rank)
                first.setdefault(hit.chunk_id, hit)
        return [first[c] for c in sorted(total, key=lambda c: -total[c])]

    def row(min_tokens: int, fusion: str | None, normalise: bool, join: bool) -> dict[str, Any]:
        chunks, vectors = built[min_tokens]
        analyzer = lexical.ANALYZER if normalise else lexical.RAW
        bm25 = Bm25([lexical.analyze(c.embed_text, analyzer) for c in chunks])
        out = {}
        for set_name, group in items.items():

            def search(question: str) -> list[Hit]:
                cosines = vectors @ qvec[question]
                best = np.argsort(-cosines)[:POOL]
                dense = hits(chunks, [(int(i), float(cosines[i])) for i in best])
                if fusion is None:
                    found = dense
                else:
                    terms = lexical.analyze(question, analyzer)
                    lexical_hits = hits(chunks, bm25.top(terms, POOL))
                    found = (
                        rrf([dense, lexical_hits]) if fusion == "rrf"
                        else fuse_weighted([(dense, 1.0), (lexical_hits, 0.5)])
                    )  # fmt: skip
                return join_neighbours(found, 20)[:10] if join else found[:10]

            out[set_name] = metrics.report(metrics.run(group, search, warm_up=False))
        return out

    built = {m: index(m) for m in (48, 16)}
    steps = [
        ("1. foundation: sections < 48 tokens merged, dense", (48, None, False, False)),
        ("2. + plain hybrid (raw BM25, RRF k=60)", (48, "rrf", False, False)),
        ("3. dense, only sections < 16 tokens merged", (16, None, False, False)),
        ("4. + hybrid, weighted fusion (BM25 x 0.5)", (16, "weighted", False, False)),
        ("5. + lexical text normalised (stems, stop words)", (16, "weighted", True, False)),
        ("6. + neighbouring chunks joined (default)", (16, "weighted", True, True)),
    ]
    lines = [
        f"Offline replica of the pipeline (see `benchmarks/retrieval_ablation.py`); chunks"
        f" with min 48: {len(built[48][0])}, min 16: {len(built[16][0])}.",
        "",
        "| step | dev hit@1 | dev hit@3 | dev hit@10 | dev MRR@10 | fresh hit@3 | fresh MRR@10 |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, args in steps:
        result = row(*args)
        dev, fresh = result["dev"], result["fresh"]
        lines.append(
            f"| {label} | {dev['hit@1']:.2f} | {dev['hit@3']:.2f} | {dev['hit@10']:.2f}"
            f" | {dev['mrr@10']:.2f} | {fresh['hit@3']:.2f} | {fresh['mrr@10']:.2f} |"
        )
        print(lines[-1], flush=True)
    cache.close()
    table = "\n".join(lines)
    print(table)
    if opts.write:
        replace_section(opts.write, "retrieval-ablation", table)


if __name__ == "__main__":
    main()
