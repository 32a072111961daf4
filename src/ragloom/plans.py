"""What an ingest writes: each document's plan (the chunks to embed and write, the ids
to delete), a batch of documents, and the pieces a batch is written in."""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field

from ragloom.store import StoredChunks
from ragloom.types import Chunk, IngestReport


@dataclass
class DocPlan:
    """What one document needs: which chunks to embed and write, which ids to delete."""

    source: str
    status: str  # "added" | "changed" | "unchanged"
    write: list[Chunk] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    chunks: int = 0


def plan_document(chunks: Sequence[Chunk], stored: StoredChunks | None, source: str) -> DocPlan:
    """Compare a document's fresh chunks with the rows stored for it."""
    if not stored or not stored.hashes:
        return DocPlan(source, "added", write=list(chunks), chunks=len(chunks))
    doc_hash = chunks[0].doc_hash if chunks else ""
    if stored.complete(doc_hash) and set(stored.hashes) == {c.id for c in chunks}:
        return DocPlan(source, "unchanged", chunks=len(chunks))
    wanted = {c.id: c for c in chunks}
    # A surviving id whose row carries an old hash or count is rewritten (same text: cached).
    write = [
        c
        for cid, c in wanted.items()
        if stored.hashes.get(cid) != doc_hash or stored.counts != {len(chunks)}
    ]
    delete = [cid for cid in stored.hashes if cid not in wanted]
    return DocPlan(source, "changed", write=write, delete=delete, chunks=len(chunks))


@dataclass
class Batch:
    """One batch of documents, planned: what to embed and write, then (``stale``) what
    to delete."""

    write: list[Chunk]
    last_source: str
    vectors: list[list[float]] = field(default_factory=list)
    #: The batch's documents by status (added, changed, unchanged) and their chunks:
    #: counted in the report once the batch is written, so an interrupted run reports
    #: what it did, not what it planned.
    plans: list[DocPlan] = field(default_factory=list)

    def stale(self, skip: Container[str] = ()) -> list[str]:
        """The ids to delete once this batch is written: its documents' stale chunks, but
        not those of documents in ``skip`` (refused: they keep their earlier version)."""
        return [i for plan in self.plans if plan.source not in skip for i in plan.delete]

    def count_in(self, report: IngestReport, skip: Container[str] = ()) -> None:
        """Add this batch's documents to ``report`` (those in ``skip`` failed)."""
        for plan in self.plans:
            if plan.source in skip:
                continue
            report.files += 1
            report.chunks += plan.chunks
            setattr(report, plan.status, getattr(report, plan.status) + 1)
            if plan.status != "unchanged":
                report.plan.setdefault(plan.status, []).append(plan.source)


def pieces(batch: Batch, size: int) -> Iterator[tuple[Batch, bool]]:
    """``batch`` in pieces of at most ``size`` chunks to write, cut between documents
    unless one is larger; each document's stale chunks and count go with its last piece.
    True when a piece ends at a document's end."""
    piece = Batch([], batch.last_source)
    for plan in batch.plans:
        if piece.write and len(piece.write) + len(plan.write) > size:
            yield piece, True
            piece = Batch([], plan.source)
        rest = list(plan.write)
        while len(rest) > size - len(piece.write):  # a document larger than a piece
            room = size - len(piece.write)
            piece.write.extend(rest[:room])
            rest = rest[room:]
            yield piece, False
            piece = Batch([], plan.source)
        piece.write.extend(rest)
        piece.plans.append(plan)
        piece.last_source = plan.source
    if piece.plans or not batch.plans:
        yield piece, True
