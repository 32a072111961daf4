"""Ingest against the model's own speed, and an ingest's memory at 1x and 10x the corpus.

    .venv/bin/python benchmarks/encode_vs_ingest.py [--archive PATH] [--copies 10]
                                                    [--server] [--write docs/benchmarks.md]

On a CPU the limit of an ingest is the embedding model itself, so the target is that a
full ``ragloom ingest`` of the Milvus docs archive costs at most 15% more than a raw
``model.encode`` of the same texts.  In one run, each step in a fresh process:

1. the archive is chunked with ragloom's own chunker (the texts ragloom embeds:
   ``Chunk.embed_text``);
2. raw sentence-transformers ``model.encode(texts)`` of those texts (the bundled model,
   its default batch of 32), model load not counted;
3. the ONNX Runtime encode ragloom uses (``LocalEmbedder.embed``), model load not counted;
4. ``ragloom ingest ARCHIVE`` on a fresh Milvus Lite file with a cold embedding cache
   (the one-time ONNX export is done before and timed on its own), start-up included.

Then memory as the corpus grows: the archive once and ``--copies`` times (copies under
other names, so every row is written again), the vectors served from the now warm
embedding cache (the real model on 10x the archive would take most of an hour), each on
a fresh Milvus Lite file and, with ``--server``, on a real Milvus server started here,
where the collection lives outside the ingest's process and its RSS is the pipeline's
alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _docs import replace_section
from _measure import ARCHIVE, Run, device, load, machine, run_ragloom, start_milvus_server


def chunk_texts(archive: Path) -> tuple[list[str], float]:
    """The texts ragloom embeds for ``archive`` (``Chunk.embed_text``), and seconds taken."""
    from ragloom import RAG
    from ragloom.chunking import chunk_document
    from ragloom.loaders import load_sources
    from ragloom.types import Document

    started = time.perf_counter()
    rag = RAG(uri=str(Path(tempfile.gettempdir()) / "unused.db"))  # the store is never opened
    settings, count = rag.chunk_settings(), rag.embedder.count_tokens
    texts = [
        chunk.embed_text
        for doc in load_sources([str(archive)])
        if isinstance(doc, Document)
        for chunk in chunk_document(doc, settings, count)
    ]
    return texts, time.perf_counter() - started


# -- child processes: one model each, so neither pays for the other's memory --------------


def encode_child(kind: str, texts_file: Path, cache_dir: Path, vectors_file: Path) -> None:
    """Encode the texts with ``kind`` (``st`` or ``onnx``); print seconds, CPU, RSS as JSON."""
    import numpy as np

    from ragloom.embedders.local import LocalEmbedder, bundled_model_path

    texts = json.loads(texts_file.read_text())
    ragloom_model = LocalEmbedder(cache_dir=str(cache_dir))
    if kind == "st":
        import torch
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(bundled_model_path()), device=ragloom_model.device)
        model.encode(texts[:32])  # warm-up, as the ingest's model load is not counted either

        def encode() -> Any:
            return model.encode(texts, normalize_embeddings=True)

        detail = f"{model.device}, batch 32, torch threads {torch.get_num_threads()}"
    else:
        ragloom_model.embed(texts[:32])
        assert ragloom_model.backend == "onnx", "the ONNX export is missing"

        def encode() -> Any:
            return np.asarray(ragloom_model.embed(texts), dtype=np.float32)

        detail = f"{ragloom_model.device}, batch {ragloom_model.batch_size}"
    before, cpu_before = load(), time.process_time()
    started = time.perf_counter()
    vectors = encode()
    seconds = time.perf_counter() - started
    np.save(vectors_file, vectors)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": time.process_time() - cpu_before,
                "rss_mib": usage.ru_maxrss / 1024,
                "load_before": before,
                "load_after": load(),
                "detail": detail,
            }
        )
    )


def run_encode(kind: str, texts_file: Path, cache_dir: Path, vectors_file: Path) -> dict[str, Any]:
    """Run :func:`encode_child` in a fresh process."""
    import subprocess

    args = ["--encode", kind, str(texts_file), str(cache_dir), str(vectors_file)]
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"encode {kind} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def export_onnx(cache_dir: Path) -> Run:
    """Export the bundled model to ONNX into ``cache_dir`` (what a first use does), timed."""
    import subprocess

    script = (
        "import resource, sys, time\n"
        "from ragloom.embedders.local import LocalEmbedder\n"
        "t = time.perf_counter()\n"
        f"LocalEmbedder(cache_dir={str(cache_dir)!r}).warm_up()\n"
        "u = resource.getrusage(resource.RUSAGE_SELF)\n"
        "c = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "cpu = u.ru_utime + u.ru_stime + c.ru_utime + c.ru_stime\n"
        "print(time.perf_counter() - t, cpu, max(u.ru_maxrss, c.ru_maxrss))\n"
    )
    before = load()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"ONNX export failed:\n{proc.stderr}")
    seconds, cpu, rss_kb = proc.stdout.split()
    return Run(float(seconds), float(cpu), int(rss_kb) / 1024, before, load())


def cold_cache(tmp: Path, exported: Path, name: str) -> Path:
    """A fresh ragloom cache folder holding the ONNX export but no embeddings."""
    cache = tmp / name
    shutil.copytree(exported / "onnx", cache / "onnx")
    return cache


def min_cosine(a_file: Path, b_file: Path) -> float:
    """The least cosine between matching rows of two saved unit-vector arrays."""
    import numpy as np

    a, b = np.load(a_file), np.load(b_file)
    return float((a * b).sum(axis=1).min())


def cached_vectors(cache: Path, texts: list[str]) -> Path:
    """The vectors the ingest stored in its embedding cache, in ``texts`` order, saved."""
    import numpy as np

    from ragloom.embedders.cache import EmbeddingCache, text_key

    db = EmbeddingCache(cache / "embeddings.sqlite")
    try:
        keys = [text_key(t) for t in texts]
        found = db.get("local:all-MiniLM-L6-v2", keys)
    finally:
        db.close()
    out = cache / "ingested.npy"
    np.save(out, np.array([found[k] for k in keys], dtype=np.float32))
    return out


# -- the two tables ------------------------------------------------------------------------


def speed(opts: argparse.Namespace, tmp: Path) -> tuple[list[str], Path]:
    """Steps 1-4; the table's lines, and the warm cache the ingest left."""
    exported = tmp / "exported"
    export = export_onnx(exported)
    print(f"ONNX export: {export.wall:.1f} s", file=sys.stderr)
    texts, chunk_seconds = chunk_texts(opts.archive)
    texts_file = tmp / "texts.json"
    texts_file.write_text(json.dumps(texts))
    print(f"chunked: {len(texts)} texts in {chunk_seconds:.1f} s", file=sys.stderr)
    st = run_encode("st", texts_file, exported, tmp / "st.npy")
    print(f"sentence-transformers: {st['seconds']:.1f} s", file=sys.stderr)
    onnx = run_encode("onnx", texts_file, exported, tmp / "onnx.npy")
    print(f"ONNX Runtime: {onnx['seconds']:.1f} s", file=sys.stderr)
    cache = cold_cache(tmp, exported, "cache")
    env = {**os.environ, "RAGLOOM_CACHE_DIR": str(cache)}
    db = str(tmp / "speed.db")
    ingest = run_ragloom(["ingest", str(opts.archive), "--uri", db, "--json"], env)
    print(f"ragloom ingest: {ingest.wall:.1f} s", file=sys.stderr)
    ingested = cached_vectors(cache, texts)
    report = ingest.report
    lines = [
        f"{len(texts):,} chunks ({sum(map(len, texts)) / 1e6:.1f} M characters) of"
        f" {report.get('files')} files; the model on {device()}.",
        "",
        "| step | wall time | CPU time | peak RSS | load before -> after |",
        "|---|---|---|---|---|",
        f"| chunk the archive (ragloom's chunker) | {chunk_seconds:.1f} s | | | {load()} |",
        _encode_row(f"raw sentence-transformers `model.encode` ({st['detail']})", st),
        _encode_row(f"raw ONNX Runtime encode, `LocalEmbedder.embed` ({onnx['detail']})", onnx),
        f"| `ragloom ingest` of the archive, cold embedding cache, start-up included"
        f" | {ingest.wall:.1f} s | {ingest.cpu:.1f} s | {ingest.peak_mib:,.0f} MiB"
        f" | {ingest.loads} |",
        f"| (once per install, not above) export the model to ONNX | {export.wall:.1f} s"
        f" | {export.cpu:.1f} s | {export.peak_mib:,.0f} MiB | {export.loads} |",
        "",
        f"**ingest / raw `model.encode` = {ingest.wall / st['seconds']:.2f}** (target <= 1.15);"
        f" ingest / raw ONNX Runtime encode = {ingest.wall / onnx['seconds']:.2f}.",
        f"Same vectors: least cosine between sentence-transformers and ONNX Runtime"
        f" {min_cosine(tmp / 'st.npy', tmp / 'onnx.npy'):.6f}, between"
        f" sentence-transformers and what the ingest stored"
        f" {min_cosine(tmp / 'st.npy', ingested):.6f}.",
    ]
    shutil.rmtree(db, ignore_errors=True)
    return lines, cache


