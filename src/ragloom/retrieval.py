"""Query -> hits: embed the question, search the store, fuse, join, filter, rerank.

Three modes.  ``dense`` compares the question's vector with the chunks' (cosine);
``bm25`` runs Milvus's BM25 function over the chunks' lexical text (heading path and
text, stemmed by ``ragloom.lexical`` on both sides); ``hybrid``, the default where the
store has BM25, does both and fuses them.  A store without BM25 (Milvus servers before
2.5) searches dense and says so once.

How hybrid is fused (``SearchOptions.fusion``):

* ``weighted`` (default): each route proposes ``candidates`` chunks; each route's scores
  are scaled to 0..1 over its own candidates and added, dense with weight 1 and BM25 with
  ``lexical_weight``.  Milvus's ``RRFRanker`` gives both routes the same weight, and its
  ``WeightedRanker`` scales scores differently on Milvus Lite and on servers (arctan),
  so ragloom fuses the two result lists itself: the same ranking everywhere.
* ``rrf``: Milvus's ``hybrid_search`` with ``RRFRanker(60)`` (kept for comparison).

Then, passages: two chunks that follow each other in one document and are both among the
best ``neighbour_pool`` candidates are one passage (their texts joined, the repeated
overlap once): a section cut to fit the model's window is given back whole when both its
halves match.  Collections cut by the tutorials' ``seed`` splitter keep their pieces as
they are.  Finally an optional cross-encoder (``rerank``) reorders the best passages.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from ragloom.embedders.base import Embedder, embed_soon
from ragloom.errors import ConfigError, StoreError, option
from ragloom.store import CollectionInfo, MilvusStore, SearchMode
from ragloom.types import Hit

if TYPE_CHECKING:
    from ragloom.config import Settings

log = logging.getLogger(__name__)

SEARCH_MODES: tuple[SearchMode, ...] = ("dense", "bm25", "hybrid")
Fusion = Literal["weighted", "rrf"]
FUSIONS: tuple[Fusion, ...] = ("weighted", "rrf")


@dataclass(frozen=True)
class SearchOptions:
    """How a question is searched; ``mode`` None means the best the store offers."""

    mode: SearchMode | None = None
    fusion: Fusion = "weighted"
    lexical_weight: float = 0.5
    candidates: int = 20
    join_neighbours: bool = True
    neighbour_pool: int = 20
    rerank: str | None = None
    rerank_pool: int = 20

    @classmethod
    def from_settings(cls, settings: Settings, **given: Any) -> SearchOptions:
        """The settings' search options, with ``given`` (None: not given) on top."""
        values: dict[str, Any] = {
            "mode": settings.search_mode,
            "fusion": settings.fusion,
            "lexical_weight": settings.lexical_weight,
            "candidates": settings.candidates,
            "join_neighbours": settings.join_neighbours,
            "rerank": settings.rerank,
        }
        values.update({k: v for k, v in given.items() if v is not None})
        return cls(**values)


# -- mode ------------------------------------------------------------------------------

_warned: set[tuple[str, str]] = set()


def resolve_mode(
    info: CollectionInfo | None, requested: str | None, where: str = "the store"
) -> tuple[SearchMode, str | None]:
    """The mode a search will run in, and a one-line notice when it is not the one asked
    for (hybrid or BM25 on a store without BM25 falls back to dense)."""
    if requested is not None and requested not in SEARCH_MODES:
        raise ConfigError(f"{option('mode', requested)}: use one of {', '.join(SEARCH_MODES)}")
    bm25 = info is not None and info.bm25
    wanted: SearchMode = requested or "hybrid"  # type: ignore[assignment]
    if wanted == "dense" or bm25 or info is None:
        return wanted, None
    return "dense", (
        f"{wanted} search needs BM25 (Milvus >= 2.5 or Milvus Lite), which {where} lacks:"
        " searching dense only"
    )


def _warn_once(store: MilvusStore, notice: str) -> None:
    key = (store.uri, store.collection)
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", notice)


# -- filters ---------------------------------------------------------------------------


def source_filter(patterns: Sequence[str]) -> str:
    """A Milvus expression matching sources against shell-style globs (``*.md``)."""
    parts = []
    for pattern in patterns:
        if not any(ch in pattern for ch in "*?["):
            parts.append(f'source == "{_escape(pattern)}" or source like "%{_like(pattern)}"')
            continue
        parts.append(f'source like "%{_like(pattern)}"')
    return " or ".join(f"({p})" for p in parts)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _like(glob: str) -> str:
    """A LIKE pattern selecting at least what ``glob`` matches; exactness is left to a
    check on the returned hits (``matches``).  Milvus Lite's LIKE has no escape
    character, so a literal ``%``, ``_`` or ``\\`` becomes ``_`` (any one character), as
    does a ``[...]`` class; ``*`` becomes ``%``."""
    glob = re.sub(r"\[!?\]?[^]]*\]", "?", glob)
    like = "".join("%" if ch == "*" else "_" if ch in "?%_\\" else ch for ch in glob)
    return like.replace('"', '\\"')


