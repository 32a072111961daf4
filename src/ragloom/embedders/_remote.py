"""Helpers the remote (HTTP API) embedders share: keys, local hosts, batches, vector checks."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from ragloom.errors import ConfigError, EmbedderError, ProviderError

#: Sent when a local OpenAI-compatible server (Ollama, vLLM, a fake) needs no key;
#: the SDKs refuse to build a client without one.
LOCAL_DUMMY_KEY = "ragloom-local-no-key"


def is_local_url(url: str | None) -> bool:
    """True when ``url`` points at this machine (localhost, 127.x, ::1, 0.0.0.0)."""
    if not url:
        return False
    host = (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def resolve_key(
    explicit: str | None,
    env_names: Sequence[str],
    base_url: str | None,
    hint: str = "or use --embedder local",
) -> str:
    """The API key: ``explicit``, else the first set variable, else a dummy for local servers.

    Raises ConfigError naming the first variable when no key is found and the server is
    remote.
    """
    if explicit:
        return explicit
    for name in env_names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    if is_local_url(base_url):
        return LOCAL_DUMMY_KEY
    raise ConfigError(f"{env_names[0]} is not set: export it, {hint}")


def batches(texts: Sequence[str], size: int) -> Iterator[list[str]]:
    """``texts`` in consecutive lists of at most ``size``."""
    for start in range(0, len(texts), size):
        yield list(texts[start : start + size])


def check_vectors(
    vectors: list[list[float]], expected_count: int, expected_dim: int | None, who: str
) -> None:
    """Raise if a response has the wrong number of vectors or a wrong dimension."""
    if len(vectors) != expected_count:
        raise ProviderError(
            f"{who} returned {len(vectors)} vectors for {expected_count} texts: "
            "the server is not answering like the API it claims to be"
        )
    dims = {len(v) for v in vectors}
    if len(dims) > 1:
        raise ProviderError(f"{who} returned vectors of mixed dimensions {sorted(dims)}")
    if expected_dim is not None and dims and dims != {expected_dim}:
        raise EmbedderError(
            f"{who} returned {dims.pop()}-dimensional vectors but dim={expected_dim} "
            "was configured: set dim to the model's dimension (or leave it unset)"
        )


def is_transport_error(exc: BaseException) -> bool:
    """True for an httpx/httpx2/httpcore exception (connection refused, reset, timeout)."""
    return any(
        cls.__module__.split(".")[0] in {"httpx", "httpx2", "httpcore", "httpcore2"}
        for cls in type(exc).__mro__
    )


def host_of(url: str | None, default: str) -> str:
    """``scheme://host:port`` of ``url`` for messages (never its path or query)."""
    if not url:
        return default
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url
