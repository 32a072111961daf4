"""``SharedEmbedder``: many threads, one model call at a time, waiting queries batched."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from ragloom.embedders.base import InputType
from ragloom.server.embedding import SharedEmbedder, _Waiting
from ragloom.testing import FakeEmbedder


class SlowEmbedder(FakeEmbedder):
    """A FakeEmbedder that fails when two threads use it at once, like a fast tokenizer."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__(dim=16)
        self.busy = threading.Lock()
        self.fail_on = fail_on

    def embed(self, texts: Sequence[str], input_type: InputType = "document") -> list[list[float]]:
        if not self.busy.acquire(blocking=False):
            raise RuntimeError("Already borrowed")
        try:
            threading.Event().wait(0.02)
            if self.fail_on in texts:
                raise RuntimeError(f"cannot embed {self.fail_on}")
            return super().embed(texts, input_type)
        finally:
            self.busy.release()


def run_threads(n: int, work: object) -> list[object]:
    results: list[object] = [None] * n

    def target(i: int) -> None:
        try:
            results[i] = work(i)  # type: ignore[operator]
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_queries_get_their_own_vectors_from_fewer_calls() -> None:
    inner = SlowEmbedder()
    shared = SharedEmbedder(inner, max_query_batch=8)
    texts = [f"question number {i} about milvus" for i in range(40)]
    results = run_threads(40, lambda i: shared.embed([texts[i]], "query"))
    expected = FakeEmbedder(dim=16)
    for text, vectors in zip(texts, results, strict=True):
        assert vectors == expected.embed([text], "query")
    assert shared.calls < 40  # batched while the model was busy
    assert max(len(batch) for _, batch in inner.batches) <= 8


def test_a_caller_waits_until_its_own_queries_are_embedded() -> None:
    shared = SharedEmbedder(FakeEmbedder(dim=16), max_query_batch=1)
    older = _Waiting(["an older query"])  # queued by a thread still waiting for the model
    shared._queue.append(older)
    assert shared.embed(["mine"], "query") == FakeEmbedder(dim=16).embed(["mine"], "query")
    assert older.done.is_set() and older.vectors and shared.calls == 2


@pytest.mark.parametrize("batch", [1, 2])
def test_with_small_batches_every_query_is_still_answered(batch: int) -> None:
    shared = SharedEmbedder(SlowEmbedder(), max_query_batch=batch)
    texts = [f"query {i}" for i in range(16)]
    results = run_threads(16, lambda i: shared.embed([texts[i]], "query"))
    expected = FakeEmbedder(dim=16)
    assert results == [expected.embed([t], "query") for t in texts]


def test_documents_and_queries_never_use_the_model_at_once() -> None:
    shared = SharedEmbedder(SlowEmbedder())

    def work(i: int) -> object:
        kind: InputType = "document" if i % 3 == 0 else "query"
        return shared.embed([f"text {i}", f"more {i}"], kind)

    results = run_threads(24, work)
    assert not [r for r in results if isinstance(r, Exception)]


def test_a_failure_reaches_every_query_in_the_batch_and_no_other() -> None:
    shared = SharedEmbedder(SlowEmbedder(fail_on="poison"))
    texts = ["poison" if i == 0 else f"fine {i}" for i in range(12)]
    results = run_threads(12, lambda i: shared.embed([texts[i]], "query"))
    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert 0 in failed
    assert all("cannot embed poison" in str(results[i]) for i in failed)
    assert shared.embed(["fine again"], "query")  # the model is still usable
    with pytest.raises(RuntimeError, match="poison"):
        shared.embed(["poison"], "query")
