"""Writing a planned piece of an ingest to Milvus, so that one document Milvus refuses
fails alone: the others in its piece are written, and it is reported with Milvus's reason
(it keeps its earlier version, as a document that cannot be read does)."""

from __future__ import annotations

import itertools

from ragloom.errors import RowsRejectedError
from ragloom.plans import Batch
from ragloom.store import MilvusStore
from ragloom.types import IngestReport


def write_piece(
    store: MilvusStore, work: Batch, refused: dict[str, str], report: IngestReport
) -> int:
    """Write ``work``'s chunks, leaving out documents already in ``refused``; when Milvus
    refuses rows for what they hold, write the piece's documents one at a time and add
    each refused one to ``refused`` and ``report.errors``.  The chunks written."""
    rows = [(c, v) for c, v in zip(work.write, work.vectors, strict=True)]
    rows = [(c, v) for c, v in rows if c.source not in refused]
    try:
        store.upsert([c for c, _ in rows], [v for _, v in rows])
        return len(rows)
    except RowsRejectedError as exc:
        groups = [list(g) for _, g in itertools.groupby(rows, key=lambda r: r[0].source)]
        if len(groups) == 1:  # the piece is one document's: no need to ask again
            _refuse(groups[0][0][0].source, exc, refused, report)
            return 0
    written = 0
    for group in groups:
        try:
            store.upsert([c for c, _ in group], [v for _, v in group])
            written += len(group)
        except RowsRejectedError as exc:
            _refuse(group[0][0].source, exc, refused, report)
    return written


def _refuse(
    source: str, exc: RowsRejectedError, refused: dict[str, str], report: IngestReport
) -> None:
    reason = str(exc).split(" failed: ", 1)[-1]
    refused[source] = reason
    report.errors.append({"source": source, "error": f"Milvus would not store it: {reason}"})
