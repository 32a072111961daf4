"""Run the real CLI in process (typer's runner) and parse what it prints."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from ragloom.cli import app


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def ragloom(*args: str) -> Run:
    """``ragloom ARGS...`` as a user would type it; exceptions are not swallowed."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


# A suite started in the background of a non-interactive shell (as CI may be) inherits
# Ctrl-C (SIGINT) ignored, and so do its children: ragloom then keeps ignoring it, as a
# shell script's background job should.  Tests of Ctrl-C give it back, as a terminal
# gives it to its foreground job.


def foreground_job() -> None:
    """``preexec_fn`` of a child that gets Ctrl-C as a terminal's foreground job does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def background_job() -> None:
    """``preexec_fn`` of a child started as a shell script's background job (``cmd &``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def ctrl_c_raises() -> Iterator[None]:
    """Within, Ctrl-C raises KeyboardInterrupt in this process, as it does by default."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
