"""Query -> hits: embed the question, search the store in the chosen mode, filter."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence

from ragloom.embedders.base import Embedder
from ragloom.errors import ConfigError
from ragloom.store import MilvusStore, SearchMode
from ragloom.types import Hit

log = logging.getLogger(__name__)

SEARCH_MODES: tuple[SearchMode, ...] = ("dense", "bm25", "hybrid")


def source_filter(patterns: Sequence[str]) -> str:
    """A Milvus expression matching sources against shell-style globs (``*.md``)."""
    parts = []
    for pattern in patterns:
        if not any(ch in pattern for ch in "*?["):
            parts.append(f'source == "{_escape(pattern)}" or source like "%{_like(pattern)}"')
            continue
        # LIKE understands % and _ only: turn the glob into a LIKE prefix/suffix match
        # and leave exactness to a check on the returned hits.
        like = "".join("%" if ch in "*?" else _like(ch) for ch in pattern)
        parts.append(f'source like "%{like}"')
    return " or ".join(f"({p})" for p in parts)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _like(text: str) -> str:
    return _escape(text).replace("%", "\\%").replace("_", "\\_")


def combine_filters(*exprs: str | None) -> str:
    """AND together the non-empty filter expressions."""
    parts = [e for e in exprs if e]
    return " and ".join(f"({p})" for p in parts)


def matches_sources(hit: Hit, patterns: Sequence[str]) -> bool:
    """Exact glob check for hits pre-filtered by ``source_filter``."""
    return any(
        fnmatch.fnmatchcase(hit.source, p if "/" in p or "::" in p else f"*{p}")
        or hit.source.endswith(p)
        for p in patterns
    )


def retrieve(
    store: MilvusStore,
    embedder: Embedder,
    query: str,
    k: int,
    mode: SearchMode | None = None,
    where: str | None = None,
    sources: Sequence[str] = (),
) -> list[Hit]:
    """The ``k`` best chunks for ``query``; ``mode`` None means the best the store has."""
    if not query.strip():
        raise ConfigError("the question is empty: ask something")
    if k < 1:
        raise ConfigError(f"-k {k}: ask for at least one passage")
    info = store.info()
    if info is None:
        return []
    if mode is None:
        mode = "dense"
    elif mode not in SEARCH_MODES:
        raise ConfigError(f"--mode {mode}: use one of {', '.join(SEARCH_MODES)}")
    elif mode != "dense" and not info.bm25:
        log.warning(
            "%s search needs BM25 (Milvus >= 2.5 or Milvus Lite); %s has none: using dense",
            mode,
            store.uri,
        )
        mode = "dense"
    vector = embedder.embed([query], "query")[0] if mode != "bm25" else None
    expr = combine_filters(where, source_filter(sources) if sources else None)
    hits = store.search(query, vector, k if not sources else k * 4, mode, expr)
    if sources:
        hits = [h for h in hits if matches_sources(h, sources)][:k]
    return [
        Hit(h.rank if not sources else i, h.score, h.text, h.source, h.heading, h.chunk_id,
            h.position, h.metadata)
        for i, h in enumerate(hits, start=1)
    ]  # fmt: skip
