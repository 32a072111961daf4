"""Running the app: ``serve`` for ``ragloom serve``, ``ServerThread`` for tests.

``serve`` opens the store before it listens, so a Milvus Lite file that another process
holds is reported at once (naming that server when it is one), and records its URL
beside a Milvus Lite file while it runs (see ``ragloom.lite``), so a CLI command on the
same file can say which server to use instead.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

import uvicorn

from ragloom import lite
from ragloom.errors import ConfigError
from ragloom.server.app import create_app
from ragloom.server.auth import is_loopback
from ragloom.server.service import ServerOptions, Service

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ragloom.rag import RAG


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port), or a ``ConfigError``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family, backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is in use (another server?): pass --port N"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` for a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _config(app: FastAPI, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="on",
        timeout_graceful_shutdown=5, timeout_keep_alive=30,
    )  # fmt: skip


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app's streaming answers when it starts stopping: they
    end with an error event at once instead of being cut off after the graceful timeout.

    A second Ctrl-C (or SIGTERM) while it stops ends the process at once: uvicorn's own
    forced exit skipped the app's shutdown and printed a traceback, and then still waited
    for an ingest under way.
    """

    def _service(self) -> Service | None:
        service = getattr(getattr(self.config.app, "state", None), "service", None)
        return service if isinstance(service, Service) else None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        service = self._service()
        if self.should_exit:
            if service is not None and lite.is_lite_uri(service.rag.settings.uri):
                lite.withdraw_server(service.rag.settings.uri)
            print("ragloom: stopped at once", file=sys.stderr, flush=True)
            os._exit(128 + sig)
        if service is not None and service.jobs.pending():
            print(
                "ragloom: stopping at the end of the document being ingested (Ctrl-C again to"
                " stop at once); upload again what the job did not ingest",
                file=sys.stderr, flush=True,
            )  # fmt: skip
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        service = self._service()
        if service is not None:
            service.stopping.set()
        await super().shutdown(sockets=sockets)


def serve(
    rag: RAG,
    options: ServerOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    allow_no_key: bool = False,
    log_level: str = "warning",
    say: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> None:
    """Serve ``rag`` until interrupted (Ctrl-C / SIGTERM)."""
    if not is_loopback(host):
        if not options.api_key and not allow_no_key:
            raise ConfigError(
                f"--host {host} makes the server reachable from other machines, and no"
                " RAGLOOM_API_KEY is set: anyone who can reach it could read and delete your"
                " documents. Set RAGLOOM_API_KEY, or pass --allow-no-key to accept that."
            )
        options = dataclasses.replace(options, allowed_hosts=None)
    app = create_app(rag, options)
    service: Service = app.state.service
    service.open()  # before listening: a locked file or a missing key is reported now
    sock = bind(host, port)
    url = url_of(sock)
    uri = rag.settings.uri
    if lite.is_lite_uri(uri):
        lite.announce_server(uri, url, rag.settings.collection)
    try:
        say(
            f"serving collection '{rag.settings.collection}' of {uri} at {url}/ (API docs"
            f" {url}/docs, answers by {service.llm.provider}); Ctrl-C to stop"
        )
        with _signals_stop_quietly():
            _Server(_config(app, log_level)).run(sockets=[sock])
    finally:
        if lite.is_lite_uri(uri):
            lite.withdraw_server(uri)
        sock.close()


@contextmanager
def _signals_stop_quietly() -> Iterator[None]:
    """uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again for
    the previous handler: here that ends ``serve`` normally, so the store is closed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Stopped(Exception):
    """A stop signal arrived after uvicorn's graceful shutdown."""


class ServerThread:
    """Run an app with uvicorn in a daemon thread on a free loopback port.

    >>> with ServerThread(create_app(rag)) as server:  # doctest: +SKIP
    ...     httpx.get(server.url + "/healthz")
    """

    def __init__(
        self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
    ) -> None:
        self.app = app
        self._sock = bind(host, port)
        self.url = url_of(self._sock)
        self._server = _Server(_config(app, log_level))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self, timeout: float = 60.0) -> ServerThread:
        """Start serving; returns once the app has started (its lifespan ran)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._sock.close()
                raise RuntimeError("the server did not start: see the log above")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