def _encode_row(label: str, result: dict[str, Any]) -> str:
    return (
        f"| {label} | {result['seconds']:.1f} s | {result['cpu']:.1f} s"
        f" | {result['rss_mib']:,.0f} MiB | {result['load_before']} -> {result['load_after']} |"
    )


def memory(opts: argparse.Namespace, tmp: Path, cache: Path) -> list[str]:
    """Peak RSS of an ingest of the archive once and ``--copies`` times (warm cache)."""
    copies = tmp / "copies"
    copies.mkdir()
    for i in range(opts.copies):
        shutil.copyfile(opts.archive, copies / f"copy{i:02d}-{opts.archive.name}")
    first = str(copies / f"copy00-{opts.archive.name}")
    env = {**os.environ, "RAGLOOM_CACHE_DIR": str(cache)}
    stores: list[tuple[str, Any]] = [("Milvus Lite", None)]
    server = None
    if opts.server:
        print("starting a Milvus server (~40 s)...", file=sys.stderr)
        server = start_milvus_server(tmp / "server")
        stores.append(("Milvus server 2.3 (separate process)", server))
    lines = [
        "| corpus | store | chunks written | wall time | CPU time | peak RSS | load |",
        "|---|---|---|---|---|---|---|",
    ]
    try:
        for store_label, handle in stores:
            for label, sources in [("1x", [first]), (f"{opts.copies}x", [str(copies)])]:
                if handle is None:
                    uri = str(tmp / f"mem-{label}.db")
                    extra = []
                else:
                    uri = handle.uri
                    extra = ["--collection", f"mem_{label}"]
                run = run_ragloom(["ingest", *sources, "--uri", uri, "--json", *extra], env)
                written = run.report.get("written")
                print(f"{label} {store_label}: {run.peak_mib:.0f} MiB", file=sys.stderr)
                lines.append(
                    f"| {label} | {store_label} | {written:,} | {run.wall:.1f} s"
                    f" | {run.cpu:.1f} s | {run.peak_mib:,.0f} MiB | {run.loads} |"
                )
                if handle is None:
                    shutil.rmtree(uri, ignore_errors=True)
    finally:
        if server is not None:
            server.stop()
    return lines


