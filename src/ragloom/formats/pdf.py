"""PDF bytes -> a Document with one text per page, read with pypdf.

A page's text is cleaned of what its layout added: running headers and footers, words
hyphenated at line ends, lines wrapped mid-sentence.  Encrypted, damaged and scanned
(text-less) files raise ``SourceError`` naming the problem.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import PurePosixPath

from pypdf import PdfReader

from ragloom.errors import SourceError
from ragloom.formats.text import collapse_whitespace
from ragloom.types import Document


def parse_pdf(data: bytes, *, source: str, root: str, name: str) -> Document:
    """PDF via pypdf: one text per page; title from the PDF's metadata or the file stem."""
    with _PdfWarnings() as warnings:
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                reason = "encrypted PDF: it needs a password; save a decrypted copy"
                raise SourceError(source, reason)
            pages = _join_hyphenated(
                _drop_running_lines(
                    [_clean_page(page.extract_text() or "") for page in reader.pages]
                )
            )
            pages = tuple(_join_wrapped_lines(page) for page in pages)
            info = reader.metadata
            title = collapse_whitespace(str(info.title)) if info is not None and info.title else ""
        except SourceError:
            raise
        except Exception as exc:  # pypdf raises many exception types on damaged files
            detail = str(exc) or type(exc).__name__
            if warnings.messages:
                detail += f" ({warnings.messages[0]})"
            raise SourceError(source, f"not a readable PDF: {detail}") from None
    if not any(page.strip() for page in pages):
        raise SourceError(
            source, "no text layer (scanned?): run OCR on it first, e.g. with ocrmypdf"
        )
    return Document(
        source=source,
        text="\n\n".join(pages),
        format="pdf",
        root=root,
        title=title or PurePosixPath(name).stem or name,
        pages=pages,
    )


class _PdfWarnings(logging.Handler):
    """Collects pypdf's log warnings while one PDF is parsed, instead of printing them.

    pypdf logs "EOF marker not found" and the like for damaged files; they belong in
    the LoadIssue's reason, not on the user's terminal.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._logger = logging.getLogger("pypdf")
        self._propagate = self._logger.propagate

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> _PdfWarnings:
        self._logger.addHandler(self)
        self._logger.propagate = False
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate


# A line the page's layout wrapped: the next goes on in lower case, or this one ends on a
# comma.  (Line breaks before a capital stay: a new sentence, heading or list item may
# start there, and the chunker cuts at sentences either way.)
_WRAPPED = re.compile(r"(?<=[^\s.!?:;])\n(?=[a-z(])|(?<=,)\n(?=\S)")


def _join_wrapped_lines(page: str) -> str:
    """A page's text with the lines its layout wrapped joined again into sentences, so
    that chunks, and their overlaps, begin and end at sentences rather than mid-line."""
    return _WRAPPED.sub(" ", page)


def _clean_page(text: str) -> str:
    """Normalise a page's line endings and trailing spaces; drop soft hyphens."""
    text = re.sub("\u00ad\\s*\n?", "", text)  # a soft hyphen only shows at a line break
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


_RUNNING_LINES = 3  # how far from the top or bottom of a page a running header may be


def _drop_running_lines(pages: list[str]) -> list[str]:
    """Pages without their running headers and footers ("Report 2023", "Page 3 of 9").

    A line among the first (or last) few of a page is one when it recurs, digits aside,
    among the first (or last) few of at least half the pages, and two: it would otherwise
    open or close a chunk of every page, and match every search for its words.  A short
    page is looked at only a line or two deep, so its own text is never taken for one.
    """
    if len(pages) < 2:
        return pages

    def edges(lines: list[str]) -> dict[int, tuple[str, str]]:
        depth = min(_RUNNING_LINES, len(lines) // 4 or 1)
        top = {i: ("top", lines[i]) for i in range(min(depth, len(lines)))}
        bottom = {i: ("bottom", lines[i]) for i in range(max(0, len(lines) - depth), len(lines))}
        return {
            i: (end, re.sub(r"\d+", "#", " ".join(line.split()).casefold()))
            for i, (end, line) in {**top, **bottom}.items()
        }

    split = [page.split("\n") for page in pages]
    seen: dict[tuple[str, str], int] = {}
    for lines in split:
        for key in set(edges(lines).values()):
            if any(c.isalnum() or c == "#" for c in key[1]):  # a page number is "#"
                seen[key] = seen.get(key, 0) + 1
    running = {key for key, n in seen.items() if n >= max(2, (len(pages) + 1) // 2)}
    if not running:
        return pages
    out = []
    for lines in split:
        at_edge = edges(lines)
        kept = [ln for i, ln in enumerate(lines) if at_edge.get(i) not in running]
        out.append("\n".join(kept).strip())
    return out


_HYPHENATED = re.compile(r"(\w*[^\W\d_])-\n([^\W\d_]\w*)")


def _join_hyphenated(pages: list[str]) -> tuple[str, ...]:
    """Words hyphenated across a line break joined again ("inter-\\nnational"), and the lines.

    The hyphen goes unless the document writes that word with a hyphen elsewhere and
    never without ("self-\\nhealing" when "self-healing" occurs), or the next part is
    capitalised ("Anglo-\\nSaxon").
    """
    words = set(re.findall(r"\w+(?:-\w+)*", " ".join(pages).casefold()))

    def join(m: re.Match[str]) -> str:
        head, tail = m.group(1), m.group(2)
        joined = (head + tail).casefold()
        hyphenated = f"{head}-{tail}".casefold()
        if tail[0].isupper() or (hyphenated in words and joined not in words):
            return f"{head}-{tail}"
        return f"{head}{tail}"

    return tuple(_HYPHENATED.sub(join, page) for page in pages)
