"""Retrieval quality over question sets: hit@k, MRR@10, abstention, latency.

A question set is JSON lines, one item a line (the format of ``../shared/eval/dev.jsonl``)::

    {"id": "q1", "question": "...", "answer_keys": ["verbatim passage text"],
     "kind": "faq", "lang": "en", "source": "faq/product_faq.md"}

A retrieved chunk is relevant when its text contains any answer key verbatim.  Items
with no answer keys have no answer in the corpus: there the right behaviour is to
abstain, which is scored separately.  Only ``question`` is required.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragloom.errors import ConfigError
from ragloom.types import Hit

CUTOFFS = (1, 3, 10)
SearchFn = Callable[[str], Sequence[Hit]]
AbstainFn = Callable[[str, Sequence[Hit]], bool]


@dataclass(frozen=True)
class EvalItem:
    """One question with the verbatim texts that answer it (none: unanswerable)."""

    question: str
    answer_keys: tuple[str, ...] = ()
    id: str = ""
    kind: str = ""
    lang: str = ""
    source: str = ""

    @property
    def answerable(self) -> bool:
        """True when the corpus holds an answer (the item has answer keys)."""
        return bool(self.answer_keys)


@dataclass(frozen=True)
class ItemResult:
    """What retrieval did for one item: the rank of the first relevant hit, the time."""

    item: EvalItem
    rank: int | None  # 1-based; None when no retrieved chunk holds an answer key
    seconds: float
    abstained: bool | None = None


def load_items(path: str | Path) -> list[EvalItem]:
    """Read a JSON-lines question set; a bad line is named with its number."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8-sig").splitlines()  # a BOM, as Windows writes
    except OSError as exc:
        raise ConfigError(f"cannot read the question set {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset"
            f" {exc.start}): question sets are JSON lines in UTF-8"
        ) from None
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            keys = data.get("answer_keys")
            keys = [] if keys is None else keys
            if not isinstance(data["question"], str) or not isinstance(keys, list):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(
                f"{path}:{number}: not a question item: expected a JSON object with a"
                ' "question" string and an "answer_keys" list'
            ) from None
        if not data["question"].strip():
            raise ConfigError(f"{path}:{number}: the question is empty")
        if not all(isinstance(k, str) and k.strip() for k in keys):
            # "" is in every passage: each question would count as found at rank 1
            raise ConfigError(
                f"{path}:{number}: answer_keys must be non-empty strings (got {keys!r})"
            )
        items.append(
            EvalItem(
                question=data["question"],
                answer_keys=tuple(keys),
                id=str(data.get("id", number)),
                kind=str(data.get("kind") or "-"),
                lang=str(data.get("lang") or "-"),
                source=str(data.get("source") or ""),
            )
        )
    if not items:
        raise ConfigError(f"{path}: no questions in it")
    return items


def first_relevant(hits: Sequence[Hit], keys: Sequence[str]) -> int | None:
    """The rank (1-based, by position) of the first hit containing an answer key."""
    for position, hit in enumerate(hits, start=1):
        if any(key in hit.text for key in keys):
            return position
    return None


def run(
    items: Sequence[EvalItem],
    search: SearchFn,
    abstain: AbstainFn | None = None,
    warm_up: bool = True,
    k: int | None = None,
) -> list[ItemResult]:
    """Search each question once, timing the call; one untimed query first warms caches.
    With ``k``, only the first ``k`` hits count as found (``search`` may return more, for
    ``abstain`` to judge the passages an answer would be given)."""
    if warm_up and items:
        search(items[0].question)
    results = []
    for item in items:
        started = time.perf_counter()
        hits = search(item.question)
        seconds = time.perf_counter() - started
        rank = first_relevant(hits[:k], item.answer_keys) if item.answerable else None
        abstained = abstain(item.question, hits) if abstain is not None else None
        results.append(ItemResult(item, rank, seconds, abstained))
    return results


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def quality(results: Sequence[ItemResult]) -> dict[str, Any]:
    """hit@1/3/10 and MRR@10 over the answerable items of ``results``."""
    scored = [r for r in results if r.item.answerable]
    n = len(scored)
    out: dict[str, Any] = {"n": n}
    for cutoff in CUTOFFS:
        hits = sum(1 for r in scored if r.rank is not None and r.rank <= cutoff)
        out[f"hit@{cutoff}"] = round(hits / n, 4) if n else None
    rr = sum(1 / r.rank for r in scored if r.rank is not None and r.rank <= 10)
    out["mrr@10"] = round(rr / n, 4) if n else None
    return out


def _grouped(results: Sequence[ItemResult], key: Callable[[EvalItem], str]) -> dict[str, Any]:
    groups: dict[str, list[ItemResult]] = {}
    for r in results:
        if r.item.answerable:
            groups.setdefault(key(r.item), []).append(r)
    return {name: quality(group) for name, group in sorted(groups.items())}


def abstention(results: Sequence[ItemResult]) -> dict[str, Any] | None:
    """How often retrieval says "not covered": should be always on unanswerable items,
    rarely on answerable ones.  None when no abstention rule was given."""
    if not results or results[0].abstained is None:
        return None
    unanswerable = [r for r in results if not r.item.answerable]
    answerable = [r for r in results if r.item.answerable]

    def rate(group: list[ItemResult]) -> float | None:
        return round(sum(1 for r in group if r.abstained) / len(group), 4) if group else None

    return {
        "n": len(unanswerable),
        "rate": rate(unanswerable),
        "false_rate": rate(answerable),
    }


def report(results: Sequence[ItemResult]) -> dict[str, Any]:
    """The summary ``ragloom eval --json`` prints."""
    millis = [r.seconds * 1000 for r in results]
    out = quality(results)
    out["by_kind"] = _grouped(results, lambda item: item.kind)
    out["by_lang"] = _grouped(results, lambda item: item.lang)
    out["abstain"] = abstention(results)
    out["latency_ms"] = {
        "p50": round(percentile(millis, 0.5), 2),
        "p99": round(percentile(millis, 0.99), 2),
    }
    return out


def misses(results: Sequence[ItemResult], cutoff: int = 3) -> list[ItemResult]:
    """Answerable items whose first relevant hit is below ``cutoff`` (or absent)."""
    return [r for r in results if r.item.answerable and (r.rank is None or r.rank > cutoff)]


def evaluate(
    items: Sequence[EvalItem],
    search: SearchFn,
    abstain: AbstainFn | None = None,
) -> dict[str, Any]:
    """Run the question set through ``search`` and summarise (see ``report``)."""
    return report(run(items, search, abstain))
