"""Cutting a section into chunks that fit the window: units, packing, overlap, checks.

A section's blocks become units (a paragraph, a sentence, a heading line, a piece of a
code block or table); units are packed greedily into chunks with overlap, and every
chunk is checked once with the real counter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ragloom.chunking._markdown import Block, Section, frame
from ragloom.chunking._measure import Measure


@dataclass(frozen=True)
class _Unit:
    """A piece of a section that packing places whole."""

    text: str
    tokens: int
    joiner: str  # put before it unless it starts a chunk
    kind: str = "part"  # "paragraph" | "part" (of one) | "heading" | "block" (code, table)
    oversize: bool = False  # a block piece of one row or line that alone exceeds the window


_SENTENCE_CUT = re.compile(r"[.!?][\"')\]*_`]*[ \t]+|\n")
_WORD_CUT = re.compile(r"\s+")


def _slices(text: str, cut: re.Pattern[str]) -> list[str]:
    """``text`` cut after each match; the slices concatenate back to ``text``."""
    ends = [m.end() for m in cut.finditer(text) if 0 < m.end() < len(text)]
    return [text[a:b] for a, b in zip([0, *ends], [*ends, len(text)], strict=True)]


def _text_units(text: str, budget: int, measure: Measure, joiner: str) -> list[_Unit]:
    """Sentences (or lines) of a paragraph; words of a long sentence; then characters."""
    units: list[_Unit] = []
    for sentence in _slices(text, _SENTENCE_CUT):
        tokens = measure.content(sentence)
        if tokens <= budget:
            units.append(_Unit(sentence, tokens, ""))
            continue
        for word in _slices(sentence, _WORD_CUT):
            tokens = measure.content(word)
            if tokens <= budget or len(word) < 2:
                units.append(_Unit(word, tokens, ""))
            else:
                half = len(word) // 2
                units += _text_units(word[:half], budget, measure, "")
                units += _text_units(word[half:], budget, measure, "")
    return [_Unit(units[0].text, units[0].tokens, joiner), *units[1:]] if units else []


def _block_units(block: Block, budget: int, measure: Measure, lead: int) -> list[_Unit]:
    """A code block or table too long for the window, as complete fenced/table pieces.

    The first piece leaves ``lead`` tokens free for the heading line just before it.
    """
    head, rows, tail = frame(block)
    room = budget - measure.content(head) - measure.content(tail)
    sized: list[tuple[str, int]] = []
    for row in rows:
        tokens = measure.content(row)
        if tokens > room and block.kind != "table":  # a code paragraph or HTML row: lines
            sized += [(line, measure.content(line)) for line in row.split("\n")]
        else:
            sized.append((row, tokens))
    groups: list[list[tuple[str, int]]] = []
    for row, tokens in sized:
        if groups and sum(t for _, t in groups[-1]) + tokens <= room - lead * (len(groups) == 1):
            groups[-1].append((row, tokens))
        else:
            groups.append([(row, tokens)])
    units = []
    for group in groups or [[]]:
        text = "\n".join(p for p in [head, *(r for r, _ in group), tail] if p)
        tokens = budget - room + sum(t for _, t in group)
        units.append(_Unit(text, tokens, "\n\n", "block", oversize=tokens > budget))
    return units


def _overlap(units: list[_Unit], room: int, measure: Measure) -> list[_Unit]:
    """The end of a chunk within ``room`` tokens: whole units, then whole sentences.

    Never a heading line or part of a code block or table, and never a partial sentence
    (unless the chunk itself ended inside one).
    """
    tail: list[_Unit] = []
    for unit in reversed(units):
        if unit.kind in ("heading", "block") or room <= 0:
            break
        if unit.tokens <= room:
            tail.insert(0, unit)
            room -= unit.tokens
            continue
        part, used = "", 0
        for sentence in reversed(_slices(unit.text, _SENTENCE_CUT)):
            tokens = measure.content(sentence)
            if used + tokens > room:
                break
            part, used = sentence + part, used + tokens
        if part:
            tail.insert(0, _Unit(part, used, ""))
        break
    return tail


def _pack(units: list[_Unit], budget: int, overlap: int, measure: Measure) -> list[list[_Unit]]:
    """Greedy packing of units into chunks of at most ``budget`` tokens, with overlap.

    A paragraph that does not fit stays whole for the next chunk, unless the current chunk
    is under half full: then it is cut into sentences to fill it.
    """
    chunks: list[list[_Unit]] = []
    current: list[_Unit] = []
    size = 0
    queue = units[::-1]
    while queue:
        unit = queue.pop()
        if current and size + unit.tokens > budget:
            if unit.kind == "paragraph" and size < budget // 2:
                queue += _text_units(unit.text, budget, measure, unit.joiner)[::-1]
                continue
            chunks.append(current)
            current = _overlap(current, min(overlap, budget - unit.tokens), measure)
            size = sum(u.tokens for u in current)
        current.append(unit)
        size += unit.tokens
    if current:
        chunks.append(current)
    return chunks


def _render(units: Sequence[_Unit]) -> str:
    text = ""
    for unit in units:
        text = text.rstrip() + unit.joiner + unit.text if text and unit.joiner else text + unit.text
    return text.strip()


def _embed_text(heading: str, text: str) -> str:
    return f"{heading}\n\n{text}" if heading else text


def _verified(
    units: list[_Unit], heading: str, limit: int, measure: Measure
) -> Iterator[list[_Unit]]:
    """Check a packed chunk with the real counter; halve it if adding up sizes misled us."""
    if units[0].oversize or measure.count(_embed_text(heading, _render(units))) <= limit:
        yield units
    elif len(units) > 1:
        yield from _verified(units[: len(units) // 2], heading, limit, measure)
        yield from _verified(units[len(units) // 2 :], heading, limit, measure)
    elif units[0].kind != "block" and len(units[0].text) > 1:
        budget = max(1, units[0].tokens // 2)
        parts = _pack(_text_units(units[0].text, budget, measure, ""), budget, 0, measure)
        if len(parts) == 1 and len(parts[0]) == 1:  # cannot be cut any finer
            yield units
            return
        for part in parts:
            yield from _verified(part, heading, limit, measure)
    else:
        yield units


def section_pieces(
    section: Section, max_tokens: int, overlap_tokens: int, measure: Measure, head_tokens: int
) -> Iterator[tuple[str, str, str]]:
    """(heading, text, embed_text) of the chunks of one section, each within ``max_tokens``."""
    heading = " > ".join(section.path)
    budget = max(max_tokens - measure.overhead - head_tokens, max_tokens // 2)
    units: list[_Unit] = []
    for block, before in zip(section.blocks, (None, *section.blocks), strict=False):
        if block.kind in ("text", "heading") and block.tokens <= budget:
            kind = "paragraph" if block.kind == "text" else "heading"
            units.append(_Unit(block.text, block.tokens, "\n\n", kind))
        elif block.kind in ("text", "heading"):
            units += _text_units(block.text, budget, measure, "\n\n")
        elif block.tokens <= budget:
            units.append(_Unit(block.text, block.tokens, "\n\n", "block"))
        else:
            lead = before.tokens if before and before.kind == "heading" else 0
            units += _block_units(block, budget, measure, lead)
    packs = _pack(units, budget, overlap_tokens, measure)
    if len(packs) > 1 and all(u.kind == "heading" for u in packs[0]):
        packs = packs[1:]  # a heading line that fits with nothing: the path names it already
    for packed in packs:
        for part in _verified(packed, heading, max_tokens, measure):
            text = _render(part)
            if text.strip():
                yield heading, text, _embed_text(heading, text)
