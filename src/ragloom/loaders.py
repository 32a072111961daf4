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
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import unquote, urlsplit

import httpx

from ragloom.archives import read_zip, too_large
from ragloom.errors import SourceError
from ragloom.formats import (
    format_for_content_type,
    format_for_name,
    not_a_document,
    parse_or_issue,
)
from ragloom.types import Document, LoadIssue

__all__ = ["DEFAULT_LIMITS", "LoadLimits", "PathGlob", "load_sources", "source_name"]

USER_AGENT = "ragloom/0.1"
Loaded = Document | LoadIssue

_ZIP_MEDIA_TYPES = frozenset(
    {"application/zip", "application/x-zip-compressed", "application/x-zip"}
)
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class LoadLimits:
    """Size and time limits that keep a hostile or huge input from exhausting the machine."""

    max_file_bytes: int = 50 * 1024**2  # one file / archive member
    max_archive_bytes: int = 1024**3  # total uncompressed size of an archive
    max_download_bytes: int = 200 * 1024**2  # one URL
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


DEFAULT_LIMITS = LoadLimits()


def load_sources(
    sources: Sequence[str], glob: str | None = None, limits: LoadLimits = DEFAULT_LIMITS
) -> Iterator[Document | LoadIssue]:
    """Yield documents, and issues for inputs that produced none; never raises for a bad input.

    ``glob`` selects files inside directories and archives (see ``PathGlob``); a
    file named directly, or a URL page, is always loaded.
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
            yield from _load_url(source, match, limits)
        elif scheme:
            reason = f"unsupported URL scheme '{scheme.group(1)}'; use http(s):// or a local path"
            yield LoadIssue(source, reason, root=source)
        else:
            yield from _load_path(source, match, limits)


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


# --- local paths ----------------------------------------------------------------------


def _resolved(raw: str) -> Path:
    path = Path(raw).expanduser()
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return path.absolute()


def source_name(raw: str) -> str:
    """The source a path given by a user is stored under (absolute, symlinks resolved;
    ``docs.zip::en/a.md`` names a member); a URL as it is."""
    if _URL_SCHEME.match(raw):
        return raw
    path, sep, member = raw.partition("::")
    return str(_resolved(path)) + sep + member


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
        yield from _load_zip(path, prefix=source, root=source, match=match, limits=limits)
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
            yield from _load_zip(
                path, prefix=str(path), root=root_source, match=None, limits=limits
            )
        else:
            yield _load_file(path, info, root=root_source, limits=limits)
    if not selected:
        yield _nothing_selected(root_source, "directory", match, root_source)


def _walk(root: Path) -> Iterator[tuple[Path, str] | LoadIssue]:
    """Files under ``root`` as (path, relative posix path), sorted, skipping hidden names.

    Symlinked directories are followed, but each directory is visited once (no loops).
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
            else:
                yield Path(entry.path), f"{rel}{entry.name}"
        stack.extend(reversed(subdirs))


def _load_zip(
    file: Path | IO[bytes],
    *,
    prefix: str,
    root: str,
    match: PathGlob | None,
    limits: LoadLimits,
    hint: str = "",
) -> Iterator[Loaded]:
    """An archive's selected members (see ``ragloom.archives``)."""
    selected = yield from read_zip(
        file,
        prefix=prefix,
        root=root,
        match=match,
        max_file_bytes=limits.max_file_bytes,
        max_archive_bytes=limits.max_archive_bytes,
        hint=hint,
    )
    if not selected:
        yield _nothing_selected(prefix, "archive", match, root)


# --- URLs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Download:
    """What a finished download is, to decide how to read its body."""

    final_url: str
    media_type: str
    charset: str | None
    is_zip: bool


def _load_url(url: str, match: PathGlob | None, limits: LoadLimits) -> Iterator[Loaded]:
    """A page (by Content-Type, then extension) or a zip archive (read like a local one)."""
    with tempfile.TemporaryFile() as body:
        try:
            download = _download(url, limits, body)
        except SourceError as exc:
            yield LoadIssue(url, exc.reason, root=url)
            return
        body.seek(0)
        if download.is_zip:
            hint = f" (the server sent {download.media_type})" if download.media_type else ""
            yield from _load_zip(body, prefix=url, root=url, match=match, limits=limits, hint=hint)
            return
        split = urlsplit(download.final_url)
        name = PurePosixPath(unquote(split.path)).name or split.hostname or url
        fmt = format_for_content_type(download.media_type, name)
        if fmt is None and body.read(5) == b"%PDF-":
            fmt = "pdf"  # a download link (/download?id=3) sent as application/octet-stream
        body.seek(0)
        if fmt is None:
            kind = download.media_type or "no Content-Type"
            yield LoadIssue(url, f"not a document ({kind}); skipped", skipped=True, root=url)
            return
        data = body.read()
    yield parse_or_issue(data, fmt, source=url, root=url, name=name, charset=download.charset)


def _download(url: str, limits: LoadLimits, sink: IO[bytes]) -> _Download:
    """Stream ``url`` into ``sink``, aborting once it passes its size limit.

    Raises SourceError for HTTP errors, transport failures and oversize bodies.
    Pages are limited by the smaller of max_download_bytes and max_file_bytes;
    archives by max_download_bytes (their members are checked when read).
    """
    timeout = httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout)
    headers = {"User-Agent": USER_AGENT}
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True, headers=headers) as client,
            client.stream("GET", url) as response,
        ):
            if not response.is_success:
                code = response.status_code
                phrase = response.reason_phrase or httpx.codes.get_reason_phrase(code)
                raise SourceError(url, f"HTTP {code} {phrase}".rstrip())
            media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            final_url = str(response.url)
            is_zip = media_type in _ZIP_MEDIA_TYPES or any(
                urlsplit(u).path.lower().endswith(".zip") for u in (url, final_url)
            )
            limit, setting = limits.max_download_bytes, "max_download_bytes"
            if not is_zip and limits.max_file_bytes < limit:
                limit, setting = limits.max_file_bytes, "max_file_bytes"
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise SourceError(
                    url, f"download refused: {too_large(int(declared), limit, setting)}"
                )
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > limit:
                    raise SourceError(url, f"download aborted: over {limit} bytes ({setting})")
                sink.write(chunk)
            return _Download(final_url, media_type, response.charset_encoding, is_zip)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise SourceError(url, _http_reason(exc, limits)) from None


def _http_reason(exc: Exception, limits: LoadLimits) -> str:
    """A transport failure as a sentence with what to do about it."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connection timed out after {limits.connect_timeout:g}s (connect_timeout)"
    if isinstance(exc, httpx.ReadTimeout):
        return f"timed out: no data for {limits.read_timeout:g}s (read_timeout); try again later"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({exc})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc}); check the URL and your network"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return f"invalid URL ({exc})"
    return f"download failed ({type(exc).__name__}: {exc})"


# --- shared ---------------------------------------------------------------------------


def _nothing_selected(source: str, kind: str, match: PathGlob | None, root: str) -> LoadIssue:
    """The issue for a directory or archive that gave nothing to read.

    An empty one was read, and found empty: a notice, so that the documents ingested
    from it before are removed like those of any folder that lost files.  A glob that
    selects nothing is more likely a mistyped pattern: a failure, which removes nothing.
    """
    if match is None:
        return LoadIssue(source, f"empty {kind}: no files to index", skipped=True, root=root)
    reason = (
        f"no files in this {kind} match the glob {match.pattern!r}; "
        f"check the pattern (it is matched against paths relative to the {kind})"
    )
    return LoadIssue(source, reason, root=root)


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