def combine_filters(*exprs: str | None) -> str:
    """AND together the non-empty filter expressions."""
    parts = [e for e in exprs if e]
    return " and ".join(f"({p})" for p in parts)


def names_filter(sources: Sequence[str]) -> str:
    """A Milvus expression matching exactly these sources."""
    return "source in [" + ", ".join(f'"{_escape(s)}"' for s in sources) + "]"


def matches(source: str, patterns: Sequence[str]) -> bool:
    """Whether ``source`` matches one of the globs: an absolute pattern (``/docs/*.md``,
    ``https://...``) matches the whole source, a relative one (``faq/*.md``, ``*.pdf``,
    ``docs.zip::en/*.md``) its end from a path separator on (``b.md`` is not ``ab.md``);
    an archive member (``docs.zip::en/faq/a.md``) also by its path inside the archive."""
    names = [source]
    if "::" in source:
        names.append(source.split("::", 1)[1])
    for pattern in patterns:
        absolute = pattern.startswith("/") or "://" in pattern
        for name in names:
            if fnmatch.fnmatchcase(name, pattern):
                return True
            if not absolute and fnmatch.fnmatchcase(name, f"*/{pattern}"):
                return True
    return False


# -- fusion and passages -----------------------------------------------------------------


def fuse_weighted(routes: Sequence[tuple[Sequence[Hit], float]]) -> list[Hit]:
    """Hits of several routes by the weighted sum of their min-max-scaled scores."""
    total: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for hits, weight in routes:
        if not hits:
            continue
        low = min(h.score for h in hits)
        span = max(h.score for h in hits) - low
        for hit in hits:
            share = (hit.score - low) / span if span > 0 else 1.0
            total[hit.chunk_id] = total.get(hit.chunk_id, 0.0) + weight * share
            first.setdefault(hit.chunk_id, hit)
    ranked = sorted(total, key=lambda cid: -total[cid])  # stable: dense order breaks ties
    return [replace(first[cid], rank=n, score=total[cid]) for n, cid in enumerate(ranked, 1)]


def join_text(before: str, after: str) -> str:
    """Two consecutive chunks' texts as one, the overlap they share written once."""
    probe = after[:20]
    start = before.rfind(probe) if len(probe) == 20 else -1
    while start >= 0:
        if after.startswith(before[start:]):
            return before + after[len(before) - start :]
        start = before.rfind(probe, 0, start)
    # An overlap shorter than the probe (a short last line such as "From Python:"): the
    # last paragraph or sentence of ``before``, which ``after`` begins with, whole.
    for start in range(max(2, len(before) - len(probe)), len(before)):
        shared, rest = before[start:], after[len(before) - start :]
        after_stop = before[start - 1] == " " and before[start - 2] in ".!?"
        begins = before[start - 1] == "\n" or after_stop
        if begins and not shared[0].isspace() and after.startswith(shared) and rest[:1].isspace():
            return before + rest
    return before.rstrip() + "\n\n" + after.lstrip()


def join_headings(first: str, second: str) -> str:
    """The heading of two consecutive sections as one passage: ``Guide > Install`` and
    ``Guide > Configure`` -> ``Guide > Install – Configure`` (PDF pages: ``page 1 – page
    2``); the same heading stays as it is, and a section joined to its own first subsection
    is headed by the subsection (``Guide > Install``)."""
    if first == second or not second:
        return first
    if second.startswith(first + " > "):  # a section's opening, then its first subsection
        return second
    a, b = first.split(" > "), second.split(" > ")
    same = 0
    while same < min(len(a), len(b)) - 1 and a[same] == b[same]:
        same += 1
    tail = f"{' > '.join(a[same:])} – {' > '.join(b[same:])}"
    return " > ".join([*a[:same], tail])


def join_neighbours(hits: Sequence[Hit], pool: int) -> list[Hit]:
    """Hits with each one among the first ``pool`` joined to an adjacent chunk of its
    document that is also among them (the better ranked of its two neighbours)."""
    rank_of = {(h.source, h.position): n for n, h in enumerate(hits[:pool])}
    used: set[int] = set()
    out: list[Hit] = []
    for n, hit in enumerate(hits):
        if n in used:
            continue
        used.add(n)
        adjacent = [(hit.source, hit.position - 1), (hit.source, hit.position + 1)]
        near = [rank_of[key] for key in adjacent if key in rank_of] if n < pool else []
        partner = min((m for m in near if m not in used), default=None)
        if partner is None:
            out.append(hit)
            continue
        used.add(partner)
        other = hits[partner]
        first, second = (other, hit) if other.position < hit.position else (hit, other)
        dense = [s for s in (hit.dense_score, other.dense_score) if s is not None]
        joined = join_text(first.text, second.text)
        # Identified by where the passage begins (its first chunk's id and position), headed
        # by both sections, ranked where the better of the two was.
        best = max(dense) if dense else None
        heading = join_headings(first.heading, second.heading)
        out.append(
            replace(first, rank=hit.rank, score=hit.score, text=joined, heading=heading,
                    dense_score=best)
        )  # fmt: skip
    return out


