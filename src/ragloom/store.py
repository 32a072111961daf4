"""Everything that speaks to Milvus, and nothing else does.

One collection holds the chunks of every document, and records (in its description)
the embedder, dimension, metric and chunker it was built with.  Milvus Lite (a local
``*.db`` path), a Milvus server or cluster, and Zilliz Cloud are all reached through
pymilvus's ``MilvusClient``; what differs is detected, not configured (BM25 full-text
search needs Milvus >= 2.5 or Milvus Lite).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from ragloom import lexical, lite
from ragloom.config import redact_uri
from ragloom.errors import CollectionMismatchError, StoreError
from ragloom.types import Chunk, Hit

log = logging.getLogger(__name__)

SearchMode = Literal["dense", "bm25", "hybrid"]
SCHEMA_VERSION = 1
METRIC = "IP"
MAX_VARCHAR = 65_535
OUTPUT_FIELDS = ["text", "source", "heading", "position", "meta"]
_QUERY_BATCH = 1000


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection was built with; a mismatch means its vectors are not comparable."""

    embedder: str
    dim: int
    splitter: str
    chunk_tokens: int
    metric: str = METRIC
    bm25: bool = False
    schema: int = SCHEMA_VERSION
    analyzer: str = lexical.RAW  # how the BM25 text was normalised (ragloom.lexical)

    def to_json(self) -> str:
        """The collection description Milvus stores."""
        return json.dumps({"ragloom": asdict(self)}, sort_keys=True)

    @classmethod
    def from_description(cls, description: str) -> CollectionInfo | None:
        """Parse a description written by ``to_json``; None for foreign collections."""
        try:
            data = json.loads(description)["ragloom"]
            return cls(**data)
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class StoredDocument:
    """One ingested document as the collection records it."""

    source: str
    root: str
    doc_hash: str
    chunks: int
    ingested_at: int


@dataclass
class StoredChunks:
    """The rows stored for one document: chunk id -> document hash, and chunk counts."""

    hashes: dict[str, str] = field(default_factory=dict)
    counts: set[int] = field(default_factory=set)

    def complete(self, doc_hash: str) -> bool:
        """True when every chunk of this version of the document, and nothing else, is here."""
        return (
            bool(self.hashes)
            and self.counts == {len(self.hashes)}
            and all(h == doc_hash for h in self.hashes.values())
        )


def _quote(value: str) -> str:
    """A string literal for a Milvus boolean expression."""
    return json.dumps(value, ensure_ascii=False)


def _quiet_client_logs() -> None:
    """pymilvus and Milvus Lite's in-process gRPC server log routine noise (unimplemented
    timestamp calls, iterator fallbacks) as warnings; ragloom reports failures itself."""
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    logging.getLogger("pymilvus.decorators").setLevel(logging.CRITICAL)
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    logging.getLogger("milvus_lite").setLevel(logging.ERROR)


