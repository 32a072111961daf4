"""Gemini chat models through the ``google-genai`` SDK (the Gemini Developer API).

The key comes from ``api_key``, ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``; the server
from ``base_url`` or ``GEMINI_BASE_URL``.  The system prompt goes in
``system_instruction``; assistant turns are sent with Gemini's ``model`` role.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from ragloom.embedders._remote import host_of, is_google_key_error, is_transport_error
from ragloom.errors import ConfigError, MissingDependencyError, ProviderError, RagloomError, option
from ragloom.llms._remote import Delta, RemoteLLM
from ragloom.llms._retry import Transient, is_retry_status, parse_retry_after
from ragloom.llms.base import Completion, Prompt, Reliability, StreamItem, usage_dict

#: The tutorials used gemini-2.0-flash, shut down in 2026; Google's deprecation table
#: names gemini-3.5-flash-lite as the replacement of its successor, gemini-2.5-flash.
DEFAULT_MODEL = "gemini-3.5-flash-lite"
KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
_DEFAULT_HOST = "https://generativelanguage.googleapis.com"
#: Finish reasons that mean the model would not answer, not that it had nothing to say.
_BLOCKED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"}


class GeminiLLM(RemoteLLM):
    """An ``LLM`` over ``genai.Client().models.generate_content[_stream]``."""

    provider = "gemini"

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        reliability: Reliability | None = None,
    ) -> None:
        self.model = (model or DEFAULT_MODEL).removeprefix("models/")
        base_url = base_url or os.environ.get("GEMINI_BASE_URL", "").strip() or None
        super().__init__(
            label="Gemini",
            base_url=base_url,
            host=host_of(base_url, _DEFAULT_HOST),
            api_key=api_key,
            key_envs=KEY_ENVS,
            reliability=reliability,
        )

    # -- one attempt -------------------------------------------------------------------

    def _create_client(self) -> Any:
        try:
            from google import genai
            from google.genai import types
        except ImportError as exc:
            raise MissingDependencyError("google-genai", "gemini", option("llm", "gemini")) from exc
        options = types.HttpOptions(
            base_url=self.base_url,
            timeout=int(self.reliability.read_timeout * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),  # ragloom retries
        )
        return genai.Client(api_key=self._api_key, vertexai=False, http_options=options)

    def _arguments(self, prompt: Prompt, timeout: float) -> dict[str, Any]:
        from google.genai import types

        contents = [
            types.Content(
                role="model" if m.role == "assistant" else "user",
                parts=[types.Part(text=m.content)],
            )
            for m in prompt.messages
            if m.role != "system"
        ]
        config = types.GenerateContentConfig(
            system_instruction=prompt.system or None,
            # One number bounds connect and each read; in milliseconds.
            http_options=types.HttpOptions(timeout=max(1, int(timeout * 1000))),
        )
        return {"model": self.model, "contents": contents, "config": config}

    def _complete_once(self, prompt: Prompt, timeout: float) -> Completion:
        client = self._client_or_create()
        response = client.models.generate_content(**self._arguments(prompt, timeout))
        return self._finished(
            _text(response), _model(response), _usage(response), _finish(response)
        )

    def _stream_once(self, prompt: Prompt, timeout: float) -> Iterator[StreamItem]:
        client = self._client_or_create()
        chunks = client.models.generate_content_stream(**self._arguments(prompt, timeout))
        yield from self._collect(
            Delta(_text(chunk), _finish(chunk), _usage(chunk), _model(chunk)) for chunk in chunks
        )

    # -- errors ------------------------------------------------------------------------

    def _empty(self, finish: str | None) -> ProviderError:
        if finish in _BLOCKED:
            return ProviderError(f"{self.who} declined to answer (finish reason {finish})")
        return super()._empty(finish)

    def _classify(self, exc: Exception) -> Transient | None:
        """Which SDK exceptions deserve another attempt."""
        from google.genai import errors

        if isinstance(exc, errors.APIError):
            if not is_retry_status(exc.code):
                return None
            return Transient(retry_after=parse_retry_after(getattr(exc.response, "headers", None)))
        return super()._classify(exc)

    def _to_error(self, exc: Exception) -> RagloomError:
        """An SDK exception as a message a user can act on."""
        from google.genai import errors

        who = self.who
        if isinstance(exc, errors.APIError):
            code, msg = exc.code, str(exc.message or exc.status or "")
            if is_google_key_error(exc):
                return self._key_rejected(f"{code}: {msg}")
            if code == 404:
                return ConfigError(
                    f"{who} was not found (404: {msg}): check {option('model')} (RAGLOOM_LLM_MODEL)"
                    " and GEMINI_BASE_URL"
                )
            if code == 429:
                return ProviderError(
                    f"{who} is rate limited (429: {msg}): wait and retry, or check your quota"
                )
            if code == 402:
                return ProviderError(
                    f"Gemini says the account has no balance (402: {msg}): add credit or"
                    f" billing to the Google project of the key, or pass another {option('llm')}"
                )
            return self._http_failure(code, msg)
        if is_transport_error(exc):
            if "timeout" in type(exc).__name__.lower():
                return self._read_timed_out()
            return self._unreachable("GEMINI_BASE_URL")
        if isinstance(exc, ValueError):
            return self._malformed(
                "the Gemini API", "check that GEMINI_BASE_URL points at the Gemini API"
            )
        return self._unusable(exc)


def _text(response: Any) -> str:
    """The answer text of a response or stream chunk, thoughts left out."""
    out = []
    for candidate in (getattr(response, "candidates", None) or [])[:1]:
        content = getattr(candidate, "content", None)
        for part in getattr(content, "parts", None) or []:
            if getattr(part, "text", None) and not getattr(part, "thought", False):
                out.append(part.text)
    return "".join(out)


def _finish(response: Any) -> str | None:
    candidates = getattr(response, "candidates", None) or []
    reason = getattr(candidates[0], "finish_reason", None) if candidates else None
    if reason is None:
        return None
    return str(getattr(reason, "value", reason))


def _model(response: Any) -> str | None:
    version = getattr(response, "model_version", None)
    return str(version) if version else None


def _usage(response: Any) -> dict[str, int]:
    meta = getattr(response, "usage_metadata", None)
    if meta is None:
        return {}
    return usage_dict(
        getattr(meta, "prompt_token_count", None),
        getattr(meta, "candidates_token_count", None),
        getattr(meta, "total_token_count", None),
    )
