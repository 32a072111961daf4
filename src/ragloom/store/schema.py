"""The collection's fields and indexes, and the row written for each chunk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ragloom import lexical
from ragloom.store.records import CollectionInfo
from ragloom.types import Chunk

MAX_VARCHAR = 65_535
OUTPUT_FIELDS = ["text", "source", "heading", "position", "meta"]


def _fit_bytes(text: str, limit: int = MAX_VARCHAR) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def collection_schema(client: Any, info: CollectionInfo) -> tuple[Any, Any]:
    """The schema (recording ``info`` in its description) and the index params of a new
    collection: HNSW on the vectors, and with ``info.bm25`` Milvus's BM25 over the text."""
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(
        auto_id=False, enable_dynamic_field=False, description=info.to_json()
    )
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=info.dim)
    schema.add_field("source", DataType.VARCHAR, max_length=4096)
    schema.add_field("root", DataType.VARCHAR, max_length=4096)
    schema.add_field("heading", DataType.VARCHAR, max_length=4096)
    schema.add_field("doc_hash", DataType.VARCHAR, max_length=64)
    schema.add_field("position", DataType.INT64)
    schema.add_field("doc_chunks", DataType.INT64)
    schema.add_field("ingested_at", DataType.INT64)
    schema.add_field("meta", DataType.JSON)
    index = client.prepare_index_params()
    index.add_index(
        "vector", index_type="HNSW", metric_type=info.metric,
        params={"M": 16, "efConstruction": 200},
    )  # fmt: skip
    if info.bm25:
        schema.add_field("lexical", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["lexical"],
                output_field_names=["sparse"],
            )
        )
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    return schema, index


def chunk_row(
    chunk: Chunk, vector: Sequence[float], info: CollectionInfo, ingested_at: int
) -> dict[str, Any]:
    """The row written for one chunk, each text cut to fit its field."""
    row: dict[str, Any] = {
        "id": chunk.id,
        "text": _fit_bytes(chunk.text),
        "vector": list(vector),
        "source": _fit_bytes(chunk.source, 4096),
        "root": _fit_bytes(chunk.root, 4096),
        "heading": _fit_bytes(chunk.heading, 4096),
        "doc_hash": chunk.doc_hash,
        "position": chunk.position,
        "doc_chunks": chunk.doc_chunks,
        "ingested_at": ingested_at,
        "meta": chunk.metadata,
    }
    if info.bm25:
        row["lexical"] = _fit_bytes(lexical.analyze(chunk.embed_text, info.analyzer))
    return row
