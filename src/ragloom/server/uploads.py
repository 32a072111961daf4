"""Uploaded documents: request size limits, safe names, archives checked before a job.

Uploads are checked as they arrive.  A request is refused whole when it is too large,
has too many files or one name twice; a file is refused on its own (the others go on)
when its name is not a plain file name of a supported kind, it is empty or too large, or
it is an archive that cannot be read or has a member whose path is absolute or climbs
out with ``..``.  Reading them is the loaders' job (``ragloom.loaders`` /
``ragloom.archives``: bounded reads, zip-bomb checks), once the ingest job runs.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import anyio
from fastapi import HTTPException, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragloom.archives import FILE_LIMIT_SETTING, is_hidden_member
from ragloom.formats import format_for_name
from ragloom.loaders import DEFAULT_LIMITS, LoadLimits
from ragloom.server.errors import error_response

MiB = 1024**2
_COPY_BLOCK = 1024 * 1024
SUPPORTED = "markdown (.md), text (.txt), HTML (.html) and PDF (.pdf) files, or a .zip of them"


@dataclass(frozen=True)
class UploadLimits:
    """How much one request may send.

    ``max_request_bytes`` bounds an ingest request (all its files); ``max_json_bytes``
    any other request body.  ``load`` are the limits applied when documents are read
    (``max_file_bytes`` also bounds each uploaded document that is not an archive).
    """

    max_request_bytes: int = 100 * MiB
    max_json_bytes: int = 1 * MiB
    max_files: int = 100
    max_archive_members: int = 10_000
    load: LoadLimits = field(default_factory=lambda: DEFAULT_LIMITS)


@dataclass(frozen=True)
class Refused:
    """An uploaded file refused on its own: its name, the HTTP status and why."""

    name: str
    status: int
    error: str

    def to_dict(self) -> dict[str, str]:
        """As an ingest report lists what it could not read."""
        return {"source": self.name, "name": self.name, "error": self.error}


@dataclass(frozen=True)
class StagedFile:
    """An uploaded file saved in the staging folder; ``documents`` it is expected to hold."""

    name: str
    path: Path
    documents: int


def too_large(what: str, size: int, limit: int, hint: str) -> HTTPException:
    """413 for ``what`` of ``size`` bytes over ``limit``."""
    return HTTPException(
        413, f"{what} is too large: {size} bytes, over the limit of {limit} bytes ({hint})"
    )


class BodyLimit:
    """ASGI middleware: refuse request bodies over the limits (413), even without a
    Content-Length (the bytes are counted as they arrive)."""

    def __init__(self, app: ASGIApp, limits: UploadLimits, upload_paths: tuple[str, ...]) -> None:
        self.app = app
        self.limits = limits
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["path"] in self.upload_paths
        limit = self.limits.max_request_bytes if upload else self.limits.max_json_bytes
        hint = "the server's --max-upload-mb" if upload else "requests other than uploads"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            refusal = too_large("the request", int(declared), limit, hint)
            await error_response(413, str(refusal.detail))(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large("the request", received, limit, hint)
            return message

        await self.app(scope, counted, send)


_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f]|::")


def safe_name(raw: str | None) -> str:
    """An uploaded file's name, if it is a plain file name of a supported kind (else 400/415)."""
    name = (raw or "").strip()
    if not name:
        raise HTTPException(400, "an uploaded file has no name")
    if _UNSAFE_NAME.search(name) or name.startswith(".") or len(name.encode()) > 255:
        raise HTTPException(
            400,
            f"unsafe file name {raw!r}: upload plain file names (no folders, no '..', not hidden)",
        )
    if not name.lower().endswith(".zip") and format_for_name(name) is None:
        raise HTTPException(415, f"{name}: not a document ragloom reads; send {SUPPORTED}")
    return name


