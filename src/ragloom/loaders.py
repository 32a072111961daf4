"""Sources -> Documents: files, directories, zip archives and http(s) URLs.

``load_sources`` is the only entry point.  It is a generator: documents are yielded
as they are read, one archive member at a time, and every input that yields no
document yields a ``LoadIssue`` saying why, so one bad file never stops an ingest.

Identity (``Document.source``): a file's resolved absolute path; ``zip::member``
for archive members; the URL (as given, before redirects) for a page; and
``url::member`` for members of a downloaded archive.  ``Document.root`` is the
ingest argument normalised the same way.

Archives are never extracted to disk: members are read in memory with a bounded
read, so neither ``../`` names nor a lying size header can do harm.

Local paths and directories are walked here; archives are read by ``ragloom.archives``,
URLs by ``ragloom.urls``, and ``--glob`` is ``ragloom.globs``.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urldefrag

from ragloom.archives import load_zip, too_large
from ragloom.formats import format_for_name, not_a_document, parse_or_issue
from ragloom.globs import PathGlob, nothing_selected
from ragloom.limits import DEFAULT_LIMITS, LoadLimits
from ragloom.types import Document, LoadIssue
from ragloom.urls import load_url

__all__ = ["DEFAULT_LIMITS", "LoadLimits", "PathGlob", "load_sources", "source_name"]

Loaded = Document | LoadIssue

_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def load_sources(
    sources: Sequence[str],
    glob: str | None = None,
    limits: LoadLimits = DEFAULT_LIMITS,
    stop: threading.Event | None = None,
) -> Iterator[Document | LoadIssue]:
    """Yield documents, and issues for inputs that produced none; never raises for a bad input.

    ``glob`` selects files inside directories and archives (see ``PathGlob``); a
    file named directly, or a URL page, is always loaded.  A download in progress ends
    at its next block of data once ``stop`` is set.
    """
    if isinstance(sources, str):  # one source, not its characters
        sources = [sources]
    match = PathGlob(glob) if glob else None
    for raw in sources:
        source = raw.strip()
        scheme = _URL_SCHEME.match(source)
        if not source:  # an unset variable ("$DOCS"): not the working directory
            reason = "empty source; name a file, folder, .zip archive or http(s) URL"
            yield LoadIssue(raw, reason, root=raw)
        elif scheme and scheme.group(1).lower() in ("http", "https"):
            # page.html#install is page.html: a fragment names a place in it, not a copy
            yield from load_url(_without_fragment(source), match, limits, stop)
        elif scheme:
            reason = f"unsupported URL scheme '{scheme.group(1)}'; use http(s):// or a local path"
            yield LoadIssue(source, reason, root=source)
        else:
            yield from _load_path(source, match, limits)


# --- local paths ----------------------------------------------------------------------


def _resolved(raw: str) -> Path:
    path = Path(raw).expanduser()
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return path.absolute()


def source_name(raw: str) -> str:
    """The source a path given by a user is stored under (absolute, symlinks resolved;
    ``docs.zip::en/a.md`` names a member); a URL as it is, without its ``#fragment``."""
    if _URL_SCHEME.match(raw):
        return _without_fragment(raw)
    path, sep, member = raw.partition("::")
    return str(_resolved(path)) + sep + member


def _without_fragment(url: str) -> str:
    """``url`` without its ``#fragment`` (an archive member's own name keeps any ``#``)."""
    page, sep, member = url.partition("::")
    return urldefrag(page).url + sep + member


def _load_path(raw: str, match: PathGlob | None, limits: LoadLimits) -> Iterator[Loaded]:
    path = _resolved(raw)
    source = str(path)
    if _undecodable(source):
        yield _undecodable_name(source, source)
        return
    try:
        info = path.stat()
    except FileNotFoundError:
        reason = f"no such file or directory (from {raw!r}); check the path"
        yield LoadIssue(source, reason, root=source)
        return
    except OSError as exc:
        yield LoadIssue(source, _os_reason(exc), root=source)
        return
    if stat.S_ISDIR(info.st_mode):
        yield from _load_directory(path, match, limits)
    elif path.suffix.lower() == ".zip" and stat.S_ISREG(info.st_mode):
        yield from load_zip(path, prefix=source, root=source, match=match, limits=limits)
    else:
        yield _load_file(path, info, root=source, limits=limits)


