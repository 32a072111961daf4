"""The FastAPI application: ``create_app(rag)`` serves one collection over HTTP.

Endpoints (OpenAPI docs at ``/docs``):

- ``GET /healthz``; ``GET /v1/status``; ``GET /v1/sources``; ``DELETE /v1/sources/{id}``
- ``POST /v1/ingest`` (multipart upload, answers 202 with a job); ``GET /v1/jobs/{id}``
- ``POST /v1/search``; ``POST /v1/ask`` (JSON, or server-sent events)
- ``GET /v1/models``; ``POST /v1/chat/completions`` (OpenAI-compatible)
- ``GET /``: the web page (``ragloom/web``)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from ragloom import __version__
from ragloom.server import api, openai_compat
from ragloom.server.auth import AccessGuard
from ragloom.server.errors import install_error_handlers
from ragloom.server.service import ServerOptions, Service
from ragloom.server.uploads import BodyLimit

if TYPE_CHECKING:
    from ragloom.rag import RAG

UPLOAD_PATHS = ("/v1/ingest",)
_NO_CACHE = {"Cache-Control": "no-cache"}


def web_dir() -> Path:
    """The folder holding the page's static files (``index.html``, ``app.js``, ...)."""
    return Path(str(resources.files("ragloom") / "web"))


def create_app(rag: RAG, options: ServerOptions | None = None) -> FastAPI:
    """An app serving ``rag``'s collection.

    Starting the app (its lifespan) opens the store (a Milvus Lite file is then this
    process's), picks the model and starts the ingest worker; stopping it stops the
    worker.  Closing ``rag`` is left to the caller.
    """
    options = options or ServerOptions()
    service = Service(rag, options)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio

        await anyio.to_thread.run_sync(service.open)
        service.warm_up()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(service.close)

    app = FastAPI(
        title="ragloom",
        version=__version__,
        description="Ask your documents: ingest, search and cited answers over one Milvus"
        " collection, and an OpenAI-compatible chat endpoint.",
        lifespan=lifespan,
        docs_url=None,  # served below, with Swagger UI's files from this machine
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.service = service
    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(openai_compat.router)
    page = web_dir()

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(page / "index.html", headers=_NO_CACHE)

    app.mount("/web", StaticFiles(directory=page), name="web")
    _api_docs(app)
    # Added last, run first: the guard refuses before a body is read, then sizes count.
    app.add_middleware(BodyLimit, limits=options.limits, upload_paths=UPLOAD_PATHS)
    app.add_middleware(
        AccessGuard, api_key=options.api_key or None, allowed_hosts=options.allowed_hosts
    )
    return app


def _api_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` from the ``fastapi-swagger`` package's files, not a CDN."""
    from fastapi_swagger import patch_fastapi  # type: ignore[import-untyped]

    patch_fastapi(
        app,
        redirect_from_root_to_docs=False,  # "/" is the page
        title=f"{app.title} API",
        swagger_js_url="/docs/files/swagger-ui-bundle.js",
        swagger_css_url="/docs/files/swagger-ui.css",
        swagger_favicon_url="/docs/files/favicon-32x32.png",
    )
