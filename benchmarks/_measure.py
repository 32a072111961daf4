"""Shared by the benchmarks: the machine, its load, the device, and timed ``ragloom`` runs.

The development machine is shared: every figure is printed with the load average seen
while it was measured, so a reader can tell a slow machine from a slow program.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.milvus_server import MilvusServerHandle

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "corpus" / "milvus_docs_2.4.x_en.zip"
SHARED_HINT = "the archive and the dev set are in ../shared, beside the checkout"


def require(paths: list[Path], how: str) -> None:
    """Exit, before any work, naming the first of ``paths`` that is missing and ``how``
    to supply it (a benchmark would otherwise fail minutes in, or measure nothing)."""
    for path in paths:
        if not path.exists():
            raise SystemExit(f"{path}: not found ({how})")


def machine() -> str:
    """One line about where the numbers come from."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = f" ({line.split(':', 1)[1].strip()})"
                break
    except OSError:
        pass
    memory = ""
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = f", {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB"
    return (
        f"{os.cpu_count()} CPU cores{model}{memory}, {platform.machine()},"
        f" Python {platform.python_version()}"
    )


def load() -> str:
    """The 1, 5 and 15 minute load averages, as ``1.2/0.9/0.8``."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def device() -> str:
    """Where the bundled local model runs, as ragloom's ``local`` embedder chooses."""
    from ragloom.embedders.local import LocalEmbedder

    emb = LocalEmbedder()
    runtime = "PyTorch" if emb.device != "cpu" else "ONNX Runtime"
    return f"{emb.device} ({runtime}, batch {emb.batch_size})"


# Runs the CLI and, on the way out, reports the process's own peak RSS and CPU time.
_CHILD = """
import json, resource, sys
from ragloom.cli import main
sys.argv = ["ragloom", *sys.argv[1:]]
try:
    main()
finally:
    use = resource.getrusage(resource.RUSAGE_SELF)
    usage = {"rss_kb": use.ru_maxrss, "cpu": use.ru_utime + use.ru_stime}
    print("RAGLOOM_BENCH_USAGE", json.dumps(usage), file=sys.stderr)
"""


@dataclass
class Run:
    """One ``ragloom`` command in a fresh process."""

    wall: float
    cpu: float
    peak_mib: float
    load_before: str
    load_after: str
    report: dict[str, object] = field(default_factory=dict)

    @property
    def loads(self) -> str:
        """The load averages before and after, for the table."""
        return f"{self.load_before} -> {self.load_after}"


def run_ragloom(args: list[str], env: dict[str, str]) -> Run:
    """Run ``ragloom ARGS`` (with ``--json``) in a child: wall and CPU seconds, peak RSS."""
    before = load()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ragloom {' '.join(args)} failed:\n{proc.stderr}")
    usage = next(
        json.loads(line.split(" ", 1)[1])
        for line in proc.stderr.splitlines()
        if line.startswith("RAGLOOM_BENCH_USAGE")
    )
    report = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return Run(wall, float(usage["cpu"]), usage["rss_kb"] / 1024, before, load(), report)


def start_milvus_server(base_dir: Path) -> MilvusServerHandle:
    """A real Milvus server (PyPI ``milvus``, 2.3) on free loopback ports, as the tests start it.

    Returns the handle (``.uri``, ``.stop()``, a context manager); needs the dev extras.
    """
    sys.path.insert(0, str(ROOT))  # tests/milvus_server.py is the one way we start a server
    from tests.milvus_server import is_available
    from tests.milvus_server import start_milvus_server as start

    if not is_available():
        raise SystemExit("the Milvus server needs the dev extras: pip install -e '.[dev]'")
    return start(base_dir)
