"""What the remote (HTTP API) embedders share: ``RemoteEmbedder``, keys, hosts, checks.

``RemoteEmbedder`` holds everything but the SDK: settings, the dimension probe,
batching, token estimates, the lazily created client, and the wording of failures.  A
provider supplies its client (``_create_client``), the request for one batch
(``_params``/``_send``) and how its SDK's exceptions map to errors (``_map_error``).
The LLM providers use the key, host and error-body helpers too.
"""

from __future__ import annotations

import ipaddress
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ragloom.embedders.base import InputType, approx_tokens, normalise
from ragloom.errors import ConfigError, EmbedderError, ProviderError, RagloomError, option

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
    hint: str | None = None,
) -> str:
    """The API key: ``explicit``, else the first set variable, else a dummy for local servers.

    Raises ConfigError naming the first variable when no key is found and the server is
    remote, and naming where the key came from when it cannot be one.
    """
    if explicit:
        return _usable_key(explicit, "the API key")
    for name in env_names:
        value = os.environ.get(name, "").strip()
        if value:
            return _usable_key(value, name)
    if is_local_url(base_url):
        return LOCAL_DUMMY_KEY
    hint = hint or f"or use {option('embedder', 'local')}"
    raise ConfigError(f"{env_names[0]} is not set: export it, {hint}")


def _usable_key(key: str, where: str) -> str:
    """``key``, or a ConfigError when it holds a character no API key has (a typographic
    quote or a space copied with it): HTTP headers cannot carry it, and the SDKs would
    fail in ways that blame the server."""
    bad = next((c for c in key if c.isspace() or not (c.isascii() and c.isprintable())), None)
    if bad is None:
        return key
    raise ConfigError(
        f"{where} contains {bad!r}, which an API key cannot have: set it again, "
        "without quotes or spaces"
    )


def key_variable(env_names: Sequence[str]) -> str:
    """The variable the key was read from (the first one set), for messages about it."""
    return next((n for n in env_names if os.environ.get(n, "").strip()), env_names[0])


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


