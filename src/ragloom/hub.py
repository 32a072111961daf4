"""Models named by a Hugging Face Hub id: read from the local cache when they are there,
fetched only when the Hub answers.

sentence-transformers asks the Hub about a model even when its files are cached, and on a
machine without the network it retries each request for most of a minute before it
fails.  So ragloom looks in the Hugging Face cache first (a cached model then loads like
a local folder, with no network at all), and for a model that is not cached it checks
once, within a few seconds, that the Hub can be reached, and otherwise fails at once
with a message that says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

REACH_TIMEOUT = 3.0  # seconds to wait for the Hub before calling it unreachable
_WEIGHTS = ("*.safetensors", "*.bin", "*.onnx")


def endpoint() -> str:
    """The Hub's address (``HF_ENDPOINT``, as huggingface_hub reads it)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def offline() -> bool:
    """True when the user switched the Hub off (``HF_HUB_OFFLINE``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _repo_ids(model: str) -> list[str]:
    # sentence-transformers reads a bare name as one of its own models.
    return [model] if "/" in model else [model, f"sentence-transformers/{model}"]


def cached_model(model: str) -> Path | None:
    """The folder of ``model``'s files in the Hugging Face cache, when it is complete
    enough to load (a config and weights), else None."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    for repo_id in _repo_ids(model):
        try:
            folder = Path(snapshot_download(repo_id, local_files_only=True))
        except Exception:  # not cached (or a cache huggingface_hub cannot read)
            continue
        has_weights = any(next(folder.rglob(pattern), None) for pattern in _WEIGHTS)
        if (folder / "config.json").is_file() and has_weights:
            return folder
    return None


def reachable(timeout: float = REACH_TIMEOUT) -> bool:
    """Whether the Hub answers at all within ``timeout`` seconds."""
    import httpx

    try:
        httpx.head(endpoint(), timeout=timeout)
    except httpx.HTTPError:
        return False
    return True


class ModelUnavailable(Exception):
    """The model's weights are neither on this machine nor to be had from the Hub."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load(model: str, build: Callable[[str, bool], T]) -> T:
    """``build(source, local_only)`` for ``model`` (a folder, or a Hub id): from the folder
    or the Hugging Face cache with ``local_only``, else from the Hub when it answers.
    Raises ``ModelUnavailable`` with the reason when neither works."""
    path = Path(model).expanduser()
    local = path if path.exists() else cached_model(model)
    reason = None
    if local is None and not offline() and not reachable():
        # Offline (HF_HUB_OFFLINE), the loader itself says what is missing, at once.
        reason = (
            f"it is not in the Hugging Face cache, and the Hub ({endpoint()}) did not answer"
            f" within {REACH_TIMEOUT:.0f} s"
        )
    if reason is None:
        try:
            return build(str(local or model), local is not None)
        except (OSError, ValueError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    raise ModelUnavailable(reason)
