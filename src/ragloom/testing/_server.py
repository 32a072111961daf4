"""The loopback HTTP server the provider fakes share: lifecycle, recording, queue, faults.

Standard library only, so shipping the fakes costs users no dependencies.  Each fake runs a
``ThreadingHTTPServer`` in a daemon thread; a subclass says how to route a path, shape an
answer, a stream and an error, and this module serves the scripted items.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from ragloom.testing.scripts import (
    Cut,
    Hang,
    HttpError,
    Malformed,
    RecordedRequest,
    Reply,
    ScriptItem,
)

DEFAULT_ANSWER = "This is a canned answer from the fake server."
Answer = str | Callable[[RecordedRequest], str]
_S = TypeVar("_S", bound="FakeServer")


class FakeServer:
    """Base of the provider fakes: start/stop, a context manager, a request log, a queue.

    Subclasses set ``generation_kind`` and ``scriptable_kinds`` and implement the
    ``_route``/``_json_answer``/``_stream_frames``/``_error_body`` hooks.
    """

    generation_kind = "chat"
    scriptable_kinds: frozenset[str] = frozenset({"chat"})

    def __init__(self, *, answer: Answer = DEFAULT_ANSWER, host: str = "127.0.0.1") -> None:
        self.answer = answer
        self.host = host
        self._lock = threading.Lock()
        self._queue: list[tuple[str | None, ScriptItem]] = []
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self: _S) -> _S:
        """Bind a free loopback port and serve in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = ThreadingHTTPServer((self.host, 0), _make_handler(self))
        httpd.daemon_threads = True
        httpd.block_on_close = False  # hung handlers must not block stop()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release hung requests and drop every open connection."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _drop(conn)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` with no path."""
        if self._httpd is None:
            raise RuntimeError("the fake server is not running: call start() or use `with`")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """The URL to give the provider's SDK as its base URL."""
        return self.url

    # -- script and log ----------------------------------------------------------------

    def enqueue(self, *items: ScriptItem | str, endpoint: str | None = None) -> None:
        """Queue answers/faults for the next model requests, in order.

        A str is short for ``Reply(str)``.  Replies go to the generation endpoint; other
        items go to whichever scriptable endpoint is called next, unless ``endpoint``
        (a request ``kind``, e.g. ``"embeddings"``) pins them to one.
        """
        if endpoint is not None and endpoint not in self.scriptable_kinds:
            raise ValueError(f"endpoint must be one of {sorted(self.scriptable_kinds)}")
        with self._lock:
            for item in items:
                script = Reply(item) if isinstance(item, str) else item
                target = endpoint
                if target is None and isinstance(script, Reply):
                    target = self.generation_kind
                self._queue.append((target, script))

    @property
    def pending(self) -> int:
        """How many queued items have not been served yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, kind: str) -> list[RecordedRequest]:
        """The requests routed to one endpoint kind (``chat``, ``embeddings``, ...)."""
        return [r for r in self.requests if r.kind == kind]

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request (IndexError when there is none)."""
        with self._lock:
            return self._requests[-1]

    def reset(self) -> None:
        """Forget recorded requests and drop queued items."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()

    def answer_for(self, request: RecordedRequest) -> str:
        """The default answer text for a generation request."""
        return self.answer(request) if callable(self.answer) else self.answer

    # -- hooks for subclasses ----------------------------------------------------------

    def _route(self, method: str, path: str, body: Any) -> tuple[str, bool, str | None]:
        """Return ``(kind, stream, model)`` for a request."""
        raise NotImplementedError

    def _auth_error(self, request: RecordedRequest) -> HttpError | None:
        """An error to serve instead of the answer when the API key is wrong."""
        return None

    def _json_answer(self, request: RecordedRequest, reply: Reply) -> tuple[int, Any]:
        """``(status, JSON body)`` answering a non-streamed request."""
        raise NotImplementedError

    def _stream_frames(self, request: RecordedRequest, reply: Reply) -> list[bytes]:
        """The SSE frames (data events and keep-alive comments) of a streamed answer."""
        raise NotImplementedError

    def _stream_frame(self, payload: str) -> bytes:
        """One SSE data event carrying ``payload``."""
        return f"data: {payload}\n\n".encode()

    def _error_body(self, status: int, message: str | None) -> Any:
        """The provider's JSON error body for ``status``."""
        raise NotImplementedError

    # -- serving -----------------------------------------------------------------------

    def _take(self, kind: str) -> ScriptItem | None:
        with self._lock:
            for i, (target, item) in enumerate(self._queue):
                if target is None or target == kind:
                    del self._queue[i]
                    return item
        return None

    def _handle(self, ex: _Exchange) -> None:
        request = ex.request
        with self._lock:
            self._requests.append(request)
        if request.kind == "unknown":
            ex.send_json(404, self._error_body(404, f"no route for {request.path}"))
            return
        item: ScriptItem | None = self._auth_error(request)
        if item is None and request.kind in self.scriptable_kinds:
            item = self._take(request.kind)
        if isinstance(item, HttpError):
            self._serve_error(ex, item)
        elif isinstance(item, Hang):
            ex.hang(self._stopping)
        elif isinstance(item, Malformed):
            self._serve_malformed(ex, item)
        elif isinstance(item, Cut):
            self._serve_cut(ex, item)
        else:
            reply = item if isinstance(item, Reply) else self._default_reply(request)
            if request.stream:
                ex.send_stream(self._stream_frames(request, reply))
            else:
                ex.send_json(*self._json_answer(request, reply))

    def _default_reply(self, request: RecordedRequest) -> Reply:
        if request.kind != self.generation_kind:
            return Reply("")
        return Reply(self.answer_for(request))

    def _serve_error(self, ex: _Exchange, item: HttpError) -> None:
        headers = dict(item.headers)
        if item.retry_after is not None:
            headers["Retry-After"] = str(item.retry_after)
        body = item.body if item.body is not None else self._error_body(item.status, item.message)
        if isinstance(body, str | bytes):
            raw = body.encode() if isinstance(body, str) else body
            ex.send_bytes(item.status, raw, "application/json", headers)
        else:
            ex.send_json(item.status, body, headers)

    def _serve_malformed(self, ex: _Exchange, item: Malformed) -> None:
        if ex.request.stream:
            ex.send_stream([self._stream_frame(item.body)])
        else:
            ex.send_bytes(item.status, item.body.encode(), "application/json")

    def _serve_cut(self, ex: _Exchange, item: Cut) -> None:
        reply = self._default_reply(ex.request)
        if ex.request.stream:
            frames = self._stream_frames(ex.request, reply)
            sent, events = [], 0
            for frame in frames:
                if frame.startswith(b"data:"):
                    if events >= item.after:
                        break
                    events += 1
                sent.append(frame)
            ex.send_stream(sent, complete=False, stall=self._stopping if item.stall else None)
        else:
            status, payload = self._json_answer(ex.request, reply)
            body = json.dumps(payload).encode()
            ex.send_partial(
                status, body, len(body) // 2, stall=self._stopping if item.stall else None
            )