def _load_file(path: Path, info: os.stat_result, *, root: str, limits: LoadLimits) -> Loaded:
    """One regular file (not an archive), read with a bounded read."""
    source = str(path)
    fmt = format_for_name(path.name)
    if not stat.S_ISREG(info.st_mode):
        reason = "not a regular file (a device, pipe or socket); skipped"
        return LoadIssue(source, reason, skipped=True, root=root)
    if fmt is None:
        return not_a_document(source, path.name, root)
    if info.st_size > limits.max_file_bytes:
        reason = too_large(info.st_size, limits.max_file_bytes, "max_file_bytes")
        return LoadIssue(source, reason, root=root)
    try:
        with path.open("rb") as fh:
            data = fh.read(limits.max_file_bytes + 1)
    except OSError as exc:
        return LoadIssue(source, _os_reason(exc), root=root)
    if len(data) > limits.max_file_bytes:  # it grew since stat()
        reason = too_large(len(data), limits.max_file_bytes, "max_file_bytes")
        return LoadIssue(source, reason, root=root)
    return parse_or_issue(data, fmt, source=source, root=root, name=path.name)


def _load_directory(root: Path, match: PathGlob | None, limits: LoadLimits) -> Iterator[Loaded]:
    """Every selected file under ``root``; zip archives found there are read whole."""
    root_source = str(root)
    selected = 0
    for item in _walk(root):
        if isinstance(item, LoadIssue):
            yield item
            continue
        path, rel = item
        if match is not None and not match(rel):
            continue
        selected += 1
        try:
            info = path.stat()
        except OSError as exc:
            yield LoadIssue(str(path), _link_reason(path) or _os_reason(exc), root=root_source)
            continue
        if path.suffix.lower() == ".zip" and stat.S_ISREG(info.st_mode):
            yield from load_zip(path, prefix=str(path), root=root_source, match=None, limits=limits)
        else:
            yield _load_file(path, info, root=root_source, limits=limits)
    if not selected:
        yield nothing_selected(root_source, "directory", match, root_source)


def _walk(root: Path) -> Iterator[tuple[Path, str] | LoadIssue]:
    """Files under ``root`` as (path, relative posix path), sorted, skipping hidden names.

    Symlinked directories are followed, but each directory is visited once (no loops).
    A symlinked file whose target is a file of the walk itself is left out: the file is
    read under its own name (not twice, giving every search result twice).
    """
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        directory, rel = stack.pop()
        try:
            info = directory.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            yield LoadIssue(str(directory), _os_reason(exc), root=str(root))
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if _undecodable(entry.name):
                yield _undecodable_name(entry.path, str(root))
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append((Path(entry.path), f"{rel}{entry.name}/"))
            elif not (entry.is_symlink() and _walked_anyway(Path(entry.path), root)):
                yield Path(entry.path), f"{rel}{entry.name}"
        stack.extend(reversed(subdirs))


def _walked_anyway(link: Path, root: Path) -> bool:
    """Whether the file ``link`` points at is under ``root`` by a path without hidden
    names, so the walk reads it under its own name."""
    try:
        inside = link.resolve(strict=True).relative_to(root)
    except (OSError, RuntimeError, ValueError):  # dangling, a loop, or outside the root
        return False
    return not any(part.startswith(".") for part in inside.parts)


def _undecodable(name: str) -> bool:
    """Whether a file name holds bytes that are not UTF-8 (decoded as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _undecodable_name(path: str, root: str) -> LoadIssue:
    """The issue for a file or folder whose name is not UTF-8: it cannot be stored (Milvus
    keeps UTF-8 text) nor printed, so it is named with its odd bytes escaped."""
    shown = os.fsencode(path).decode("utf-8", "backslashreplace")
    reason = "the name is not valid UTF-8 (an old encoding?); rename it to index it"
    return LoadIssue(shown, reason, root=root)


def _link_reason(path: Path) -> str:
    """Why a symbolic link cannot be followed (broken, or a loop), or '' if it is none."""
    try:
        target = os.readlink(path)
    except OSError:
        return ""
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop so
        return "a symbolic link loop; fix or remove the link"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop; fix or remove the link"
        return f"a broken symbolic link (to {target!r}, which does not exist); fix or remove it"
    return ""


def _os_reason(exc: OSError) -> str:
    """An OS error without the path (the issue already names it)."""
    if isinstance(exc, PermissionError):
        return "permission denied; check the file's permissions"
    return f"cannot read: {exc.strerror or exc}"
