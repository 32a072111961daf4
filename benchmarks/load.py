"""Load benchmark: concurrent clients on ``POST /v1/search`` of a running ``ragloom serve``.

    .venv/bin/python benchmarks/load.py [--clients 50] [--seconds 30] [--modes hybrid,dense]
                                        [--corpus PATH] [--db PATH] [--query-batch N]
                                        [--write docs/server.md]

The collection is built first with ``ragloom ingest`` (the default embedder, bundled
all-MiniLM-L6-v2 on the CPU, into a fresh Milvus Lite file); then ``ragloom serve`` runs
in its own process on a free loopback port and ``--clients`` clients each send one search
at a time (a closed loop: at most ``--clients`` requests in flight, each with a 10 s
timeout) for ``--seconds``, cycling through the dev-set questions.  Reported: requests,
errors (any non-200 answer, timeout or dropped connection), throughput, latency
percentiles and the server's peak memory, for each search mode in ``--modes`` (hybrid is
the default).  Clients and server share the machine.  ``--db`` keeps the Milvus Lite file
there (a second run finds the corpus unchanged); ``--query-batch 1`` turns off the
server's batching of concurrent queries (``RAGLOOM_QUERY_BATCH``), for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _docs import replace_section

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
MODES = ("dense", "bm25", "hybrid")
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


@dataclass
class Run:
    """One load run: latencies of the successful requests (seconds), errors by kind."""

    mode: str
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0


async def load(url: str, clients: int, seconds: float, texts: list[str], mode: str) -> Run:
    """Run the clients for ``seconds``, each sending one search at a time."""
    run = Run(mode)
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(number: int, http: httpx.AsyncClient) -> None:
        i = number
        while time.perf_counter() < deadline:
            body = {"query": texts[i % len(texts)], "k": 3, "mode": mode}
            i += clients
            started = time.perf_counter()
            try:
                response = await http.post("/v1/search", json=body)
                ok = response.status_code == 200 and bool(response.json()["hits"])
                kind = "ok" if ok else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                kind = type(exc).__name__
            if kind == "ok":
                run.latencies.append(time.perf_counter() - started)
            else:
                run.errors[kind] = run.errors.get(kind, 0) + 1

    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(n, http) for n in range(clients)))
        run.elapsed = time.perf_counter() - started
    return run


def row(run: Run, clients: int, rss: float | None) -> str:
    """One line of the results table."""
    ms = [1000 * x for x in run.latencies]
    total = len(ms) + sum(run.errors.values())
    errors = ", ".join(f"{n} {k}" for k, n in run.errors.items()) or "0"
    pct = " | ".join(f"{percentile(ms, q):.0f} ms" for q in (0.5, 0.9, 0.99))
    return (
        f"| {run.mode} | {clients} | {run.elapsed:.0f} s | {total} | {errors}"
        f" | {len(ms) / run.elapsed:.0f} req/s | {pct} | {max(ms):.0f} ms"
        f" | {f'{rss:.0f} MiB' if rss else 'n/a'} |"
    )


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    """Build the collection, serve it, load it, print (and optionally record) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--modes", default="hybrid,dense", help="search modes, one run each")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--db", type=Path, help="keep the Milvus Lite file here")
    parser.add_argument(
        "--query-batch", type=int, help="the server's RAGLOOM_QUERY_BATCH (1: no batching)"
    )
    parser.add_argument("--write", type=Path, help="replace the table in this markdown file")
    opts = parser.parse_args()
    if not opts.corpus.exists():
        raise SystemExit(f"{opts.corpus}: not found (pass --corpus PATH)")
    unknown = [mode for mode in opts.modes.split(",") if mode not in MODES]
    if unknown:  # else every request of the run is refused, after the ingest
        raise SystemExit(f"--modes: unknown {', '.join(unknown)}; use {', '.join(MODES)}")
    texts = questions()
    idle = os.getloadavg()[0]
    runs: list[tuple[Run, float | None]] = []
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
            for mode in opts.modes.split(","):
                print(f"{mode}: {opts.clients} clients for {opts.seconds:.0f}s", file=sys.stderr)
                run = asyncio.run(load(url, opts.clients, opts.seconds, texts, mode))
                runs.append((run, peak_rss_mib(server.pid)))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    batching = (
        f"queries embedded {opts.query_batch} at a time"
        if opts.query_batch
        else "concurrent queries embedded together"
    )
    command = f"benchmarks/load.py --clients {opts.clients} --seconds {opts.seconds:.0f}" + (
        f" --query-batch {opts.query_batch}" if opts.query_batch else ""
    )
    lines = [
        f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}, Python"
        f" {platform.python_version()}; server and clients on the same machine, over loopback.",
        f"Collection: {opts.corpus.name}, {report['files']} documents, {report['chunks']} chunks;"
        f" bundled all-MiniLM-L6-v2 on the CPU ({batching}); Milvus Lite; k=3.",
        "",
        "| mode | clients | duration | requests | errors | throughput | p50 | p90 | p99 | max"
        " | server peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(row(run, opts.clients, rss) for run, rss in runs),
        "",
        f"Reproduce: `.venv/bin/python {command}`. Load average before the run (other work on"
        f" the machine slows every figure): {idle:.1f}.",
    ]
    table = "\n".join(lines)
    print(table)
    if opts.write:
        replace_section(opts.write, "load-benchmark", table)
    failed = sum(sum(run.errors.values()) for run, _ in runs)
    if failed:
        raise SystemExit(f"{failed} requests failed")


if __name__ == "__main__":
    main()
