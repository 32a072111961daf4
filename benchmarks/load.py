"""Load benchmark: concurrent clients on ``POST /v1/search`` of a running ``ragloom serve``.

    .venv/bin/python benchmarks/load.py [--clients 50] [--seconds 30] [--corpus PATH]
                                        [--db PATH] [--write docs/server.md]

The collection is built first with ``ragloom ingest`` (the default embedder, bundled
all-MiniLM-L6-v2 on the CPU, into a fresh Milvus Lite file); then ``ragloom serve`` runs
in its own process on a free loopback port and ``--clients`` clients each send one search
at a time (a closed loop: at most ``--clients`` requests in flight, each with a 10 s
timeout) for ``--seconds``, cycling through the dev-set questions.  Reported: requests,
errors (any non-200 answer, timeout or dropped connection), throughput, latency
percentiles, and the server's peak memory.  Clients and server share the machine.
``--db`` keeps the Milvus Lite file there (a second run finds the corpus unchanged).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_CORPUS = SHARED / "corpus" / "milvus_docs_2.4.x_en.zip"
DEV_SET = SHARED / "eval" / "dev.jsonl"
FALLBACK_QUESTIONS = [
    "How is data stored in milvus?",
    "Is Milvus free?",
    "How do I set nlist and nprobe for IVF indexes?",
    "Why does the Milvus container exit right after it starts?",
]
MARK_BEGIN = "<!-- load-benchmark:begin -->"
MARK_END = "<!-- load-benchmark:end -->"
REQUEST_TIMEOUT = 10.0


def questions() -> list[str]:
    """The dev set's questions (or a few built-in ones without ``../shared``)."""
    if not DEV_SET.is_file():
        return FALLBACK_QUESTIONS
    return [json.loads(line)["question"] for line in DEV_SET.read_text().splitlines() if line]


def start_server(db: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """``ragloom serve --port 0`` in a child process; returns it and its URL."""
    command = [sys.executable, "-m", "ragloom", "serve", "--port", "0", "--uri", str(db)]
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    for line in server.stderr:
        found = re.search(r" at (http://[\d.]+:\d+)/ ", line)
        if found:
            # Keep reading its stderr (gRPC logs there): a full pipe would block the server.
            threading.Thread(target=server.stderr.read, daemon=True).start()
            return server, found.group(1)
    raise SystemExit(f"ragloom serve exited with {server.wait()} before serving")


def peak_rss_mib(pid: int) -> float | None:
    """A process's peak resident memory (Linux ``VmHWM``), in MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else None


async def load(url: str, clients: int, seconds: float, texts: list[str]) -> dict[str, object]:
    """Run the clients; latencies of successful requests and the errors seen."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(number: int, http: httpx.AsyncClient) -> None:
        i = number
        while time.perf_counter() < deadline:
            body = {"query": texts[i % len(texts)], "k": 3}
            i += clients
            started = time.perf_counter()
            try:
                response = await http.post("/v1/search", json=body)
                ok = response.status_code == 200 and bool(response.json()["hits"])
                kind = "ok" if ok else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                kind = type(exc).__name__
            if kind == "ok":
                latencies.append(time.perf_counter() - started)
            else:
                errors[kind] = errors.get(kind, 0) + 1

    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(n, http) for n in range(clients)))
        elapsed = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed}


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    """Build the collection, serve it, load it, print (and optionally record) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--db", type=Path, help="keep the Milvus Lite file here")
    parser.add_argument(
        "--query-batch", type=int, help="the server's RAGLOOM_QUERY_BATCH (1: no batching)"
    )
    parser.add_argument("--write", type=Path, help="replace the table in this markdown file")
    opts = parser.parse_args()
    if not opts.corpus.exists():
        raise SystemExit(f"{opts.corpus}: not found (pass --corpus PATH)")
    texts = questions()
    with tempfile.TemporaryDirectory(prefix="ragloom-load-") as tmp:
        db = (opts.db or Path(tmp) / "load.db").absolute()
        env = {**os.environ, "RAGLOOM_CACHE_DIR": str(Path(tmp) / "cache"), "RAGLOOM_LLM": "none"}
        env.pop("RAGLOOM_API_KEY", None)
        if opts.query_batch:
            env["RAGLOOM_QUERY_BATCH"] = str(opts.query_batch)
        print(f"ingesting {opts.corpus} ...", file=sys.stderr)
        ingest = subprocess.run(
            [sys.executable, "-m", "ragloom", "ingest", str(opts.corpus), "--uri", str(db),
             "--json"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        report = json.loads(ingest.stdout)
        server, url = start_server(db, env)
        try:
            with httpx.Client(base_url=url, timeout=60) as warm:  # loads the model
                for text in texts[:5]:
                    warm.post("/v1/search", json={"query": text, "k": 3}).raise_for_status()
            print(f"{opts.clients} clients for {opts.seconds:.0f}s on {url} ...", file=sys.stderr)
            result = asyncio.run(load(url, opts.clients, opts.seconds, texts))
            rss = peak_rss_mib(server.pid)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    latencies = [1000 * x for x in result["latencies"]]  # type: ignore[attr-defined]
    errors: dict[str, int] = result["errors"]  # type: ignore[assignment]
    elapsed = float(result["elapsed"])  # type: ignore[arg-type]
    total = len(latencies) + sum(errors.values())
    error_text = ", ".join(f"{n} {k}" for k, n in errors.items()) or "0"
    batching = (
        f"queries embedded {opts.query_batch} at a time"
        if opts.query_batch
        else "concurrent queries embedded together"
    )
    lines = [
        f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}, Python"
        f" {platform.python_version()}; server and clients on the same machine, over loopback.",
        f"Collection: {opts.corpus.name}, {report['files']} documents, {report['chunks']} chunks,"
        f" bundled all-MiniLM-L6-v2 on the CPU ({batching}), Milvus Lite, dense search, k=3.",
        "",
        "| clients | duration | requests | errors | throughput | p50 | p90 | p99 | max"
        " | server peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {opts.clients} | {elapsed:.0f} s | {total} | {error_text}"
        f" | {len(latencies) / elapsed:.0f} req/s | {percentile(latencies, 0.5):.0f} ms"
        f" | {percentile(latencies, 0.9):.0f} ms | {percentile(latencies, 0.99):.0f} ms"
        f" | {max(latencies):.0f} ms | {f'{rss:.0f} MiB' if rss else 'n/a'} |",
        "",
        f"Mean {statistics.mean(latencies):.1f} ms. Reproduce: `.venv/bin/python"
        f" benchmarks/load.py --clients {opts.clients} --seconds {opts.seconds:.0f}"
        + (f" --query-batch {opts.query_batch}" if opts.query_batch else "")
        + "`.",
    ]
    table = "\n".join(lines)
    print(table)
    if opts.write:
        text = opts.write.read_text()
        start, end = text.index(MARK_BEGIN) + len(MARK_BEGIN), text.index(MARK_END)
        opts.write.write_text(text[:start] + "\n" + table + "\n" + text[end:])
    if errors:
        raise SystemExit(f"{sum(errors.values())} requests failed: {error_text}")


if __name__ == "__main__":
    main()
