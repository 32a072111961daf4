"""Proves tests/milvus_server.py starts a real Milvus server and stops it cleanly."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.milvus_server import is_available, start_milvus_server

pytestmark = pytest.mark.server


def test_the_server_package_is_installed() -> None:
    assert is_available(), "package 'milvus' is missing: pip install -e '.[dev]'"


def test_collection_round_trip(milvus_server: str) -> None:
    """Uses the session server from conftest.py (built on tests/milvus_server.py)."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=milvus_server, timeout=30)
    schema = MilvusClient.create_schema(auto_id=False, description="round trip")
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("source", DataType.VARCHAR, max_length=256)
    index = client.prepare_index_params()
    index.add_index(
        "vector", index_type="HNSW", metric_type="IP", params={"M": 8, "efConstruction": 64}
    )
    client.create_collection("fixture_check", schema=schema, index_params=index)
    client.load_collection("fixture_check")

    rows = [
        {"id": "a", "vector": [1.0, 0.0, 0.0, 0.0], "source": "x"},
        {"id": "b", "vector": [0.0, 1.0, 0.0, 0.0], "source": "y"},
    ]
    assert client.insert("fixture_check", rows)["insert_count"] == 2
    got = client.query(
        "fixture_check",
        filter='source == "x"',
        output_fields=["id", "source"],
        consistency_level="Strong",
    )
    assert [r["id"] for r in got] == ["a"]
    hits = client.search(
        "fixture_check",
        data=[[0.0, 1.0, 0.0, 0.0]],
        limit=1,
        output_fields=["source"],
        consistency_level="Strong",
    )
    assert hits[0][0]["id"] == "b"
    assert hits[0][0]["entity"]["source"] == "y"
    client.drop_collection("fixture_check")
    assert "fixture_check" not in client.list_collections()
    client.close()


def test_a_second_server_runs_beside_it_and_stop_frees_its_port(
    milvus_server: str, tmp_path: Path
) -> None:
    from pymilvus import MilvusClient

    with start_milvus_server(tmp_path) as handle:  # __exit__ calls stop()
        assert handle.uri != milvus_server
        client = MilvusClient(uri=handle.uri, timeout=30)
        assert client.list_collections() == []
        client.close()
    assert handle.process.poll() is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", handle.port), timeout=5).close()
    with socket.socket() as sock:  # REUSEADDR: old client connections may sit in TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", handle.port))  # EADDRINUSE if a listener were left
