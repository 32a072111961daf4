"""What a search asks of Milvus and how its answer is read: the modes, the consistency
level, and hits from the rows Milvus returns."""

from __future__ import annotations

from typing import Any, Literal

from ragloom.types import Hit, as_metadata

SearchMode = Literal["dense", "bm25", "hybrid"]


def read_level(is_lite: bool) -> dict[str, str]:
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
    return {} if is_lite else {"consistency_level": "Session"}


def hybrid_requests(
    vector: list[float], terms: str, dense_params: dict[str, Any], limit: int, filter_expr: str
) -> list[Any]:
    """The two searches ``hybrid_search`` fuses: by vector, and by BM25 on the lexical field."""
    from pymilvus import AnnSearchRequest

    return [
        AnnSearchRequest(
            data=[vector], anns_field="vector",
            param=dense_params, limit=limit, expr=filter_expr or None,
        ),
        AnnSearchRequest(
            data=[terms], anns_field="sparse", param={"metric_type": "BM25"},
            limit=limit, expr=filter_expr or None,
        ),
    ]  # fmt: skip


def to_hits(result: Any, mode: SearchMode) -> list[Hit]:
    """The hits, best first, in one search's result as Milvus returns it."""
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
                metadata=as_metadata(entity.get("meta")),
                dense_score=score if mode == "dense" else None,
            )
        )
    return hits
