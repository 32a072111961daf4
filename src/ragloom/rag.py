"""The one place that wires the parts together from settings: ``RAG``."""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragloom.asking import Asking
from ragloom.chunking import ChunkSettings
from ragloom.config import Settings, load_settings, override, redact_uri
from ragloom.embedders import EMBEDDER_KINDS, Embedder, make_embedder
from ragloom.errors import CollectionMismatchError, ConfigError, option
from ragloom.retrieval import SearchOptions, retrieve
from ragloom.store import CollectionInfo, MilvusStore, SearchMode, StoredDocument
from ragloom.types import Hit, IngestReport

if TYPE_CHECKING:
    from ragloom.loaders import LoadLimits
    from ragloom.sync import ProgressFn

log = logging.getLogger(__name__)

#: Seconds an exiting process waits for a model still loading in the background.
_WARM_UP_EXIT_WAIT = 60.0

#: One or more sources: a path (``str`` or ``os.PathLike``), a URL, or a list of them.
Names = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


class RAG(Asking):
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
        flags = dict(uri=uri, token=token, collection=collection, embedder=spec, **overrides)
        self.settings = override(settings, **flags) if settings else load_settings(**flags)
        self._embedder = None if embedder is None or isinstance(embedder, str) else embedder
        self._warm_up_started = False
        self._warm_up_thread: threading.Thread | None = None
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
        if self._warm_up_thread is not None:
            # A process that exits while the model is still loading in native code aborts
            # ("terminate called without an active exception", exit status 134).
            self._warm_up_thread.join()
            atexit.unregister(self._warm_up_thread.join)
        self.store.close()

    @cached_property
    def embedder(self) -> Embedder:
        """The embedder the settings name (built lazily; the model loads on first use)."""
        if self._embedder is not None:
            return self._embedder
        return make_embedder(
            self.settings.embedder,
            batch_size=self.settings.batch_size,
            cache_dir=self.settings.cache_dir or None,
        )

    def _query_embedder(self) -> Embedder:
        """The embedder the collection was built with, when none was named (for searching,
        and for adding documents to it)."""
        info = self.store.info()
        named = self._embedder is not None or "embedder" in self.settings.model_fields_set
        if info is not None and not named and info.embedder != self.embedder.name:
            self.__dict__["embedder"] = _embedder_from_name(info.embedder, self.settings)
        return self.embedder

    def wrap_embedder(self, wrap: Callable[[Embedder], Embedder]) -> Embedder:
        """Replace the embedder searches use by ``wrap(embedder)`` (``ragloom serve``
        shares one model between its threads this way) and return it."""
        wrapped = wrap(self._query_embedder())
        self.__dict__["embedder"] = wrapped
        return wrapped

    def _warm_up_in_background(self) -> None:
        """Load the (likely) query model while the store opens: in a fresh process both
        take a few hundred milliseconds, and the model's loading mostly runs outside
        Python's lock.  Once per RAG; a no-op for embedders that load nothing."""
        if self._warm_up_started:
            return
        self._warm_up_started = True
        warm_up = getattr(self.embedder, "warm_up", None)
        if callable(warm_up):
            # Both threads import numpy (the model's runtime, and pymilvus); importlib
            # resolves two threads entering one C-extension package at once by handing
            # one of them a half-initialised module ("cannot load module more than once
            # per process"), so it is imported here first.
            import numpy  # noqa: F401

            self._warm_up_thread = threading.Thread(target=_quietly, args=(warm_up,), daemon=True)
            self._warm_up_thread.start()
            # A RAG never closed (a script that ends on an error): the process waits for
            # the model to finish loading instead of aborting in its native code.
            atexit.register(self._warm_up_thread.join, _WARM_UP_EXIT_WAIT)

    def chunk_settings(
        self, splitter: str | None = None, window: int | None = None
    ) -> ChunkSettings:
        """How documents are cut, fitted to the embedder's window (or ``window``)."""
        window = window or self.settings.chunk_tokens or self.embedder.max_tokens
        if window > self.embedder.max_tokens:
            raise ConfigError(
                f"chunk_tokens {window} (RAGLOOM_CHUNK_TOKENS) is over the window of the"
                f" embedder {self.embedder.name} ({self.embedder.max_tokens} tokens), which"
                f" would ignore the rest of each chunk: use at most {self.embedder.max_tokens}"
            )
        return ChunkSettings(
            splitter=splitter or self.settings.splitter,
            max_tokens=window,
            overlap_tokens=min(self.settings.overlap_tokens, window // 4),
        )

    def ingest(
        self,
        sources: Names,
        *,
        glob: str | None = None,
        splitter: str | None = None,
        rebuild: bool = False,
        prune: bool = True,
        dry_run: bool = False,
        limits: LoadLimits | None = None,
        progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
    ) -> IngestReport:
        """Load, chunk, embed and store ``sources`` (files, folders, zips, URLs).

        ``stop``, once set (from another thread), ends the run at the end of the document
        being written, as Ctrl-C does: the report says ``interrupted``, and the same call
        again resumes.
        """
        sources = _names(sources, "sources")
        window = None
        info = None if rebuild else self.store.info()
        if info is not None and self.store.count() > 0:
            # Documents added to a collection are cut and embedded as it was built, unless
            # other settings are named (then refused: --rebuild).  An empty one is not
            # followed: it may be left by a run that failed at once (a missing API key).
            named = self.settings.model_fields_set
            splitter = splitter or (info.splitter if "splitter" not in named else None)
            window = info.chunk_tokens if "chunk_tokens" not in named else None
            self._query_embedder()
        chunking = self.chunk_settings(splitter, window)
        wanted = CollectionInfo(
            embedder=self.embedder.name,
            dim=self.embedder.dim,
            splitter=chunking.splitter,
            chunk_tokens=chunking.max_tokens,
        )
        # A rebuild drops every document; those it does not ingest again are removed.
        before = {d.source for d in self.store.documents()} if rebuild else set()
        if rebuild and not dry_run:
            self.store.drop()
        elif not dry_run and self._empty_with_other_settings(wanted):
            # Left by an ingest that failed before its first chunk (a missing API key):
            # nothing to lose, so not a reason to ask for --rebuild.
            self.store.drop()
        if not (rebuild and dry_run):  # a dry run's rebuild has dropped nothing to check
            self.store.check(wanted)
        if not dry_run and self.store.info() is None:
            bm25 = self.store.supports_bm25()
            self.store.create(CollectionInfo(**{**wanted.__dict__, "bm25": bm25}))
        from ragloom.sync import Ingestor  # loaders and formats: only needed to ingest

        limits = limits or self.load_limits()
        with self._document_embedder() as embedder:
            ingestor = Ingestor(self.store, embedder, chunking, limits, progress, stop)
            report = ingestor.run(
                list(sources), glob=glob, prune=prune, dry_run=dry_run, rebuild=rebuild
            )
        if before:
            gone = sorted(before - set(report.plan.get("added", ())))
            report.removed += len(gone)
            if gone:
                report.plan.setdefault("removed", []).extend(gone)
        return report

    def _empty_with_other_settings(self, wanted: CollectionInfo) -> bool:
        """The collection exists, holds no chunk, and was made with other settings."""
        try:
            self.store.check(wanted)
        except CollectionMismatchError:
            return self.store.count() == 0
        return False

    def load_limits(self) -> LoadLimits:
        """What ``ingest`` refuses as too large, from the settings (``max_file_mb``)."""
        from ragloom.loaders import LoadLimits

        return LoadLimits(max_file_bytes=int(self.settings.max_file_mb * 1024**2))

    @contextmanager
    def _document_embedder(self) -> Iterator[Embedder]:
        """The embedder behind the on-disk cache (when one is configured)."""
        if not self.settings.cache_dir:
            yield self.embedder
            return
        from ragloom.embedders.cache import CachingEmbedder, EmbeddingCache

        cache = EmbeddingCache(Path(self.settings.cache_dir) / "embeddings.sqlite")
        try:
            yield CachingEmbedder(self.embedder, cache)
        finally:
            cache.close()

    def search(
        self,
        query: str,
        k: int = 3,
        *,
        mode: SearchMode | None = None,
        where: str | None = None,
        sources: Names = (),
        rerank: str | None = None,
    ) -> list[Hit]:
        """The ``k`` passages that best answer ``query``, best first.

        ``mode`` is ``dense``, ``bm25`` or ``hybrid`` (default: hybrid where the store has
        BM25); ``where`` is a Milvus boolean expression on the chunks' fields (``source``,
        ``heading``, ``position``, ``meta[...]``...); ``sources`` are shell-style globs on
        the source path; ``rerank`` names a cross-encoder to reorder the passages with.
        """
        if not isinstance(query, str):
            raise ConfigError(f"the question must be a string, not {type(query).__name__}")
        if isinstance(k, bool) or not isinstance(k, int):
            raise ConfigError(f"k={k!r}: the number of passages must be a whole number")
        sources = _names(sources, "sources")
        self._warm_up_in_background()
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
        options = SearchOptions.from_settings(self.settings, mode=mode, rerank=rerank)
        return retrieve(
            self.store, embedder, query, k, where=where, sources=sources, options=options
        )

    def sources(self) -> list[StoredDocument]:
        """The documents in the collection."""
        return self.store.documents()

    def delete(self, sources: Names) -> int:
        """Remove documents by source, named as ``ingest`` was given them or as
        ``sources()`` lists them (a relative path is taken from the working directory);
        a folder or archive removes every document under it.  Returns the number of
        chunks deleted (0 when none of them is stored)."""
        found = sorted({s for group in self.documents_named(sources).values() for s in group})
        if not found:
            return 0
        deleted = self.store.delete_sources(found)
        self.store.flush()
        return deleted

    def documents_named(self, names: Names) -> dict[str, list[str]]:
        """For each of ``names`` (as ``delete`` takes them, resolved as ingest stores
        them): the stored documents it names, itself or, for a folder or archive
        (ingested whole, or a folder inside one), every document under it; [] for none."""
        from ragloom.loaders import source_name

        wanted = [source_name(s) for s in _names(names, "sources")]
        if self.store.info() is None:
            return {name: [] for name in wanted}
        stored = self.store.chunk_ids_by_source(wanted)
        listed: list[str] | None = None
        named: dict[str, list[str]] = {}
        for name in wanted:
            if name in stored:
                named[name] = [name]
                continue
            if listed is None:
                listed = [d.source for d in self.store.documents()]
            under = {s for s in listed if s.startswith((name + "/", name + "::"))}
            named[name] = sorted(under | self.store.sources_under(name))  # incomplete ones too
        return named

    def status(self) -> dict[str, Any]:
        """Where the collection is, what it holds and how it was built."""
        info = self.store.info()
        return {
            "uri": redact_uri(self.settings.uri),
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


def _quietly(load: Any) -> None:
    """Run a warm-up; a failure shows again, with its message, on first real use."""
    try:
        load()
    except Exception as exc:
        log.debug("warm-up failed: %s", exc)


def _embedder_from_name(name: str, settings: Settings) -> Embedder:
    """Rebuild the embedder a collection records (``local:all-MiniLM-L6-v2`` etc.)."""
    kind, _, model = name.partition(":")
    if kind not in EMBEDDER_KINDS:  # an Embedder object of the caller's own
        raise ConfigError(
            f"the collection '{settings.collection}' was built with the embedder '{name}',"
            " which ragloom cannot make from its name: pass the same embedder object"
            " (RAG(embedder=...)), or rebuild the collection with another embedder"
        )
    spec = kind if kind == "milvus-default" else f"{kind}:{model}" if model else kind
    made = make_embedder(spec, batch_size=settings.batch_size, cache_dir=settings.cache_dir or None)
    if hasattr(made, "key_hint"):  # another model will not search these vectors
        made.key_hint = (
            f"as the collection '{settings.collection}' was built with {name}, which searching"
            " it and adding to it need (or ingest into another"
            f" {option('collection')} with {option('embedder', 'local')})"
        )
    return made


def _names(value: Names, what: str) -> list[str]:
    """``value`` as a list of names: one string or path is a list of one."""
    items = [value] if isinstance(value, str | os.PathLike) else value
    try:
        names = [os.fspath(item) for item in items]
    except TypeError:
        raise ConfigError(
            f"{what}={value!r}: give a path or URL (str or pathlib.Path), or a list of them"
        ) from None
    if not all(isinstance(name, str) for name in names):
        raise ConfigError(f"{what}={value!r}: give paths as text, not bytes")
    return names
