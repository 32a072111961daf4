"""Markdown text -> a Document: YAML front matter as metadata, the title it names.

The body stays markdown (the chunker splits at its headings); ``raw`` keeps the file
as written when front matter was taken off it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import yaml

from ragloom.errors import SourceError
from ragloom.types import Document


def parse_markdown(text: str, *, source: str, root: str, stem: str) -> Document:
    """Markdown: YAML front matter becomes metadata; title from it, a '# ' heading or stem."""
    metadata, body = split_front_matter(text, source)
    title = metadata.get("title")
    if isinstance(title, int | float) and not isinstance(title, bool):
        title = str(title)  # `title: 1984`
    if not isinstance(title, str) or not title.strip():
        title = _first_h1(body) or stem
    return Document(
        source=source,
        text=body.strip(),
        format="markdown",
        root=root,
        title=title.strip(),
        metadata=metadata,
        raw=text if body.strip() != text else "",
    )


def split_front_matter(text: str, source: str = "<text>") -> tuple[dict[str, Any], str]:
    """Split a leading ``---`` YAML block (closed by ``---`` or ``...``) from the body.

    A block that parses to something other than a mapping is not front matter (a
    document may open with a ``---`` rule), and the text is returned unchanged.
    Invalid YAML is an error: silently indexing it as prose would lose the metadata.
    """
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return {}, text
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if end is None:
        return {}, text
    try:
        parsed = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SourceError(
            source, f"invalid YAML front matter{where}: {problem}; fix it or remove the --- block"
        ) from None
    if parsed is None:
        parsed = {}
    if not isinstance(parsed, dict):
        return {}, text
    return _json_safe(parsed), "\n".join(lines[end + 1 :])


def _json_safe(value: Any) -> Any:
    """YAML values as JSON-compatible ones (dates as ISO strings) so stores can keep them."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_json_safe(v) for v in items]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64 <= value < -_INT64:
        return str(value)  # Milvus's JSON holds 64-bit integers: it refused the whole batch
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # .inf / .nan: not JSON
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


_INT64 = -(2**63)


_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_H1 = re.compile(r"^\s{0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")


def _first_h1(body: str) -> str:
    """The text of the first level-one heading outside fenced code (ATX ``# Title`` or
    setext ``Title`` over ``===``), or ''."""
    in_fence = False
    previous = ""
    for line in body.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (found := _H1.match(line)):
            return found.group(1).strip()
        elif not in_fence and _SETEXT_H1.match(line) and previous.strip():
            return previous.strip()
        previous = "" if in_fence else line
    return ""


_SETEXT_H1 = re.compile(r"^\s{0,3}=+\s*$")
