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


def test_a_refused_token_is_named_and_never_printed(milvus_server_with_auth: str) -> None:
    from tests.cli_helpers import ragloom
    from tests.milvus_server import ROOT_TOKEN

    uri = milvus_server_with_auth
    missing = ragloom("status", "--uri", uri)
    assert missing.code == 1 and "Traceback" not in missing.stderr
    assert f"Milvus at {uri} needs a token" in missing.stderr
    assert "pass --token user:password" in missing.stderr
    wrong = ragloom("status", "--uri", uri, "--token", "root:Wr0ngSecret")
    assert wrong.code == 1 and f"Milvus at {uri} rejected the token" in wrong.stderr
    assert "Wr0ngSecret" not in wrong.stdout + wrong.stderr
    right = ragloom("status", "--json", "--uri", uri, "--token", ROOT_TOKEN)
    assert right.code == 0, right.stderr
    assert right.json()["uri"] == uri
