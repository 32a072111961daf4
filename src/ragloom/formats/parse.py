"""Bytes of one file and its format -> a Document, or the reason it is unusable.

``parse_document`` checks what every format shares (an empty file, text decoding,
no text left after parsing) and hands the rest to the format's own parser;
``parse_or_issue`` turns its ``SourceError`` into the ``LoadIssue`` loaders yield.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath

from ragloom.errors import SourceError
from ragloom.formats.html import meta_charset, parse_html
from ragloom.formats.markdown import parse_markdown
from ragloom.formats.pdf import parse_pdf
from ragloom.formats.text import decode_text
from ragloom.types import Document, LoadIssue

logger = logging.getLogger("ragloom.formats")  # one logger for the package's parsers

_TEXT_FORMATS = frozenset({"markdown", "text", "html"})


def parse_or_issue(
    data: bytes, fmt: str, *, source: str, root: str, name: str, charset: str | None = None
) -> Document | LoadIssue:
    """``parse_document``, with failures returned as a LoadIssue instead of raised."""
    try:
        return parse_document(data, fmt, source=source, root=root, name=name, charset=charset)
    except SourceError as exc:
        return LoadIssue(source, exc.reason, root=root)
    except Exception as exc:  # a parser bug on one odd file must not stop an ingest
        logger.debug("unexpected error parsing %s", source, exc_info=True)
        return LoadIssue(
            source,
            f"could not be parsed ({type(exc).__name__}: {exc}); please report this ragloom bug",
            root=root,
        )


def parse_document(
    data: bytes, fmt: str, *, source: str, root: str, name: str, charset: str | None = None
) -> Document:
    """Parse one file's bytes as ``fmt``; raise SourceError naming the reason it is unusable.

    ``name`` is the file name (its stem is the fallback title); ``charset`` is a
    declared encoding (an HTTP header), if any.
    """
    if not data:
        raise SourceError(source, "empty file: nothing to index")
    if data.startswith(b"%PDF-"):
        fmt = "pdf"  # what the bytes are wins over a name or Content-Type that says html/text
    if fmt == "pdf":
        return parse_pdf(data, source=source, root=root, name=name)
    if fmt not in _TEXT_FORMATS:
        raise ValueError(f"unknown document format {fmt!r}")
    if charset is None and fmt == "html":
        charset = meta_charset(data) or _unlabelled_html_charset(data)
    try:
        text = decode_text(data, source, charset)
    except SourceError:
        if fmt != "html" or charset is None or _unlabelled_html_charset(data) is None:
            raise
        # A page whose bytes are not the charset it declares (common, and browsers show it
        # anyway): read as Windows-1252, as an unlabelled one is.
        text = decode_text(data, source, "windows-1252")
    if not text.strip():
        raise SourceError(source, "empty file: nothing to index (only whitespace)")
    stem = PurePosixPath(name).stem or name
    if fmt == "markdown":
        doc = parse_markdown(text, source=source, root=root, stem=stem)
    elif fmt == "html":
        doc = parse_html(text, source=source, root=root, stem=stem)
    else:
        doc = Document(source=source, text=text.strip(), format="text", root=root, title=stem)
    if not doc.text.strip():
        raise SourceError(source, f"no text left after parsing the {fmt}: nothing to index")
    return doc


def _unlabelled_html_charset(data: bytes) -> str | None:
    """A page that declares no charset and is not UTF-8 is Windows-1252, as browsers read it
    (WHATWG's default for unlabelled pages): old sites often declare nothing, and the
    page cannot be "re-saved as UTF-8" by whoever ingests it."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "windows-1252"
    return None