def unsafe_member(name: str) -> bool:
    """An archive member path that is absolute or climbs out of the archive."""
    posix = name.replace("\\", "/")
    return (
        posix.startswith("/")
        or re.match(r"[A-Za-z]:", posix) is not None
        or ".." in posix.split("/")
        or "\x00" in posix
    )


def check_archive(path: Path, name: str, limits: UploadLimits) -> int:
    """Refuse an archive with unsafe or too many members; return how many documents it has."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise HTTPException(400, f"{name}: not a readable zip archive ({exc})") from None
    if len(members) > limits.max_archive_members:
        raise HTTPException(
            413,
            f"{name}: {len(members)} members, over the limit of {limits.max_archive_members}",
        )
    for info in members:
        if unsafe_member(info.filename):
            raise HTTPException(
                400,
                f"{name}: unsafe member path {info.filename!r} (absolute or with '..');"
                " the archive is refused, nothing in it was ingested",
            )
    declared = sum(info.file_size for info in members)
    if declared > limits.load.max_archive_bytes:
        raise too_large(
            f"{name} (uncompressed)", declared, limits.load.max_archive_bytes, "a zip bomb?"
        )
    return sum(
        1
        for info in members
        if not info.is_dir()
        and not is_hidden_member(info.filename)
        and format_for_name(PurePosixPath(info.filename.replace("\\", "/")).name) is not None
    )


async def stage_uploads(
    files: list[UploadFile], staging: Path, limits: UploadLimits
) -> tuple[list[StagedFile], list[Refused]]:
    """Save ``files`` into ``staging`` (created), checked: those kept, and those refused
    on their own.  When every file is refused, so is the request (nothing is kept)."""
    if not files:
        raise HTTPException(400, f"no file uploaded: send {SUPPORTED} as multipart 'files'")
    if len(files) > limits.max_files:
        raise HTTPException(413, f"{len(files)} files, over the limit of {limits.max_files}")
    named: list[tuple[int, UploadFile, str]] = []
    refused: list[tuple[int, Refused]] = []  # by their place in the upload
    for n, upload in enumerate(files):
        try:
            named.append((n, upload, safe_name(upload.filename)))
        except HTTPException as exc:
            refused.append((n, Refused(upload.filename or "", exc.status_code, str(exc.detail))))
    names = [name for _, _, name in named]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise HTTPException(400, f"the same file name twice: {', '.join(duplicates)}")
    staging.mkdir(parents=True, exist_ok=True)
    staged = []
    try:
        for n, upload, name in named:
            try:
                staged.append(await _stage(upload, staging / name, limits))
            except HTTPException as exc:
                (staging / name).unlink(missing_ok=True)
                refused.append((n, Refused(name, exc.status_code, str(exc.detail))))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    ordered = [r for _, r in sorted(refused, key=lambda pair: pair[0])]
    if not staged:
        shutil.rmtree(staging, ignore_errors=True)
        raise HTTPException(ordered[0].status, "; ".join(r.error for r in ordered))
    return staged, ordered


async def _stage(upload: UploadFile, target: Path, limits: UploadLimits) -> StagedFile:
    """Copy one upload to ``target`` and check it (HTTPException when refused)."""
    name = target.name
    is_zip = name.lower().endswith(".zip")
    limit = limits.max_request_bytes if is_zip else limits.load.max_file_bytes
    size = 0
    with target.open("wb") as out:
        while block := await upload.read(_COPY_BLOCK):
            size += len(block)
            if size > limit:  # said with the file's whole size when the client sent it
                hint = "--max-upload-mb" if is_zip else FILE_LIMIT_SETTING
                raise too_large(name, max(size, upload.size or 0), limit, hint)
            await anyio.to_thread.run_sync(out.write, block)
    if size == 0:
        raise HTTPException(400, f"{name} is empty")
    documents = 1
    if is_zip:
        documents = await anyio.to_thread.run_sync(check_archive, target, name, limits)
    return StagedFile(name, target, documents)
