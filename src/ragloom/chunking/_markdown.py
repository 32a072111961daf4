"""Markdown as sections of blocks: headings, paragraphs, fenced code, tables.

``parse`` splits text at its headings into (heading stack, blocks) pairs, keeping each
fenced code block and markdown or HTML table whole; ``split_sections`` gives each its
heading path; ``merge_small`` joins tiny sections to a neighbour; ``frame`` takes a code block
or table apart into the rows a long one may be cut between.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ragloom.chunking._measure import Measure


@dataclass(frozen=True)
class Block:
    """A piece of a section that is measured once: a heading line, paragraph, code, table."""

    kind: str  # "heading" | "text" | "code" | "table" | "html_table"
    text: str
    tokens: int


@dataclass(frozen=True)
class Section:
    """The blocks under one heading, and the heading path that names them."""

    path: tuple[str, ...]
    blocks: tuple[Block, ...]

    @property
    def tokens(self) -> int:
        """The blocks' tokens added up."""
        return sum(b.tokens for b in self.blocks)


# --- parsing markdown into sections of blocks ----------------------------------------------

_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*")
# A setext underline (``Title`` over ``=====`` or ``-----``); three dashes at least, so a
# lone ``-`` (an empty list item) is not one.
_SETEXT = re.compile(r" {0,3}(=+|-{3,})[ \t]*")
_NOT_SETEXT_TEXT = re.compile(r" {0,3}([-*+>|]|\d{1,9}[.)])(\s|$)")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+$")
_ANCHOR = re.compile(r"[ \t]*\{#[^}]*\}$")
_FENCE = re.compile(r"([ \t]*)(`{3,}|~{3,})(.*)")
_WORDS = re.compile(r"\w+")
_DELIMITER_ROW = re.compile(r"[ \t|:-]*-[ \t|:-]*")


def parse(text: str, measure: Measure, headings: bool) -> list[tuple[list[str], list[Block]]]:
    """Split markdown into (heading stack, blocks) sections; fences and tables stay whole."""
    lines = text.replace("\r\n", "\n").split("\n")
    sections: list[tuple[list[str], list[Block]]] = []
    stack: list[tuple[int, str]] = []
    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        blocks.extend(Block(k, t, measure.content(t)) for k, t in _text_blocks(para))
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
            blocks.append(Block("code", code, measure.content(code)))
            i = end + 1
            continue
        table_end = _html_table_end(lines, i)
        if table_end is not None:
            flush()
            table = "\n".join(lines[i : table_end + 1])
            blocks.append(Block("html_table", table, measure.content(table)))
            i = table_end + 1
            continue
        heading = _heading(para, line) if headings else None
        if heading:
            level, title, heading_line = heading
            if _SETEXT.fullmatch(line):  # the paragraph above the underline is the heading
                para.clear()
            flush()
            sections.append(([t for _, t in stack], blocks))
            blocks = []
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title)]
            blocks.append(Block("heading", heading_line, measure.content(heading_line)))
        elif line.strip():
            para.append(line.rstrip())
        else:
            flush()
        i += 1
    flush()
    sections.append(([t for _, t in stack], blocks))
    return sections


def _heading(para: list[str], line: str) -> tuple[int, str, str] | None:
    """(level, title, heading line) when ``line`` is an ATX heading or underlines ``para``
    as a setext one, which is then written as an ATX heading (fewer tokens)."""
    atx = _HEADING.fullmatch(line)
    if atx:
        title = _ANCHOR.sub("", _CLOSING_HASHES.sub("", atx.group(2) or "")).strip()
        return len(atx.group(1)), title, line.strip()
    setext = _setext(para, line)
    if setext:
        level, title = setext
        return level, title, f"{'#' * level} {title}"
    return None


def _setext(para: list[str], line: str) -> tuple[int, str] | None:
    """(level, title) when ``line`` underlines the paragraph ``para`` as a setext heading
    (``=`` level 1, ``-`` level 2); not under a list item, quote or table row."""
    underline = _SETEXT.fullmatch(line)
    if not underline or not para or any(_NOT_SETEXT_TEXT.match(p) for p in para):
        return None
    level = 1 if underline.group(1)[0] == "=" else 2
    return level, " ".join(p.strip() for p in para)


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


def split_sections(title: str, text: str, measure: Measure, headings: bool) -> list[Section]:
    """``text`` as sections headed by their path, ``title`` first (not repeated)."""
    title = title.strip()
    out = []
    for stack, blocks in parse(text, measure, headings):
        if not blocks:
            continue
        path = tuple(t for t in [title, *stack] if t)
        if stack and title and _says_again(title, stack[0]):
            # Front matter's title and the page's `# ` heading naming it again, or nearly
            # ("Quickstart" / "Quickstart with Milvus Lite"): the longer one is kept.
            path = (max(title, stack[0], key=len), *stack[1:])
        out.append(Section(path, tuple(blocks)))
    return out


def _says_again(a: str, b: str) -> bool:
    """Whether one heading's words are the other's, or the start or end of them."""
    words_a, words_b = _WORDS.findall(a.casefold()), _WORDS.findall(b.casefold())
    short, long = sorted((words_a, words_b), key=len)
    n = len(short)
    return bool(short) and (long[:n] == short or long[len(long) - n :] == short)


# --- merging small sections ----------------------------------------------------------------


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def merge_small(
    sections: list[Section], fits: Callable[[tuple[str, ...], int], bool], min_tokens: int
) -> list[Section]:
    """Join sections under ``min_tokens`` to the next section, else to the previous one.

    A joined section that fits the window is headed by the common path of its parts.  A
    small section followed by a long subsection of its own leads into it anyway (the long
    one is split later and keeps its path), so a parent heading never stands alone.
    """

    def merge(a: Section, b: Section, forward: bool) -> Section | None:
        common = _common(a.path, b.path)
        parent_of_b = forward and common == a.path
        # A bare parent heading adds words, not a topic: the child's path names the chunk.
        bare = parent_of_b and all(block.kind == "heading" for block in a.blocks)
        path = b.path if bare else common
        if fits(path, a.tokens + b.tokens):
            return Section(path, a.blocks + b.blocks)
        if parent_of_b:
            return Section(b.path, a.blocks + b.blocks)
        return None

    ahead: list[Section] = []
    for s in sections:
        small = ahead and ahead[-1].tokens < min_tokens
        joined = merge(ahead[-1], s, forward=True) if small else None
        if joined:
            ahead[-1] = joined
        else:
            ahead.append(s)
    out: list[Section] = []
    for s in ahead:
        joined = merge(out[-1], s, forward=False) if out and s.tokens < min_tokens else None
        if joined:
            out[-1] = joined
        else:
            out.append(s)
    return out


# --- cutting a code block or table into rows ------------------------------------------------


def frame(block: Block) -> tuple[str, list[str], str]:
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
