"""The store contract: one set of tests every Milvus deployment must pass.

Subclasses supply a ``make_store`` fixture: a callable that returns a fresh
``MilvusStore`` on the same database (so reopening can be tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from ragloom.errors import CollectionMismatchError
from ragloom.store import CollectionInfo, MilvusStore
from ragloom.types import Chunk

DIM = 8
MakeStore = Callable[[], MilvusStore]


def unit(*xs: float) -> list[float]:
    v = list(xs) + [0.0] * (DIM - len(xs))
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def chunk(source: str, position: int, text: str, doc_hash: str = "h1", n: int = 1) -> Chunk:
    return Chunk(
        id=f"{source}-{position}-{doc_hash}"[-60:],
        source=source,
        root="/root",
        text=text,
        heading=f"Title > {text[:10]}",
        position=position,
        doc_hash=doc_hash,
        doc_chunks=n,
        embed_text=text,
        metadata={"lang": "en"},
    )


INFO = CollectionInfo(embedder="fake:test", dim=DIM, splitter="markdown", chunk_tokens=256)


class StoreContract:
    """Behaviour every store must show; subclasses provide ``make_store``."""

    @pytest.fixture
    def store(self, make_store: MakeStore) -> MilvusStore:
        s = make_store()
        s.drop()
        s.create(INFO)
        return s

    def test_records_how_it_was_built(self, store: MilvusStore, make_store: MakeStore) -> None:
        other = make_store()
        info = other.info()
        assert info is not None
        assert (info.embedder, info.dim, info.metric) == ("fake:test", DIM, "IP")

    def test_search_ranks_nearest_first_with_metadata(self, store: MilvusStore) -> None:
        chunks = [chunk("/root/a.md", 0, "alpha text"), chunk("/root/b.md", 0, "beta text")]
        store.upsert(chunks, [unit(1, 0), unit(0, 1)])
        store.flush()
        hits = store.search("alpha", unit(1, 0.1), k=2)
        assert [h.source for h in hits] == ["/root/a.md", "/root/b.md"]
        assert hits[0].rank == 1 and hits[0].score > hits[1].score
        assert hits[0].text == "alpha text"
        assert hits[0].heading == "Title > alpha text"
        assert hits[0].chunk_id == chunks[0].id

    def test_reopened_collection_is_searchable(
        self, store: MilvusStore, make_store: MakeStore
    ) -> None:
        store.upsert([chunk("/root/a.md", 0, "alpha")], [unit(1)])
        store.flush()
        store.close()
        reopened = make_store()
        hits = reopened.search("alpha", unit(1), k=1)
        assert [h.text for h in hits] == ["alpha"]

    def test_upserting_an_id_twice_keeps_one_row(self, store: MilvusStore) -> None:
        c = chunk("/root/a.md", 0, "alpha")
        store.upsert([c], [unit(1)])
        store.upsert([c], [unit(1)])
        assert store.count() == 1

    def test_delete_by_id_and_by_source(self, store: MilvusStore) -> None:
        a = [chunk("/root/a.md", i, f"a{i}", n=2) for i in range(2)]
        b = [chunk("/root/b.md", 0, "b0")]
        store.upsert(a + b, [unit(1), unit(1, 1), unit(0, 1)])
        store.delete_ids([a[1].id])
        assert store.count() == 2
        assert store.delete_sources(["/root/a.md"]) == 1
        assert [d.source for d in store.documents()] == ["/root/b.md"]

    def test_documents_and_chunk_ids_by_source(self, store: MilvusStore) -> None:
        a = [chunk("/root/a.md", i, f"a{i}", n=3) for i in range(3)]
        store.upsert(a, [unit(1, i) for i in range(3)])
        docs = store.documents(root="/root")
        assert [(d.source, d.chunks, d.doc_hash) for d in docs] == [("/root/a.md", 3, "h1")]
        assert store.documents(root="/elsewhere") == []
        stored = store.chunk_ids_by_source(["/root/a.md", "/root/missing.md"])
        assert set(stored) == {"/root/a.md"}
        assert stored["/root/a.md"].hashes == {c.id: "h1" for c in a}
        assert stored["/root/a.md"].complete("h1") and not stored["/root/a.md"].complete("h2")
        store.delete_ids([a[0].id])
        assert not store.chunk_ids_by_source(["/root/a.md"])["/root/a.md"].complete("h1")

    def test_filters_on_metadata(self, store: MilvusStore) -> None:
        store.upsert(
            [chunk("/root/a.md", 0, "alpha"), chunk("/root/b.txt", 0, "beta")],
            [unit(1), unit(1, 0.2)],
        )
        hits = store.search("x", unit(1), k=5, filter_expr='source like "/root/b%"')
        assert [h.source for h in hits] == ["/root/b.txt"]
        hits = store.search("x", unit(1), k=5, filter_expr='meta["lang"] == "en"')
        assert len(hits) == 2

    def test_refuses_other_embedder(self, store: MilvusStore) -> None:
        other = CollectionInfo(
            embedder="fake:other", dim=DIM, splitter="markdown", chunk_tokens=256
        )
        with pytest.raises(CollectionMismatchError, match="rebuild=True"):
            store.check(other)

    def test_drop_removes_everything(self, store: MilvusStore) -> None:
        store.upsert([chunk("/root/a.md", 0, "alpha")], [unit(1)])
        store.drop()
        assert store.info() is None
        assert store.count() == 0
        assert store.search("alpha", unit(1), k=3) == []
