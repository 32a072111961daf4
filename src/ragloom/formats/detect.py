"""Which document format a file is: by its extension, or by a download's Content-Type.

Formats are plain names ("markdown", "text", "html", "pdf") that ``parse`` dispatches
on; a name with no format is not a document and is skipped with ``not_a_document``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ragloom.types import LoadIssue

FORMAT_BY_SUFFIX: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
_FORMAT_BY_MEDIA_TYPE = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "application/pdf": "pdf",
}


def format_for_name(name: str) -> str | None:
    """The format of a file name by its extension, or None if it is not a document."""
    return FORMAT_BY_SUFFIX.get(PurePosixPath(name).suffix.lower())


def format_for_content_type(media_type: str, name: str) -> str | None:
    """The format of a downloaded page: a specific Content-Type wins, else the URL's extension.

    Servers often send ``text/plain`` or ``application/octet-stream`` for ``.md`` and
    ``.pdf`` files (raw GitHub URLs do), so those fall back to the extension.
    """
    media_type = media_type.lower()
    if media_type in _FORMAT_BY_MEDIA_TYPE:
        return _FORMAT_BY_MEDIA_TYPE[media_type]
    by_name = format_for_name(name)
    if by_name is not None:
        return by_name
    return "text" if media_type == "text/plain" else None


def not_a_document(source: str, name: str, root: str) -> LoadIssue:
    """The skip notice for a file whose extension is not a supported document format."""
    suffix = PurePosixPath(name).suffix.lower()
    return LoadIssue(source, skip_reason(suffix or "no file extension"), skipped=True, root=root)


_SKIP_REASON = re.compile(r"not a document \((.+)\); skipped")


def skip_reason(kind: str) -> str:
    """Why an input of ``kind`` (an extension, a media type) is skipped."""
    return f"not a document ({kind}); skipped"


def skipped_kind(reason: str) -> str | None:
    """The kind a ``skip_reason`` names; None for any other reason."""
    found = _SKIP_REASON.fullmatch(reason)
    return found.group(1) if found else None
