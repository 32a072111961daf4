"""Cold start: how long a fresh ``ragloom`` process takes to answer.

    .venv/bin/python benchmarks/cold_start.py [--db PATH] [--runs 7] [--write docs/benchmarks.md]

Times, from a new process each run (median and worst of ``--runs``):

- ``ragloom --help`` (target: <= 0.5 s);
- ``ragloom search "..."`` on a Milvus Lite file holding the whole docs archive, from
  process start to printed hits (target: <= 2 s);
- the same search while a ``ragloom serve`` owns the file (the CLI then asks the server).

Without ``--db`` the archive is ingested first into a temporary file (minutes). The first
search after installation also exports the local model to ONNX once; that run is made
before timing starts and reported separately. ragloom's own modules are byte-compiled
first, as ``pip install`` does (an editable install compiles them on first use, unless
PYTHONDONTWRITEBYTECODE is set, as it is on the development machine).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _docs import replace_section
from _measure import ARCHIVE, SHARED_HINT, device, load, machine, require

QUESTION = "How is data stored in milvus?"


def timed(args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one ``ragloom ARGS`` in a fresh process (it must succeed)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "ragloom", *args], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ragloom {' '.join(args)} failed:\n{proc.stderr}")
    return seconds


def serve(db: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A ``ragloom serve`` owning ``db``, once it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ragloom", "serve", "--port", "0", "--uri", str(db)],
        env={**env, "RAGLOOM_LLM": "none"}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    for line in process.stderr:
        if re.search(r" at http://127\.0\.0\.1:\d+/ ", line):
            return process
    raise SystemExit(f"ragloom serve exited with {process.wait()}")


def main() -> None:
    """Print a table of cold-start timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a Milvus Lite file with the archive ingested")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write", type=Path, help="record the table in this markdown file")
    opts = parser.parse_args()
    # A --db that is not there would be created empty, and its searches timed finding nothing.
    require([opts.db] if opts.db else [ARCHIVE], "pass --db FILE" if opts.db else SHARED_HINT)
    import compileall

    import ragloom

    compileall.compile_dir(str(Path(ragloom.__file__).parent), quiet=1)
    with tempfile.TemporaryDirectory(prefix="ragloom-cold-") as tmp:
        env = {**os.environ, "RAGLOOM_CACHE_DIR": os.environ.get("RAGLOOM_CACHE_DIR", "")}
        if not env["RAGLOOM_CACHE_DIR"]:
            env["RAGLOOM_CACHE_DIR"] = str(Path(tmp) / "cache")
        db = opts.db
        if db is None:
            db = Path(tmp) / "archive.db"
            print("ingesting the archive (once)...", file=sys.stderr)
            timed(["ingest", str(ARCHIVE), "--uri", str(db), "--json"], env)
        search = ["search", QUESTION, "-k", "3", "--uri", str(db)]
        exports = not any(Path(env["RAGLOOM_CACHE_DIR"]).glob("onnx/*/model.onnx"))
        first = timed(search, env)
        rows = []
        for label, args in [("`ragloom --help`", ["--help"]), ("`ragloom search`", search)]:
            before = load()
            runs = [timed(args, env) for _ in range(opts.runs)]
            rows.append((label, statistics.median(runs), max(runs), f"{before} -> {load()}"))
        server = serve(db, env)
        try:
            timed(search, env)  # the server's first search loads its model
            before = load()
            runs = [timed(search, env) for _ in range(opts.runs)]
            label = "`ragloom search` while `ragloom serve` owns the file (asks the server)"
            rows.append((label, statistics.median(runs), max(runs), f"{before} -> {load()}"))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    lines = [
        f"Machine: {machine()}; the query model on {device()}; Milvus Lite."
        " Measured with `python benchmarks/cold_start.py`.",
        "",
        "| command | median | worst | runs | load before -> after |",
        "|---|---|---|---|---|",
    ]
    for label, median, worst, loads in rows:
        lines.append(f"| {label} | {median:.2f} s | {worst:.2f} s | {opts.runs} | {loads} |")
    if exports:
        label = "first `ragloom search` after install (exports the model to ONNX)"
    else:
        label = "first `ragloom search` on the file (the ingest exported the model)"
    lines.append(f"| {label} | {first:.2f} s | | 1 | |")
    table = "\n".join(lines)
    print(table)
    if opts.write:
        replace_section(opts.write, "cold-start", table)


if __name__ == "__main__":
    main()
