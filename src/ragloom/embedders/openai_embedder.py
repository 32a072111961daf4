"""Embeddings from OpenAI's API, or any server that speaks it (Ollama, vLLM, LiteLLM, ...).

The key comes from ``api_key`` or ``OPENAI_API_KEY``; the server from ``base_url`` or
``OPENAI_BASE_URL`` (default: api.openai.com).  A local server (localhost, 127.x, ::1) needs
no key: a dummy one is sent, since Ollama and vLLM ignore it and the SDK insists on one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ragloom.embedders._remote import (
    batches,
    check_vectors,
    host_of,
    resolve_key,
)
from ragloom.embedders.base import InputType, approx_tokens, normalise
from ragloom.errors import ConfigError, MissingDependencyError, ProviderError, RagloomError

#: Native dimensions of OpenAI's embedding models; others are probed on first use.
KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
#: Models that accept the ``dimensions`` parameter (shortened embeddings).
_SHORTENABLE_PREFIX = "text-embedding-3-"
_PROBE_TEXT = "dimension probe"


class OpenAIEmbedder:
    """An ``Embedder`` over ``openai.OpenAI().embeddings``.

    ``dim`` defaults to the model's known dimension, else is learnt from the first call;
    for ``text-embedding-3-*`` a smaller ``dim`` is requested from the API (``dimensions``).
    ``max_retries`` and ``timeout`` go to the SDK, which retries 408/409/429/5xx and
    connection errors with backoff, honouring ``Retry-After``.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        dim: int | None = None,
        batch_size: int = 256,
        timeout: float = 60.0,
        max_retries: int = 2,
        max_tokens: int = 8191,
        api_key_env: str = "OPENAI_API_KEY",
        base_url_env: str = "OPENAI_BASE_URL",
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = base_url or os.environ.get(base_url_env) or None
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_retries = max_retries
        self.api_key_env = api_key_env
        self._api_key = api_key
        self._max_tokens = max_tokens
        self._requested_dim = dim
        self._dim = dim if dim is not None else KNOWN_DIMS.get(model)
        self._client: Any = None

    @property
    def dim(self) -> int:
        """Vector dimension: configured, known for the model, or probed with one request."""
        if self._dim is None:
            self._dim = len(self._embed_batch([_PROBE_TEXT], check_dim=False)[0])
        return self._dim

    @property
    def max_tokens(self) -> int:
        """Tokens of one input the model reads (8191 for OpenAI's models)."""
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        """An estimate (about four characters a token): no tokenizer is downloaded."""
        return approx_tokens(text)

    def embed(self, texts: Sequence[str], input_type: InputType = "document") -> list[list[float]]:
        """Embed ``texts`` in batches of ``batch_size``; OpenAI's models ignore ``input_type``."""
        out: list[list[float]] = []
        for batch in batches(texts, self.batch_size):
            vectors = self._embed_batch(batch, check_dim=self._dim is not None)
            if self._dim is None and vectors:
                self._dim = len(vectors[0])
            out.extend(vectors)
        return normalise(out)

    # -- internals ---------------------------------------------------------------------

    def _client_or_create(self) -> Any:
        if self._client is None:
            try:
                import openai
            except ImportError as exc:
                raise MissingDependencyError("openai", "openai", "The openai embedder") from exc
            key = resolve_key(self._api_key, [self.api_key_env], self.base_url)
            self._client = openai.OpenAI(
                api_key=key,
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=self.max_retries,
            )
        return self._client

    def _embed_batch(self, batch: list[str], *, check_dim: bool) -> list[list[float]]:
        client = self._client_or_create()
        params: dict[str, Any] = {
            "model": self.model,
            # OpenAI rejects empty strings; a space embeds to "nothing" just as well.
            "input": [t if t.strip() else " " for t in batch],
            # Plain floats: some OpenAI-compatible servers cannot send base64 (the SDK default).
            "encoding_format": "float",
        }
        native = KNOWN_DIMS.get(self.model)
        wanted = self._requested_dim
        if wanted is not None and self.model.startswith(_SHORTENABLE_PREFIX) and wanted != native:
            params["dimensions"] = wanted
        try:
            response = client.embeddings.create(**params)
            items = sorted(response.data, key=lambda d: d.index)
            vectors = [list(map(float, d.embedding)) for d in items]
        except RagloomError:
            raise
        except Exception as exc:
            raise self._map_error(exc) from exc
        check_vectors(vectors, len(batch), self._dim if check_dim else None, self._who())
        return vectors

    def _who(self) -> str:
        return f"embedding model '{self.model}' at {host_of(self.base_url, 'api.openai.com')}"

    def _map_error(self, exc: Exception) -> RagloomError:
        """An SDK exception as a message a user can act on."""
        import openai

        who = self._who()
        host = host_of(self.base_url, "api.openai.com")
        if isinstance(exc, openai.AuthenticationError):
            return ConfigError(
                f"{host} rejected the API key (401): check {self.api_key_env}, "
                "or use --embedder local"
            )
        if isinstance(exc, openai.PermissionDeniedError):
            return ConfigError(
                f"the key in {self.api_key_env} may not use {who} (403): {_message(exc)}"
            )
        if isinstance(exc, openai.NotFoundError):
            return ConfigError(f"{who} was not found (404): check the model name")
        if isinstance(exc, openai.RateLimitError):
            return ProviderError(
                f"{who} is rate limited (429) after {self.max_retries} retries: "
                f"wait and retry, or lower the batch size ({self.batch_size})"
            )
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(f"{who} did not answer within {self.timeout:g}s: retry later")
        if isinstance(exc, openai.APIConnectionError):
            return ProviderError(f"could not reach {host}: check the base URL and the network")
        if isinstance(exc, openai.APIStatusError):
            return ProviderError(f"{who} failed with HTTP {exc.status_code}: {_message(exc)}")
        return ProviderError(f"{who} sent an unusable response: {type(exc).__name__}: {exc}")


def _message(exc: Any) -> str:
    """The provider's own error message, from the JSON body when there is one."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return str(getattr(exc, "message", exc))
