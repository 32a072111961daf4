"""Scale: synthetic collections of N chunks (384-d) on Milvus Lite or a Milvus server.

    .venv/bin/python benchmarks/scale.py --n 100000 [--server | --uri http://host:19530]
                                         [--queries 200] [--bm25] [--write docs/benchmarks.md]

Writes N chunks (random unit vectors near a 32-d subspace, ~900-character texts like the
docs archive's chunks) through ``MilvusStore``, the code ragloom's ingest uses, in
batches of 2,000, and measures, each part in a fresh process:

- **ingest**: the insert rate, the flush (seal, and wait until the vector index is
  built: on a server by polling it, on Milvus Lite inside ``MilvusStore.flush``), then
  dense search latency p50/p99 over ``--queries`` random queries in that same process,
  and its recall@10 against an exact search;
- **reopened**: a new process opens the collection (time to the first search answered),
  then the same searches.

It reports peak RSS (the ingest process; on a server also the server's own), the
database's size on disk, and where it ran.  Index: HNSW, M=16, efConstruction=200,
metric IP; searches ask for k=10 with ef=100 (ragloom's settings).  ``--server`` starts a
real Milvus server (PyPI ``milvus``, 2.3) on free loopback ports for the run.  Results
are kept in ``benchmarks/data/scale.json`` (one entry per store and size) and
``--write`` renders all of them into the doc's ``scale`` section.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _docs import replace_section
from _measure import ROOT, load, machine, start_milvus_server

DIM = 384
INTRINSIC = 32  # text embeddings vary along far fewer directions than they have
BATCH = 2000
K = 10
SEED = 7
RESULTS = ROOT / "benchmarks" / "data" / "scale.json"


def folder_size(path: Path) -> int:
    """Bytes under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def vocabulary(rng: np.random.Generator) -> np.ndarray:
    """2,000 made-up words of 3-10 letters."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return np.array(
        ["".join(rng.choice(letters, size=int(rng.integers(3, 11)))) for _ in range(2000)]
    )


def unit_vectors(count: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors near a random 32-dimensional subspace of the 384 dimensions.

    Uniformly random 384-d vectors are all nearly equidistant, which no embedding model
    produces and which makes any ANN index look bad (recall@10 ~0.4 at 20k rows); text
    embeddings have a low intrinsic dimension.
    """
    basis = np.random.default_rng(SEED - 1).standard_normal((INTRINSIC, DIM))
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    noise = 0.3 * np.sqrt(INTRINSIC / DIM)
    vectors = rng.standard_normal((count, INTRINSIC)) @ basis
    vectors += noise * rng.standard_normal((count, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def batch(start: int, count: int, words: np.ndarray, rng: np.random.Generator) -> Any:
    """Chunks ``start .. start+count`` with their unit vectors (deterministic in ``rng``)."""
    from ragloom.types import Chunk

    vectors = unit_vectors(count, rng)
    picks = rng.integers(0, len(words), size=(count, 130))
    chunks = []
    for j in range(count):
        i = start + j
        text = " ".join(words[picks[j]])
        chunks.append(
            Chunk(id=f"c{i:09d}", source=f"/synthetic/doc{i // 20}.md", root="/synthetic",
                  text=text, heading=f"Doc {i // 20} > Section {i % 20}", position=i % 20,
                  doc_hash="h", doc_chunks=20, embed_text=text)
        )  # fmt: skip
    return chunks, vectors


def queries(count: int) -> np.ndarray:
    """The same ``count`` random queries, drawn like the rows, in every process."""
    return unit_vectors(count, np.random.default_rng(SEED + 1))


def timed_searches(store: Any, qs: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """p50/p99 milliseconds of ragloom's dense k=10 search per query, and recall@10."""
    return timed(lambda q: [h.chunk_id for h in store.search("", q, k=K, mode="dense")], qs, exact)


def timed_bounded(store: Any, qs: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """The same search straight through pymilvus with Bounded consistency (servers)."""
    from ragloom.store import OUTPUT_FIELDS

    def search(q: list[float]) -> list[str]:
        found = store.client.search(
            store.collection, data=[q], anns_field="vector", limit=K,
            output_fields=OUTPUT_FIELDS, consistency_level="Bounded",
            search_params={"metric_type": "IP", "params": {"ef": 100}},
        )  # fmt: skip
        return [str(row["id"]) for row in found[0]]

    return timed(search, qs, exact)


def timed(search: Any, qs: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """p50/p99 milliseconds of ``search(query) -> ids`` per query, and recall@10."""
    latencies, found = [], 0
    for q, truth in zip(qs, exact, strict=True):
        started = time.perf_counter()
        ids = search(q.tolist())
        latencies.append((time.perf_counter() - started) * 1000)
        found += len({int(i[1:]) for i in ids} & set(truth.tolist()))
    latencies.sort()
    return {
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "recall": found / (K * len(qs)),
    }


def wait_for_index(store: Any, total: int, timeout: float = 3600) -> None:
    """On a server: until the vector index covers every row (Milvus builds it after a flush)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = store.client.describe_index(store.collection, "vector")
        if int(info.get("indexed_rows", 0)) >= total and not int(info.get("pending_index_rows", 0)):
            return
        time.sleep(2)
    raise SystemExit(f"the server's index did not cover {total} rows in {timeout:.0f} s")


def ingest_child(uri: str, n: int, nq: int, bm25: bool, exact_file: Path) -> dict[str, Any]:
    """Create and fill the collection, flush, search in this process."""
    from ragloom.store import CollectionInfo, MilvusStore

    rng = np.random.default_rng(SEED)
    words = vocabulary(rng)
    qs = queries(nq)
    best = np.full((nq, K), -np.inf, dtype=np.float32)  # exact top-k, kept as we go
    best_ids = np.zeros((nq, K), dtype=np.int64)
    store = MilvusStore(uri, f"scale_{n}", timeout=60)
    store.drop()
    store.create(
        CollectionInfo(embedder="synthetic", dim=DIM, splitter="none", chunk_tokens=0,
                       bm25=bm25 and store.supports_bm25())
    )  # fmt: skip
    inserting = 0.0
    for start in range(0, n, BATCH):
        chunks, vectors = batch(start, min(BATCH, n - start), words, rng)
        started = time.perf_counter()
        store.upsert(chunks, vectors.tolist())
        inserting += time.perf_counter() - started
        scores = np.concatenate([best, qs @ vectors.T], axis=1)
        ids = np.concatenate(
            [best_ids, np.arange(start, start + len(chunks))[None].repeat(nq, 0)], 1
        )
        top = np.argsort(-scores, axis=1)[:, :K]
        best, best_ids = np.take_along_axis(scores, top, 1), np.take_along_axis(ids, top, 1)
        if start // BATCH % 50 == 0:
            print(f"  {start + len(chunks):,} rows, {load()}", file=sys.stderr, flush=True)
    np.save(exact_file, best_ids)
    started = time.perf_counter()
    store.flush()
    if not store.is_lite:
        wait_for_index(store, n)
    flushed = time.perf_counter() - started
    result = {"insert_rate": n / inserting, "flush_s": flushed, "load_insert": load()}
    result.update({f"same_{k}": v for k, v in timed_searches(store, qs, best_ids).items()})
    result["load_same"] = load()
    store.close()
    result["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def reopen_child(uri: str, n: int, nq: int, exact_file: Path) -> dict[str, Any]:
    """Open the collection in this new process, time the first search, then the rest."""
    from ragloom.store import MilvusStore

    qs = queries(nq)
    started = time.perf_counter()
    store = MilvusStore(uri, f"scale_{n}", timeout=60)
    store.search("", qs[0].tolist(), k=K, mode="dense")
    first = time.perf_counter() - started
    result: dict[str, Any] = {"open_first_search_s": first}
    exact = np.load(exact_file)
    result.update({f"reopened_{k}": v for k, v in timed_searches(store, qs, exact).items()})
    if not store.is_lite:
        result.update({f"bounded_{k}": v for k, v in timed_bounded(store, qs, exact).items()})
    result["load_reopened"] = load()
    store.close()
    result["reopened_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def child(args: list[str]) -> dict[str, Any]:
    """Run one part (``ingest`` or ``reopen``) in a fresh process; its JSON result."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(args)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"scale.py {args[0]} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def server_peak_mib(pid: int) -> float:
    """The peak RSS (VmHWM) of the server process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(opts: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Both parts for one store and size."""
    server = None
    if opts.server:
        print("starting a Milvus server (~40 s)...", file=sys.stderr)
        server = start_milvus_server(tmp / "server")
        uri = server.uri
    else:
        uri = opts.uri or str(tmp / "scale.db")
    exact = tmp / "exact.npy"
    try:
        print(f"ingest {opts.n:,} rows into {uri}, load {load()}", file=sys.stderr)
        result = child(["ingest", uri, opts.n, opts.queries, opts.bm25, str(exact)])
        print(f"ingested: {result}", file=sys.stderr)
        if server is None and (not opts.uri or "://" not in opts.uri):
            result["size_mib"] = folder_size(Path(uri)) / 2**20
        result.update(child(["reopen", uri, opts.n, opts.queries, str(exact)]))
        if server is not None:
            result["server_rss_mib"] = server_peak_mib(server.process.pid)
            result["size_mib"] = folder_size(server.data_dir / "data") / 2**20
            result["server"] = "Milvus 2.3.5 standalone (PyPI milvus), started by the benchmark"
    finally:
        if server is not None:
            server.stop()
        elif not opts.uri:
            shutil.rmtree(uri, ignore_errors=True)
    result.update(n=opts.n, bm25=opts.bm25, queries=opts.queries, machine=machine())
    result["store"] = "Milvus Lite" if server is None and "://" not in uri else "Milvus server"
    result["date"] = time.strftime("%Y-%m-%d")
    return result


def render(results: dict[str, dict[str, Any]]) -> str:
    """The doc's table: one row per store and size."""
    rows = sorted(results.values(), key=lambda r: (r["store"] != "Milvus Lite", r["n"], r["bm25"]))
    lines = [
        "| store | chunks | insert rate | flush + index | search p50 / p99, same process"
        " | open + 1st search | search p50 / p99, reopened | recall@10"
        " | peak RSS, ingest / reopened | on disk"
        " | load (1/5/15 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rss = f"{r['rss_mib']:,.0f} / {r['reopened_rss_mib']:,.0f} MiB"
        if "server_rss_mib" in r:
            rss += f" (server: {r['server_rss_mib']:,.0f} MiB)"
        store = r["store"] + (" + BM25" if r["bm25"] else "")
        lines.append(
            f"| {store} | {r['n']:,} | {r['insert_rate']:,.0f} rows/s | {r['flush_s']:.1f} s"
            f" | {r['same_p50_ms']:.1f} / {r['same_p99_ms']:.1f} ms"
            f" | {r['open_first_search_s']:.1f} s"
            f" | {r['reopened_p50_ms']:.1f} / {r['reopened_p99_ms']:.1f} ms"
            f" | {r['reopened_recall']:.3f} | {rss} | {r.get('size_mib', float('nan')):,.0f} MiB"
            f" | {r['load_insert']} / {r['load_reopened']} |"
        )
    for r in rows:
        if "bounded_p50_ms" in r:
            lines.append(
                f"\nOn the server, ragloom's searches ask for Session consistency (a Strong"
                f" search waits for the next 200 ms time tick of Milvus 2.3); for comparison,"
                f" the same search through pymilvus with Bounded consistency:"
                f" p50 {r['bounded_p50_ms']:.1f} ms, p99 {r['bounded_p99_ms']:.1f} ms"
                f" ({r['n']:,} chunks)."
            )
    machines = sorted({r["machine"] for r in rows})
    return "\n".join(
        [
            f"Machine: {'; '.join(machines)}; no embedding model (synthetic vectors)."
            " Index HNSW (M=16, efConstruction=200, IP),"
            f" searches k={K}, ef=100, {rows[0]['queries'] if rows else 0} random queries;"
            " vectors random unit 384-d near a 32-d subspace (as embeddings are), texts"
            " ~900 characters. Load: while inserting /"
            " while searching the reopened collection.",
            "",
            *lines,
        ]
    )


def main() -> None:
    """Measure one store and size, keep the result, print (and optionally record) the table."""
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        part, *args = json.loads(sys.argv[2])
        if part == "ingest":
            uri, n, nq, bm25, exact = args
            print(json.dumps(ingest_child(uri, n, nq, bm25, Path(exact))))
        else:
            uri, n, nq, exact = args
            print(json.dumps(reopen_child(uri, n, nq, Path(exact))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--uri", help="a Milvus Lite file or a server URI (default: a temp file)")
    where.add_argument("--server", action="store_true", help="start a Milvus server for the run")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--bm25", action="store_true", help="also index the text for BM25")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where results are kept")
    parser.add_argument("--write", type=Path, help="record the table in this markdown file")
    parser.add_argument("--table", action="store_true", help="only show the kept results")
    opts = parser.parse_args()
    if opts.n < K or opts.queries < 1:
        parser.error(f"--n must be at least {K} and --queries at least 1")
    results = json.loads(opts.results.read_text()) if opts.results.is_file() else {}
    if not opts.table:
        with tempfile.TemporaryDirectory(prefix="ragloom-scale-") as tmp:
            result = run(opts, Path(tmp))
        results[f"{result['store']}{' + BM25' if opts.bm25 else ''}:{opts.n}"] = result
        opts.results.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    table = render(results)
    print(table)
    if opts.write:
        replace_section(opts.write, "scale", table)


if __name__ == "__main__":
    main()
