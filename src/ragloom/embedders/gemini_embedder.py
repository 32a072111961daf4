"""Embeddings from the Gemini Developer API through the ``google-genai`` SDK.

The key comes from ``api_key``, ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``; the server from
``base_url`` or ``GEMINI_BASE_URL`` (default: generativelanguage.googleapis.com).  Queries
and documents are embedded with different task types (``RETRIEVAL_QUERY`` /
``RETRIEVAL_DOCUMENT``), as Google recommends for retrieval.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ragloom.embedders._remote import (
    batches,
    check_vectors,
    host_of,
    is_transport_error,
    resolve_key,
)
from ragloom.embedders.base import InputType, approx_tokens, normalise
from ragloom.errors import ConfigError, MissingDependencyError, ProviderError, RagloomError

#: Native dimensions of Gemini's embedding models; others are probed on first use.
KNOWN_DIMS = {
    "text-embedding-004": 768,
    "embedding-001": 768,
    "gemini-embedding-001": 3072,
}
TASK_TYPES: dict[str, str] = {"query": "RETRIEVAL_QUERY", "document": "RETRIEVAL_DOCUMENT"}
#: ``batchEmbedContents`` accepts at most 100 requests.
MAX_BATCH = 100
_KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
_DEFAULT_HOST = "generativelanguage.googleapis.com"
_RETRY_CODES = [408, 429, 500, 502, 503, 504]


class GeminiEmbedder:
    """An ``Embedder`` over ``genai.Client().models.embed_content``.

    ``dim`` defaults to the model's known dimension, else is learnt from the first call; a
    ``dim`` other than the native one is requested as ``output_dimensionality``.  The SDK
    retries 408/429/5xx and connection errors ``max_retries`` times with exponential
    backoff starting at ``retry_delay`` seconds.
    """

    def __init__(
        self,
        model: str = "text-embedding-004",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        dim: int | None = None,
        batch_size: int = MAX_BATCH,
        timeout: float = 60.0,
        max_retries: int = 3,
        retry_delay: float = 1.0,
        max_tokens: int = 2048,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
        self.model = model.removeprefix("models/")
        self.name = f"gemini:{self.model}"
        self.base_url = base_url or os.environ.get("GEMINI_BASE_URL") or None
        # The API's own limit; a larger shared --batch-size (fine for local models) is capped.
        self.batch_size = min(batch_size, MAX_BATCH)
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self._api_key = api_key
        self._max_tokens = max_tokens
        self._requested_dim = dim
        self._dim = dim if dim is not None else KNOWN_DIMS.get(self.model)
        self._client: Any = None

    @property
    def dim(self) -> int:
        """Vector dimension: configured, known for the model, or probed with one request."""
        if self._dim is None:
            self._dim = len(self._embed_batch(["dimension probe"], "query", check_dim=False)[0])
        return self._dim

    @property
    def max_tokens(self) -> int:
        """Tokens of one input the model reads (2048 for text-embedding-004)."""
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        """An estimate (about four characters a token), without a request."""
        return approx_tokens(text)

    def embed(self, texts: Sequence[str], input_type: InputType = "document") -> list[list[float]]:
        """Embed ``texts`` in batches (at most 100), with the task type for ``input_type``."""
        out: list[list[float]] = []
        for batch in batches(texts, self.batch_size):
            vectors = self._embed_batch(batch, input_type, check_dim=self._dim is not None)
            if self._dim is None and vectors:
                self._dim = len(vectors[0])
            out.extend(vectors)
        return normalise(out)

    # -- internals ---------------------------------------------------------------------

    def _client_or_create(self) -> Any:
        if self._client is None:
            try:
                from google import genai
                from google.genai import types
            except ImportError as exc:
                raise MissingDependencyError(
                    "google-genai", "gemini", "The gemini embedder"
                ) from exc
            key = resolve_key(self._api_key, _KEY_ENVS, self.base_url)
            retry = types.HttpRetryOptions(
                attempts=self.max_retries + 1,
                initial_delay=self.retry_delay,
                jitter=self.retry_delay / 2,
                http_status_codes=_RETRY_CODES,
            )
            options = types.HttpOptions(
                base_url=self.base_url,
                timeout=int(self.timeout * 1000),  # milliseconds
                retry_options=retry,
            )
            self._client = genai.Client(api_key=key, vertexai=False, http_options=options)
        return self._client

    def _embed_batch(
        self, batch: list[str], input_type: InputType, *, check_dim: bool
    ) -> list[list[float]]:
        client = self._client_or_create()
        config: dict[str, Any] = {"task_type": TASK_TYPES[input_type]}
        wanted = self._requested_dim
        if wanted is not None and wanted != KNOWN_DIMS.get(self.model):
            config["output_dimensionality"] = wanted
        # The API rejects empty content; a space embeds to "nothing" just as well.
        contents = [t if t.strip() else " " for t in batch]
        try:
            response = client.models.embed_content(
                model=self.model, contents=contents, config=config
            )
            vectors = [list(map(float, e.values or [])) for e in response.embeddings or []]
        except RagloomError:
            raise
        except Exception as exc:
            raise self._map_error(exc) from exc
        check_vectors(vectors, len(batch), self._dim if check_dim else None, self._who())
        return vectors

    def _who(self) -> str:
        return f"embedding model '{self.model}' at {host_of(self.base_url, _DEFAULT_HOST)}"

    def _map_error(self, exc: Exception) -> RagloomError:
        """An SDK exception as a message a user can act on."""
        from google.genai import errors

        who = self._who()
        host = host_of(self.base_url, _DEFAULT_HOST)
        if isinstance(exc, errors.APIError):
            code, message = exc.code, str(exc.message or exc.status or "")
            if _is_key_error(exc):
                return ConfigError(
                    f"{host} rejected the API key ({code}: {message}): check GEMINI_API_KEY, "
                    "or use --embedder local"
                )
            if code == 404:
                return ConfigError(f"{who} was not found (404): check the model name")
            if code == 429:
                return ProviderError(
                    f"{who} is rate limited (429) after {self.max_retries} retries: "
                    "wait and retry, or check your quota"
                )
            return ProviderError(f"{who} failed with HTTP {code}: {message}")
        if is_transport_error(exc):
            if "timeout" in type(exc).__name__.lower():
                return ProviderError(f"{who} did not answer within {self.timeout:g}s: retry later")
            return ProviderError(f"could not reach {host}: check the base URL and the network")
        return ProviderError(f"{who} sent an unusable response: {type(exc).__name__}: {exc}")


def _is_key_error(exc: Any) -> bool:
    """True for a missing/invalid key: 401, 403, or Google's 400 ``API_KEY_INVALID``."""
    if exc.code in (401, 403):
        return True
    text = f"{exc.message} {exc.details}"
    return exc.code == 400 and ("API_KEY_INVALID" in text or "API key not valid" in text)