# -- reranking -----------------------------------------------------------------------------


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` scoring (question, passage) pairs; the
    model loads on first use."""

    def __init__(self, model: str) -> None:
        self.model_name = model

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        """``hits`` reordered by the cross-encoder's score (which becomes their score)."""
        if not hits:
            return []
        scores = _cross_encoder(self.model_name).predict(
            [(query, h.text) for h in hits], show_progress_bar=False
        )
        scored = sorted(zip(hits, scores, strict=True), key=lambda pair: -float(pair[1]))
        return [replace(h, score=float(s)) for h, s in scored]


@lru_cache(maxsize=2)
def _cross_encoder(model: str) -> Any:
    """Load a cross-encoder once per process: from a folder or the Hugging Face cache
    without the network, else from the Hub when it answers (``ragloom.hub``)."""
    from ragloom import hub

    def build(path: str, local_only: bool) -> Any:
        try:
            from sentence_transformers import CrossEncoder
        except ImportError:
            from ragloom.errors import MissingDependencyError

            purpose = option("rerank")
            raise MissingDependencyError("sentence-transformers", "local", purpose) from None
        return CrossEncoder(path, device="cpu", local_files_only=local_only)

    try:
        return hub.load(model, build)
    except hub.ModelUnavailable as exc:
        raise ConfigError(
            f"{option('rerank', model)}: could not load this cross-encoder: its weights are not on"
            " this machine and could not be fetched from the Hugging Face Hub"
            f" ({exc.reason}). Download it once with network access, pass the path of a"
            f" local model folder, or search without {option('rerank')}."
        ) from None


# -- the search ------------------------------------------------------------------------------


def _candidates(
    store: MilvusStore, embedder: Embedder, query: str, mode: SearchMode, expr: str,
    want: int, opts: SearchOptions,
) -> list[Hit]:  # fmt: skip
    """The fused candidates of ``mode``'s routes, best first."""
    if mode == "hybrid" and opts.fusion == "weighted":
        # The question is embedded while BM25 searches: the local model runs in ONNX
        # Runtime's threads, without the interpreter lock that Milvus Lite's Python search
        # holds (a Python thread for either gained nothing: the lock went back and forth).
        pending = embed_soon(embedder, [query], "query")
        lexical = store.search(query, None, want, "bm25", expr)
        dense = store.search(query, pending()[0], want, "dense", expr)
        return fuse_weighted([(dense, 1.0), (lexical, opts.lexical_weight)])
    found = embedder.embed([query], "query")[0] if mode != "bm25" else None
    return store.search(query, found, want, mode, expr, pool=want)


def _prefix_like_only(exc: StoreError) -> bool:
    """Milvus refused a LIKE pattern that does not end in ``%`` (2.3: "only prefix
    pattern match like ab% is supported")."""
    return "prefix pattern" in str(exc)


def retrieve(
    store: MilvusStore,
    embedder: Embedder,
    query: str,
    k: int,
    mode: SearchMode | None = None,
    where: str | None = None,
    sources: Sequence[str] = (),
    options: SearchOptions | None = None,
) -> list[Hit]:
    """The ``k`` best passages for ``query`` (see the module docstring for how)."""
    if not query.strip():
        raise ConfigError("the question is empty: ask something")
    if k < 1:
        raise ConfigError(f"k={k}: ask for at least one passage")
    opts = options or SearchOptions()
    if opts.fusion not in FUSIONS:
        raise ConfigError(f"fusion {opts.fusion!r}: use one of {', '.join(FUSIONS)}")
    info = store.info()
    chosen, notice = resolve_mode(info, mode or opts.mode, store.uri)
    if info is None:
        return []
    if notice:
        _warn_once(store, notice)
    expr = combine_filters(where, source_filter(sources) if sources else None)
    want = max(k, opts.candidates) * (4 if sources else 1)
    try:
        try:
            hits = _candidates(store, embedder, query, chosen, expr, want, opts)
        except StoreError as exc:
            if not (sources and _prefix_like_only(exc)):
                raise
            # Milvus before 2.4 takes only prefix LIKE patterns ("ab%"): the globs are
            # matched here against the stored documents, and Milvus filters by name.
            names = [d.source for d in store.documents() if matches(d.source, sources)]
            if not names:
                return []
            expr = combine_filters(where, names_filter(names))
            hits = _candidates(store, embedder, query, chosen, expr, want, opts)
    except StoreError as exc:
        if where and where.strip() in str(exc):  # Milvus quotes the filter it refused
            detail = str(exc).split(" failed: ", 1)[-1]
            raise StoreError(
                f"the filter {where!r} ({option('where')}) is not one Milvus accepts: {detail}"
            ) from None
        raise
    if sources:
        hits = [h for h in hits if matches(h.source, sources)]
    if opts.join_neighbours and info.splitter != "seed":
        hits = join_neighbours(hits, opts.neighbour_pool)
    if opts.rerank:
        head = CrossEncoderReranker(opts.rerank).rerank(query, hits[: max(k, opts.rerank_pool)])
        hits = head + list(hits[len(head) :])
    return [replace(h, rank=n) for n, h in enumerate(hits[:k], start=1)]
