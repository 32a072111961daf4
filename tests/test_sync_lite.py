"""Incremental, crash-safe ingestion on Milvus Lite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ragloom import RAG
from ragloom.store import MilvusStore, StoredChunks
from ragloom.testing import FakeEmbedder
from tests.conftest import DOCS_ZIP
from tests.sync_contract import MakeRag, SyncContract, extract

pytestmark = pytest.mark.skipif(not DOCS_ZIP.is_file(), reason="../shared/corpus not present")


class TestSyncOnMilvusLite(SyncContract):
    @pytest.fixture
    def target(self, tmp_path: Path) -> tuple[str, str]:
        return str(tmp_path / "sync.db"), "sync"

    @pytest.fixture
    def make_rag(self, target: tuple[str, str], tmp_path: Path) -> MakeRag:
        uri, collection = target

        def make(**settings: Any) -> RAG:
            embedder = FakeEmbedder(dim=32, max_tokens=256)
            settings.setdefault("cache_dir", str(tmp_path / "cache"))
            return RAG(uri=uri, collection=collection, embedder=embedder, **settings)

        return make


class LookupCountingStore(MilvusStore):
    """A real store that counts the per-batch lookups of what is stored."""

    lookups = 0

    def chunk_ids_by_source(self, sources: Any) -> dict[str, StoredChunks]:
        self.lookups += 1
        return super().chunk_ids_by_source(sources)


def test_a_first_ingest_asks_an_empty_collection_nothing(tmp_path: Path) -> None:
    # On Milvus Lite each lookup scans the collection: a first ingest must not pay for them.
    docs = extract(tmp_path / "docs", limit=40)
    embedder = FakeEmbedder(dim=32, max_tokens=256)
    with RAG(uri=str(tmp_path / "first.db"), embedder=embedder, cache_dir="") as rag:
        rag.store = store = LookupCountingStore(str(tmp_path / "first.db"), "ragloom")
        first = rag.ingest([str(docs)])
        assert (first.added, first.removed, store.lookups) == (40, 0, 0)
        assert store.count() == first.chunks == first.written
        next(docs.rglob("*.md")).unlink()
        again = rag.ingest([str(docs)])
    assert (again.unchanged, again.added, again.removed) == (39, 0, 1)
    assert store.lookups > 0 and again.written == 0