def _drop(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


class _Exchange:
    """One request being answered, with the ways to write its response."""

    def __init__(self, handler: BaseHTTPRequestHandler, request: RecordedRequest) -> None:
        self.handler = handler
        self.request = request

    def _head(self, status: int, headers: dict[str, str]) -> None:
        h = self.handler
        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name, value)
        h.end_headers()

    def send_bytes(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        """A complete response with a Content-Length."""
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        all_headers.update(headers or {})
        self._head(status, all_headers)
        self.handler.wfile.write(body)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        """A complete JSON response."""
        self.send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def send_partial(
        self, status: int, body: bytes, upto: int, stall: threading.Event | None = None
    ) -> None:
        """Announce all of ``body`` but send only ``upto`` bytes, then drop the connection
        (with ``stall``: once that event is set)."""
        self._head(status, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        self.handler.wfile.write(body[:upto])
        if stall is not None:
            stall.wait()
        self.cut()

    def send_stream(
        self,
        frames: Iterable[bytes],
        complete: bool = True,
        stall: threading.Event | None = None,
    ) -> None:
        """An SSE response in chunked encoding; ``complete=False`` drops it unfinished
        (with ``stall``: once that event is set)."""
        self._head(
            200,
            {
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "Transfer-Encoding": "chunked",
            },
        )
        w = self.handler.wfile
        for frame in frames:
            w.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
        if complete:
            w.write(b"0\r\n\r\n")
            return
        if stall is not None:
            stall.wait()
        self.cut()

    def cut(self) -> None:
        """Drop the connection now."""
        self.handler.close_connection = True
        _drop(self.handler.connection)

    def hang(self, stopping: threading.Event) -> None:
        """Send nothing until the fake stops, then drop the connection."""
        stopping.wait()
        self.cut()


def _make_handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30  # idle keep-alive connections end on their own

        def setup(self) -> None:
            super().setup()
            with fake._lock:
                fake._connections.add(self.connection)

        def handle(self) -> None:
            # Clients reset idle keep-alive connections; that is not worth a traceback.
            with contextlib.suppress(OSError):
                super().handle()

        def finish(self) -> None:
            with fake._lock:
                fake._connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = None
            parts = urlsplit(self.path)
            kind, stream, model = fake._route(self.command, parts.path, body)
            request = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                raw_body=raw,
                kind=kind,
                stream=stream,
                model=model,
            )
            try:
                fake._handle(_Exchange(self, request))
            except OSError:
                self.close_connection = True  # the client went away

    return Handler
