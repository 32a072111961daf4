"""Scale: synthetic collections of N chunks (384-d) on Milvus Lite or a Milvus server.

    .venv/bin/python benchmarks/scale.py --n 100000 [--uri ./scale.db | http://host:19530]
                                         [--queries 200] [--bm25]

Writes N chunks with random unit vectors and short texts through ``MilvusStore`` (the
code ragloom's ingest uses), then reports the insert rate, the time to seal and index
(flush), search latency p50/p99 over random queries, the process's peak memory and, for
Milvus Lite, the size of the database folder.  Index: HNSW, M=16, efConstruction=200,
metric IP, search ef=64 (ragloom's defaults).  Without ``--uri`` a temporary Milvus Lite
file is used and deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ragloom.store import CollectionInfo, MilvusStore
from ragloom.types import Chunk

DIM = 384
BATCH = 2000
WORDS = ("milvus", "vector", "index", "segment", "query", "node", "partition", "replica", "shard")


def folder_size(path: Path) -> int:
    """Bytes under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def chunk(i: int, rng: np.random.Generator) -> Chunk:
    """A synthetic chunk of about 30 words."""
    text = " ".join(rng.choice(WORDS, size=30))
    source = f"/synthetic/doc{i // 20}.md"
    return Chunk(
        id=f"c{i:09d}",
        source=source,
        root="/synthetic",
        text=text,
        heading=f"Doc {i // 20} > Section {i % 20}",
        position=i % 20,
        doc_hash="h",
        doc_chunks=20,
        embed_text=text,
    )


def main() -> None:
    """Build the collection, measure, print a table row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--uri")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--bm25", action="store_true", help="also index the text for BM25")
    opts = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="ragloom-scale-")
    uri = opts.uri or str(Path(tmp) / "scale.db")
    store = MilvusStore(uri, f"scale_{opts.n}")
    rng = np.random.default_rng(7)
    try:
        store.drop()
        store.create(
            CollectionInfo(embedder="synthetic", dim=DIM, splitter="none", chunk_tokens=0,
                           bm25=opts.bm25 and store.supports_bm25())
        )  # fmt: skip
        started = time.perf_counter()
        for start in range(0, opts.n, BATCH):
            count = min(BATCH, opts.n - start)
            vectors = rng.standard_normal((count, DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            chunks = [chunk(start + j, rng) for j in range(count)]
            store.upsert(chunks, vectors.tolist())
        inserted = time.perf_counter() - started
        store.flush()
        flushed = time.perf_counter() - started - inserted
        queries = rng.standard_normal((opts.queries, DIM)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        store.search("", queries[0].tolist(), k=10)  # load / warm
        latencies = []
        for q in queries:
            t = time.perf_counter()
            store.search("", q.tolist(), k=10)
            latencies.append((time.perf_counter() - t) * 1000)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        size = folder_size(Path(uri)) / 2**20 if store.is_lite else float("nan")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        where = "Milvus Lite" if store.is_lite else f"Milvus server {uri}"
        print(f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}; {where}")
        print("| chunks | insert rate | flush | search p50 | search p99 | peak RSS | size |")
        print("|---|---|---|---|---|---|---|")
        print(
            f"| {opts.n:,} | {opts.n / inserted:,.0f}/s | {flushed:.1f} s"
            f" | {statistics.median(latencies):.1f} ms | {p99:.1f} ms | {peak:,.0f} MiB"
            f" | {size:,.0f} MiB |"
        )
    finally:
        store.drop()
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
