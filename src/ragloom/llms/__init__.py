"""Language models: one protocol, providers registered by name, and picking one.

Built-in providers: ``deepseek``, ``lepton`` and ``openai`` (OpenAI-compatible presets,
``openai_compat``), ``gemini`` (``google-genai``) and ``none`` (extractive, no model).
Another provider registers the same way (``register_llm``).  Without a name, the first
provider whose key variable is set is used, else ``none``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ragloom.embedders._remote import is_local_url
from ragloom.errors import ConfigError, option
from ragloom.llms.base import LLM, Completion, Message, Prompt, Reliability, StreamItem

__all__ = [
    "LLM",
    "Completion",
    "Message",
    "Prompt",
    "ProviderChoice",
    "ProviderSpec",
    "Reliability",
    "StreamItem",
    "choose_provider",
    "llm_names",
    "make_llm",
    "register_llm",
]

Factory = Callable[[str | None, Reliability], LLM]


@dataclass(frozen=True)
class ProviderSpec:
    """A provider ragloom can build by name; ``key_envs`` set means "use me" when auto-picking."""

    name: str
    factory: Factory
    key_envs: tuple[str, ...] = ()
    base_url_env: str | None = None


@dataclass(frozen=True)
class ProviderChoice:
    """Which provider answers, and why (shown to the user)."""

    name: str
    reason: str


_PROVIDERS: dict[str, ProviderSpec] = {}


def register_llm(spec: ProviderSpec) -> None:
    """Make a provider available to ``make_llm``, ``--llm`` and auto-picking (in order)."""
    _PROVIDERS[spec.name] = spec


def llm_names() -> tuple[str, ...]:
    """The registered provider names, in auto-pick order (``none`` last)."""
    return tuple(sorted(_PROVIDERS, key=lambda n: n == "none"))


def choose_provider(
    explicit: str | None = None, via: str | None = None, environ: Mapping[str, str] | None = None
) -> ProviderChoice:
    """``explicit`` when given (``via`` says where it came from, as the user wrote it: by
    default the ``llm`` option, as the command line or Python spells it), else the first
    provider whose key is set, else ``none``."""
    env = os.environ if environ is None else environ
    if explicit:
        name = explicit.strip().lower()
        if name not in _PROVIDERS:
            given = via or option("llm", explicit)
            raise ConfigError(f"{given}: use one of {', '.join(llm_names())}")
        return ProviderChoice(name, via or option("llm", name))
    for name in llm_names():
        spec = _PROVIDERS[name]
        for var in spec.key_envs:
            if env.get(var, "").strip():
                return ProviderChoice(name, f"{var} is set")
        local = env.get(spec.base_url_env or "", "").strip()
        if spec.base_url_env and is_local_url(local):
            return ProviderChoice(name, f"{spec.base_url_env} points at a local server")
    return ProviderChoice("none", "no LLM key is set")


def make_llm(name: str, model: str | None = None, reliability: Reliability | None = None) -> LLM:
    """Build the provider ``name`` (no network is touched until it is asked something)."""
    spec = _PROVIDERS.get(name.strip().lower())
    if spec is None:
        raise ConfigError(f"unknown LLM '{name}': use one of {', '.join(llm_names())}")
    return spec.factory(model or None, reliability or Reliability())


def _openai_compat(preset: str) -> Factory:
    def build(model: str | None, reliability: Reliability) -> LLM:
        from ragloom.llms.openai_compat import OpenAICompatLLM

        return OpenAICompatLLM(preset, model, reliability=reliability)

    return build


def _gemini(model: str | None, reliability: Reliability) -> LLM:
    from ragloom.llms.gemini import GeminiLLM

    return GeminiLLM(model, reliability=reliability)


def _extractive(model: str | None, reliability: Reliability) -> LLM:
    from ragloom.llms.extractive import ExtractiveLLM

    return ExtractiveLLM()


register_llm(ProviderSpec("deepseek", _openai_compat("deepseek"), ("DEEPSEEK_API_KEY",)))
register_llm(ProviderSpec("lepton", _openai_compat("lepton"), ("LEPTONAI_TOKEN",)))
register_llm(ProviderSpec("gemini", _gemini, ("GEMINI_API_KEY", "GOOGLE_API_KEY")))
register_llm(
    ProviderSpec("openai", _openai_compat("openai"), ("OPENAI_API_KEY",), "OPENAI_BASE_URL")
)
register_llm(ProviderSpec("none", _extractive))
