"""Ingestion as synchronisation: the collection itself is the record of what is in it.

A document is stored as chunks whose ids derive from (source, position, text), and every
row carries the document's hash and chunk count.  A document is up to date exactly when
the rows stored for its source all carry its current hash and there are as many as the
count says; that is checked before chunking, so an unchanged document costs one query.
Anything else (new, edited, half-written by a killed process) is repaired by writing the
missing chunks first and deleting stale ones after, so a run interrupted at any point
and run again converges to the state one clean run produces.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ragloom.archives import is_hidden_member
from ragloom.chunking import ChunkSettings, chunk_document, document_hash
from ragloom.embedders.base import Embedder
from ragloom.loaders import LoadLimits, PathGlob, load_sources
from ragloom.plans import Batch, DocPlan, pieces, plan_document
from ragloom.store import MilvusStore, StoredChunks
from ragloom.types import Document, IngestReport, LoadIssue
from ragloom.writer import write_piece

logger = logging.getLogger("ragloom.sync")

ProgressFn = Callable[[str, int, int], None]  # (current source, files done, chunks embedded)

_DOCS_PER_BATCH = 32
_CHUNKS_PER_BATCH = 256  # written at once (a Ctrl-C waits for the document in progress)


class Interrupted(Exception):
    """Ctrl-C arrived; the current batch was finished first."""


_DONE = object()  # end of a queue


class Ingestor:
    """Loads, chunks, embeds and writes sources into one store, as a sync.

    Three stages overlap: a thread reads and plans documents (load, compare with the
    store, chunk), the calling thread embeds, and a thread writes to Milvus.  Queues
    between them are short, so memory stays bounded however large the corpus is; each
    batch's stale chunks are deleted only after its new ones are written.
    """

    def __init__(
        self,
        store: MilvusStore,
        embedder: Embedder,
        chunking: ChunkSettings,
        limits: LoadLimits | None = None,
        progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunking = chunking
        self.limits = limits or LoadLimits()
        self.progress = progress
        self._stop = stop if stop is not None else threading.Event()  # set: stop soon
        self._planning = threading.Lock()  # held while the planner reads the store

    def run(
        self,
        sources: Sequence[str],
        glob: str | None = None,
        prune: bool = True,
        dry_run: bool = False,
        rebuild: bool = False,
    ) -> IngestReport:
        """Bring the store in line with ``sources``; never raises for one bad input.

        ``rebuild``: the collection was dropped, or in a dry run would be: plan as if empty.
        """
        started = time.perf_counter()
        report = IngestReport()
        planned: queue.Queue[Any] = queue.Queue(maxsize=2)
        embedded: queue.Queue[Any] = queue.Queue(maxsize=2)
        failures: list[BaseException] = []
        seen: dict[str, set[str]] = {}
        unreadable: set[str] = set()
        # An empty collection has nothing to compare with and nothing to prune.  Asking
        # anyway costs a scan of the collection per batch on Milvus Lite, which made a first
        # ingest of N chunks O(N^2): 10x the archive took 17x as long as the archive.
        empty = rebuild or self.store.count() == 0
        planner = threading.Thread(
            target=self._guard(self._plan_all, failures, planned),
            args=(sources, glob, report, seen, unreadable, planned, empty),
            name="ragloom-plan",
            daemon=True,
        )
        writer = threading.Thread(
            target=self._guard(self._write_all, failures, None),
            args=(embedded, report, dry_run),
            name="ragloom-write",
            daemon=True,
        )
        with self._stop_on_ctrl_c():
            planner.start()
            writer.start()
            try:
                self._embed_all(planned, embedded, writer, report, dry_run)
            except BaseException:
                self._stop.set()
                raise
            finally:
                if self._stop.is_set():
                    # The planner may be stuck in a download (a server sending a byte a
                    # second): it is drained in the background (it stops at its next
                    # document or block of data) instead of waited for.
                    threading.Thread(target=_drain, args=(planned, planner), daemon=True).start()
                else:
                    _drain(planned, planner)
                _put(embedded, _DONE, writer)
                writer.join()
            if failures:
                raise failures[0]
            # Not while a planner left running in a download reads the store for a batch.
            with self._planning:
                self._finish(prune and not empty, seen, unreadable, glob, report, dry_run)
        report.seconds = time.perf_counter() - started
        return report

    def _finish(
        self,
        prune: bool,
        seen: dict[str, set[str]],
        unreadable: set[str],
        glob: str | None,
        report: IngestReport,
        dry_run: bool,
    ) -> None:
        """Prune what left the sources (unless stopped), then flush."""
        try:
            if prune and not self._stop.is_set():
                # A folder or archive that could not be listed says nothing about what left.
                # Nor does one inside it (a zip half copied, a folder made private): what
                # was ingested from those stays.
                listed = {r: found for r, found in seen.items() if r not in unreadable}
                kept = tuple(u + sep for u in sorted(unreadable) if u for sep in ("/", "::"))
                self._prune(listed, PathGlob(glob) if glob else None, kept, report, dry_run)
        except Interrupted:
            pass
        report.interrupted = self._stop.is_set()
        if not dry_run:
            self.store.flush()

    def _guard(
        self, fn: Callable[..., None], failures: list[BaseException], out: queue.Queue[Any] | None
    ) -> Callable[..., None]:
        """Run a stage in a thread: its exception is kept for the caller, and ends the run."""

        def run(*args: Any) -> None:
            try:
                fn(*args)
            except BaseException as exc:
                failures.append(exc)
                self._stop.set()
            finally:
                if out is not None:
                    out.put(_DONE)

        return run

    # -- stage 1: read and plan ----------------------------------------------------------

    def _plan_all(
        self,
        sources: Sequence[str],
        glob: str | None,
        report: IngestReport,
        seen: dict[str, set[str]],
        unreadable: set[str],
        out: queue.Queue[Any],
        empty: bool,
    ) -> None:
        pending: list[Document] = []
        for item in load_sources(sources, glob=glob, limits=self.limits, stop=self._stop):
            if self._stop.is_set():
                return
            if isinstance(item, LoadIssue):
                entry = {"source": item.source, "error": item.reason}
                (report.skipped if item.skipped else report.errors).append(entry)
                root = item.root or item.source.split("::", 1)[0]
                seen.setdefault(root, set()).add(item.source)
                if not item.skipped:  # a folder or archive in it that failed, if not a file
                    unreadable.add(item.source)
                continue
            if any(item.source in found for found in seen.values()):
                continue  # named twice (``docs docs/a.md``): once is enough, under the first
            seen.setdefault(item.root, set()).add(item.source)
            pending.append(item)
            if len(pending) >= _DOCS_PER_BATCH:
                out.put(self._plan_locked(pending, report, empty))
                pending = []
        if pending:
            out.put(self._plan_locked(pending, report, empty))

    def _plan_locked(self, docs: list[Document], report: IngestReport, empty: bool) -> Batch:
        """``_plan_batch`` unless the run has stopped (the store is the caller's again)."""
        with self._planning:
            if self._stop.is_set():
                return Batch(write=[], last_source=docs[-1].source)
            return self._plan_batch(docs, report, empty)

    def _plan_batch(self, docs: list[Document], report: IngestReport, empty: bool) -> Batch:
        stored = {} if empty else self.store.chunk_ids_by_source(doc.source for doc in docs)
        work = Batch(write=[], last_source=docs[-1].source)
        for doc in docs:
            try:
                plan = self._plan_document(doc, stored.get(doc.source))
            except Exception as exc:  # a bug on one odd document must not end the run
                logger.debug("unexpected error chunking %s", doc.source, exc_info=True)
                reason = f"could not be chunked ({type(exc).__name__}: {exc})"
                report.errors.append(
                    {"source": doc.source, "error": f"{reason}; please report this ragloom bug"}
                )
                continue
            if plan is None:
                report.errors.append({"source": doc.source, "error": "no text to index"})
                continue
            work.plans.append(plan)
            work.write.extend(plan.write)
        return work

    def _plan_document(self, doc: Document, state: StoredChunks | None) -> DocPlan | None:
        """What ``doc`` needs (None: it has no chunks); chunked only if it changed."""
        if state is not None and state.complete(document_hash(doc)):
            return DocPlan(doc.source, "unchanged", chunks=len(state.hashes))
        chunks = chunk_document(doc, self.chunking, self.embedder.count_tokens)
        return plan_document(chunks, state, doc.source) if chunks else None

    # -- stage 2: embed (the calling thread: models may not like other threads) ------------

    def _embed_all(
        self,
        planned: queue.Queue[Any],
        out: queue.Queue[Any],
        writer: threading.Thread,
        report: IngestReport,
        dry_run: bool,
    ) -> None:
        while True:
            try:
                work = planned.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return  # the planner may be stuck in a download: not waited for
                continue
            if work is _DONE:
                return
            if self._stop.is_set():
                continue  # let the planner finish its current put and end
            if dry_run:  # what a real run would embed: not what the cache holds
                texts = [c.embed_text for c in work.write]
                uncached = getattr(self.embedder, "uncached", None)
                report.embedded += uncached(texts) if callable(uncached) else len(texts)
                work.count_in(report)
                continue
            # Embedded and written a piece at a time, with progress after each (a server's
            # shared model embeds a piece in slices: its searches wait for one).  A Ctrl-C
            # stops at the end of a document: each one written is whole, its stale chunks
            # deleted.
            for piece, whole in pieces(work, _CHUNKS_PER_BATCH):
                piece.vectors = self._embed([c.embed_text for c in piece.write], report)
                _put(out, piece, writer)
                if whole and self._stop.is_set():
                    break

    def _embed(self, texts: list[str], report: IngestReport) -> list[list[float]]:
        if not texts:  # a piece of unchanged documents: no call to the model
            return []
        cached_before = getattr(self.embedder, "hits", 0)
        vectors = self.embedder.embed(texts, "document")
        report.embedded += len(texts) - (getattr(self.embedder, "hits", 0) - cached_before)
        return vectors

    # -- stage 3: write ------------------------------------------------------------------

    def _write_all(self, embedded: queue.Queue[Any], report: IngestReport, dry_run: bool) -> None:
        refused: dict[str, str] = {}  # documents whose rows Milvus would not store
        while (work := embedded.get()) is not _DONE:
            report.written += write_piece(self.store, work, refused, report)
            # Stale chunks go only after their replacements are written.
            self.store.delete_ids(work.stale(skip=refused))
            work.count_in(report, skip=refused)
            if self.progress:
                self.progress(work.last_source, report.files, report.embedded)

    @contextmanager
    def _stop_on_ctrl_c(self) -> Iterator[None]:
        """The first Ctrl-C finishes the current batch and stops; a second one aborts.

        A process started with Ctrl-C ignored (a shell script's background job) keeps
        ignoring it, as ``ask`` and ``chat`` do: the script's Ctrl-C is not for it."""
        if (
            threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        ):
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._stop.is_set():
                raise KeyboardInterrupt
            self._stop.set()

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise Interrupted

    def _prune(
        self,
        seen: dict[str, set[str]],
        selected: PathGlob | None,
        kept: tuple[str, ...],
        report: IngestReport,
        dry_run: bool,
    ) -> None:
        """Delete documents that disappeared from a directory or archive that was re-read.

        With a glob, only documents the glob selects are candidates: ingesting ``docs/``
        with ``--glob '*.txt'`` leaves its markdown files alone.  A document is under a
        folder or archive by its path, whatever root it was first ingested from:
        ingesting ``docs/sub`` after ``docs`` prunes what left ``docs/sub``.  Documents
        under a prefix in ``kept`` (a folder or archive that could not be read) stay, and
        so do hidden ones, which a folder's walk skips on purpose (``ingest docs/.notes.md``
        named one; ingesting ``docs/`` again does not remove it).
        """
        stored: list[str] | None = None
        for root, found in seen.items():
            candidates = self.store.sources_under(root)
            inside = _inside(root)
            if inside:
                if stored is None:
                    stored = [d.source for d in self.store.documents()]
                candidates |= {source for source in stored if source.startswith(inside)}
            gone = [
                source
                for source in sorted(candidates)
                if source not in found
                and not source.startswith(kept)
                and not is_hidden_member(_relative(source, root))
                and (selected is None or selected(_relative(source, root)))
            ]
            if gone and not dry_run:
                self._check_stop()
                self.store.delete_sources(gone)
            report.removed += len(gone)
            if gone:
                report.plan.setdefault("removed", []).extend(gone)


def _inside(root: str) -> tuple[str, ...]:
    """How the sources inside a folder or archive ``root`` begin (nothing for a URL page or
    a file named directly: no other document is inside those)."""
    if "://" in root:
        return (root + "::",)
    path = Path(root)
    if path.is_dir():
        return (root.rstrip("/") + "/",)
    return (root + "::",) if path.is_file() else ()


def _relative(source: str, root: str) -> str:
    """A document's path inside the folder or archive it was found in."""
    for sep in ("::", "/"):
        if source.startswith(root + sep):
            return source[len(root) + len(sep) :]
    return source.rsplit("/", 1)[-1]


def _put(q: queue.Queue[Any], item: object, consumer: threading.Thread) -> None:
    """Put ``item`` unless the consumer has died (then nobody would ever take it)."""
    while consumer.is_alive():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _drain(q: queue.Queue[Any], producer: threading.Thread) -> None:
    """Empty ``q`` until its producer has finished (it may be blocked on a full queue)."""
    while producer.is_alive() or not q.empty():
        try:
            q.get(timeout=0.1)
        except queue.Empty:
            continue
