"""``LoadLimits``: the size and time limits every loader reads under.

Its own module so that ``loaders``, ``archives`` and ``urls`` share it without importing
each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadLimits:
    """Size and time limits that keep a hostile or huge input from exhausting the machine."""

    max_file_bytes: int = 50 * 1024**2  # one file / archive member
    max_archive_bytes: int = 1024**3  # total uncompressed size of an archive
    max_download_bytes: int = 200 * 1024**2  # one URL
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


DEFAULT_LIMITS = LoadLimits()
