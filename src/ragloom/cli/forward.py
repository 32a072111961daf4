"""Searching through the ``ragloom serve`` that owns a Milvus Lite file.

Milvus Lite lets one process open a file, and a running ``ragloom serve`` keeps its file
open.  A ``ragloom search`` on that file then asks the server over HTTP instead of
failing: the answer is the same (same collection, same model), and it comes without
importing pymilvus or loading a model (a few hundred milliseconds instead of about two
seconds).  Only pymilvus-free modules are imported here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ragloom import lite
from ragloom.errors import ConfigError

API_KEY_ENV = "RAGLOOM_API_KEY"


def search_via_server(
    uri: str,
    collection: str,
    question: str,
    k: int,
    mode: str | None,
    where: str | None,
    sources: Sequence[str],
    timeout: float,
) -> tuple[str, list[dict[str, Any]]] | None:
    """``(server url, hits)`` from the ragloom server that owns ``uri`` and serves
    ``collection``, or None when there is none to ask (or it cannot be reached: the
    caller then opens the file itself and reports who holds it)."""
    if not lite.is_lite_uri(uri):
        return None
    try:
        found = lite.serving(uri)
    except ConfigError:
        return None
    if found is None or found[1] != collection:
        return None
    url = found[0]
    import httpx

    key = os.environ.get(API_KEY_ENV, "").strip()
    body: dict[str, Any] = {"query": question, "k": k, "sources": list(sources)}
    if mode:
        body["mode"] = mode
    if where:
        body["where"] = where
    try:
        response = httpx.post(
            f"{url}/v1/search",
            json=body,
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=timeout,
        )
    except httpx.HTTPError:
        return None
    if response.status_code in (401, 403):
        raise ConfigError(
            f"the ragloom server at {url} owns {uri} and needs its API key: set {API_KEY_ENV}"
            " to the key it was started with"
        )
    if response.status_code != 200:
        raise ConfigError(f"the ragloom server at {url} refused the search: {_message(response)}")
    hits: list[dict[str, Any]] = response.json().get("hits", [])
    return url, hits


def _message(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"
