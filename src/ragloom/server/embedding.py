"""One embedding model shared by every request thread: one call at a time, queries batched.

A model may not be used by two threads at once (a fast tokenizer raises "Already
borrowed"), so calls go through one lock, held for one slice of at most
``DOCUMENT_SLICE`` documents (shortest first, so each pads little): searches wait for the
slice an ingest is embedding, not for its batch (one large PDF can be thousands of
chunks) or the whole ingest.  While the model is busy, the
queries that arrive wait together, and the next thread to get the model embeds all of
them in one call: under load, one forward pass serves many searches (see the load test
in docs/server.md).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from ragloom.embedders.base import Embedder, InputType

#: Most queries embedded in one call.
MAX_QUERY_BATCH = 64
#: Most document texts embedded under the lock at once: what a search may wait for.
DOCUMENT_SLICE = 64


@dataclass
class _Waiting:
    texts: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    vectors: list[list[float]] = field(default_factory=list)
    error: BaseException | None = None


class SharedEmbedder:
    """An ``Embedder`` safe to call from many threads (see the module docstring)."""

    def __init__(self, inner: Embedder, max_query_batch: int = MAX_QUERY_BATCH) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_query_batch = max_query_batch
        self.calls = 0  # calls made to the wrapped model
        self._model = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Waiting] = []

    def _in_slices(self, texts: Sequence[str]) -> list[list[float]]:
        """Documents embedded a slice at a time, the lock let go between slices."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), DOCUMENT_SLICE):
            picked = order[start : start + DOCUMENT_SLICE]
            with self._model:
                self.calls += 1
                found = self.inner.embed([texts[i] for i in picked], "document")
            for i, vector in zip(picked, found, strict=True):
                vectors[i] = vector
        return vectors

    @property
    def dim(self) -> int:
        """The wrapped embedder's dimension."""
        return self.inner.dim

    @property
    def max_tokens(self) -> int:
        """The wrapped embedder's window."""
        return self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        """Tokens as the wrapped embedder counts them."""
        return self.inner.count_tokens(text)

    def warm_up(self) -> None:
        """Load the wrapped model now, if it loads lazily (``warm_up``), under the lock."""
        load = getattr(self.inner, "warm_up", None)
        if callable(load):
            with self._model:
                load()

    def embed(self, texts: Sequence[str], input_type: InputType = "document") -> list[list[float]]:
        """Embed ``texts``; short query lists may be embedded together with others'."""
        if input_type == "document" and len(texts) > DOCUMENT_SLICE:
            return self._in_slices(texts)
        if input_type != "query" or not texts or len(texts) > self.max_query_batch:
            with self._model:
                self.calls += 1
                return self.inner.embed(texts, input_type)
        mine = _Waiting(list(texts))
        with self._queue_lock:
            self._queue.append(mine)
        while not mine.done.is_set():
            with self._model:
                if not mine.done.is_set():  # nobody took it along: embed the oldest waiting
                    self._embed_waiting()
        if mine.error is not None:
            raise mine.error
        return mine.vectors

    def _embed_waiting(self) -> None:
        """Embed the waiting queries (up to the batch size) in one call; under the model lock."""
        with self._queue_lock:
            batch, size = [], 0
            while self._queue and size + len(self._queue[0].texts) <= self.max_query_batch:
                size += len(self._queue[0].texts)
                batch.append(self._queue.pop(0))
        try:
            self.calls += 1
            vectors = self.inner.embed([t for w in batch for t in w.texts], "query")
            start = 0
            for waiting in batch:
                waiting.vectors = vectors[start : start + len(waiting.texts)]
                start += len(waiting.texts)
        except BaseException as exc:
            for waiting in batch:
                waiting.error = exc
        finally:
            for waiting in batch:
                waiting.done.set()