def _auth_refusal(exc: BaseException) -> str | None:
    """The server's reason when it refused the credentials (gRPC ``UNAUTHENTICATED``, which
    pymilvus reports as a failure to connect), else None."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:  # pymilvus chains form loops
        seen.add(id(cause))
        code = getattr(cause, "code", None)
        status = code() if callable(code) else None  # a grpc.RpcError
        if getattr(status, "name", None) == "UNAUTHENTICATED":
            details = getattr(cause, "details", None)
            return str(details() if callable(details) else "") or "unauthenticated"
        cause = cause.__cause__ or cause.__context__
    return None


def _fit_bytes(text: str, limit: int = MAX_VARCHAR) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


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
            self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
        if self.is_lite:
            lite.raise_if_locked(self.uri)
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        _quiet_client_logs()  # after the import: pymilvus configures its loggers on import

        uri = str(lite.lite_path(self.uri)) if self.is_lite else self._uri
        options: dict[str, Any] = {}
        if self.is_lite:
            # Milvus Lite serves gRPC from a thread of this process, on loopback, with gRPC's
            # server defaults: a keepalive ping on a connection with no call under way sooner
            # than 2 h after the last is a strike, and the third gets GOAWAY "too_many_pings"
            # (which gRPC prints on stderr).  pymilvus's channel pings every 10 s even when
            # idle (keepalive_time_ms=10000, keepalive_permit_without_calls; gRPC then slows
            # to one ping a minute), so an idle `ragloom serve` or `chat` was refused after
            # one to two minutes.  A loopback link to our own process has nothing to keep
            # alive: no keepalive (INT_MAX is gRPC's own client default, "off").  A server URI
            # keeps pymilvus's pings, which hold connections through load balancers and NATs.
            options["grpc_options"] = {"grpc.keepalive_time_ms": 2**31 - 1}
        try:
            client = MilvusClient(
                uri=uri, token=self._token or "", timeout=self._timeout, **options
            )
        except MilvusException as exc:
            if self.is_lite:
                lite.raise_if_locked(self.uri)  # lost a race with another process
                raise StoreError(
                    f"cannot open the Milvus Lite file {self.uri}: {exc.message}"
                ) from None
            refusal = _auth_refusal(exc)
            if refusal is not None:
                advice = (
                    "check --token or RAGLOOM_TOKEN (user:password, or a Zilliz Cloud API key)"
                    if self._token
                    else "pass --token user:password (or a Zilliz Cloud API key), or set"
                    " RAGLOOM_TOKEN"
                )
                given = "rejected the token" if self._token else "needs a token"
                raise StoreError(f"Milvus at {self.uri} {given} ({refusal}): {advice}") from None
            raise StoreError(
                f"cannot reach Milvus at {self.uri} ({exc.message}). Check that the server is"
                " running and the address and --token are right, or use a local Milvus Lite"
                " file: --uri ./ragloom.db"
            ) from None
        if self.is_lite:
            lite.opened(self.uri)
        return client

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
        from pymilvus.exceptions import MilvusException

        try:
            return fn(*args, **kwargs)
        except MilvusException as exc:
            name = getattr(fn, "__name__", "call")
            raise StoreError(
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
                    " choose another --collection"
                )
            self._info = info
        return self._info

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
                    " --rebuild to re-create it with the new settings, or use another"
                    " --collection"
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
        from pymilvus import DataType, Function, FunctionType

        if info.bm25:
            # BM25 text is written normalised (ragloom.lexical: stems, no stop words), so
            # Milvus's standard analyzer only splits it on spaces, on every backend.
            info = replace(info, analyzer=lexical.ANALYZER)
        client = self.client
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
            schema.add_field(
                "lexical", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True
            )
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
        self._call(
            client.create_collection,
            self.collection,
            schema=schema,
            index_params=index,
            consistency_level="Strong",
            properties={"ragloom": info.to_json()},
        )
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
        rows = []
        for chunk, vector in zip(chunks, vectors, strict=True):
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
                "ingested_at": now,
                "meta": chunk.metadata,
            }
            if info.bm25:
                row["lexical"] = _fit_bytes(lexical.analyze(chunk.embed_text, info.analyzer))
            rows.append(row)
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
        engine = lite.engine_collection(self.uri, self.collection)
        wait = getattr(engine, "_wait_for_bg", None)  # milvus-lite 3.x; absent elsewhere
        if callable(wait):
            try:
                wait(timeout=600)
            except Exception as exc:  # a failed build is retried by Milvus Lite itself
                log.debug("Milvus Lite background index build: %s", exc)
        if info.bm25:
            self._merge_lite_segments()
        self._ensure_loaded()
        probe = [0.0] * (info.dim - 1) + [1.0]
        self.search("", probe, 1, "dense")
        if info.bm25:
            self._call(
                self.client.search, self.collection, data=["ragloom"], anns_field="sparse",
                limit=1, output_fields=["position"], search_params={"metric_type": "BM25"},
            )  # fmt: skip

    def _merge_lite_segments(self) -> None:
        """One segment per partition while that is cheap: BM25 statistics are per segment
        on Milvus Lite (``lite.merge_segments``)."""
        try:
            merge = lite.merge_segments(self.uri, self.collection, lite.MERGE_MAX_ROWS)
        except Exception as exc:  # Milvus Lite's compaction is crash-safe: the data stands
            log.warning("could not merge the Milvus Lite segments of %s: %s", self.uri, exc)
            return
        if merge.merged:
            log.info("merged %d Milvus Lite segments (BM25 statistics)", merge.merged)
        if merge.left_split:
            log.warning(
                "%s holds %s chunks in several Milvus Lite segments, each scored by BM25 with"
                " its own statistics, so recently added documents can rank low in hybrid and"
                " BM25 search; `ragloom ingest --rebuild` writes one segment again, and a Milvus"
                " server (2.5+) keeps collection-wide statistics",
                self.uri, f"{merge.rows:,}",
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
            **self._read_level(),
        )  # fmt: skip
        return bool(found and found[0])

    def _read_level(self) -> dict[str, str]:
        """The consistency searches ask of a Milvus server: ``Session``.

        Collections are created ``Strong``, and a Strong search on a server waits for the
        next time tick (200 ms by default) so that it sees every write made anywhere.
        ``Session`` still sees every write this client made (an ingest then a search in
        one process, ``ragloom serve``), and what other processes wrote once the server
        has applied it, which a finished ``ragloom ingest`` (it ends with a flush)
        always is: the same hits, about 200 ms sooner.  Reads that decide what to write
        or delete (sync's lookups, counts) keep the collection's Strong level.  Milvus
        Lite has no time ticks, and nothing to ask.
        """
        return {} if self.is_lite else {"consistency_level": "Session"}

    def _engine_search(
        self, data: Any, field: str, k: int, filter_expr: str, metric: str, params: dict[str, Any]
    ) -> list[list[dict[str, Any]]] | None:
        """The search through Milvus Lite's engine in this process (see
        ``lite.engine_collection``), or None to go through pymilvus: not Milvus Lite, or
        anything unexpected (a bad filter then fails through pymilvus, with its message)."""
        if not self.is_lite:
            return None
        engine = lite.engine_collection(self.uri, self.collection)
        if engine is None:
            return None
        try:
            found: list[list[dict[str, Any]]] = engine.search(
                [data], top_k=k, anns_field=field, expr=filter_expr or None,
                output_fields=OUTPUT_FIELDS, metric_type=metric,
                search_params=params.get("params") or None,
            )  # fmt: skip
        except Exception as exc:
            log.debug("Milvus Lite engine search failed (%s): using pymilvus", exc)
            return None
        return found

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
        hits = []
        for rank, row in enumerate(result[0] if result else [], start=1):
            entity = row.get("entity", {})
            score = float(row.get("distance", 0.0))
            hits.append(
                Hit(
                    rank=rank,
                    # BM25 scores are positive, larger better; Milvus Lite 3.x negates them.
                    score=abs(score) if mode == "bm25" else score,
                    text=entity.get("text", ""),
                    source=entity.get("source", ""),
                    heading=entity.get("heading", ""),
                    chunk_id=str(row.get("id", "")),
                    position=int(entity.get("position", 0)),
                    metadata=entity.get("meta") or {},
                    dense_score=score if mode == "dense" else None,
                )
            )
        return hits

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
        if mode == "dense":
            vector = list(query_vector or [])
            result = self._engine_search(
                vector, "vector", k, filter_expr, info.metric, dense_params
            )
            if result is None:
                result = self._call(
                    self.client.search, self.collection, data=[vector], anns_field="vector",
                    limit=k, filter=filter_expr, output_fields=OUTPUT_FIELDS,
                    search_params=dense_params, **self._read_level(),
                )  # fmt: skip
        elif mode == "bm25":
            result = self._engine_search(terms, "sparse", k, filter_expr, "BM25", {})
            if result is None:
                result = self._call(
                    self.client.search, self.collection, data=[terms], anns_field="sparse",
                    limit=k, filter=filter_expr, output_fields=OUTPUT_FIELDS,
                    search_params={"metric_type": "BM25"}, **self._read_level(),
                )  # fmt: skip
        else:
            from pymilvus import AnnSearchRequest, RRFRanker

            requests = [
                AnnSearchRequest(
                    data=[list(query_vector or [])], anns_field="vector",
                    param=dense_params, limit=max(k, pool), expr=filter_expr or None,
                ),
                AnnSearchRequest(
                    data=[terms], anns_field="sparse", param={"metric_type": "BM25"},
                    limit=max(k, pool), expr=filter_expr or None,
                ),
            ]  # fmt: skip
            result = self._call(
                self.client.hybrid_search, self.collection, requests, RRFRanker(rrf_k),
                limit=k, output_fields=OUTPUT_FIELDS, **self._read_level(),
            )  # fmt: skip
        return result
