"""Bytes of one file -> a Document: which format it is, decoding, one parser per format.

Formats are chosen by file extension (``format_for_name``) or, for URLs, by the
Content-Type header (``format_for_content_type``).  ``parse_document`` raises
``SourceError`` with a reason a user can act on; ``parse_or_issue`` returns it as the
``LoadIssue`` that ``loaders`` and ``archives`` yield.  Nothing here touches the file
system or the network.

- ``detect``: file name or Content-Type -> format name
- ``parse``: bytes + format -> Document (the checks every format shares, then dispatch)
- ``text``: strict decoding and whitespace collapsing, shared by the parsers
- ``markdown``, ``html``, ``pdf``: one parser each (plain text needs none of its own)
"""

from ragloom.formats.detect import (
    FORMAT_BY_SUFFIX,
    format_for_content_type,
    format_for_name,
    not_a_document,
    skip_reason,
    skipped_kind,
)
from ragloom.formats.markdown import split_front_matter
from ragloom.formats.parse import parse_document, parse_or_issue
from ragloom.formats.text import decode_text

__all__ = [
    "FORMAT_BY_SUFFIX",
    "decode_text",
    "format_for_content_type",
    "format_for_name",
    "not_a_document",
    "parse_document",
    "parse_or_issue",
    "skip_reason",
    "skipped_kind",
    "split_front_matter",
]
