"""Going around pymilvus to Milvus Lite's engine in this process
(``lite.engine_collection``): searching it directly, and settling its indexes after a
flush."""

from __future__ import annotations

import logging
from typing import Any

from ragloom import lite
from ragloom.store.schema import OUTPUT_FIELDS

log = logging.getLogger("ragloom.store")


def engine_search(
    uri: str,
    collection: str,
    data: Any,
    field: str,
    k: int,
    filter_expr: str,
    metric: str,
    params: dict[str, Any],
) -> list[list[dict[str, Any]]] | None:
    """The search through Milvus Lite's engine in this process (see
    ``lite.engine_collection``), or None to go through pymilvus: not Milvus Lite, or
    anything unexpected (a bad filter then fails through pymilvus, with its message)."""
    if not lite.is_lite_uri(uri):
        return None
    engine = lite.engine_collection(uri, collection)
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


def settle_indexes(uri: str, collection: str, *, bm25: bool) -> None:
    """Wait for Milvus Lite's background build of the new segment's vector index, then
    (with BM25) merge the segments (``_merge_segments``)."""
    engine = lite.engine_collection(uri, collection)
    wait = getattr(engine, "_wait_for_bg", None)  # milvus-lite 3.x; absent elsewhere
    if callable(wait):
        try:
            wait(timeout=600)
        except Exception as exc:  # a failed build is retried by Milvus Lite itself
            log.debug("Milvus Lite background index build: %s", exc)
    if bm25:
        _merge_segments(uri, collection)


def _merge_segments(uri: str, collection: str) -> None:
    """One segment per partition while that is cheap: BM25 statistics are per segment
    on Milvus Lite (``lite.merge_segments``)."""
    try:
        merge = lite.merge_segments(uri, collection, lite.MERGE_MAX_ROWS)
    except Exception as exc:  # Milvus Lite's compaction is crash-safe: the data stands
        log.warning("could not merge the Milvus Lite segments of %s: %s", uri, exc)
        return
    if merge.merged:
        log.info("merged %d Milvus Lite segments (BM25 statistics)", merge.merged)
    if merge.left_split:
        log.warning(
            "%s holds %s chunks in several Milvus Lite segments, each scored by BM25 with"
            " its own statistics, so recently added documents can rank low in hybrid and"
            " BM25 search; `ragloom ingest --rebuild` writes one segment again, and a Milvus"
            " server (2.5+) keeps collection-wide statistics",
            uri, f"{merge.rows:,}",
        )  # fmt: skip
