"""Searching and asking through the ``ragloom serve`` that owns a Milvus Lite file.

Milvus Lite lets one process open a file, and a running ``ragloom serve`` keeps its file
open.  ``ragloom search``, ``ask`` and ``chat`` on that file then ask the server over
HTTP instead of failing: the result is the same (same collection, same models), and it
comes without importing pymilvus or loading a model (a few hundred milliseconds instead
of about two seconds).  Only pymilvus-free modules are imported here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ragloom import lite
from ragloom.errors import ConfigError, ProviderError

if TYPE_CHECKING:
    from ragloom.config import Settings
    from ragloom.types import Answer

API_KEY_ENV = "RAGLOOM_API_KEY"


def locate(uri: str | None, collection: str | None) -> tuple[Settings, str] | None:
    """The settings (``uri``/``collection`` None: not given) and the URL of the ragloom
    server that owns their Milvus Lite file and serves their collection, or None."""
    from ragloom.config import load_settings

    settings = load_settings(uri=uri, collection=collection)
    if not lite.is_lite_uri(settings.uri):
        return None
    try:
        found = lite.serving(settings.uri)
    except ConfigError:
        return None
    if found is None or found[1] != settings.collection:
        return None
    return settings, found[0]


def _headers() -> dict[str, str]:
    key = os.environ.get(API_KEY_ENV, "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}


def _check_key(response: Any, url: str, uri: str) -> None:
    """The server refused the API key (or its absence): say which variable to set."""
    if response.status_code in (401, 403):
        raise ConfigError(
            f"the ragloom server at {url} owns {uri} and needs its API key: set {API_KEY_ENV}"
            " to the key it was started with"
        )


def _check(response: Any, url: str, uri: str, failed: str) -> None:
    """A clear error for a response that is not a 200 (``failed``: "refused the search")."""
    _check_key(response, url, uri)
    if response.status_code != 200:
        raise ConfigError(f"the ragloom server at {url} {failed}: {_message(response)}")


def search_via_server(
    url: str,
    uri: str,
    question: str,
    k: int,
    mode: str | None,
    where: str | None,
    sources: Sequence[str],
    timeout: float,
) -> list[dict[str, Any]] | None:
    """The hits of the ragloom server at ``url`` (which owns ``uri``), or None when it
    cannot be reached (the caller then opens the file itself and says who holds it)."""
    import httpx

    body: dict[str, Any] = {"query": question, "k": k, "sources": list(sources)}
    if mode:
        body["mode"] = mode
    if where:
        body["where"] = where
    try:
        response = httpx.post(f"{url}/v1/search", json=body, headers=_headers(), timeout=timeout)
    except httpx.HTTPError:
        return None
    _check(response, url, uri, "refused the search")
    hits: list[dict[str, Any]] = response.json().get("hits", [])
    return hits


def server_llm(url: str, uri: str, timeout: float) -> tuple[str, str] | None:
    """``(provider, model)`` the server answers with, or None if it cannot be asked
    (ConfigError when it wants an API key it was not given)."""
    import httpx

    try:
        response = httpx.get(f"{url}/v1/status", headers=_headers(), timeout=timeout)
        _check_key(response, url, uri)
        if response.status_code != 200:
            return None
        llm = response.json()["server"]["llm"]
        return str(llm["provider"]), str(llm["model"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def ask_via_server(
    url: str,
    uri: str,
    question: str,
    k: int,
    mode: str | None,
    sources: Sequence[str],
    *,
    stream: bool,
    timeout: float,
    history: Sequence[tuple[str, str]] = (),
    searched_for: Callable[[str], None] | None = None,
) -> Iterator[str | Answer]:
    """The server's answer as ``RAG.stream`` gives one: text pieces, then the ``Answer``
    (one piece when not ``stream``).  ``history`` holds earlier (question, answer) turns:
    the server then rewrites a follow-up into a standalone question and tells
    ``searched_for``.  Errors come as ``RagloomError`` with the server's message."""
    import httpx

    from ragloom.types import Answer

    body: dict[str, Any] = {"question": question, "k": k, "sources": list(sources)}
    if mode:
        body["mode"] = mode
    if history:
        body["history"] = [
            {"role": role, "content": content}
            for asked, answered in history
            for role, content in (("user", asked), ("assistant", answered))
        ]
    try:
        if not stream:
            response = httpx.post(f"{url}/v1/ask", json=body, headers=_headers(), timeout=timeout)
            _check(response, url, uri, "could not answer")
            data = response.json()
            if searched_for is not None:
                searched_for(str(data.get("searched_for") or question))
            answer = Answer.from_dict(data)
            yield answer.text
            yield answer
            return
        body["stream"] = True
        with httpx.stream(
            "POST", f"{url}/v1/ask", json=body, headers=_headers(), timeout=timeout
        ) as response:
            if response.status_code != 200:
                response.read()
                _check(response, url, uri, "could not answer")
            yield from _events(response, url, searched_for)
    except httpx.TimeoutException:
        raise ProviderError(
            f"the ragloom server at {url} did not answer within {timeout:.0f} s"
        ) from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"the ragloom server at {url} stopped answering ({exc})") from None
    except (ValueError, KeyError, TypeError):
        raise ProviderError(
            f"the ragloom server at {url} sent something that is not an answer: is it a"
            " ragloom server of this version?"
        ) from None


def _events(
    response: Any, url: str, searched_for: Callable[[str], None] | None
) -> Iterator[str | Answer]:
    """Text pieces and the ``Answer`` from the server-sent events of ``POST /v1/ask``."""
    from ragloom.types import Answer

    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif not line and data:
            payload = json.loads(data)
            if name == "question" and searched_for is not None:
                searched_for(str(payload.get("searched_for", "")))
            elif name == "token":
                yield str(payload.get("text", ""))
            elif name == "answer":
                yield Answer.from_dict(payload)
                return
            elif name == "error":
                message = (payload.get("error") or {}).get("message", "unknown error")
                raise ProviderError(f"the ragloom server at {url} could not answer: {message}")
            name, data = "message", ""
    raise ProviderError(f"the ragloom server at {url} ended the answer before it was complete")


def _message(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"
