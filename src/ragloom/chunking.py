"""Documents -> Chunks: pure functions, stable ids.

Two splitters:

* ``seed`` reproduces the Milvus RAG tutorials byte for byte: ``text.split("# ")``, every
  piece kept (even an empty one) and embedded unchanged.
* ``markdown`` (the default) follows the headings.  Each section gets its heading path
  (``Title > Section > Subsection``) and keeps its own heading line in its text; sections
  under ``min_tokens`` join their neighbour when the result fits; sections over the window
  are cut at paragraphs, then sentences or lines, then words, with ``overlap_tokens`` of
  text repeated across a cut.  Fenced code and tables (markdown or HTML) are never cut
  inside: one too long for the window is split between rows or lines and each piece is
  re-wrapped (fence re-opened, table header repeated), so every chunk is valid markdown.
  The only chunks allowed over the window are such pieces holding a single row or code
  line that is itself too long.

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
    min_tokens: int = 48

    def __post_init__(self) -> None:
        if self.splitter not in SPLITTERS:
            raise ConfigError(f"unknown splitter {self.splitter!r}: use one of {SPLITTERS}")
        if self.max_tokens < 16:
            raise ConfigError(f"max_tokens must be at least 16, got {self.max_tokens}")
        if not 0 <= self.overlap_tokens <= self.max_tokens // 2:
            raise ConfigError("overlap_tokens must be between 0 and half of max_tokens")
        if not 0 <= self.min_tokens <= self.max_tokens:
            raise ConfigError("min_tokens must be between 0 and max_tokens")


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
        pieces = [(_seed_heading(p), p, p) for p in doc.text.split("# ")]
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
    kind: str  # "text" | "code" | "table" | "html_table"
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
            code = "\n".join(lines[i : end + 1])
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
            para.append(line.strip())
            flush()
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
            table = [("table", "\n".join(lines[i - 1 : end]))]
            return before + table + _text_blocks(lines[end:])
    return [("text", "\n".join(lines))] if lines else []


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
    """Join sections under ``min_tokens`` to the next section, else to the previous one."""

    def merge(a: _Section, b: _Section) -> _Section | None:
        path = _common(a.path, b.path)
        return _Section(path, a.blocks + b.blocks) if fits(path, a.tokens + b.tokens) else None

    forward: list[_Section] = []
    for s in sections:
        joined = merge(forward[-1], s) if forward and forward[-1].tokens < min_tokens else None
        if joined:
            forward[-1] = joined
        else:
            forward.append(s)
    out: list[_Section] = []
    for s in forward:
        joined = merge(out[-1], s) if out and s.tokens < min_tokens else None
        if joined:
            out[-1] = joined
        else:
            out.append(s)
    return out


# --- splitting long sections ---------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """A piece of a section that is never cut further by packing."""

    text: str
    tokens: int
    joiner: str  # put before it unless it starts a chunk
    atomic: bool = False  # a (piece of a) code block or table: no overlap taken from it
    oversize: bool = False  # a single row/line that alone exceeds the window


_SENTENCE_CUT = re.compile(r"[.!?][\"')\]*_`]*[ \t]+|\n")
_WORD_CUT = re.compile(r"\s+")


def _slices(text: str, cut: re.Pattern[str]) -> list[str]:
    """``text`` cut after each match; the slices concatenate back to ``text``."""
    ends = [m.end() for m in cut.finditer(text) if 0 < m.end() < len(text)]
    return [text[a:b] for a, b in zip([0, *ends], [*ends, len(text)], strict=True)]


def _text_units(text: str, budget: int, measure: _Measure, joiner: str) -> list[_Unit]:
    """Sentences (or lines) of a long paragraph; words of a long sentence; then characters."""
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
    starts = [i for i, s in enumerate(lowered) if s.startswith("<tr")]
    ends = [i for i, s in enumerate(lowered) if "</tr>" in s]
    if not starts or not ends or ends[-1] < starts[0]:
        return lines[0], lines[1:-1], lines[-1] if len(lines) > 1 else ""
    bounds = [*starts[1:], ends[-1] + 1]
    rows = ["\n".join(lines[a:b]) for a, b in zip(starts, bounds, strict=True)]
    return "\n".join(lines[: starts[0]]), rows, "\n".join(lines[ends[-1] + 1 :])


def _atomic_units(block: _Block, budget: int, measure: _Measure) -> list[_Unit]:
    """A code block or table too long for the window, as complete fenced/table pieces."""
    head, rows, tail = _frame(block)
    room = budget - measure.content(head) - measure.content(tail)
    sized: list[tuple[str, int]] = []
    for row in rows:
        tokens = measure.content(row)
        if tokens > room and "\n" in row:  # a code paragraph: fall back to its lines
            sized += [(line, measure.content(line)) for line in row.split("\n")]
        else:
            sized.append((row, tokens))
    groups: list[list[tuple[str, int]]] = []
    for row, tokens in sized:
        if groups and sum(t for _, t in groups[-1]) + tokens <= room:
            groups[-1].append((row, tokens))
        else:
            groups.append([(row, tokens)])
    units = []
    for group in groups or [[]]:
        text = "\n".join(p for p in [head, *(r for r, _ in group), tail] if p)
        tokens = budget - room + sum(t for _, t in group)
        units.append(_Unit(text, tokens, "\n\n", atomic=True, oversize=tokens > budget))
    return units


def _overlap(units: list[_Unit], room: int, measure: _Measure) -> list[_Unit]:
    """The end of a chunk (whole units, then sentences, then words) within ``room`` tokens."""
    tail: list[_Unit] = []
    for unit in reversed(units):
        if unit.atomic or room <= 0:
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
        if not part:
            words = _slices(unit.text, _WORD_CUT)
            keep = len(words) * room // max(unit.tokens, 1)
            while keep > 0:
                part = "".join(words[-keep:])
                used = measure.content(part)
                if used <= room:
                    break
                part, keep = "", keep // 2
        if part:
            tail.insert(0, _Unit(part, used, ""))
        break
    return tail


def _pack(units: list[_Unit], budget: int, overlap: int, measure: _Measure) -> list[list[_Unit]]:
    """Greedy packing of units into chunks of at most ``budget`` tokens, with overlap."""
    chunks: list[list[_Unit]] = []
    current: list[_Unit] = []
    size = 0
    for unit in units:
        if current and size + unit.tokens > budget:
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
    elif not units[0].atomic and len(units[0].text) > 1:
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
    for block in section.blocks:
        if block.tokens <= budget:
            units.append(_Unit(block.text, block.tokens, "\n\n", atomic=block.kind != "text"))
        elif block.kind == "text":
            units += _text_units(block.text, budget, measure, "\n\n")
        else:
            units += _atomic_units(block, budget, measure)
    for packed in _pack(units, budget, settings.overlap_tokens, measure):
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
