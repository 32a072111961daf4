"""What the remote (HTTP API) chat models share: ``RemoteLLM``.

Every call goes through one ``Retrier`` (``_retry``: backoff, Retry-After, deadline):
``complete`` and ``stream`` are written once here, and a provider supplies only one
attempt of each (``_complete_once``, ``_stream_once``), its SDK client, and how its
SDK's exceptions are classified (``_classify``) and worded (``_to_error``).  A
provider's stream becomes ``Delta`` records, which ``_collect`` turns into the text
deltas and the final ``Completion``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragloom.embedders._remote import is_transport_error, key_variable, resolve_key
from ragloom.errors import ConfigError, ProviderError, RagloomError, option
from ragloom.llms._retry import Retrier, Transient
from ragloom.llms.base import Completion, Prompt, Reliability, StreamItem


@dataclass(frozen=True)
class Delta:
    """What one piece of a provider's stream says; empty fields say nothing new."""

    text: str = ""
    finish: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    model: str | None = None


class RemoteLLM(ABC):
    """An ``LLM`` whose every call runs under one ``Reliability`` policy.

    A subclass sets ``provider`` and ``model``, then passes who serves the model
    (``label``), where (``base_url``; ``host`` for messages) and the key; ``who``
    names the model and host in messages.  The key is checked
    here, so a missing one is reported before any retrieval work; the client is
    created on first use.
    """

    provider: str
    model: str

    def __init__(
        self,
        *,
        label: str,
        base_url: str | None,
        host: str,
        api_key: str | None,
        key_envs: Sequence[str],
        reliability: Reliability | None,
    ) -> None:
        self.base_url = base_url
        self.host = host
        self.reliability = reliability or Reliability()
        self._api_key = resolve_key(
            api_key, key_envs, base_url, hint=f"or pass {option('llm', 'none')}"
        )
        #: Where the key came from, named when the host rejects it.
        self.key_env = key_variable(key_envs)
        self._client: Any = None
        self.who = f"{label} model '{self.model}' at {host}"
        self._retrier = Retrier(self.reliability, self.who, self._classify, self._to_error)

    def complete(self, prompt: Prompt) -> Completion:
        """The whole answer in one response."""
        return self._retrier.call(lambda timeout: self._complete_once(prompt, timeout))

    def stream(self, prompt: Prompt) -> Iterator[StreamItem]:
        """Text deltas as they arrive, then the ``Completion``."""
        return self._retrier.stream(lambda timeout: self._stream_once(prompt, timeout))

    # -- what a provider supplies -------------------------------------------------------

    @abstractmethod
    def _create_client(self) -> Any:
        """The SDK client, its own retries off (``MissingDependencyError`` without the SDK)."""

    @abstractmethod
    def _complete_once(self, prompt: Prompt, timeout: float) -> Completion:
        """One attempt at the whole answer, within ``timeout`` seconds a read."""

    @abstractmethod
    def _stream_once(self, prompt: Prompt, timeout: float) -> Iterator[StreamItem]:
        """One attempt at a streamed answer, within ``timeout`` seconds a read."""

    @abstractmethod
    def _to_error(self, exc: Exception) -> RagloomError:
        """An SDK exception as a message a user can act on."""

    def _classify(self, exc: Exception) -> Transient | None:
        """Whether an exception deserves another attempt; a provider checks its SDK's
        exceptions first, then defers here for the HTTP library's own."""
        if is_transport_error(exc):
            return Transient(timeout="timeout" in type(exc).__name__.lower())
        return None

    # -- shared internals ---------------------------------------------------------------

    def _client_or_create(self) -> Any:
        if self._client is None:
            self._client = self._create_client()
        return self._client

    def _finished(
        self, text: object, model: str | None, usage: dict[str, int], finish: str | None
    ) -> Completion:
        """The ``Completion``, or the error for an answer with no text."""
        if not isinstance(text, str) or not text.strip():
            raise self._empty(finish)
        return Completion(text, model or self.model, usage, finish)

    def _collect(self, deltas: Iterable[Delta]) -> Iterator[StreamItem]:
        """Each delta's text as it comes, then the ``Completion`` they add up to."""
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, int] = {}
        model: str | None = None
        for delta in deltas:
            if delta.text:
                parts.append(delta.text)
                yield delta.text
            finish = delta.finish or finish
            usage = delta.usage or usage
            model = delta.model or model
        yield self._finished("".join(parts), model, usage, finish)

    def _empty(self, finish: str | None) -> ProviderError:
        why = f" (finish reason: {finish})" if finish else ""
        return ProviderError(f"{self.who} sent an empty answer{why}: ask again")

    # -- failures every provider words alike --------------------------------------------

    def _key_rejected(self, detail: str) -> ConfigError:
        return ConfigError(
            f"{self.host} rejected the API key ({detail}): check {self.key_env},"
            f" or pass {option('llm', 'none')}"
        )

    def _read_timed_out(self) -> ProviderError:
        return ProviderError(
            f"{self.who} did not answer within the {self.reliability.read_timeout:g}s "
            "read timeout: retry later, or raise RAGLOOM_LLM_READ_TIMEOUT"
        )

    def _unreachable(self, base_url_env: str) -> ProviderError:
        return ProviderError(
            f"could not reach {self.host}, or the connection dropped: "
            f"check {base_url_env} and the network, then retry"
        )

    def _malformed(self, api: str, advice: str) -> ProviderError:
        return ProviderError(
            f"{self.who} sent a malformed response (not the JSON of {api}): {advice}"
        )

    def _http_failure(self, code: int, message: str) -> ProviderError:
        return ProviderError(f"{self.who} failed with HTTP {code}: {message}")

    def _unusable(self, exc: Exception) -> ProviderError:
        return ProviderError(f"{self.who} sent an unusable response: {type(exc).__name__}: {exc}")
