"""The ``ragloom`` command: each command is a few lines over ``ragloom.rag.RAG``.

Exit status: 0 success, 1 when an input or the command failed, 2 on usage errors.
Heavy modules (pymilvus, torch) are imported inside commands so ``--help`` is instant.
Each submodule adds its commands to the one ``app``.
"""

from __future__ import annotations

from ragloom.cli import answer, documents, evaluate, serve  # noqa: F401  (register commands)
from ragloom.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point."""
    app()
