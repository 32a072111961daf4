"""Text helpers every parser shares: strict decoding of bytes, and whitespace collapsing.

Markdown, plain text and HTML are decoded here before they are parsed; the HTML and
PDF parsers use ``collapse_whitespace`` on titles, headings and table cells.
"""

from __future__ import annotations

import codecs

from ragloom.errors import SourceError


def decode_text(data: bytes, source: str, charset: str | None = None) -> str:
    """Decode a text file strictly: a BOM or the declared charset, else UTF-8.

    Undecodable bytes are an error, not replaced: indexing guessed characters would
    put mojibake into search results and citations without anyone noticing, while an
    error naming the byte and its offset lets the user fix the file once (the rest of
    the ingest goes on).  Line endings are normalised to ``\\n``.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\x00" in data and (unmarked := _utf16_without_bom(data)) is not None:
        encoding = unmarked
    else:
        if b"\x00" in data:
            raise SourceError(
                source, "binary content, not text (it contains NUL bytes); is the extension right?"
            )
        encoding = "utf-8-sig"  # also drops a UTF-8 BOM, which outranks a declared charset
        if charset and _known_codec(charset) and not data.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig" if codecs.lookup(charset).name == "utf-8" else charset
            if codecs.lookup(charset).name in ("latin-1", "iso8859-1", "ascii"):
                # As browsers do (WHATWG Encoding): pages labelled Latin-1 or ASCII are
                # really Windows-1252, whose 0x80-0x9F are curly quotes, dashes, the euro.
                encoding = "cp1252"
    try:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            if encoding != "cp1252":
                raise
            text = data.decode("latin-1")  # the five bytes cp1252 leaves undefined
    except UnicodeDecodeError as exc:
        label = "UTF-8" if encoding == "utf-8-sig" else encoding
        bad = data[exc.start : exc.start + 1].hex()
        raise SourceError(
            source,
            f"not valid {label} (byte 0x{bad} at offset {exc.start}); re-save it as UTF-8",
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _utf16_without_bom(data: bytes) -> str | None:
    """``utf-16-le`` or ``-be`` for text saved so without a byte-order mark (some Windows
    tools): mostly Latin text then has a NUL in nine of ten of every other byte, and
    decodes to printable characters, which binary data does not; None otherwise."""
    if len(data) < 4 or len(data) % 2:
        return None
    for encoding, high in (("utf-16-le", data[1::2]), ("utf-16-be", data[0::2])):
        if high.count(0) < 0.9 * len(high):
            continue
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if all(c.isprintable() or c in "\r\n\t" for c in text):
            return encoding
    return None


def _known_codec(charset: str) -> bool:
    try:
        codecs.lookup(charset)
    except LookupError:
        return False
    return True


def collapse_whitespace(text: str) -> str:
    """Collapse runs of whitespace to single spaces."""
    return " ".join(text.split())
