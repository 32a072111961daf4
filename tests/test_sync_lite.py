"""Incremental, crash-safe ingestion on Milvus Lite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ragloom import RAG
from ragloom.testing import FakeEmbedder
from tests.conftest import DOCS_ZIP
from tests.sync_contract import MakeRag, SyncContract

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
