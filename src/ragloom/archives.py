"""Zip archives -> Documents, member by member, in memory.

Nothing is ever extracted to disk, so a member named ``../x`` or ``/etc/x`` cannot
write anywhere; such members are refused all the same, since their names would
make misleading identities.  Zip bombs are refused before reading (declared sizes
against the limits, and the compression ratio of big members) and while reading
(every member is read with a bounded read, so a lying size header cannot exhaust
memory; zipfile's CRC check then reports the member as corrupt).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from ragloom.formats import format_for_name, not_a_document, parse_or_issue
from ragloom.globs import PathGlob, nothing_selected
from ragloom.limits import LoadLimits
from ragloom.types import Document, LoadIssue

MAX_RATIO = 100  # uncompressed / compressed; prose rarely passes 20
RATIO_MIN_BYTES = 1024**2  # small members may compress well without being bombs


def load_zip(
    file: Path | IO[bytes],
    *,
    prefix: str,
    root: str,
    match: PathGlob | None,
    limits: LoadLimits,
    hint: str = "",
) -> Iterator[Document | LoadIssue]:
    """An archive's selected members, and an issue if it gave none (see ``read_zip``)."""
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
        yield nothing_selected(prefix, "archive", match, root)


def read_zip(
    file: Path | IO[bytes],
    *,
    prefix: str,
    root: str,
    match: Callable[[str], bool] | None,
    max_file_bytes: int,
    max_archive_bytes: int,
    hint: str = "",
) -> Generator[Document | LoadIssue, None, bool]:
    """Yield the selected members of an archive (a path or a seekable file object).

    Member identities are ``f"{prefix}::{member}"``.  ``match`` selects members by
    their path inside the archive.  Returns False only if the archive was read and
    no member was selected, so the caller can say its glob matched nothing.
    """
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        yield LoadIssue(prefix, f"not a readable zip archive: {exc}{hint}", root=root)
        return True
    with archive:
        plan: list[tuple[zipfile.ZipInfo, str, str | LoadIssue]] = []
        declared_total = 0
        # A name stored twice is one document: the last copy, as extracting would leave it.
        # Zips made on Windows (PowerShell 5's Compress-Archive) separate with '\\'.
        latest = {info.filename.replace("\\", "/"): info for info in archive.infolist()}
        for name, info in sorted(latest.items()):
            if name.endswith("/") or is_hidden_member(name) or (match and not match(name)):
                continue
            checked = _check_member(info, f"{prefix}::{name}", root, max_file_bytes)
            plan.append((info, name, checked))
            if isinstance(checked, str):
                declared_total += info.file_size
        if not plan:
            return False
        if declared_total > max_archive_bytes:
            reason = too_large(declared_total, max_archive_bytes, "max_archive_bytes")
            yield LoadIssue(
                prefix, f"archive refused: {reason} uncompressed (a zip bomb?)", root=root
            )
            return True
        read_total = 0
        for info, name, checked in plan:
            if isinstance(checked, LoadIssue):
                yield checked
                continue
            source = f"{prefix}::{name}"
            data = _read_member(archive, info, source, root, max_file_bytes)
            if isinstance(data, LoadIssue):
                yield data
                continue
            read_total += len(data)
            if read_total > max_archive_bytes:
                reason = too_large(read_total, max_archive_bytes, "max_archive_bytes")
                yield LoadIssue(
                    prefix, f"archive stopped: {reason} uncompressed (a zip bomb?)", root=root
                )
                return True
            yield parse_or_issue(
                data, checked, source=source, root=root, name=PurePosixPath(name).name
            )
    return True


def _check_member(
    info: zipfile.ZipInfo, source: str, root: str, max_file_bytes: int
) -> str | LoadIssue:
    """The member's format if it may be read, else the issue that refuses or skips it."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name) or ".." in name.split("/"):
        return LoadIssue(
            source, "unsafe path in archive (absolute or with '..'); refused", root=root
        )
    if name.lower().endswith(".zip"):
        reason = "nested archive; skipped (extract it and pass it as a source itself)"
        return LoadIssue(source, reason, skipped=True, root=root)
    fmt = format_for_name(name)
    if fmt is None:
        return not_a_document(source, name, root)
    if info.flag_bits & 0x1:
        return LoadIssue(
            source, "encrypted archive member: it needs a password; refused", root=root
        )
    if info.file_size > max_file_bytes:
        return LoadIssue(
            source, too_large(info.file_size, max_file_bytes, "max_file_bytes"), root=root
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > RATIO_MIN_BYTES and ratio > MAX_RATIO:
        reason = f"suspicious compression ratio {ratio:.0f}:1 (a zip bomb?); refused"
        return LoadIssue(source, reason, root=root)
    return fmt


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, root: str, max_file_bytes: int
) -> bytes | LoadIssue:
    """A member's bytes, read with a bounded read, or the issue saying why not."""
    try:
        with archive.open(info) as fh:
            data = fh.read(max_file_bytes + 1)
    except NotImplementedError as exc:
        reason = f"unsupported compression ({exc}); re-create the archive with deflate"
        return LoadIssue(source, reason, root=root)
    except Exception as exc:  # zipfile raises many exception types on damaged data
        reason = f"corrupt archive member: {exc or type(exc).__name__}"
        return LoadIssue(source, reason, root=root)
    if len(data) > max_file_bytes:  # the size header lied
        return LoadIssue(source, too_large(len(data), max_file_bytes, "max_file_bytes"), root=root)
    return data


def is_hidden_member(name: str) -> bool:
    """Dot-files, dot-directories and macOS resource forks are not documents."""
    parts = name.replace("\\", "/").split("/")
    return parts[0] == "__MACOSX" or any(p.startswith(".") and p not in (".", "..") for p in parts)


# The LoadLimits as a user reads them: how to change the one that is a setting, and
# what the fixed ones are for (their field names mean nothing outside the code).
FILE_LIMIT_SETTING = "max_file_mb: RAGLOOM_MAX_FILE_MB or ragloom.toml"
_USER_SETTINGS = {
    "max_file_bytes": FILE_LIMIT_SETTING,
    "max_download_bytes": "ragloom's limit for one download",
    "max_archive_bytes": "ragloom's limit for an archive's unpacked size",
}


def limit_name(setting: str) -> str:
    """A LoadLimits field as a user reads it."""
    return _USER_SETTINGS.get(setting, setting)


def too_large(size: int, limit: int, setting: str) -> str:
    """The reason for refusing something bigger than a LoadLimits setting."""
    return f"too large: {size} bytes, over the limit of {limit} ({limit_name(setting)})"
