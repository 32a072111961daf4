"""Documents -> Chunks: pure functions, stable ids.

Two splitters:

* ``seed`` reproduces the Milvus RAG tutorials byte for byte: ``text.split("# ")``, every
  piece kept (even an empty one) and embedded unchanged.
* ``markdown`` (the default) follows the headings.  Each section gets its heading path
  (``Title > Section > Subsection``) and keeps its own heading line in its text; sections
  under ``min_tokens`` join their neighbour when the result fits; sections over the window
  are cut at paragraphs, then sentences or lines, then words, with ``overlap_tokens`` of
  text repeated across a cut.  Fenced code and tables are never cut at a paragraph or
  sentence: one too long for the window is split between rows (code: between its blank-line
  paragraphs, then lines) and each piece re-wrapped (fence re-opened and closed, table
  header repeated), so every chunk is valid markdown.  An HTML table row that alone exceeds
  the window is cut at its lines inside the repeated ``<table>``/``<thead>`` wrapper (tags
  of that row are then unbalanced; browsers close them).  The only chunks allowed over the
  window hold a single table row or line that is itself too long: "oversize" pieces.

Token counts come from the caller's ``count_tokens``; each block, sentence or line is
measured once and sizes are added up (a counter's fixed cost, such as ``[CLS]``/``[SEP]``,
is measured and counted once per chunk), then every finished chunk is checked once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ragloom.errors import ConfigError
from ragloom.types import Chunk, Document

TokenCounter = Callable[[str], int]
SPLITTERS = ("markdown", "seed")


@dataclass(frozen=True)
class ChunkSettings:
    """How documents are cut; ``max_tokens`` is the embedder's window for ``embed_text``."""

    splitter: str = "markdown"
    max_tokens: int = 256
    overlap_tokens: int = 32
    # Only really tiny sections (a bare heading, a one-line note) join a neighbour: an FAQ
    # answer of 30 tokens is a topic of its own, and merged with the next question its
    # vector matches neither (measured on the dev set: hit@3 0.65 with 48, 0.70 with 16).
    min_tokens: int = 16

    def __post_init__(self) -> None:
        if self.splitter not in SPLITTERS:
            raise ConfigError(f"unknown splitter {self.splitter!r}: use one of {SPLITTERS}")
        if self.max_tokens < 16:
            raise ConfigError(f"max_tokens must be at least 16, got {self.max_tokens}")
        if not 0 <= self.overlap_tokens < self.max_tokens:
            raise ConfigError("overlap_tokens must be at least 0 and less than max_tokens")
        if self.min_tokens < 0:
            raise ConfigError(f"min_tokens must be at least 0, got {self.min_tokens}")


