"""Chat models behind the OpenAI chat-completions API, whoever hosts them.

The API shape is one thing, the host another: DeepSeek, Lepton AI and OpenAI (or
Ollama, vLLM, LM Studio, a llama.cpp server...) are ``Preset`` s of one client, each
with its base URL, key variable and default model.  Retries and deadlines are ragloom's
(``_retry``), so the SDK's own retries are off.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ragloom.embedders._remote import error_message, host_of, is_transport_error
from ragloom.errors import ConfigError, MissingDependencyError, ProviderError, RagloomError, option
from ragloom.llms._remote import Delta, RemoteLLM
from ragloom.llms._retry import Transient, is_retry_status, parse_retry_after
from ragloom.llms.base import Completion, Prompt, Reliability, StreamItem, usage_dict


@dataclass(frozen=True)
class Preset:
    """Where an OpenAI-compatible model is hosted and how to reach it.

    ``base_url`` may contain ``{model}`` (Lepton serves each model on its own host);
    ``extra_body`` is sent with every request (DeepSeek's thinking switch);
    ``top_up`` is where to add credit when the host answers 402.
    """

    name: str
    label: str
    base_url: str
    key_env: str
    base_url_env: str
    default_model: str
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    stream_usage: bool = True
    top_up: str = ""


PRESETS: dict[str, Preset] = {
    # DeepSeek's current docs name `deepseek-flash` (`deepseek-chat` is retired); its
    # thinking mode is on by default, which a grounded answer does not need.
    "deepseek": Preset(
        name="deepseek", label="DeepSeek", base_url="https://api.deepseek.com",
        key_env="DEEPSEEK_API_KEY", base_url_env="DEEPSEEK_BASE_URL",
        default_model="deepseek-flash", extra_body={"thinking": {"type": "disabled"}},
        top_up="https://platform.deepseek.com/top_up",
    ),
    "lepton": Preset(
        name="lepton", label="Lepton AI", base_url="https://{model}.lepton.run/api/v1/",
        key_env="LEPTONAI_TOKEN", base_url_env="LEPTON_BASE_URL",
        default_model="mistral-7b", stream_usage=False,
    ),
    "openai": Preset(
        name="openai", label="OpenAI-compatible", base_url="https://api.openai.com/v1",
        key_env="OPENAI_API_KEY", base_url_env="OPENAI_BASE_URL",
        default_model="gpt-6-luna", top_up="https://platform.openai.com/settings/organization/billing",
    ),
}  # fmt: skip


class OpenAICompatLLM(RemoteLLM):
    """An ``LLM`` over ``openai.OpenAI().chat.completions`` for one ``Preset``.

    ``api_key`` and ``base_url`` override the preset's variables; a local base URL
    (Ollama on localhost) needs no key.  A missing key raises ``ConfigError`` here,
    naming the variable; nothing touches the network before the first question.
    """

    def __init__(
        self,
        preset: Preset | str = "openai",
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        reliability: Reliability | None = None,
    ) -> None:
        if isinstance(preset, str):
            if preset not in PRESETS:
                raise ConfigError(f"unknown OpenAI-compatible preset '{preset}'")
            preset = PRESETS[preset]
        self.preset = preset
        self.provider = preset.name
        self.model = model or preset.default_model
        url = base_url or os.environ.get(preset.base_url_env, "").strip() or preset.base_url
        url = url.replace("{model}", self.model)
        super().__init__(
            label=preset.label,
            base_url=url,
            host=host_of(url, url),
            api_key=api_key,
            key_envs=[preset.key_env],
            reliability=reliability,
        )

    # -- one attempt -------------------------------------------------------------------

    def _create_client(self) -> Any:
        try:
            import openai
        except ImportError as exc:
            purpose = option("llm", self.provider)
            raise MissingDependencyError("openai", self.provider, purpose) from exc
        return openai.OpenAI(
            api_key=self._api_key, base_url=self.base_url, max_retries=0,
            timeout=self._timeout(self.reliability.read_timeout),
        )  # fmt: skip

    def _timeout(self, read: float) -> Any:
        import openai

        return openai.Timeout(read, connect=min(self.reliability.connect_timeout, read))

    def _request(self, prompt: Prompt, timeout: float) -> dict[str, Any]:
        messages = [{"role": "system", "content": prompt.system}]
        messages += [{"role": m.role, "content": m.content} for m in prompt.messages]
        request: dict[str, Any] = {
            "model": self.model, "messages": messages, "timeout": self._timeout(timeout),
        }  # fmt: skip
        if self.preset.extra_body:
            request["extra_body"] = dict(self.preset.extra_body)
        return request

    def _complete_once(self, prompt: Prompt, timeout: float) -> Completion:
        client = self._client_or_create()
        response = client.chat.completions.create(**self._request(prompt, timeout))
        choices = getattr(response, "choices", None) or []
        message = choices[0].message if choices else None
        text = getattr(message, "content", None) if message is not None else None
        finish = choices[0].finish_reason if choices else None
        usage = _usage(getattr(response, "usage", None))
        return self._finished(text, getattr(response, "model", None), usage, finish)

    def _stream_once(self, prompt: Prompt, timeout: float) -> Iterator[StreamItem]:
        client = self._client_or_create()
        request = self._request(prompt, timeout)
        if self.preset.stream_usage:
            request["stream_options"] = {"include_usage": True}
        stream = client.chat.completions.create(stream=True, **request)
        yield from self._collect(_deltas(stream))

    # -- errors ------------------------------------------------------------------------

    def _to_error(self, exc: Exception) -> RagloomError:
        """An SDK exception as a message a user can act on."""
        import openai

        p, who, host = self.preset, self.who, self.host
        if isinstance(exc, openai.APIStatusError):
            code, msg = exc.status_code, error_message(exc)
            if code == 401:
                return self._key_rejected(f"401: {msg}")
            if code == 403:
                return ConfigError(
                    f"{host} refused the request (403: {msg}): check that the key in "
                    f"{self.key_env} may use model '{self.model}'"
                )
            if code == 402:
                where = f"top up at {p.top_up}" if p.top_up else "add credit to the account"
                return ProviderError(
                    f"{p.label} says the account has no balance (402: {msg}): {where}, "
                    f"or pass another {option('llm')}"
                )
            if code == 404:
                return ConfigError(
                    f"{who} was not found (404: {msg}): check {option('model')} "
                    f"(RAGLOOM_LLM_MODEL) and {p.base_url_env}"
                )
            if code == 429:
                return ProviderError(f"{who} is rate limited (429: {msg}): wait and retry")
            if code == 400 and "context" in msg.lower():
                return ProviderError(
                    f"{who} rejected the prompt as too long (400: {msg}): "
                    "lower RAGLOOM_CONTEXT_TOKENS or -k"
                )
            return self._http_failure(code, msg)
        if isinstance(exc, openai.APITimeoutError):
            return self._read_timed_out()
        if isinstance(exc, openai.APIConnectionError) or is_transport_error(exc):
            return self._unreachable(p.base_url_env)
        if isinstance(exc, ValueError):
            return self._malformed(
                "the OpenAI chat API",
                f"check that {p.base_url_env} points at an OpenAI-compatible server",
            )
        return self._unusable(exc)

    def _classify(self, exc: Exception) -> Transient | None:
        """Which SDK exceptions deserve another attempt."""
        import openai

        if isinstance(exc, openai.APIStatusError):
            if not is_retry_status(exc.status_code):
                return None
            return Transient(retry_after=parse_retry_after(exc.response.headers))
        if isinstance(exc, openai.APITimeoutError):
            return Transient(timeout=True)
        if isinstance(exc, openai.APIConnectionError):
            return Transient()
        return super()._classify(exc)


def _deltas(stream: Any) -> Iterator[Delta]:
    """The chunks of an SSE stream as ``Delta`` records; the stream is closed at its end."""
    try:
        for chunk in stream:
            yield Delta(
                model=getattr(chunk, "model", None), usage=_usage(getattr(chunk, "usage", None))
            )
            for choice in getattr(chunk, "choices", None) or []:
                text = getattr(choice.delta, "content", None) if choice.delta else None
                yield Delta(text or "", choice.finish_reason)
    finally:
        stream.close()


def _usage(usage: Any) -> dict[str, int]:
    if usage is None:
        return {}
    return usage_dict(
        getattr(usage, "prompt_tokens", None),
        getattr(usage, "completion_tokens", None),
        getattr(usage, "total_tokens", None),
    )
