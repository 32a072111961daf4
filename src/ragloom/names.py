"""How a stored source is shown to users (``loaders.source_name`` makes the stored name).

Kept apart from the loaders so that the CLI and the server can show names without
importing the format parsers.
"""

from __future__ import annotations

import os
from pathlib import Path


def display_name(source: str) -> str:
    """A stored source as users know it: a path under the working directory relative to
    it (not from "/"), anything else as it is."""
    here = Path.cwd()
    prefix = str(here).rstrip(os.sep) + os.sep
    return source[len(prefix) :] if here.parent != here and source.startswith(prefix) else source
