"""Run the real CLI in process (typer's runner) and parse what it prints."""

from __future__ import annotations

import json
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
