"""``MilvusStore``: one ragloom collection, and every call made to Milvus about it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from ragloom import lexical, lite
from ragloom.config import redact_uri
from ragloom.errors import CollectionMismatchError, RowsRejectedError, StoreError, option
from ragloom.store.connect import open_client
from ragloom.store.lite_engine import engine_search, settle_indexes
from ragloom.store.records import CollectionInfo, StoredChunks, StoredDocument
from ragloom.store.schema import OUTPUT_FIELDS, chunk_row, collection_schema
from ragloom.store.search import SearchMode, hybrid_requests, read_level, to_hits
from ragloom.types import Chunk, Hit

_QUERY_BATCH = 1000


def _quote(value: str) -> str:
    """A string literal for a Milvus boolean expression."""
    return json.dumps(value, ensure_ascii=False)


class MilvusStore:
    """A ragloom collection in Milvus Lite, a Milvus server or Zilliz Cloud."""

    def __init__(
        self, uri: str, collection: str, token: str | None = None, timeout: float = 10.0
    ) -> None:
        self._uri = uri
        self.uri = redact_uri(uri)  # for messages: never print a password
        self.collection = collection
        self._token = token
        self._timeout = timeout
        self._client: Any = None
        self._info: CollectionInfo | None = None
        self._loaded = False
        self._closed = False

    # -- connection ----------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The connected ``MilvusClient`` (connects on first use)."""
        if self._closed:
            # Reconnecting would quietly take a Milvus Lite file's lock again, for good.
            raise StoreError(
                f"the collection '{self.collection}' at {self.uri} was closed (close(), or the"
                " end of a `with RAG(...)` block): open a new RAG to use it again"
            )
        if self._client is None:
            self._client = open_client(self._uri, self._token, self._timeout)
        return self._client

    @property
    def is_lite(self) -> bool:
        """True when the store is a local Milvus Lite file."""
        return lite.is_lite_uri(self.uri)

    def supports_bm25(self) -> bool:
        """BM25 full-text search: Milvus Lite, or a Milvus server >= 2.5."""
        if self.is_lite:
            return True
        version = str(self._call(self.client.get_server_version))
        match = re.search(r"(\d+)\.(\d+)", version)
        return match is not None and (int(match[1]), int(match[2])) >= (2, 5)

    def close(self) -> None:
        """Release the connection (and, for Milvus Lite, the file); using it after is an error."""
        self._closed = True
        if self._client is not None:
            self._client.close()
            self._client = None
            self._loaded = False
            if self.is_lite:
                lite.closed(self.uri)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a MilvusClient call, turning its exceptions into ``StoreError``."""
        from pymilvus.exceptions import (
            DataNotMatchException,
            DataTypeNotMatchException,
            MilvusException,
        )

        try:
            return fn(*args, **kwargs)
        except MilvusException as exc:
            name = getattr(fn, "__name__", "call")
            rejected = isinstance(exc, DataNotMatchException | DataTypeNotMatchException)
            raise (RowsRejectedError if rejected else StoreError)(
                f"Milvus {name} on collection '{self.collection}' at {self.uri} failed:"
                f" {exc.message}"
            ) from None

    # -- the collection and its record ---------------------------------------------------

    def info(self) -> CollectionInfo | None:
        """What the collection was built with, or None when it does not exist."""
        if self._info is None and self._client is None and self._lite_file_missing():
            return None  # reading creates nothing: `ragloom search` in an empty folder
        if self._info is None and self._call(self.client.has_collection, self.collection):
            desc = self._call(self.client.describe_collection, self.collection)
            # Milvus Lite keeps properties but not the description; old servers the reverse.
            record = (desc.get("properties") or {}).get("ragloom") or desc.get("description", "")
            info = CollectionInfo.from_description(record)
            if info is None:
                raise CollectionMismatchError(
                    f"collection '{self.collection}' at {self.uri} was not made by ragloom:"
                    f" choose another {option('collection')}"
                )
            self._info = info
        return self._info

    def others(self) -> list[str]:
        """The database's other collections (none when a Milvus Lite file is missing)."""
        if self._client is None and self._lite_file_missing():
            return []
        names = self._call(self.client.list_collections)
        return sorted(str(n) for n in names if n != self.collection)

    def _lite_file_missing(self) -> bool:
        """A Milvus Lite URI whose database does not exist yet (opening would create it)."""
        return self.is_lite and not lite.lite_path(self.uri).exists()

    def check(self, wanted: CollectionInfo) -> None:
        """Refuse to mix vectors or chunks built with other settings."""
        have = self.info()
        if have is None:
            return
        for name in ("embedder", "dim", "metric", "splitter", "chunk_tokens"):
            if getattr(have, name) != getattr(wanted, name):
                raise CollectionMismatchError(
                    f"collection '{self.collection}' at {self.uri} was built with {name}"
                    f" {getattr(have, name)!r}, not {getattr(wanted, name)!r}: ingest with"
                    f" {option('rebuild', True)} to re-create it with the new settings, or use"
                    f" another {option('collection')}"
                )

    def drop(self) -> None:
        """Delete the collection and everything in it."""
        if self._call(self.client.has_collection, self.collection):
            self._call(self.client.drop_collection, self.collection)
        self._info = None
        self._loaded = False

    def create(self, info: CollectionInfo) -> CollectionInfo:
        """Create the collection (if missing) with the explicit schema and indexes."""
        existing = self.info()
        if existing is not None:
            return existing
        if info.bm25:
            # BM25 text is written normalised (ragloom.lexical: stems, no stop words), so
            # Milvus's standard analyzer only splits it on spaces, on every backend.
            info = replace(info, analyzer=lexical.ANALYZER)
        client = self.client
        schema, index = collection_schema(client, info)
        self._call(
            client.create_collection,
            self.collection,
            schema=schema,
            consistency_level="Strong",
            properties={"ragloom": info.to_json()},
        )
        # Not waited for: the collection is empty, so there is nothing to build, and
        # pymilvus's wait sleeps half a second before it first looks (a second per new
        # collection with its two indexes).
        self._call(client.create_index, self.collection, index, sync=False)
        self._call(client.load_collection, self.collection)
        self._info = info
        self._loaded = False
        return info

    def _ensure_loaded(self) -> None:
        """A reopened collection must be loaded before it can be searched or queried."""
        if self._loaded:
            return
        state = self._call(self.client.get_load_state, self.collection)
        if "Loaded" not in str(state.get("state", "")):
            self._call(self.client.load_collection, self.collection)
        self._loaded = True

    # -- writing -------------------------------------------------------------------------

    def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> None:
        """Write chunks with their vectors; writing the same id twice keeps one row."""
        if not chunks:
            return
        info = self.info()
        if info is None:
            raise StoreError(f"collection '{self.collection}' does not exist yet")
        now = int(time.time())
        rows = [chunk_row(c, v, info, now) for c, v in zip(chunks, vectors, strict=True)]
        self._call(self.client.upsert, self.collection, rows)

    def delete_ids(self, ids: Iterable[str]) -> None:
        """Delete chunks by id."""
        batch = list(ids)
        for start in range(0, len(batch), _QUERY_BATCH):
            self._call(self.client.delete, self.collection, ids=batch[start : start + _QUERY_BATCH])

    def delete_sources(self, sources: Iterable[str]) -> int:
        """Delete every chunk of the given documents; returns how many chunks went."""
        if self.info() is None:
            return 0
        ids = [row["id"] for row in self._rows_for_sources(sources, ["id"])]
        self.delete_ids(ids)
        return len(ids)

    def flush(self) -> None:
        """Seal what was written so that searches run on indexed data.

        Milvus Lite searches rows it has not flushed 50-100 times slower, and after a
        flush it builds the new segment's vector index in a background thread and its
        BM25 index on the first lexical search; until both exist every search scans raw
        rows.  So on Milvus Lite this also waits for the index build and runs one search
        of each kind: ingest leaves the collection in its fast state.
        """
        info = self.info()
        if info is None:
            return
        self._call(self.client.flush, self.collection)
        if self.is_lite:
            self._settle_lite(info)

    def _settle_lite(self, info: CollectionInfo) -> None:
        settle_indexes(self.uri, self.collection, bm25=info.bm25)
        self._ensure_loaded()
        probe = [0.0] * (info.dim - 1) + [1.0]
        self.search("", probe, 1, "dense")
        if info.bm25:
            self._call(
                self.client.search, self.collection, data=["ragloom"], anns_field="sparse",
                limit=1, output_fields=["position"], search_params={"metric_type": "BM25"},
            )  # fmt: skip

    # -- reading -------------------------------------------------------------------------

    def _query_all(self, filter_expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        self._ensure_loaded()
        iterator = self._call(
            self.client.query_iterator,
            self.collection,
            batch_size=_QUERY_BATCH,
            filter=filter_expr,
            output_fields=fields,
        )
        try:
            while True:
                page = self._call(iterator.next)
                if not page:
                    break
                yield from page
        finally:
            iterator.close()

    def _rows_for_sources(
        self, sources: Iterable[str], fields: list[str]
    ) -> Iterator[dict[str, Any]]:
        batch = sorted(set(sources))
        for start in range(0, len(batch), 100):
            group = ", ".join(_quote(s) for s in batch[start : start + 100])
            yield from self._query_all(f"source in [{group}]", fields)

    def chunk_ids_by_source(self, sources: Iterable[str]) -> dict[str, StoredChunks]:
        """For each stored document among ``sources``: its chunk ids, hashes and count."""
        found: dict[str, StoredChunks] = {}
        fields = ["id", "source", "doc_hash", "doc_chunks"]
        for row in self._rows_for_sources(sources, fields):
            stored = found.setdefault(row["source"], StoredChunks())
            stored.hashes[row["id"]] = row["doc_hash"]
            stored.counts.add(int(row["doc_chunks"]))
        return found

    def documents(self, root: str | None = None) -> list[StoredDocument]:
        """The ingested documents (optionally only those found under ``root``)."""
        if self.info() is None:
            return []
        expr = "position == 0" + (f" and root == {_quote(root)}" if root is not None else "")
        fields = ["source", "root", "doc_hash", "doc_chunks", "ingested_at"]
        docs = [
            StoredDocument(
                r["source"], r["root"], r["doc_hash"], int(r["doc_chunks"]), int(r["ingested_at"])
            )
            for r in self._query_all(expr, fields)
        ]
        return sorted(docs, key=lambda d: d.source)

    def sources_under(self, root: str) -> set[str]:
        """Every document source stored under ``root`` (complete or not)."""
        if self.info() is None:
            return set()
        return {r["source"] for r in self._query_all(f"root == {_quote(root)}", ["source"])}

    def count(self) -> int:
        """Chunks in the collection."""
        if self.info() is None:
            return 0
        self._ensure_loaded()
        rows = self._call(self.client.query, self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def mentions(self, word: str) -> bool | None:
        """Whether any chunk's lexical text holds ``word`` (as one word, normalised as
        the field was), or None when the collection has no lexical field to look in."""
        info = self.info()
        if info is None or not info.bm25:
            return None
        term = lexical.word_term(word, info.analyzer)
        if not term or term in lexical.STOP_WORDS:
            return True  # nothing a search could tell apart
        self._ensure_loaded()
        found = self._call(
            self.client.search, self.collection, data=[term], anns_field="sparse",
            limit=1, output_fields=["position"], search_params={"metric_type": "BM25"},
            **read_level(self.is_lite),
        )  # fmt: skip
        return bool(found and found[0])

    def search(
        self,
        query_text: str,
        query_vector: Sequence[float] | None,
        k: int,
        mode: SearchMode = "dense",
        filter_expr: str = "",
        *,
        rrf_k: int = 60,
        pool: int = 50,
    ) -> list[Hit]:
        """The ``k`` best chunks for a query: by vector (scores are cosines), by BM25 on
        the lexical field (the question normalised as the field was), or both fused by
        Milvus's ``hybrid_search`` with RRF over ``pool`` candidates from each."""
        info = self.info()
        if info is None:
            return []
        self._ensure_loaded()
        if mode != "dense" and not info.bm25:
            raise StoreError(f"collection '{self.collection}' has no BM25 index")
        terms = lexical.analyze(query_text, info.analyzer) if mode != "dense" else ""
        if mode == "hybrid" and not terms.strip():
            mode = "dense"  # nothing but stop words: nothing for BM25 to match
        if mode == "bm25" and not terms.strip():
            return []
        ef = max(64, 2 * max(k, pool))
        args = (info, query_vector, terms, k, mode, filter_expr, rrf_k, pool)
        result = self._search_rows(*args, ef=ef)
        short = len(result[0] if result else []) < k
        if short and self.is_lite and filter_expr and mode != "bm25" and self.count() > ef:
            # Milvus Lite's HNSW index (FAISS) applies a filter while it walks the graph,
            # among ``ef`` candidates: a filter that keeps few chunks comes back short, or
            # empty, although matching chunks exist.  Then walk the whole graph.
            result = self._search_rows(*args, ef=self.count())
        return to_hits(result, mode)

    def _search_rows(
        self,
        info: CollectionInfo,
        query_vector: Sequence[float] | None,
        terms: str,
        k: int,
        mode: SearchMode,
        filter_expr: str,
        rrf_k: int,
        pool: int,
        *,
        ef: int,
    ) -> Any:
        """One search as Milvus returns it (a list of hit lists), HNSW walking ``ef``."""
        dense_params = {"metric_type": info.metric, "params": {"ef": ef}}
        vector = list(query_vector or [])
        if mode == "dense":
            result = engine_search(
                self.uri, self.collection, vector, "vector", k, filter_expr, info.metric,
                dense_params,
            )  # fmt: skip
            if result is None:
                result = self._call(
                    self.client.search, self.collection, data=[vector], anns_field="vector",
                    limit=k, filter=filter_expr, output_fields=OUTPUT_FIELDS,
                    search_params=dense_params, **read_level(self.is_lite),
                )  # fmt: skip
        elif mode == "bm25":
            result = engine_search(
                self.uri, self.collection, terms, "sparse", k, filter_expr, "BM25", {}
            )
            if result is None:
                result = self._call(
                    self.client.search, self.collection, data=[terms], anns_field="sparse",
                    limit=k, filter=filter_expr, output_fields=OUTPUT_FIELDS,
                    search_params={"metric_type": "BM25"}, **read_level(self.is_lite),
                )  # fmt: skip
        else:
            from pymilvus import RRFRanker

            requests = hybrid_requests(vector, terms, dense_params, max(k, pool), filter_expr)
            result = self._call(
                self.client.hybrid_search, self.collection, requests, RRFRanker(rrf_k),
                limit=k, output_fields=OUTPUT_FIELDS, **read_level(self.is_lite),
            )  # fmt: skip
        return result