def chunk_id(source: str, position: int, text: str) -> str:
    """A stable id: the first 32 hex digits of the SHA-256 of source, position and text."""
    payload = json.dumps([source, position, text], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def document_hash(doc: Document) -> str:
    """SHA-256 of everything in a document that its chunks depend on (not its location)."""
    payload = json.dumps(
        {
            "text": doc.text,
            "format": doc.format,
            "title": doc.title,
            "pages": doc.pages,
            "metadata": doc.metadata,
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def chunk_document(
    doc: Document, settings: ChunkSettings, count_tokens: TokenCounter
) -> list[Chunk]:
    """Cut ``doc`` into chunks numbered 0..n-1 (see the module docstring for the rules)."""
    if settings.splitter == "seed":
        pieces = [(_seed_heading(p), p, p) for p in (doc.raw or doc.text).split("# ")]
    else:
        pieces = _markdown_pieces(doc, settings, _Measure.of(count_tokens))
    doc_hash = document_hash(doc)
    return [
        Chunk(
            id=chunk_id(doc.source, position, text),
            source=doc.source,
            root=doc.root,
            text=text,
            heading=heading,
            position=position,
            doc_hash=doc_hash,
            doc_chunks=len(pieces),
            embed_text=embed_text,
            metadata=dict(doc.metadata),
        )
        for position, (heading, text, embed_text) in enumerate(pieces)
    ]


def _seed_heading(piece: str) -> str:
    first = piece.split("\n", 1)[0].strip().lstrip("#").strip()
    return first if any(c.isalnum() for c in first) else ""


# --- measuring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Measure:
    """A token counter plus its fixed cost per call, so sizes of parts can be added."""

    count: TokenCounter
    overhead: int

    @classmethod
    def of(cls, count: TokenCounter) -> _Measure:
        # [CLS]/[SEP] for BERT tokenizers (2); 0 for plain counters; never more than ""'s.
        return cls(count, max(0, min(count(""), count("a") - 1)))

    def content(self, text: str) -> int:
        """Tokens of ``text`` without the fixed cost."""
        return max(0, self.count(text) - self.overhead)


# --- parsing markdown into sections of blocks ----------------------------------------------


@dataclass(frozen=True)
class _Block:
    kind: str  # "heading" | "text" | "code" | "table" | "html_table"
    text: str
    tokens: int


@dataclass(frozen=True)
class _Section:
    path: tuple[str, ...]
    blocks: tuple[_Block, ...]

    @property
    def tokens(self) -> int:
        return sum(b.tokens for b in self.blocks)


_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+$")
_ANCHOR = re.compile(r"[ \t]*\{#[^}]*\}$")
_FENCE = re.compile(r"([ \t]*)(`{3,}|~{3,})(.*)")
_DELIMITER_ROW = re.compile(r"[ \t|:-]*-[ \t|:-]*")


def _parse(text: str, measure: _Measure, headings: bool) -> list[tuple[list[str], list[_Block]]]:
    """Split markdown into (heading stack, blocks) sections; fences and tables stay whole."""
    lines = text.replace("\r\n", "\n").split("\n")
    sections: list[tuple[list[str], list[_Block]]] = []
    stack: list[tuple[int, str]] = []
    blocks: list[_Block] = []
    para: list[str] = []

    def flush() -> None:
        blocks.extend(_Block(k, t, measure.content(t)) for k, t in _text_blocks(para))
        para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.fullmatch(line)
        if fence and not (fence.group(2)[0] == "`" and "`" in fence.group(3)):
            flush()
            mark = fence.group(2)
            end = i + 1
            while end < len(lines) and not _closes(lines[end], mark):
                end += 1
            closer = [] if end < len(lines) else [fence.group(1) + mark]  # close it for display
            code = "\n".join([*lines[i : end + 1], *closer])
            blocks.append(_Block("code", code, measure.content(code)))
            i = end + 1
            continue
        table_end = _html_table_end(lines, i)
        if table_end is not None:
            flush()
            table = "\n".join(lines[i : table_end + 1])
            blocks.append(_Block("html_table", table, measure.content(table)))
            i = table_end + 1
            continue
        heading = _HEADING.fullmatch(line) if headings else None
        if heading:
            flush()
            sections.append(([t for _, t in stack], blocks))
            blocks = []
            level = len(heading.group(1))
            title = _ANCHOR.sub("", _CLOSING_HASHES.sub("", heading.group(2) or "")).strip()
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title)]
            heading_line = line.strip()
            blocks.append(_Block("heading", heading_line, measure.content(heading_line)))
        elif line.strip():
            para.append(line.rstrip())
        else:
            flush()
        i += 1
    flush()
    sections.append(([t for _, t in stack], blocks))
    return sections


def _html_table_end(lines: list[str], start: int) -> int | None:
    """The line closing an HTML table opened on ``start``; None if none is opened or closed."""
    if lines[start].lstrip()[:6].lower() != "<table":
        return None
    for end in range(start, len(lines)):
        if "</table>" in lines[end].lower():
            return end
    return None


def _closes(line: str, mark: str) -> bool:
    s = line.strip()
    return len(s) >= len(mark) and set(s) == {mark[0]}


def _text_blocks(lines: list[str]) -> list[tuple[str, str]]:
    """A paragraph's lines as ("text" | "table", text) blocks: markdown tables split off."""
    for i in range(1, len(lines)):
        if "|" in lines[i] and "|" in lines[i - 1] and _DELIMITER_ROW.fullmatch(lines[i]):
            end = i + 1
            while end < len(lines) and "|" in lines[end]:
                end += 1
            before = [("text", "\n".join(lines[: i - 1]))] if i > 1 else []
            rows = [lines[i - 1], _compact_delimiters(lines[i]), *lines[i + 1 : end]]
            table = [("table", "\n".join(rows))]
            return before + table + _text_blocks(lines[end:])
    return [("text", "\n".join(lines))] if lines else []


def _compact_delimiters(row: str) -> str:
    """``|:-----|-----:|`` as ``| :--- | ---: |``: BERT vocabularies spend a token per dash."""
    marks = []
    for cell in row.strip().strip("|").split("|"):
        cell = cell.strip()
        marks.append(
            (":" if cell.startswith(":") else "") + "---" + (":" if cell.endswith(":") else "")
        )
    return row[: len(row) - len(row.lstrip())] + "| " + " | ".join(marks) + " |"


def _sections(doc: Document, text: str, measure: _Measure, headings: bool) -> list[_Section]:
    title = doc.title.strip()
    out = []
    for stack, blocks in _parse(text, measure, headings):
        if not blocks:
            continue
        if stack and title and stack[0].casefold() == title.casefold():
            stack = stack[1:]
        path = tuple(t for t in [title, *stack] if t)
        out.append(_Section(path, tuple(blocks)))
    return out


# --- merging small sections --------------------------------------------------------------


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _merge_small(
    sections: list[_Section], fits: Callable[[tuple[str, ...], int], bool], min_tokens: int
) -> list[_Section]:
    """Join sections under ``min_tokens`` to the next section, else to the previous one.

    A joined section that fits the window is headed by the common path of its parts.  A
    small section followed by a long subsection of its own leads into it anyway (the long
    one is split later and keeps its path), so a parent heading never stands alone.
    """

    def merge(a: _Section, b: _Section, forward: bool) -> _Section | None:
        common = _common(a.path, b.path)
        parent_of_b = forward and common == a.path
        # A bare parent heading adds words, not a topic: the child's path names the chunk.
        bare = parent_of_b and all(block.kind == "heading" for block in a.blocks)
        path = b.path if bare else common
        if fits(path, a.tokens + b.tokens):
            return _Section(path, a.blocks + b.blocks)
        if parent_of_b:
            return _Section(b.path, a.blocks + b.blocks)
        return None

    ahead: list[_Section] = []
    for s in sections:
        small = ahead and ahead[-1].tokens < min_tokens
        joined = merge(ahead[-1], s, forward=True) if small else None
        if joined:
            ahead[-1] = joined
        else:
            ahead.append(s)
    out: list[_Section] = []
    for s in ahead:
        joined = merge(out[-1], s, forward=False) if out and s.tokens < min_tokens else None
        if joined:
            out[-1] = joined
        else:
            out.append(s)
    return out


# --- splitting long sections ---------------------------------------------------------------


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


def _text_units(text: str, budget: int, measure: _Measure, joiner: str) -> list[_Unit]:
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


def _frame(block: _Block) -> tuple[str, list[str], str]:
    """A code block or table as (head, rows, tail): each piece is head + some rows + tail."""
    lines = block.text.split("\n")
    if block.kind == "table":
        return "\n".join(lines[:2]), lines[2:], ""
    if block.kind == "code":
        fence = _FENCE.fullmatch(lines[0])
        mark = fence.group(1) + fence.group(2) if fence else "```"
        closed = len(lines) > 1 and _closes(lines[-1], mark.strip())
        body = lines[1:-1] if closed else lines[1:]
        rows: list[str] = []
        for line in body:  # groups of lines ended by a blank line, so cuts prefer blank lines
            if rows and rows[-1].rsplit("\n", 1)[-1].strip():
                rows[-1] += "\n" + line
            else:
                rows.append(line)
        return lines[0], rows, lines[-1] if closed else mark
    lowered = [line.strip().lower() for line in lines]
    first = next((i + 1 for i, s in enumerate(lowered) if "</thead>" in s), 0)
    first += first < len(lines) and lowered[first].startswith("<tbody")
    starts = [i for i in range(first, len(lines)) if lowered[i].startswith("<tr")]
    ends = [i for i, s in enumerate(lowered) if "</tr>" in s]
    if not starts or not ends or ends[-1] < starts[0]:
        return lines[0], lines[1:-1], lines[-1] if len(lines) > 1 else ""
    bounds = [*starts[1:], ends[-1] + 1]
    rows = ["\n".join(lines[a:b]) for a, b in zip(starts, bounds, strict=True)]
    return "\n".join(lines[: starts[0]]), rows, "\n".join(lines[ends[-1] + 1 :])


def _block_units(block: _Block, budget: int, measure: _Measure, lead: int) -> list[_Unit]:
    """A code block or table too long for the window, as complete fenced/table pieces.

    The first piece leaves ``lead`` tokens free for the heading line just before it.
    """
    head, rows, tail = _frame(block)
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


def _overlap(units: list[_Unit], room: int, measure: _Measure) -> list[_Unit]:
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


def _pack(units: list[_Unit], budget: int, overlap: int, measure: _Measure) -> list[list[_Unit]]:
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
    units: list[_Unit], heading: str, limit: int, measure: _Measure
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


def _section_pieces(
    section: _Section, settings: ChunkSettings, measure: _Measure, head_tokens: int
) -> Iterator[tuple[str, str, str]]:
    """(heading, text, embed_text) of the chunks of one section."""
    heading = " > ".join(section.path)
    budget = max(settings.max_tokens - measure.overhead - head_tokens, settings.max_tokens // 2)
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
    packs = _pack(units, budget, settings.overlap_tokens, measure)
    if len(packs) > 1 and all(u.kind == "heading" for u in packs[0]):
        packs = packs[1:]  # a heading line that fits with nothing: the path names it already
    for packed in packs:
        for part in _verified(packed, heading, settings.max_tokens, measure):
            text = _render(part)
            if text.strip():
                yield heading, text, _embed_text(heading, text)


def _markdown_pieces(
    doc: Document, settings: ChunkSettings, measure: _Measure
) -> list[tuple[str, str, str]]:
    head_cache: dict[tuple[str, ...], int] = {}

    def head_tokens(path: tuple[str, ...]) -> int:
        if path not in head_cache:
            head_cache[path] = measure.content(" > ".join(path)) if path else 0
        return head_cache[path]

    def fits(path: tuple[str, ...], tokens: int) -> bool:
        return measure.overhead + head_tokens(path) + tokens <= settings.max_tokens

    if doc.pages is not None:
        title = doc.title.strip()
        sections = []
        for n, page in enumerate(doc.pages, start=1):
            path = (title, f"page {n}") if title else (f"page {n}",)
            blocks = [b for _, bs in _parse(page, measure, headings=False) for b in bs]
            if blocks:
                sections.append(_Section(path, tuple(blocks)))
    else:
        headings = doc.format in ("markdown", "html")
        sections = _sections(doc, doc.text, measure, headings)
        sections = _merge_small(sections, fits, settings.min_tokens)
    return [
        piece
        for section in sections
        for piece in _section_pieces(section, settings, measure, head_tokens(section.path))
    ]
