"""Embeddings from the Gemini Developer API through the ``google-genai`` SDK.

The key comes from ``api_key``, ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``; the server from
``base_url`` or ``GEMINI_BASE_URL`` (default: generativelanguage.googleapis.com).  Queries
and documents are embedded with different task types (``RETRIEVAL_QUERY`` /
``RETRIEVAL_DOCUMENT``), as Google recommends for retrieval.
"""

from __future__ import annotations

from typing import Any

from ragloom.embedders._remote import RemoteEmbedder, is_google_key_error, is_transport_error
from ragloom.embedders.base import InputType
from ragloom.errors import MissingDependencyError, RagloomError

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
_RETRY_CODES = [408, 429, 500, 502, 503, 504]


class GeminiEmbedder(RemoteEmbedder):
    """An ``Embedder`` over ``genai.Client().models.embed_content``.

    ``dim`` defaults to the model's known dimension, else is learnt from the first call; a
    ``dim`` other than the native one is requested as ``output_dimensionality``.  The SDK
    retries 408/429/5xx and connection errors ``max_retries`` times with exponential
    backoff starting at ``retry_delay`` seconds.
    """

    provider = "gemini"
    known_dims = KNOWN_DIMS
    default_host = "generativelanguage.googleapis.com"

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
        super().__init__(
            model.removeprefix("models/"),
            base_url=base_url,
            base_url_env="GEMINI_BASE_URL",
            api_key=api_key,
            key_envs=_KEY_ENVS,
            dim=dim,
            batch_size=batch_size,
            timeout=timeout,
            max_retries=max_retries,
            max_tokens=max_tokens,
        )
        # The API's own limit; a larger shared --batch-size (fine for local models) is capped.
        self.batch_size = min(batch_size, MAX_BATCH)
        self.retry_delay = retry_delay

    def _create_client(self) -> Any:
        try:
            from google import genai
            from google.genai import types
        except ImportError as exc:
            raise MissingDependencyError("google-genai", "gemini", "The gemini embedder") from exc
        key = self._key()
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
        return genai.Client(api_key=key, vertexai=False, http_options=options)

    def _params(self, texts: list[str], input_type: InputType) -> dict[str, Any]:
        config: dict[str, Any] = {"task_type": TASK_TYPES[input_type]}
        wanted = self._requested_dim
        if wanted is not None and wanted != KNOWN_DIMS.get(self.model):
            config["output_dimensionality"] = wanted
        return {"model": self.model, "contents": texts, "config": config}

    def _send(self, client: Any, params: dict[str, Any]) -> list[list[float]]:
        response = client.models.embed_content(**params)
        return [list(map(float, e.values or [])) for e in response.embeddings or []]

    def _map_error(self, exc: Exception) -> RagloomError:
        """An SDK exception as a message a user can act on."""
        from google.genai import errors

        if isinstance(exc, errors.APIError):
            code, message = exc.code, str(exc.message or exc.status or "")
            if is_google_key_error(exc):
                return self._key_rejected(f"{code}: {message}")
            if code == 404:
                return self._not_found()
            if code == 429:
                return self._rate_limited("check your quota")
            return self._http_failure(code, message)
        if is_transport_error(exc):
            if "timeout" in type(exc).__name__.lower():
                return self._timed_out()
            return self._unreachable()
        return self._unusable(exc)
