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

import logging
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import unquote, urlsplit

import httpx

from ragloom.errors import SourceError
from ragloom.formats import format_for_content_type, format_for_name, parse_document
from ragloom.types import Document, LoadIssue

__all__ = ["DEFAULT_LIMITS", "LoadLimits", "compile_glob", "load_sources"]

logger = logging.getLogger(__name__)

USER_AGENT = "ragloom/0.1"
Loaded = Document | LoadIssue
GlobMatch = Callable[[str], bool]

_ZIP_MEDIA_TYPES = frozenset({"application/zip", "application/x-zip-compressed", "application/x-zip"})
_MAX_RATIO = 100  # uncompressed / compressed; plain text rarely passes 20
_RATIO_MIN_BYTES = 1024**2  # small members may compress well without being bombs
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

    ``glob`` selects files inside directories and archives (see ``compile_glob``); a
    file named directly, or a URL page, is always loaded.
    """
    match = compile_glob(glob) if glob else None
    for raw in sources:
        source = raw.strip()
        scheme = _URL_SCHEME.match(source)
        if scheme and scheme.group(1).lower() in ("http", "https"):
            yield from _load_url(source, match, limits)
        elif scheme:
            yield LoadIssue(source, f"unsupported URL scheme '{scheme.group(1)}'; use http(s)://")
        else:
            yield from _load_path(source, match, limits)


def compile_glob(pattern: str) -> GlobMatch:
    """A matcher for '/'-separated relative paths, with gitignore-like semantics.

    ``*``, ``?`` and ``[...]`` never cross ``/``; a ``**`` component matches zero or
    more directories (``**/*.md`` also matches ``a.md``; ``en/**`` matches everything
    under ``en/``).  A pattern without ``/`` matches the file name at any depth
    (``*.md``), like gitignore and ``find -name``.  Matching is case-sensitive.
    """
    pattern = pattern.strip().removeprefix("./").lstrip("/")
    if "/" not in pattern:
        name_regex = re.compile(_translate_component(pattern.replace("**", "*")))
        return lambda path: name_regex.fullmatch(path.rsplit("/", 1)[-1]) is not None
    parts = pattern.split("/")
    regex = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _translate_component(part.replace("**", "*")) + ("" if last else "/")
    compiled = re.compile(regex, re.DOTALL)
    return lambda path: compiled.fullmatch(path) is not None


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
        elif char == "[" and (end := part.find("]", i + 1 if part[i : i + 1] in "!]" else i)) > 0:
            body = part[i:end]
            negate = body.startswith("!")
            body = re.sub(r"([\\^\]])", r"\\\1", body[1:] if negate else body)
            out.append(f"[{'^/' if negate else ''}{body}]")
            i = end + 1
        else:
            out.append(re.escape(char))
    return "".join(out)


# --- local paths ----------------------------------------------------------------------


def _load_path(raw: str, match: GlobMatch | None, limits: LoadLimits) -> Iterator[Loaded]:
    path = Path(raw).expanduser()
    try:
        path = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        path = path.absolute()
    source = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        yield LoadIssue(source, f"no such file or directory (from {raw!r}); check the path")
        return
    except OSError as exc:
        yield LoadIssue(source, _os_reason(exc))
        return
    if stat.S_ISDIR(info.st_mode):
        yield from _load_directory(path, match, limits)
    elif path.suffix.lower() == ".zip":
        yield from _load_zip(path, prefix=source, root=source, match=match, limits=limits)
    else:
        yield _load_file(path, info, root=source, limits=limits)


def _load_file(path: Path, info: os.stat_result, *, root: str, limits: LoadLimits) -> Loaded:
    """One regular file (not an archive), read with a bounded read."""
    source = str(path)
    fmt = format_for_name(path.name)
    if not stat.S_ISREG(info.st_mode):
        return LoadIssue(source, "not a regular file (a device, pipe or socket); skipped", True)
    if fmt is None:
        return _not_a_document(source, path.name)
    if info.st_size > limits.max_file_bytes:
        return LoadIssue(source, _too_large(info.st_size, limits.max_file_bytes, "max_file_bytes"))
    try:
        with path.open("rb") as fh:
            data = fh.read(limits.max_file_bytes + 1)
    except OSError as exc:
        return LoadIssue(source, _os_reason(exc))
    if len(data) > limits.max_file_bytes:  # it grew since stat()
        return LoadIssue(source, _too_large(len(data), limits.max_file_bytes, "max_file_bytes"))
    return _parse(data, fmt, source=source, root=root, name=path.name)


def _load_directory(root: Path, match: GlobMatch | None, limits: LoadLimits) -> Iterator[Loaded]:
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
            yield LoadIssue(str(path), _os_reason(exc))
            continue
        if path.suffix.lower() == ".zip" and stat.S_ISREG(info.st_mode):
            yield from _load_zip(path, prefix=str(path), root=root_source, match=None, limits=limits)
        else:
            yield _load_file(path, info, root=root_source, limits=limits)
    if not selected:
        yield LoadIssue(root_source, _nothing_selected("directory", match))


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
            yield LoadIssue(str(directory), _os_reason(exc))
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
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


# --- zip archives ---------------------------------------------------------------------


def _load_zip(
    file: Path | IO[bytes],
    *,
    prefix: str,
    root: str,
    match: GlobMatch | None,
    limits: LoadLimits,
    hint: str = "",
) -> Iterator[Loaded]:
    """Open an archive (a path or a file object) and yield its selected members."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        yield LoadIssue(prefix, f"not a readable zip archive: {exc}{hint}")
        return
    with archive:
        yield from _zip_members(archive, prefix=prefix, root=root, match=match, limits=limits)


def _zip_members(
    archive: zipfile.ZipFile,
    *,
    prefix: str,
    root: str,
    match: GlobMatch | None,
    limits: LoadLimits,
) -> Iterator[Loaded]:
    """Check every selected member against the limits first, then read them one by one."""
    plan: list[tuple[zipfile.ZipInfo, str | LoadIssue]] = []
    declared_total = 0
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        name = info.filename
        if info.is_dir() or _hidden_member(name) or (match is not None and not match(name)):
            continue
        checked = _check_member(info, f"{prefix}::{name}", limits)
        plan.append((info, checked))
        if isinstance(checked, str):
            declared_total += info.file_size
    if not plan:
        yield LoadIssue(prefix, _nothing_selected("archive", match))
        return
    if declared_total > limits.max_archive_bytes:
        reason = _too_large(declared_total, limits.max_archive_bytes, "max_archive_bytes")
        yield LoadIssue(prefix, f"archive refused: {reason} uncompressed (a zip bomb?)")
        return
    read_total = 0
    for info, checked in plan:
        if isinstance(checked, LoadIssue):
            yield checked
            continue
        source = f"{prefix}::{info.filename}"
        try:
            with archive.open(info) as fh:
                data = fh.read(limits.max_file_bytes + 1)
        except NotImplementedError as exc:
            yield LoadIssue(source, f"unsupported compression ({exc}); re-create it with deflate")
            continue
        except Exception as exc:  # zipfile raises many types on damaged data
            yield LoadIssue(source, f"corrupt archive member: {exc or type(exc).__name__}")
            continue
        if len(data) > limits.max_file_bytes:  # the size header lied
            yield LoadIssue(source, _too_large(len(data), limits.max_file_bytes, "max_file_bytes"))
            continue
        read_total += len(data)
        if read_total > limits.max_archive_bytes:
            reason = _too_large(read_total, limits.max_archive_bytes, "max_archive_bytes")
            yield LoadIssue(prefix, f"archive stopped: {reason} uncompressed (a zip bomb?)")
            return
        name = PurePosixPath(info.filename.replace("\\", "/")).name
        yield _parse(data, checked, source=source, root=root, name=name)


def _check_member(info: zipfile.ZipInfo, source: str, limits: LoadLimits) -> str | LoadIssue:
    """The member's format if it may be read, else the issue that refuses or skips it."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name) or ".." in name.split("/"):
        return LoadIssue(source, "unsafe path in archive (absolute or with '..'); refused")
    if name.lower().endswith(".zip"):
        return LoadIssue(source, "nested archive; skipped (extract it and pass it itself)", True)
    fmt = format_for_name(name)
    if fmt is None:
        return _not_a_document(source, name)
    if info.flag_bits & 0x1:
        return LoadIssue(source, "encrypted archive member: it needs a password; refused")
    if info.file_size > limits.max_file_bytes:
        return LoadIssue(source, _too_large(info.file_size, limits.max_file_bytes, "max_file_bytes"))
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > _RATIO_MIN_BYTES and ratio > _MAX_RATIO:
        return LoadIssue(
            source, f"suspicious compression ratio {ratio:.0f}:1 (a zip bomb?); refused"
        )
    return fmt


def _hidden_member(name: str) -> bool:
    """Dot-files, dot-directories and macOS resource forks are not documents."""
    parts = name.replace("\\", "/").split("/")
    return parts[0] == "__MACOSX" or any(p.startswith(".") and p not in (".", "..") for p in parts)


# --- URLs -----------------------------------------------------------------------------


@dataclass
class _Download:
    """A finished download: the body in a temporary file, and how to read it."""

    final_url: str
    media_type: str
    charset: str | None
    is_zip: bool
    body: IO[bytes]


def _load_url(url: str, match: GlobMatch | None, limits: LoadLimits) -> Iterator[Loaded]:
    """A page (by Content-Type, then extension) or a zip archive (read like a local one)."""
    try:
        download = _download(url, limits)
    except SourceError as exc:
        yield LoadIssue(url, exc.reason)
        return
    with download.body:
        if download.is_zip:
            hint = f" (the server sent {download.media_type})" if download.media_type else ""
            yield from _load_zip(
                download.body, prefix=url, root=url, match=match, limits=limits, hint=hint
            )
            return
        split = urlsplit(download.final_url)
        name = PurePosixPath(unquote(split.path)).name or split.hostname or url
        fmt = format_for_content_type(download.media_type, name)
        if fmt is None:
            yield LoadIssue(url, f"not a document ({download.media_type or 'no type'}); skipped", True)
            return
        data = download.body.read()
        yield _parse(data, fmt, source=url, root=url, name=name, charset=download.charset)


def _download(url: str, limits: LoadLimits) -> _Download:
    """Stream ``url`` into a temporary file, aborting once it passes its size limit."""
    timeout = httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout)
    body = tempfile.TemporaryFile()
    try:
        with (
            httpx.Client(
                timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT}
            ) as client,
            client.stream("GET", url) as response,
        ):
            if not response.is_success:
                phrase = response.reason_phrase or httpx.codes.get_reason_phrase(
                    response.status_code
                )
                raise SourceError(url, f"HTTP {response.status_code} {phrase}".rstrip())
            content_type = response.headers.get("content-type", "")
            media_type = content_type.split(";")[0].strip().lower()
            final_url = str(response.url)
            is_zip = media_type in _ZIP_MEDIA_TYPES or any(
                urlsplit(u).path.lower().endswith(".zip") for u in (url, final_url)
            )
            limit, limit_name = limits.max_download_bytes, "max_download_bytes"
            if not is_zip and limits.max_file_bytes < limit:
                limit, limit_name = limits.max_file_bytes, "max_file_bytes"
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                reason = _too_large(int(declared), limit, limit_name)
                raise SourceError(url, f"download refused: {reason}")
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > limit:
                    raise SourceError(url, f"download aborted: larger than {limit} bytes ({limit_name})")
                body.write(chunk)
    except SourceError:
        body.close()
        raise
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        body.close()
        raise SourceError(url, _http_reason(exc, limits)) from None
    body.seek(0)
    return _Download(final_url, media_type, response.charset_encoding, is_zip, body)


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


def _parse(
    data: bytes, fmt: str, *, source: str, root: str, name: str, charset: str | None = None
) -> Loaded:
    """Parse bytes into a Document, or the LoadIssue saying why that failed."""
    try:
        return parse_document(data, fmt, source=source, root=root, name=name, charset=charset)
    except SourceError as exc:
        return LoadIssue(source, exc.reason)
    except Exception as exc:  # a parser bug on one odd file must not stop the ingest
        logger.debug("unexpected error parsing %s", source, exc_info=True)
        return LoadIssue(
            source,
            f"could not be parsed ({type(exc).__name__}: {exc}); please report this ragloom bug",
        )


def _not_a_document(source: str, name: str) -> LoadIssue:
    suffix = PurePosixPath(name).suffix.lower()
    what = suffix if suffix else "no file extension"
    return LoadIssue(source, f"not a document ({what}); skipped", skipped=True)


def _too_large(size: int, limit: int, setting: str) -> str:
    return f"too large: {size} bytes, over the limit of {limit} ({setting})"


def _nothing_selected(kind: str, match: GlobMatch | None) -> str:
    if match is None:
        return f"empty {kind}: no files to index"
    return f"no files in this {kind} match the glob; check the pattern (paths are relative to it)"


def _os_reason(exc: OSError) -> str:
    """An OS error without the path (the issue already names it)."""
    if isinstance(exc, PermissionError):
        return "permission denied; check the file's permissions"
    return f"cannot read: {exc.strerror or exc}"
