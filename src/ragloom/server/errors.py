"""How failures become HTTP answers: JSON with a message, never a traceback.

Every error body has OpenAI's shape, so OpenAI clients show the message as is::

    {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": null}}

ragloom's own errors map to statuses by kind (the caller's mistake 400, a collection
built otherwise 409, Milvus unreachable 503, the model provider failing 502); anything
unexpected is logged with its traceback on the server and answered 500 with its name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragloom.errors import (
    CollectionMismatchError,
    ConfigError,
    EmbedderError,
    MissingDependencyError,
    ProviderError,
    RagloomError,
    SourceError,
    StoreError,
    StoreLockedError,
)
from ragloom.server.sse import ServerStopping

log = logging.getLogger("ragloom.server")

# Most specific first: the first class an error is an instance of decides.
_STATUS: tuple[tuple[type[RagloomError], int, str], ...] = (
    (ServerStopping, 503, "server_error"),
    (MissingDependencyError, 500, "server_error"),
    (ConfigError, 400, "invalid_request_error"),
    (SourceError, 400, "invalid_request_error"),
    (CollectionMismatchError, 409, "conflict_error"),
    (StoreLockedError, 503, "store_error"),
    (StoreError, 503, "store_error"),
    (EmbedderError, 500, "embedder_error"),
    (ProviderError, 502, "provider_error"),
)
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
}


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> Any:
    """The JSON body of an error answer."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def error_response(
    status: int,
    message: str,
    kind: str | None = None,
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
) -> JSONResponse:
    """An error answer with ``message``; ``kind`` defaults to one fitting ``status``."""
    kind = kind or _TYPES.get(status, "server_error")
    body = error_body(message, kind, code)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def status_of(exc: RagloomError) -> tuple[int, str]:
    """The HTTP status and error type for one of ragloom's errors."""
    for cls, status, kind in _STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 500, "server_error"


def stream_error(exc: Exception) -> Any:
    """The error body sent inside a stream that has started (logged when unexpected)."""
    if isinstance(exc, RagloomError):
        return error_body(str(exc), status_of(exc)[1])
    log.exception("a stream failed unexpectedly")
    return error_body(internal_error(exc), "server_error")


def validation_message(exc: RequestValidationError) -> str:
    """``body.k: Input should be greater than 0; ...`` from FastAPI's validation errors."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return "invalid request: " + "; ".join(parts)


def unreadable_body(exc: RequestValidationError, content_type: str) -> str | None:
    """What to say when the body is not JSON at all (FastAPI makes either a schema
    error, 422: "body.14: JSON decode error", "Input should be a valid dictionary")."""
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            at = f" at character {loc[1]}" if len(loc) > 1 else ""
            reason = (err.get("ctx") or {}).get("error", "not JSON")
            return f"the request body is not valid JSON ({reason}{at}): send a JSON object"
        if loc == ("body",) and err.get("type") == "missing":
            return "the request body is empty: send a JSON object"
        if loc == ("body",) and "json" not in content_type.lower():
            sent = content_type.split(";")[0] or "no Content-Type"
            return (
                f"the request body must be a JSON object sent with Content-Type:"
                f" application/json (this one came as {sent})"
            )
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure as JSON (see the module docstring)."""

    async def ragloom_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RagloomError)
        status, kind = status_of(exc)
        if status >= 500:
            log.warning("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(status, str(exc), kind)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path} (see /docs)"
        return error_response(exc.status_code, message, headers=exc.headers)

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        unreadable = unreadable_body(exc, request.headers.get("content-type", ""))
        if unreadable is not None:
            return error_response(400, unreadable)
        return error_response(422, validation_message(exc))

    app.add_exception_handler(RagloomError, ragloom_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_middleware(CatchAll)


def internal_error(exc: BaseException) -> str:
    """The message for an unexpected failure (its traceback is in the log)."""
    return f"internal error ({type(exc).__name__}): the server log has the details"


class CatchAll:
    """ASGI middleware: an unexpected exception is logged and answered 500 as JSON.

    Starlette's own handler for ``Exception`` answers and then raises again, and uvicorn
    closes the connection: a keep-alive client then fails its next request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.exception("%s %s failed unexpectedly", scope["method"], scope["path"])
            if started:  # too late for an error answer: the connection is dropped
                raise
            await error_response(500, internal_error(exc), "server_error")(scope, receive, send)
