"""``ragloom serve``: the HTTP API, the OpenAI-compatible chat endpoint and the web page.

``create_app(rag, options)`` builds the FastAPI app for one collection; ``serve`` runs
it (the CLI's ``ragloom serve``); ``ServerThread`` runs it in a thread on a free
loopback port (for tests and benchmarks).
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - both are default dependencies
    from ragloom.errors import MissingDependencyError

    raise MissingDependencyError(exc.name or "fastapi", "server", "ragloom serve") from None

from ragloom.server.app import create_app
from ragloom.server.run import ServerThread, serve
from ragloom.server.service import ServerOptions
from ragloom.server.uploads import UploadLimits

__all__ = ["ServerOptions", "ServerThread", "UploadLimits", "create_app", "serve"]
