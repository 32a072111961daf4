"""Cold start: how long a fresh ``ragloom`` process takes to answer.

    .venv/bin/python benchmarks/cold_start.py [--db PATH] [--runs 7]

Times, from a new process each run (median and worst of ``--runs``):

- ``ragloom --help`` (target: <= 0.5 s);
- ``ragloom search "..."`` on a Milvus Lite file holding the whole docs archive, from
  process start to printed hits (target: <= 2 s).

Without ``--db`` the archive is ingested first into a temporary file (minutes). The first
search after installation also exports the local model to ONNX once; that run is made
before timing starts and reported separately.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "corpus" / "milvus_docs_2.4.x_en.zip"
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


def main() -> None:
    """Print a table of cold-start timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a Milvus Lite file with the archive ingested")
    parser.add_argument("--runs", type=int, default=7)
    opts = parser.parse_args()
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
        first = timed(search, env)  # may export the model to ONNX
        rows = []
        for label, args in [("ragloom --help", ["--help"]), ("ragloom search", search)]:
            runs = [timed(args, env) for _ in range(opts.runs)]
            rows.append((label, statistics.median(runs), max(runs)))
    print(f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}, no GPU use; Milvus Lite.")
    print()
    print("| command | median | worst | runs |")
    print("|---|---|---|---|")
    for label, median, worst in rows:
        print(f"| `{label}` | {median:.2f} s | {worst:.2f} s | {opts.runs} |")
    label = "first `ragloom search` after install (exports the model to ONNX)"
    print(f"| {label} | {first:.2f} s | | 1 |")


if __name__ == "__main__":
    main()
