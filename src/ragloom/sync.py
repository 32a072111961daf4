"""Ingestion as synchronisation: the collection itself is the record of what is in it.

A document is stored as chunks whose ids derive from (source, position, text).  It is
up to date exactly when the ids stored for its source are the ids its current text
chunks into, all carrying its current hash.  Anything else (new, edited, half-written
by a killed process) is repaired by writing the missing chunks first and deleting the
stale ones after, so a run that is interrupted at any point and run again converges to
the same state as one clean run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ragloom.chunking import ChunkSettings, chunk_document
from ragloom.embedders.base import Embedder
from ragloom.loaders import LoadLimits, load_sources
from ragloom.store import MilvusStore
from ragloom.types import Chunk, Document, IngestReport, LoadIssue

ProgressFn = Callable[[str, int, int], None]  # (current source, files done, chunks embedded)

_DOCS_PER_BATCH = 32
_CHUNKS_PER_BATCH = 256


@dataclass
class DocPlan:
    """What one document needs: which chunks to embed and write, which ids to delete."""

    source: str
    status: str  # "added" | "changed" | "unchanged"
    write: list[Chunk] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    chunks: int = 0


def plan_document(chunks: Sequence[Chunk], stored: dict[str, str], source: str) -> DocPlan:
    """Compare a document's fresh chunks with the ids (and hashes) stored for it."""
    wanted = {c.id: c for c in chunks}
    doc_hash = chunks[0].doc_hash if chunks else ""
    if not stored:
        return DocPlan(source, "added", write=list(chunks), chunks=len(chunks))
    up_to_date = set(stored) == set(wanted) and all(h == doc_hash for h in stored.values())
    if up_to_date:
        return DocPlan(source, "unchanged", chunks=len(chunks))
    # Rows whose id survives but whose hash is old are rewritten (cheaply: same text).
    write = [c for cid, c in wanted.items() if stored.get(cid) != doc_hash]
    delete = [cid for cid in stored if cid not in wanted]
    return DocPlan(source, "changed", write=write, delete=delete, chunks=len(chunks))


class Ingestor:
    """Loads, chunks, embeds and writes sources into one store, as a sync."""

    def __init__(
        self,
        store: MilvusStore,
        embedder: Embedder,
        chunking: ChunkSettings,
        limits: LoadLimits | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunking = chunking
        self.limits = limits or LoadLimits()
        self.progress = progress

    def run(
        self,
        sources: Sequence[str],
        glob: str | None = None,
        prune: bool = True,
        dry_run: bool = False,
    ) -> IngestReport:
        """Bring the store in line with ``sources``; never raises for one bad input."""
        started = time.perf_counter()
        report = IngestReport()
        seen: dict[str, set[str]] = {}  # root -> sources found under it (read or not)
        unreadable: set[str] = set()  # roots that could not be listed at all
        pending: list[Document] = []
        for item in load_sources(sources, glob=glob, limits=self.limits):
            if isinstance(item, LoadIssue):
                entry = {"source": item.source, "error": item.reason}
                (report.skipped if item.skipped else report.errors).append(entry)
                root = item.root or _root_of(item.source)
                seen.setdefault(root, set()).add(item.source)
                if item.source == root and not item.skipped:
                    unreadable.add(root)
                continue
            seen.setdefault(item.root, set()).add(item.source)
            pending.append(item)
            if len(pending) >= _DOCS_PER_BATCH:
                self._sync_batch(pending, report, dry_run)
                pending = []
        if pending:
            self._sync_batch(pending, report, dry_run)
        if prune:
            # A folder or archive that could not be listed says nothing about what left it.
            self._prune({r: f for r, f in seen.items() if r not in unreadable}, report, dry_run)
        if not dry_run:
            self.store.flush()
        report.seconds = time.perf_counter() - started
        return report

    def _chunk(self, doc: Document, report: IngestReport) -> list[Chunk] | None:
        chunks = chunk_document(doc, self.chunking, self.embedder.count_tokens)
        if not chunks:
            report.errors.append({"source": doc.source, "error": "no text to index"})
            return None
        return chunks

    def _sync_batch(self, docs: list[Document], report: IngestReport, dry_run: bool) -> None:
        chunked = [(doc, self._chunk(doc, report)) for doc in docs]
        stored = self.store.chunk_ids_by_source(doc.source for doc in docs)
        to_write: list[Chunk] = []
        to_delete: list[str] = []
        for doc, chunks in chunked:
            if chunks is None:
                continue
            plan = plan_document(chunks, stored.get(doc.source, {}), doc.source)
            report.files += 1
            report.chunks += plan.chunks
            setattr(report, plan.status, getattr(report, plan.status) + 1)
            to_write.extend(plan.write)
            to_delete.extend(plan.delete)
        if dry_run:
            report.embedded += len(to_write)
            return
        for start in range(0, len(to_write), _CHUNKS_PER_BATCH):
            batch = to_write[start : start + _CHUNKS_PER_BATCH]
            vectors = self.embedder.embed([c.embed_text for c in batch], "document")
            self.store.upsert(batch, vectors)
            report.embedded += len(batch)
            if self.progress:
                self.progress(batch[-1].source, report.files, report.embedded)
        # Stale chunks go only after their replacements are written.
        self.store.delete_ids(to_delete)
        if self.progress:
            self.progress(docs[-1].source, report.files, report.embedded)

    def _prune(
        self,
        seen: dict[str, set[str]],
        report: IngestReport,
        dry_run: bool,
    ) -> None:
        """Delete documents that disappeared from a directory or archive that was re-read."""
        for root, found in seen.items():
            gone = [d.source for d in self.store.documents(root=root) if d.source not in found]
            report.removed += len(gone)
            if gone and not dry_run:
                self.store.delete_sources(gone)


def _root_of(source: str) -> str:
    """The ingest root of an issue's source (archive members belong to their archive)."""
    return source.split("::", 1)[0]