def main() -> None:
    """Run both parts and print (and optionally record) the tables."""
    if len(sys.argv) > 1 and sys.argv[1] == "--encode":
        kind, texts, cache, out = sys.argv[2:6]
        encode_child(kind, Path(texts), Path(cache), Path(out))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--copies", type=int, default=10, help="the large corpus, in archives")
    parser.add_argument("--server", action="store_true", help="also ingest into a Milvus server")
    parser.add_argument("--write", type=Path, help="record the tables in this markdown file")
    opts = parser.parse_args()
    if not opts.archive.is_file():
        raise SystemExit(f"{opts.archive}: not found (pass --archive PATH)")
    with tempfile.TemporaryDirectory(prefix="ragloom-encode-") as name:
        tmp = Path(name)
        speed_lines, cache = speed(opts, tmp)
        memory_lines = memory(opts, tmp, cache)
    command = "python benchmarks/encode_vs_ingest.py" + (" --server" if opts.server else "")
    text = "\n".join(
        [
            f"Machine: {machine()}. Measured with `{command}`.",
            "",
            *speed_lines,
            "",
            f"Peak memory as the corpus grows (the archive once and {opts.copies} times under"
            " other names; vectors from the warm embedding cache, so the pipeline runs"
            " without the model's compute):",
            "",
            *memory_lines,
        ]
    )
    print(text)
    if opts.write:
        replace_section(opts.write, "encode-vs-ingest", text)


if __name__ == "__main__":
    main()
