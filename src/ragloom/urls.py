"""http(s) URLs -> Documents: a page, or a zip archive read like a local one.

A body is streamed to a temporary file and cut off at its size limit, so a huge or
endless response cannot exhaust the machine.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO
from urllib.parse import unquote, urlsplit

import httpx

from ragloom.archives import limit_name, load_zip, too_large
from ragloom.errors import SourceError
from ragloom.formats import format_for_content_type, parse_or_issue, skip_reason
from ragloom.globs import PathGlob
from ragloom.limits import LoadLimits
from ragloom.types import Document, LoadIssue

USER_AGENT = "ragloom/0.1"

_ZIP_MEDIA_TYPES = frozenset(
    {"application/zip", "application/x-zip-compressed", "application/x-zip"}
)


@dataclass(frozen=True)
class _Download:
    """What a finished download is, to decide how to read its body."""

    final_url: str
    media_type: str
    charset: str | None
    is_zip: bool


def load_url(
    url: str, match: PathGlob | None, limits: LoadLimits, stop: threading.Event | None = None
) -> Iterator[Document | LoadIssue]:
    """A page (by Content-Type, then extension) or a zip archive (read like a local one)."""
    with tempfile.TemporaryFile() as body:
        try:
            download = _download(url, limits, body, stop)
        except SourceError as exc:
            yield LoadIssue(url, exc.reason, root=url)
            return
        body.seek(0)
        if download.is_zip:
            hint = f" (the server sent {download.media_type})" if download.media_type else ""
            yield from load_zip(body, prefix=url, root=url, match=match, limits=limits, hint=hint)
            return
        split = urlsplit(download.final_url)
        name = PurePosixPath(unquote(split.path)).name or split.hostname or url
        fmt = format_for_content_type(download.media_type, name)
        if fmt is None and body.read(5) == b"%PDF-":
            fmt = "pdf"  # a download link (/download?id=3) sent as application/octet-stream
        body.seek(0)
        if fmt is None:
            kind = download.media_type or "no Content-Type"
            yield LoadIssue(url, skip_reason(kind), skipped=True, root=url)
            return
        data = body.read()
    yield parse_or_issue(data, fmt, source=url, root=url, name=name, charset=download.charset)


#: The slowest a download may go, in bytes a second, over each read-timeout window.
_SLOWEST = 1024


def _download(
    url: str, limits: LoadLimits, sink: IO[bytes], stop: threading.Event | None = None
) -> _Download:
    """Stream ``url`` into ``sink``, aborting once it passes its size limit.

    Raises SourceError for HTTP errors, transport failures and oversize bodies.
    Pages are limited by the smaller of max_download_bytes and max_file_bytes;
    archives by max_download_bytes (their members are checked when read).  A set
    ``stop`` ends the download at its next block.  A server that trickles (never silent
    for the read timeout, yet under ``_SLOWEST`` bytes a second over each window of the
    read timeout) is given up on: it held an ingest for ever.
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
            received, window_start, window_bytes = 0, time.monotonic(), 0
            for chunk in response.iter_bytes():
                if stop is not None and stop.is_set():
                    raise SourceError(url, "download stopped (interrupted)")
                received += len(chunk)
                window_bytes += len(chunk)
                if (spent := time.monotonic() - window_start) >= limits.read_timeout:
                    if window_bytes < _SLOWEST * spent:
                        raise SourceError(
                            url,
                            f"the server sent {window_bytes} bytes in {spent:.0f} s (under"
                            f" {_SLOWEST} bytes a second): too slow to finish; try again"
                            " later, or download the file and ingest it from disk",
                        )
                    window_start, window_bytes = time.monotonic(), 0
                if received > limit:
                    raise SourceError(
                        url, f"download aborted: over {limit} bytes ({limit_name(setting)})"
                    )
                sink.write(chunk)
            return _Download(final_url, media_type, response.charset_encoding, is_zip)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise SourceError(url, _http_reason(exc, limits)) from None


def _http_reason(exc: Exception, limits: LoadLimits) -> str:
    """A transport failure as a sentence with what to do about it."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connection timed out after {limits.connect_timeout:g}s; check the address"
    if isinstance(exc, httpx.ReadTimeout):
        return f"timed out: no data for {limits.read_timeout:g}s; try again later"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({exc})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc}); check the URL and your network"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return f"invalid URL ({exc})"
    return f"download failed ({type(exc).__name__}: {exc})"
