"""Ingest benchmark: the whole Milvus docs archive, then the re-runs that should be cheap.

    .venv/bin/python benchmarks/ingest.py [--archive PATH] [--write docs/benchmarks.md]

Each step runs the real ``ragloom ingest`` command in a fresh process (start-up included)
on a fresh Milvus Lite file and embedding cache, and reports wall time, peak memory (RSS)
and what the step embedded:

1. full ingest of the archive with defaults;
2. the same command again, nothing changed (target: under 3 s for the 272 files);
3. ``--rebuild``: the collection is dropped and re-created, vectors come from the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "corpus" / "milvus_docs_2.4.x_en.zip"
MARK_BEGIN = "<!-- ingest-benchmark:begin -->"
MARK_END = "<!-- ingest-benchmark:end -->"


# Runs the CLI and, on the way out, reports the process's own peak RSS on stderr.
_CHILD = """
import resource, sys
from ragloom.cli import main
sys.argv = ["ragloom", *sys.argv[1:]]
try:
    main()
finally:
    print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def run_step(args: list[str], env: dict[str, str]) -> tuple[float, float, dict[str, object]]:
    """Run ``ragloom ARGS`` in a child; wall seconds, its peak RSS in MiB, its JSON report."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ragloom {' '.join(args)} failed:\n{proc.stderr}")
    peak_kb = next(
        int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KB")
    )
    return seconds, peak_kb / 1024, json.loads(proc.stdout)


def machine() -> str:
    """One line about where the numbers come from."""
    return f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}"


def main() -> None:
    """Run the steps and print (and optionally record) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--write", type=Path, help="replace the table in this markdown file")
    opts = parser.parse_args()
    if not opts.archive.is_file():
        raise SystemExit(f"{opts.archive}: not found (pass --archive PATH)")
    with tempfile.TemporaryDirectory(prefix="ragloom-bench-") as tmp:
        env = {**os.environ, "RAGLOOM_CACHE_DIR": str(Path(tmp) / "cache")}
        common = ["ingest", str(opts.archive), "--uri", str(Path(tmp) / "bench.db"), "--json"]
        rows = []
        for label, extra in [
            ("full ingest", []),
            ("re-run, nothing changed", []),
            ("--rebuild (vectors from the cache)", ["--rebuild"]),
        ]:
            seconds, rss, report = run_step(common + extra, env)
            rows.append((label, seconds, rss, report))
            print(f"{label}: {seconds:.1f}s", file=sys.stderr)
    lines = [
        f"Machine: {machine()}; bundled all-MiniLM-L6-v2 on the CPU; Milvus Lite.",
        "",
        "| step | wall time | in-process | peak RSS | documents | chunks | embedded |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, seconds, rss, report in rows:
        lines.append(
            f"| {label} | {seconds:.1f} s | {float(str(report['seconds'])):.1f} s | {rss:.0f} MiB"
            f" | {report['files']} | {report['chunks']} | {report['embedded']} |"
        )
    table = "\n".join(lines)
    print(table)
    if opts.write:
        text = opts.write.read_text()
        start, end = text.index(MARK_BEGIN) + len(MARK_BEGIN), text.index(MARK_END)
        opts.write.write_text(text[:start] + "\n" + table + "\n" + text[end:])


if __name__ == "__main__":
    main()
