"""Server-sent events, and driving a blocking generator from the event loop.

``rag.stream`` is a plain generator that blocks (embedding, Milvus, the model's HTTP
stream); ``in_threads`` advances it in worker threads so the event loop stays free, and
closes it (which closes the model's stream) when the client goes away.  Answers wait on
the model for up to its deadline, so they take their threads from a limiter of their own:
taken from anyio's shared pool (40 threads), 40 answers waiting on a slow model would
stall every other request (search, status, uploads) until their deadline.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar, cast

import anyio
from fastapi.responses import StreamingResponse

from ragloom.errors import RagloomError

T = TypeVar("T")
_END = object()

#: Headers for an event stream: no caching, no buffering by a proxy in front.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(data: Any, name: str | None = None) -> str:
    """One SSE event: an optional ``event:`` line, then ``data:`` as compact JSON."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n"


def sse_response(events: AsyncIterator[str]) -> StreamingResponse:
    """A ``text/event-stream`` response over ``events``."""
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


async def in_threads(
    items: Iterator[T], limiter: anyio.CapacityLimiter | None = None
) -> AsyncIterator[T]:
    """Yield ``items`` from a blocking iterator, each ``next`` run in a worker thread
    (taken from ``limiter``, by default anyio's shared pool); closed if left unfinished."""
    lock = threading.Lock()  # a next() and the close() never overlap
    finished = False

    def step() -> object:
        with lock:
            return next(items, _END)

    def close() -> None:
        with lock:
            getattr(items, "close", lambda: None)()

    try:
        while True:
            item = await anyio.to_thread.run_sync(step, limiter=limiter)
            if item is _END:
                finished = True
                return
            yield cast(T, item)
    finally:
        if not finished:
            # Cancelled outright (the server stopping), a next() may still be running in
            # its thread: the close waits for it in a thread of its own, and the event
            # loop does not wait for either.
            threading.Thread(target=close, name="ragloom-close", daemon=True).start()


async def prefetch(items: AsyncIterator[T], until: Callable[[T], bool]) -> AsyncIterator[T]:
    """Pull ``items`` up to the first one ``until`` accepts, then return them all again.

    A stream is started this way so that what fails before its first piece (the search,
    the model refusing the key) is answered with an HTTP error, not inside a 200 stream.
    """
    buffered: list[T] = []
    async for item in items:
        buffered.append(item)
        if until(item):
            break

    async def chained() -> AsyncIterator[T]:
        for item in buffered:
            yield item
        async for item in items:
            yield item

    return chained()


class ServerStopping(RagloomError):
    """The server began stopping while an answer was streaming."""

    def __init__(self) -> None:
        super().__init__("the server is stopping: ask again once it is back")


async def until_stopping(items: AsyncIterator[T], stopping: asyncio.Event) -> AsyncIterator[T]:
    """``items`` until ``stopping`` is set, then ``ServerStopping``: a stream ends with an
    error event at once, not cut off by uvicorn once its graceful shutdown times out.

    Each item is awaited in a task of its own, raced with ``stopping``; that task is
    cancelled when the stream ends early (the client gone, the server stopping), which
    closes the model's stream (see ``in_threads``).
    """
    stop = asyncio.ensure_future(stopping.wait())
    step: asyncio.Future[T] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(items))
            await asyncio.wait({step, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                raise ServerStopping
            try:
                item = step.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        stop.cancel()
        if step is not None:
            step.cancel()
