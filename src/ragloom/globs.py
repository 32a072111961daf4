"""``--glob``: which files inside a directory or archive are loaded.

``PathGlob`` matches '/'-separated relative paths; ``nothing_selected`` is the issue
for a directory or archive that gave nothing to read.
"""

from __future__ import annotations

import re

from ragloom.types import LoadIssue


class PathGlob:
    """A glob for '/'-separated relative paths, with gitignore-like semantics.

    ``*``, ``?`` and ``[...]`` never cross ``/``; a ``**`` component matches zero or
    more directories (``**/*.md`` also matches ``a.md``; ``en/**`` matches everything
    under ``en/``).  A pattern without ``/`` matches the file name at any depth
    (``*.md``), like gitignore and ``find -name``.  Matching is case-sensitive.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        pattern = pattern.strip().removeprefix("./").lstrip("/")
        self._name_only = "/" not in pattern
        parts = pattern.split("/")
        regex = ""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "**" and not self._name_only:
                regex += ".*" if last else "(?:[^/]+/)*"
            else:
                regex += _translate_component(part.replace("**", "*")) + ("" if last else "/")
        self._regex = re.compile(regex, re.DOTALL)

    def __call__(self, path: str) -> bool:
        """Whether ``path`` (relative, '/'-separated) is selected."""
        if self._name_only:
            path = path.rsplit("/", 1)[-1]
        return self._regex.fullmatch(path) is not None

    def __repr__(self) -> str:
        return f"PathGlob({self.pattern!r})"


def _translate_component(part: str) -> str:
    """One path component of a glob as a regex that cannot match '/'."""
    out, i = [], 0
    while i < len(part):
        char = part[i]
        i += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := _class_end(part, i)) >= 0:
            body = part[i:end]
            negate = body.startswith("!")
            body = re.sub(r"([\\^\]\[])", r"\\\1", body[1:] if negate else body)
            out.append(f"[{'^/' if negate else ''}{body}]")
            i = end + 1
        else:
            out.append(re.escape(char))
    return "".join(out)


def _class_end(part: str, start: int) -> int:
    """Index of the ']' closing a '[' class whose body starts at ``start``, or -1."""
    if part[start : start + 1] == "!":
        start += 1
    if part[start : start + 1] == "]":  # a leading ']' is a literal member
        start += 1
    return part.find("]", start)


def nothing_selected(source: str, kind: str, match: PathGlob | None, root: str) -> LoadIssue:
    """The issue for a directory or archive that gave nothing to read.

    An empty one was read, and found empty: a notice, so that the documents ingested
    from it before are removed like those of any folder that lost files.  A glob that
    selects nothing is more likely a mistyped pattern: a failure, which removes nothing.
    """
    if match is None:
        reason = f"empty {kind}: no files to index (hidden files and folders are skipped)"
        return LoadIssue(source, reason, skipped=True, root=root)
    reason = (
        f"no files in this {kind} match the glob {match.pattern!r}; "
        f"check the pattern (it is matched against paths relative to the {kind})"
    )
    return LoadIssue(source, reason, root=root)
