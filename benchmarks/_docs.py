"""Record a benchmark's output in a markdown document, between named markers.

A section of a document such as ``docs/benchmarks.md`` is delimited by

    <!-- NAME:begin -->
    ...replaced text...
    <!-- NAME:end -->

and :func:`replace_section` rewrites only what lies between the two markers, so a
benchmark run never touches the prose around its table.  Use it from a script run as
``python benchmarks/SCRIPT.py`` with ``from _docs import replace_section``.
"""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of section ``name``."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_text(document: str, name: str, text: str) -> str:
    """``document`` with the text between the markers of ``name`` replaced by ``text``."""
    begin, end = markers(name)
    start = document.find(begin)
    stop = document.find(end, start + len(begin)) if start >= 0 else -1
    if start < 0 or stop < 0:
        raise ValueError(f"no section '{name}': the document needs both {begin} and {end}")
    if document.find(begin, start + len(begin)) >= 0:
        raise ValueError(f"section '{name}' appears more than once")
    head = document[: start + len(begin)]
    return head + "\n" + text.strip("\n") + "\n" + document[stop:]


def replace_section(path: Path, name: str, text: str) -> None:
    """Replace the text between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in ``path``."""
    try:
        updated = replace_text(path.read_text(encoding="utf-8"), name, text)
    except ValueError as exc:
        raise SystemExit(f"{path}: {exc}") from None
    path.write_text(updated, encoding="utf-8")
