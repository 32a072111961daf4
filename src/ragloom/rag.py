"""The one place that wires the parts together from settings: ``RAG``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from ragloom.chunking import ChunkSettings
from ragloom.config import Settings, load_settings
from ragloom.embedders import Embedder, make_embedder
from ragloom.loaders import LoadLimits
from ragloom.retrieval import retrieve
from ragloom.store import CollectionInfo, MilvusStore, SearchMode, StoredDocument
from ragloom.sync import Ingestor, ProgressFn
from ragloom.types import Hit, IngestReport


class RAG:
    """Ask-your-documents over one Milvus collection.

    >>> rag = RAG(uri="./ragloom.db")            # doctest: +SKIP
    >>> rag.ingest(["docs/"])                     # doctest: +SKIP
    >>> rag.search("How do I point ragloom at a Milvus server?", k=3)  # doctest: +SKIP

    Arguments left out come from the environment (``RAGLOOM_*``), ``ragloom.toml``, or
    the defaults; ``embedder`` may be a spec string or any object that follows the
    ``Embedder`` protocol.
    """

    def __init__(
        self,
        uri: str | None = None,
        *,
        token: str | None = None,
        collection: str | None = None,
        embedder: str | Embedder | None = None,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        spec = embedder if isinstance(embedder, str) else None
        self.settings = settings or load_settings(
            uri=uri, token=token, collection=collection, embedder=spec, **overrides
        )
        self._embedder = None if embedder is None or isinstance(embedder, str) else embedder
        self.store = MilvusStore(
            self.settings.uri,
            self.settings.collection,
            token=self.settings.token.get_secret_value() if self.settings.token else None,
            timeout=self.settings.timeout,
        )

    def __enter__(self) -> RAG:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the store (a Milvus Lite file is unlocked)."""
        self.store.close()

    @cached_property
    def embedder(self) -> Embedder:
        """The embedder the settings name (built lazily; the model loads on first use)."""
        if self._embedder is not None:
            return self._embedder
        return make_embedder(self.settings.embedder, batch_size=self.settings.batch_size)

    def _query_embedder(self) -> Embedder:
        """For searching: the embedder the collection was built with, when none was named."""
        info = self.store.info()
        named = self._embedder is not None or "embedder" in self.settings.model_fields_set
        if info is not None and not named and info.embedder != self.embedder.name:
            self.__dict__["embedder"] = _embedder_from_name(info.embedder, self.settings)
        return self.embedder

    def chunk_settings(self, splitter: str | None = None) -> ChunkSettings:
        """How documents are cut, fitted to the embedder's window."""
        window = self.settings.chunk_tokens or self.embedder.max_tokens
        return ChunkSettings(
            splitter=splitter or self.settings.splitter,
            max_tokens=window,
            overlap_tokens=min(self.settings.overlap_tokens, window // 4),
        )

    def ingest(
        self,
        sources: Sequence[str] | str,
        *,
        glob: str | None = None,
        splitter: str | None = None,
        rebuild: bool = False,
        prune: bool = True,
        dry_run: bool = False,
        limits: LoadLimits | None = None,
        progress: ProgressFn | None = None,
    ) -> IngestReport:
        """Load, chunk, embed and store ``sources`` (files, folders, zips, URLs)."""
        if isinstance(sources, str):
            sources = [sources]
        chunking = self.chunk_settings(splitter)
        wanted = CollectionInfo(
            embedder=self.embedder.name,
            dim=self.embedder.dim,
            splitter=chunking.splitter,
            chunk_tokens=chunking.max_tokens,
        )
        if rebuild and not dry_run:
            self.store.drop()
        self.store.check(wanted)
        if not dry_run and self.store.info() is None:
            bm25 = self.store.supports_bm25()
            self.store.create(CollectionInfo(**{**wanted.__dict__, "bm25": bm25}))
        ingestor = Ingestor(self.store, self.embedder, chunking, limits, progress)
        return ingestor.run(list(sources), glob=glob, prune=prune, dry_run=dry_run)

    def search(
        self,
        query: str,
        k: int = 3,
        *,
        mode: SearchMode | None = None,
        where: str | None = None,
        sources: Sequence[str] = (),
    ) -> list[Hit]:
        """The ``k`` passages that best answer ``query``, best first."""
        embedder = self._query_embedder()
        info = self.store.info()
        if info is not None:
            self.store.check(
                CollectionInfo(
                    embedder=embedder.name,
                    dim=embedder.dim,
                    splitter=info.splitter,
                    chunk_tokens=info.chunk_tokens,
                )
            )
        return retrieve(self.store, embedder, query, k, mode=mode, where=where, sources=sources)

    def sources(self) -> list[StoredDocument]:
        """The documents in the collection."""
        return self.store.documents()

    def delete(self, sources: Sequence[str]) -> int:
        """Remove documents by source; returns the number of chunks deleted."""
        deleted = self.store.delete_sources(sources)
        self.store.flush()
        return deleted

    def status(self) -> dict[str, Any]:
        """Where the collection is, what it holds and how it was built."""
        info = self.store.info()
        return {
            "uri": self.settings.uri,
            "collection": self.settings.collection,
            "exists": info is not None,
            "chunks": self.store.count(),
            "documents": len(self.store.documents()),
            "embedder": info.embedder if info else self.settings.embedder,
            "dim": info.dim if info else None,
            "metric": info.metric if info else None,
            "splitter": info.splitter if info else None,
            "chunk_tokens": info.chunk_tokens if info else None,
            "bm25": info.bm25 if info else None,
        }


def _embedder_from_name(name: str, settings: Settings) -> Embedder:
    """Rebuild the embedder a collection records (``local:all-MiniLM-L6-v2`` etc.)."""
    kind, _, model = name.partition(":")
    spec = kind if kind == "milvus-default" else f"{kind}:{model}" if model else kind
    return make_embedder(spec, batch_size=settings.batch_size)
