"""Opening a ``MilvusClient`` for a URI: a Milvus Lite file, a Milvus server or Zilliz
Cloud, with the options each needs and errors that say what to do."""

from __future__ import annotations

import logging
import os
from typing import Any

from ragloom import lite
from ragloom.config import redact_uri
from ragloom.errors import StoreError, option


def _quiet_client_logs() -> None:
    """pymilvus and Milvus Lite's in-process gRPC server log routine noise (unimplemented
    timestamp calls, iterator fallbacks) as warnings; ragloom reports failures itself."""
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    logging.getLogger("pymilvus.decorators").setLevel(logging.CRITICAL)
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    logging.getLogger("milvus_lite").setLevel(logging.ERROR)


def _auth_refusal(exc: BaseException) -> str | None:
    """The server's reason when it refused the credentials (gRPC ``UNAUTHENTICATED``, which
    pymilvus reports as a failure to connect), else None."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:  # pymilvus chains form loops
        seen.add(id(cause))
        code = getattr(cause, "code", None)
        status = code() if callable(code) else None  # a grpc.RpcError
        if getattr(status, "name", None) == "UNAUTHENTICATED":
            details = getattr(cause, "details", None)
            return str(details() if callable(details) else "") or "unauthenticated"
        cause = cause.__cause__ or cause.__context__
    return None


def open_client(uri: str, token: str | None, timeout: float) -> Any:
    """A connected ``MilvusClient`` for ``uri``; ``StoreError`` says why when there is none
    (a locked or unreadable Milvus Lite file, a refused token, an unreachable server)."""
    shown = redact_uri(uri)  # for messages: never print a password
    is_lite = lite.is_lite_uri(shown)
    if is_lite:
        lite.raise_if_locked(shown)
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    _quiet_client_logs()  # after the import: pymilvus configures its loggers on import

    target = str(lite.lite_path(shown)) if is_lite else uri
    if is_lite and os.path.exists(target) and not os.path.isdir(target):
        # Milvus Lite 3 keeps a database in a folder; on a file it printed a traceback
        raise StoreError(
            f"{option('uri', shown)} is a file, not a Milvus Lite database (Milvus Lite keeps"
            " one in a folder; a file made by an older Milvus Lite cannot be opened either): name a"
            " new .db path and ingest into it"
        )
    options: dict[str, Any] = {}
    if is_lite:
        # Milvus Lite serves gRPC from a thread of this process, on loopback, with gRPC's
        # server defaults: a keepalive ping on a connection with no call under way sooner
        # than 2 h after the last is a strike, and the third gets GOAWAY "too_many_pings"
        # (which gRPC prints on stderr).  pymilvus's channel pings every 10 s even when
        # idle (keepalive_time_ms=10000, keepalive_permit_without_calls; gRPC then slows
        # to one ping a minute), so an idle `ragloom serve` or `chat` was refused after
        # one to two minutes.  A loopback link to our own process has nothing to keep
        # alive: no keepalive (INT_MAX is gRPC's own client default, "off").  A server URI
        # keeps pymilvus's pings, which hold connections through load balancers and NATs.
        options["grpc_options"] = {"grpc.keepalive_time_ms": 2**31 - 1}
    try:
        client = MilvusClient(uri=target, token=token or "", timeout=timeout, **options)
    except MilvusException as exc:
        if is_lite:
            lite.raise_if_locked(shown)  # lost a race with another process
            raise StoreError(f"cannot open the Milvus Lite file {shown}: {exc.message}") from None
        refusal = _auth_refusal(exc)
        if refusal is not None:
            advice = (
                f"check {option('token')} or RAGLOOM_TOKEN (user:password, or a Zilliz Cloud API"
                " key)"
                if token
                else f"pass {option('token', 'user:password')} (or a Zilliz Cloud API key), or set"
                " RAGLOOM_TOKEN"
            )
            given = "rejected the token" if token else "needs a token"
            raise StoreError(f"Milvus at {shown} {given} ({refusal}): {advice}") from None
        raise StoreError(
            f"cannot reach Milvus at {shown} ({exc.message}). Check that the server is"
            f" running and the address and {option('token')} are right, or use a local Milvus"
            f" Lite file: {option('uri', './ragloom.db')}"
        ) from None
    if is_lite:
        lite.opened(shown)
    return client
