"""What the fake provider servers record, and the scripted answers and faults they serve.

A fake answers each model request from its queue (see ``enqueue``) and, when the queue is
empty, with its default behaviour.  The queue holds these items:

    Reply(text)             an answer: JSON, or SSE when the request asked to stream
    HttpError(status, ...)  an error in the provider's JSON shape, optionally with Retry-After
    Hang()                  accept the request and never answer (until the fake stops)
    Cut(after=2)            start the answer and drop the connection mid-way
    Cut(after=2, stall=True)  start the answer and go silent mid-way (a read timeout)
    Malformed(body)         a 200 whose body is not valid JSON (or is empty)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as a fake received it.

    ``kind`` is the endpoint the fake routed it to (``chat``, ``embeddings``, ``models``,
    ``generate``, ``embed``, or ``unknown``); ``headers`` has lower-case names; ``body``
    is the parsed JSON body, or None when there was none or it was not JSON.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    kind: str
    stream: bool = False
    model: str | None = None


@dataclass(frozen=True)
class Reply:
    """An answer to a chat/generate request.

    ``chunks`` sets how the text is split into streamed events (default: word by word);
    ``finish_reason`` overrides the provider's normal one (``stop`` / ``STOP``), e.g.
    ``"length"`` or ``"MAX_TOKENS"``.
    """

    text: str
    chunks: Sequence[str] | None = None
    finish_reason: str | None = None

    def pieces(self) -> list[str]:
        """The text split into the pieces a stream sends, one per event."""
        if self.chunks is not None:
            return list(self.chunks)
        return _split_words(self.text)


@dataclass(frozen=True)
class HttpError:
    """An HTTP error; ``body`` (dict, str or bytes) replaces the provider-shaped error JSON."""

    status: int
    message: str | None = None
    retry_after: float | str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hang:
    """Read the request, then send nothing until the fake stops (a client timeout test)."""


@dataclass(frozen=True)
class Cut:
    """Drop the connection part-way through the answer.

    For a streamed request, after ``after`` SSE data events; otherwise after half of
    the JSON body (the announced Content-Length is never reached).  ``stall``: send
    nothing more until the fake stops instead of dropping the connection (a model that
    goes silent mid-answer: the client's read timeout ends it).
    """

    after: int = 2
    stall: bool = False


@dataclass(frozen=True)
class Malformed:
    """A response whose body is not valid JSON (``""`` sends an empty body)."""

    body: str = '{"choices": [ not json'
    status: int = 200


ScriptItem = Reply | HttpError | Hang | Cut | Malformed


def _split_words(text: str) -> list[str]:
    """Split ``text`` into word-sized pieces that join back to exactly ``text``."""
    pieces: list[str] = []
    current = ""
    for ch in text:
        if current and not ch.isspace() and current[-1].isspace():
            pieces.append(current)
            current = ""
        current += ch
    if current:
        pieces.append(current)
    return pieces or [""]