def error_message(exc: Any) -> str:
    """The provider's own error message, from the JSON body when there is one."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", exc))


def is_google_key_error(exc: Any) -> bool:
    """True for a missing/invalid Google key: 401, 403, or a 400 ``API_KEY_INVALID``."""
    if exc.code in (401, 403):
        return True
    text = f"{exc.message} {exc.details}"
    return bool(exc.code == 400 and ("API_KEY_INVALID" in text or "API key not valid" in text))


#: Embedded once to learn the dimension of a model whose dimension is not known.
_PROBE_TEXT = "dimension probe"


class RemoteEmbedder(ABC):
    """An ``Embedder`` over a provider's HTTP API; subclasses supply the SDK calls.

    ``dim`` defaults to the model's known dimension (``known_dims``), else is learnt
    from the first call.  The client is created, and the key looked up in ``key_envs``,
    on first use.
    """

    #: Prefix of ``name`` (``openai:text-embedding-3-small``).
    provider: ClassVar[str]
    #: Native dimensions of the provider's models; others are probed on first use.
    known_dims: ClassVar[Mapping[str, int]] = {}
    #: Host named in messages when no base URL is set.
    default_host: ClassVar[str]

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None,
        base_url_env: str,
        api_key: str | None,
        key_envs: Sequence[str],
        dim: int | None,
        batch_size: int,
        timeout: float,
        max_retries: int,
        max_tokens: int,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
        self.model = model
        self.name = f"{self.provider}:{model}"
        self.base_url = base_url or os.environ.get(base_url_env) or None
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_retries = max_retries
        self.key_envs = tuple(key_envs)
        self._api_key = api_key
        self._max_tokens = max_tokens
        self._requested_dim = dim
        self._dim = dim if dim is not None else self.known_dims.get(model)
        self._client: Any = None
        #: What else to do about a missing or refused key (ragloom sets it when the model
        #: is the one a collection was built with: another model would not do).
        self.key_hint: str | None = None

    @property
    def cache_key(self) -> str:
        """What the embedding cache files this embedder's vectors under: the model, and
        the server and dimension when they are not the provider's defaults (a local
        server or a test fake with the same model name gives other vectors)."""
        key = self.name
        if self.base_url:
            key += f"@{self.base_url.rstrip('/')}"
        if self._requested_dim is not None:
            key += f"/{self._requested_dim}"
        return key

    @property
    def dim(self) -> int:
        """Vector dimension: configured, known for the model, or probed with one request."""
        if self._dim is None:
            self._dim = len(self._embed_batch([_PROBE_TEXT], "query", check_dim=False)[0])
        return self._dim

    @property
    def max_tokens(self) -> int:
        """Tokens of one input the model reads; the API ignores or refuses the rest."""
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        """An estimate (about four characters a token): no request, no tokenizer download."""
        return approx_tokens(text)

    def embed(self, texts: Sequence[str], input_type: InputType = "document") -> list[list[float]]:
        """Embed ``texts`` in batches of ``batch_size``; vectors are L2-normalised."""
        out: list[list[float]] = []
        for batch in batches(texts, self.batch_size):
            vectors = self._embed_batch(batch, input_type, check_dim=self._dim is not None)
            if self._dim is None and vectors:
                self._dim = len(vectors[0])
            out.extend(vectors)
        return normalise(out)

    # -- what a provider supplies -------------------------------------------------------

    @abstractmethod
    def _create_client(self) -> Any:
        """The SDK client (``MissingDependencyError`` when the SDK is not installed)."""

    @abstractmethod
    def _params(self, texts: list[str], input_type: InputType) -> dict[str, Any]:
        """The keyword arguments of the SDK's embedding call for ``texts``."""

    @abstractmethod
    def _send(self, client: Any, params: dict[str, Any]) -> list[list[float]]:
        """One embedding call; its vectors in the order of the texts."""

    @abstractmethod
    def _map_error(self, exc: Exception) -> RagloomError:
        """An SDK exception as a message a user can act on."""

    # -- shared internals ---------------------------------------------------------------

    def _key(self) -> str:
        return resolve_key(self._api_key, self.key_envs, self.base_url, self.key_hint)

    def _client_or_create(self) -> Any:
        if self._client is None:
            self._client = self._create_client()
        return self._client

    def _embed_batch(
        self, batch: list[str], input_type: InputType, *, check_dim: bool
    ) -> list[list[float]]:
        client = self._client_or_create()
        # The APIs reject empty strings; a space embeds to "nothing" just as well.
        params = self._params([t if t.strip() else " " for t in batch], input_type)
        try:
            vectors = self._send(client, params)
        except RagloomError:
            raise
        except Exception as exc:
            raise self._map_error(exc) from exc
        check_vectors(vectors, len(batch), self._dim if check_dim else None, self._who())
        return vectors

    def _host(self) -> str:
        return host_of(self.base_url, self.default_host)

    def _who(self) -> str:
        return f"embedding model '{self.model}' at {self._host()}"

    # -- failures every provider words alike --------------------------------------------

    def _key_rejected(self, detail: str) -> ConfigError:
        return ConfigError(
            f"{self._host()} rejected the API key ({detail}): "
            f"check {key_variable(self.key_envs)},"
            f" {self.key_hint or 'or use ' + option('embedder', 'local')}"
        )

    def _not_found(self) -> ConfigError:
        return ConfigError(f"{self._who()} was not found (404): check the model name")

    def _rate_limited(self, advice: str) -> ProviderError:
        return ProviderError(
            f"{self._who()} is rate limited (429) after {self.max_retries} retries: "
            f"wait and retry, or {advice}"
        )

    def _timed_out(self) -> ProviderError:
        return ProviderError(f"{self._who()} did not answer within {self.timeout:g}s: retry later")

    def _unreachable(self) -> ProviderError:
        return ProviderError(f"could not reach {self._host()}: check the base URL and the network")

    def _http_failure(self, code: int, message: str) -> ProviderError:
        return ProviderError(f"{self._who()} failed with HTTP {code}: {message}")

    def _unusable(self, exc: Exception) -> ProviderError:
        return ProviderError(
            f"{self._who()} sent an unusable response: {type(exc).__name__}: {exc}"
        )
