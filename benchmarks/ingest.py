"""Ingest benchmark: the whole Milvus docs archive, then the re-runs that should be cheap.

    .venv/bin/python benchmarks/ingest.py [--archive PATH] [--write docs/benchmarks.md]

Each step runs the real ``ragloom ingest`` command in a fresh process (start-up included)
on a fresh Milvus Lite file and embedding cache, and reports wall time, peak memory (RSS)
and what the step embedded:

1. full ingest of the archive with defaults;
2. the same command again, nothing changed (target: under 3 s for the 272 files);
3. ten pages edited (a line added to each): their chunks are replaced, and on Milvus Lite
   the collection's segments merged so that BM25 statistics cover it again;
4. ``--rebuild``: the collection is dropped and re-created, vectors come from the cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from _docs import replace_section
from _measure import ARCHIVE, device, machine, run_ragloom


def edit_pages(archive: Path, count: int) -> None:
    """Append a line to the first ``count`` markdown pages of the zip ``archive``."""
    with zipfile.ZipFile(archive) as old:
        members = [(info, old.read(info)) for info in old.infolist()]
    pages = sorted(info.filename for info, _ in members if info.filename.endswith(".md"))
    edited = set(pages[:count])
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as new:
        for info, data in members:
            if info.filename in edited:
                data += b"\n\nEdited for the ingest benchmark.\n"
            new.writestr(info, data)


def main() -> None:
    """Run the steps and print (and optionally record) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--write", type=Path, help="replace the table in this markdown file")
    opts = parser.parse_args()
    if not opts.archive.is_file():
        raise SystemExit(f"{opts.archive}: not found (pass --archive PATH)")
    with tempfile.TemporaryDirectory(prefix="ragloom-bench-") as tmp:
        env = {**os.environ, "RAGLOOM_CACHE_DIR": str(Path(tmp) / "cache")}
        archive = Path(tmp) / opts.archive.name
        shutil.copyfile(opts.archive, archive)
        common = ["ingest", str(archive), "--uri", str(Path(tmp) / "bench.db"), "--json"]
        rows = []
        for label, extra, edits in [
            ("full ingest", [], 0),
            ("re-run, nothing changed", [], 0),
            ("10 pages edited (segments merged)", [], 10),
            ("--rebuild (vectors from the cache)", ["--rebuild"], 0),
        ]:
            if edits:
                edit_pages(archive, edits)
            run = run_ragloom(common + extra, env)
            rows.append((label, run))
            print(f"{label}: {run.wall:.1f}s", file=sys.stderr)
    lines = [
        f"Machine: {machine()}; bundled all-MiniLM-L6-v2 on {device()}; Milvus Lite."
        " Measured with `python benchmarks/ingest.py`; the full ingest includes the one-time"
        " export of the model to ONNX (a fresh cache folder).",
        "",
        "| step | wall time | in-process | CPU time | peak RSS | documents | chunks | embedded"
        " | load before -> after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, run in rows:
        report = run.report
        lines.append(
            f"| {label} | {run.wall:.1f} s | {float(str(report['seconds'])):.1f} s"
            f" | {run.cpu:.1f} s | {run.peak_mib:,.0f} MiB | {report['files']}"
            f" | {report['chunks']} | {report['embedded']} | {run.loads} |"
        )
    table = "\n".join(lines)
    print(table)
    if opts.write:
        replace_section(opts.write, "ingest-benchmark", table)


if __name__ == "__main__":
    main()
