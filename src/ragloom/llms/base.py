"""The protocol every language model follows, and the records passed to and from it.

A provider turns a ``Prompt`` (system text, messages, and for models that want them the
question and passages it was built from) into a ``Completion``, either at once
(``complete``) or as text deltas followed by the final ``Completion`` (``stream``).
``Reliability`` says how long to wait and how often to retry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from ragloom.types import Hit

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One turn of a conversation."""

    role: Role
    content: str


@dataclass(frozen=True)
class Prompt:
    """What a model is asked: a system prompt and messages.

    ``question`` and ``passages`` are what the messages were built from; remote models
    ignore them, the extractive answerer (``--llm none``) reads only them.
    """

    system: str
    messages: tuple[Message, ...]
    question: str = ""
    passages: tuple[Hit, ...] = ()


@dataclass(frozen=True)
class Completion:
    """A model's whole answer: its text, the model that wrote it, token usage."""

    text: str
    model: str
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str | None = None


StreamItem = str | Completion


@dataclass(frozen=True)
class Reliability:
    """Timeouts, deadline and retries for one model call (all in seconds).

    ``connect_timeout`` and ``read_timeout`` bound each HTTP attempt (a read timeout
    is the longest silence between bytes); ``deadline`` bounds the whole call, retries
    and backoff included.  Up to ``retries`` retries follow 408/429/5xx answers and
    dropped connections, waiting ``Retry-After`` when the server sends it, else
    ``backoff * 2**attempt`` with jitter, capped at ``max_backoff``.
    """

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    deadline: float = 120.0
    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0


@runtime_checkable
class LLM(Protocol):
    """A chat model behind some API.

    ``provider`` names the host preset (``deepseek``, ``gemini``, ``none``...), ``model``
    the model asked for.  Construction is cheap and touches no network (a missing key
    is reported then, by name).
    """

    provider: str
    model: str

    def complete(self, prompt: Prompt) -> Completion:
        """The whole answer at once."""
        ...

    def stream(self, prompt: Prompt) -> Iterator[StreamItem]:
        """Text deltas as they arrive, then the final ``Completion``."""
        ...


def usage_dict(prompt: int | None, completion: int | None, total: int | None) -> dict[str, int]:
    """Token usage in one shape for every provider (missing counts left out)."""
    out = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
    if total is None and prompt is not None and completion is not None:
        out["total_tokens"] = prompt + completion
    return {k: int(v) for k, v in out.items() if v is not None}
