"""The store contract on Milvus Lite, plus what only a local file can do wrong."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ragloom.errors import ConfigError, StoreError, StoreLockedError
from ragloom.store import MilvusStore
from tests.store_contract import INFO, MakeStore, StoreContract


class TestMilvusLiteStore(StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        uri = str(tmp_path / "contract.db")
        return lambda: MilvusStore(uri, "contract")

    def test_lite_supports_bm25_and_hybrid(self, make_store: MakeStore) -> None:
        from tests.store_contract import chunk, unit

        store = make_store()
        store.drop()
        store.create(INFO.__class__(**{**INFO.__dict__, "bm25": True}))
        store.upsert(
            [chunk("/r/a.md", 0, "etcd stores metadata"), chunk("/r/b.md", 0, "minio stores data")],
            [unit(1), unit(0, 1)],
        )
        store.flush()
        assert store.supports_bm25()
        assert [h.source for h in store.search("metadata", None, k=1, mode="bm25")] == ["/r/a.md"]
        hybrid = store.search("metadata", unit(0, 1), k=2, mode="hybrid")
        assert {h.source for h in hybrid} == {"/r/a.md", "/r/b.md"}
        # what abstention asks: does any chunk use this word (in any of its forms)?
        assert store.mentions("MinIO") and store.mentions("stored")
        assert store.mentions("GraphQL") is False


def test_a_file_held_by_another_process_is_named(tmp_path: Path) -> None:
    uri = str(tmp_path / "held.db")
    maker = MilvusStore(uri, "c")
    maker.create(INFO)
    maker.close()  # the file exists and is free again
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys, time
                from pymilvus import MilvusClient
                MilvusClient(uri={uri!r})
                print("ready", flush=True)
                time.sleep(60)
            """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match="in use by another process") as info:
            MilvusStore(uri, "c").info()
        assert "point uri at a Milvus server" in str(info.value)
    finally:
        holder.kill()
        holder.wait()


def test_two_stores_in_one_process_share_the_file(tmp_path: Path) -> None:
    uri = str(tmp_path / "shared.db")
    first = MilvusStore(uri, "c")
    first.create(INFO)
    assert MilvusStore(uri, "c").info() == INFO


def test_a_lite_path_must_end_in_db(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"must end in '\.db'"):
        MilvusStore(str(tmp_path / "store.sqlite"), "c").info()


def test_an_unreachable_server_is_a_clear_error_not_a_hang() -> None:
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"cannot reach Milvus at http://127\.0\.0\.1:9"):
        MilvusStore("http://127.0.0.1:9", "c", timeout=2).info()
    assert time.monotonic() - started < 30


def test_searches_in_process_match_searches_through_grpc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Milvus Lite ragloom asks the engine in this process (no gRPC round trip); the
    hits must be exactly those pymilvus returns, filters and BM25 included."""
    from ragloom import lite
    from tests.store_contract import chunk, unit

    store = MilvusStore(str(tmp_path / "fast.db"), "fast")
    store.create(INFO.__class__(**{**INFO.__dict__, "bm25": True}))
    texts = ["etcd stores metadata", "minio stores data", "metadata lives in etcd too"]
    store.upsert(
        [chunk(f"/r/{i}.md", i, t) for i, t in enumerate(texts)],
        [unit(1), unit(0, 1), unit(1, 1)],
    )
    store.flush()
    engine = lite.engine_collection(store.uri, "fast")
    assert engine is not None
    calls: list[str] = []
    search = engine.search
    monkeypatch.setattr(
        engine, "search", lambda *a, **kw: calls.append("engine") or search(*a, **kw)
    )
    queries = [
        ("metadata", unit(1, 0.2), "dense", ""),
        ("metadata", None, "bm25", ""),
        ("metadata", unit(1, 0.2), "dense", 'source like "/r/2%"'),
        ("stores", None, "bm25", "position < 2"),
    ]
    fast = [store.search(q, v, 3, m, f) for q, v, m, f in queries]  # type: ignore[arg-type]
    assert len(calls) == len(queries)  # every search above went to the engine
    monkeypatch.setattr(lite, "engine_collection", lambda uri, name: None)
    slow = [store.search(q, v, 3, m, f) for q, v, m, f in queries]  # type: ignore[arg-type]
    assert [[(h.chunk_id, round(h.score, 5), h.text) for h in hits] for hits in fast] == [
        [(h.chunk_id, round(h.score, 5), h.text) for h in hits] for hits in slow
    ]
    assert all(fast) and fast[2][0].source == "/r/2.md"
    # a filter the engine rejects fails through pymilvus, with Milvus's own message
    monkeypatch.undo()
    with pytest.raises(StoreError, match="failed"):
        store.search("x", unit(1), 3, "dense", "no_such_field == 1")
    store.close()
