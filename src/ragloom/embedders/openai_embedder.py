"""Embeddings from OpenAI's API, or any server that speaks it (Ollama, vLLM, LiteLLM, ...).

The key comes from ``api_key`` or ``OPENAI_API_KEY``; the server from ``base_url`` or
``OPENAI_BASE_URL`` (default: api.openai.com).  A local server (localhost, 127.x, ::1) needs
no key: a dummy one is sent, since Ollama and vLLM ignore it and the SDK insists on one.
"""

from __future__ import annotations

from typing import Any

from ragloom.embedders._remote import RemoteEmbedder, error_message
from ragloom.embedders.base import InputType
from ragloom.errors import ConfigError, MissingDependencyError, RagloomError

#: Native dimensions of OpenAI's embedding models; others are probed on first use.
KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
#: Models that accept the ``dimensions`` parameter (shortened embeddings).
_SHORTENABLE_PREFIX = "text-embedding-3-"


class OpenAIEmbedder(RemoteEmbedder):
    """An ``Embedder`` over ``openai.OpenAI().embeddings``.

    ``dim`` defaults to the model's known dimension, else is learnt from the first call;
    for ``text-embedding-3-*`` a smaller ``dim`` is requested from the API (``dimensions``).
    ``max_retries`` and ``timeout`` go to the SDK, which retries 408/409/429/5xx and
    connection errors with backoff, honouring ``Retry-After``.  OpenAI's models ignore
    ``input_type``.
    """

    provider = "openai"
    known_dims = KNOWN_DIMS
    default_host = "api.openai.com"

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
        super().__init__(
            model,
            base_url=base_url,
            base_url_env=base_url_env,
            api_key=api_key,
            key_envs=[api_key_env],
            dim=dim,
            batch_size=batch_size,
            timeout=timeout,
            max_retries=max_retries,
            max_tokens=max_tokens,
        )
        self.api_key_env = api_key_env

    def _create_client(self) -> Any:
        try:
            import openai
        except ImportError as exc:
            raise MissingDependencyError("openai", "openai", "The openai embedder") from exc
        return openai.OpenAI(
            api_key=self._key(),
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )

    def _params(self, texts: list[str], input_type: InputType) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "input": texts,
            # Plain floats: some OpenAI-compatible servers cannot send base64 (the SDK default).
            "encoding_format": "float",
        }
        wanted = self._requested_dim
        native = KNOWN_DIMS.get(self.model)
        if wanted is not None and self.model.startswith(_SHORTENABLE_PREFIX) and wanted != native:
            params["dimensions"] = wanted
        return params

    def _send(self, client: Any, params: dict[str, Any]) -> list[list[float]]:
        response = client.embeddings.create(**params)
        items = sorted(response.data, key=lambda d: d.index)
        return [list(map(float, d.embedding)) for d in items]

    def _map_error(self, exc: Exception) -> RagloomError:
        """An SDK exception as a message a user can act on."""
        import openai

        if isinstance(exc, openai.AuthenticationError):
            return self._key_rejected("401")
        if isinstance(exc, openai.PermissionDeniedError):
            return ConfigError(
                f"the key in {self.api_key_env} may not use {self._who()} (403): "
                f"{error_message(exc)}"
            )
        if isinstance(exc, openai.NotFoundError):
            return self._not_found()
        if isinstance(exc, openai.RateLimitError):
            return self._rate_limited(f"lower the batch size ({self.batch_size})")
        if isinstance(exc, openai.APITimeoutError):
            return self._timed_out()
        if isinstance(exc, openai.APIConnectionError):
            return self._unreachable()
        if isinstance(exc, openai.APIStatusError):
            return self._http_failure(exc.status_code, error_message(exc))
        return self._unusable(exc)
