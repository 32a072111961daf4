"""The same store contract on a real Milvus server (2.3.5: no BM25)."""

from __future__ import annotations

import uuid

import pytest

from ragloom.store import MilvusStore
from tests.store_contract import MakeStore, StoreContract

pytestmark = pytest.mark.server


class TestMilvusServerStore(StoreContract):
    @pytest.fixture
    def make_store(self, milvus_server: str) -> MakeStore:
        name = f"contract_{uuid.uuid4().hex[:8]}"
        return lambda: MilvusStore(milvus_server, name)

    def test_server_before_2_5_has_no_bm25(self, make_store: MakeStore) -> None:
        assert make_store().supports_bm25() is False

    def test_without_bm25_the_store_cannot_say_what_it_mentions(self, store: MilvusStore) -> None:
        assert store.mentions("anything") is None
