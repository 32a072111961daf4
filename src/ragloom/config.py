"""Settings: flags > environment (``RAGLOOM_*``) > ``ragloom.toml`` > defaults.

Secrets (the Milvus token, API keys) are ``SecretStr``: they print as ``**********``.
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ragloom.errors import ConfigError, option

log = logging.getLogger(__name__)

CONFIG_FILE_ENV = "RAGLOOM_CONFIG"
DEFAULT_CONFIG_FILE = "ragloom.toml"


class Settings(BaseSettings):
    """Everything ragloom can be told; each field is also ``RAGLOOM_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="RAGLOOM_", extra="ignore", frozen=True)

    uri: str = Field("./ragloom.db", description="Milvus Lite file, or a Milvus server URI")
    token: SecretStr | None = Field(None, description="Milvus / Zilliz Cloud token")
    collection: str = Field("ragloom", description="Milvus collection name")
    embedder: str = Field("local", description="local[:MODEL], milvus-default, gemini, openai")
    splitter: Literal["markdown", "seed"] = "markdown"
    chunk_tokens: int | None = Field(
        None, ge=16, description="chunk size; default: the model's window"
    )
    overlap_tokens: int = Field(32, ge=0)
    batch_size: int = Field(64, ge=1)
    max_file_mb: float = Field(
        50.0, gt=0, description="largest document ingested (a file or archive member), MiB"
    )
    timeout: float = Field(10.0, gt=0, description="seconds to wait when connecting to Milvus")
    cache_dir: str = Field(
        default_factory=lambda: str(
            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ragloom"
        ),
        description="where embeddings are cached ('' to disable)",
    )
    # -- answers (ragloom ask / chat) ----------------------------------------------------
    llm: str | None = Field(
        None, description="deepseek, lepton, gemini, openai or none; default: first key set"
    )
    llm_model: str | None = Field(None, description="model name; default: the provider's")
    llm_connect_timeout: float = Field(10.0, gt=0, description="seconds to connect")
    llm_read_timeout: float = Field(60.0, gt=0, description="longest silence from the model")
    llm_deadline: float = Field(120.0, gt=0, description="seconds for a whole answer")
    llm_retries: int = Field(3, ge=0, description="retries on 408/429/5xx/dropped connections")
    llm_retry_delay: float = Field(0.5, ge=0, description="first backoff delay (doubles)")
    system_prompt: str | None = Field(None, description="replaces the default system prompt")
    user_prompt: str | None = Field(
        None, description="replaces the user prompt; needs {context} and {question}"
    )
    context_tokens: int = Field(3000, ge=50, description="token budget of the passages sent")
    abstain_score: float | None = Field(
        None, description="answer only when the best dense score reaches this; default calibrated"
    )
    abstain_unknown_names: bool = Field(
        True,
        description="decline questions naming something the documents, or the passages"
        " found, never mention",
    )
    # -- retrieval (ragloom search / ask / eval; see docs/retrieval.md) ------------------
    search_mode: Literal["dense", "bm25", "hybrid"] | None = Field(
        None, description="default: hybrid where the store has BM25, else dense"
    )
    fusion: Literal["weighted", "rrf"] = Field(
        "weighted", description="hybrid fusion: weighted (scaled scores) or rrf (Milvus RRF)"
    )
    lexical_weight: float = Field(
        0.5, ge=0, description="BM25's weight in weighted fusion (dense counts 1)"
    )
    candidates: int = Field(20, ge=1, le=1000, description="chunks each search route proposes")
    join_neighbours: bool = Field(
        True, description="return adjacent chunks that both match as one passage"
    )
    rerank: str | None = Field(
        None, description="a sentence-transformers CrossEncoder to rerank passages with"
    )

    #: Where each setting not left at its default was set (see ``origin``).
    _origins: dict[str, Origin] = PrivateAttr(default_factory=dict)

    @field_validator("llm")
    @classmethod
    def _known_llm(cls, value: str | None) -> str | None:
        from ragloom.llms import llm_names

        name = (value or "").strip().lower()
        if name and name not in llm_names():
            raise ValueError(f"use one of {', '.join(llm_names())}")
        return name or None  # a blank variable is no choice

    @field_validator("user_prompt")
    @classmethod
    def _user_prompt_has_slots(cls, value: str | None) -> str | None:
        missing = [slot for slot in ("{context}", "{question}") if value and slot not in value]
        if missing:
            raise ValueError(f"the user prompt template needs a {missing[0]} placeholder")
        return value

    @field_validator("collection")
    @classmethod
    def _valid_collection(cls, value: str) -> str:
        if not value or not (value[0].isalpha() or value[0] == "_"):
            raise ValueError("must start with a letter or an underscore")
        if not all(c.isalnum() or c == "_" for c in value):
            raise ValueError("may contain only letters, digits and underscores")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))

    def origin(self, name: str) -> Origin:
        """Where the setting ``name`` was set (rank 0: left at its default)."""
        return self._origins.get(name, Origin())

    def set_by(self, name: str) -> str:
        """The setting ``name`` as the user set it, for a message: ``RAGLOOM_LLM``, ``llm
        in ragloom.toml``, or the flag or keyword (``--llm``, ``llm``)."""
        return self.origin(name).named(name)

    def public(self) -> dict[str, Any]:
        """The settings as a dict safe to print (secrets masked)."""
        shown = {
            k: ("**********" if isinstance(v, SecretStr) else v)
            for k, v in self.model_dump().items()
        }
        shown["uri"] = redact_uri(self.uri)
        return shown


@dataclass(frozen=True)
class Origin:
    """Where a setting came from: 0 its default, 1 the configuration file, 2 a
    ``RAGLOOM_*`` variable, 3 a flag or keyword argument; a higher rank wins."""

    rank: int = 0
    where: str = ""  # the variable, or the file
    #: The value each lower rank also gave it (rank -> value), overridden by this one.
    beneath: tuple[tuple[int, Any], ...] = ()

    def beneath_at(self, rank: int) -> Any:
        """The value the setting was also given at ``rank`` (None when it was not)."""
        return dict(self.beneath).get(rank)

    def named(self, name: str) -> str:
        """The setting ``name`` as the user set it: ``RAGLOOM_LLM``, ``llm in
        ragloom.toml``, or the flag or keyword (``--llm``, ``llm``); left at its default,
        the variable that sets it."""
        if self.rank == 2:
            return self.where
        if self.rank == 1:
            return f"{name} in {self.where}"
        if self.rank == 3:
            return option(name)
        return f"RAGLOOM_{name.upper()}"  # left at its default: how to set it

    def said(self, name: str, value: object) -> str:
        """The setting with its value as the user wrote it: ``RAGLOOM_LLM=gemini``, ``llm
        = "gemini" in ragloom.toml``, ``--llm gemini``, ``llm='gemini'``."""
        if self.rank == 2:
            return f"{self.where}={value}"
        if self.rank == 1:
            shown = f'"{value}"' if isinstance(value, str) else value
            return f"{name} = {shown} in {self.where}"
        return option(name, value)


def _origins(given: Any, toml_file: Path, in_file: dict[str, Any]) -> dict[str, Origin]:
    """Where each setting was set: given (flag, keyword), variable, or the file (which
    set ``in_file``)."""
    found: dict[str, Origin] = {}
    for name in Settings.model_fields:
        variable = f"RAGLOOM_{name.upper()}"
        levels: list[Origin] = []
        if name in in_file:
            levels.append(Origin(1, str(toml_file)))
        value_in_file = in_file.get(name)
        set_in_env = [key for key in os.environ if key.upper() == variable]
        if set_in_env:
            levels.append(Origin(2, set_in_env[0]))
        if name in given:
            levels.append(Origin(3))
        if levels:
            values = {1: value_in_file, 2: os.environ.get(set_in_env[0]) if set_in_env else None}
            top = levels[-1]
            found[name] = Origin(
                top.rank, top.where, tuple((o.rank, values[o.rank]) for o in levels[:-1])
            )
    return found


def redact_uri(uri: str) -> str:
    """A URI safe to print: a password inside it (``http://user:pw@host``) is masked."""
    scheme, sep, rest = uri.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return uri
    return f"{scheme}://{userinfo.split(':', 1)[0]}:*****@{host}"


def load_settings(**flags: Any) -> Settings:
    """Settings with ``flags`` (``None`` meaning "not given") on top of env and file."""
    given = {k: v for k, v in flags.items() if v is not None}
    for key in given:  # RAG(colection=...): refused as ragloom.toml refuses it
        _check_key(key, "RAG()")
    config_file = os.environ.get(CONFIG_FILE_ENV)
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"{CONFIG_FILE_ENV}={config_file}: no such file")
    toml_file = Path(config_file or DEFAULT_CONFIG_FILE)
    try:
        in_file = _file_settings(toml_file)
        _warn_misspelt_variables()
        settings = Settings(**given)
    except ValidationError as exc:
        raise _invalid(exc, given, toml_file) from None
    except (OSError, ValueError) as exc:  # an unreadable or malformed ragloom.toml
        raise ConfigError(f"cannot read the configuration file {toml_file}: {exc}") from None
    settings._origins = _origins(given, toml_file, in_file)
    return settings


def override(settings: Settings, **flags: Any) -> Settings:
    """``settings`` with ``flags`` (``None`` meaning "not given") on top, validated as
    ``load_settings`` validates them: ``RAG(settings=s, uri=...)`` uses the ``uri``."""
    given = {k: v for k, v in flags.items() if v is not None}
    if not given:
        return settings
    for key in given:
        _check_key(key, "RAG()")
    try:
        checked = Settings.model_validate({**settings.model_dump(), **given})
    except ValidationError as exc:
        raise _invalid(exc) from None
    updated = settings.model_copy(update={key: getattr(checked, key) for key in given})
    updated._origins = {**settings._origins, **{key: Origin(3) for key in given}}
    return updated


def _invalid(exc: ValidationError, given: Any = (), toml_file: Path | None = None) -> ConfigError:
    """One line naming each setting pydantic refused, where it was set, and why."""
    problems = "; ".join(_problem(err, given, toml_file) for err in exc.errors())
    return ConfigError(f"invalid configuration: {problems}")


def _problem(err: Any, given: Any, toml_file: Path | None) -> str:
    """``where: why (got VALUE)``; secrets are never shown."""
    message = str(err["msg"]).removeprefix("Value error, ")
    loc: tuple[int | str, ...] = tuple(err.get("loc") or ())
    value = err.get("input")
    secret = bool(loc) and str(loc[0]) in _secret_fields()
    shown = f" (got {value!r})" if isinstance(value, str | int | float) and not secret else ""
    return f"{_where(loc, given, toml_file)}: {message}{shown}"


def _secret_fields() -> set[str]:
    """The settings that hold secrets (``SecretStr``): their values are never shown."""
    return {
        name
        for name, field in Settings.model_fields.items()
        if SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
    }


def _where(loc: tuple[int | str, ...], given: Any, toml_file: Path | None) -> str:
    """The refused setting as the user wrote it: a keyword or flag, ``RAGLOOM_<NAME>``, or
    the setting in the configuration file (the first of them that sets it)."""
    name = ".".join(str(p) for p in loc) or "settings"
    field = str(loc[0]) if loc else ""
    if not field or field in given:
        return name
    variable = f"RAGLOOM_{field.upper()}"
    if any(key.upper() == variable for key in os.environ):
        return variable
    if toml_file is not None and toml_file.is_file():
        return f"{name} in {toml_file}"
    return name


def _file_settings(toml_file: Path) -> dict[str, Any]:
    """What the configuration file sets (nothing when there is none); a setting it names
    that does not exist is refused: a misspelt key would otherwise be ignored without a
    word."""
    if not toml_file.is_file():
        return {}
    data = dict(TomlConfigSettingsSource(Settings, toml_file).toml_data)
    for key in data:
        _check_key(key, str(toml_file))
    return data


def _warn_misspelt_variables() -> None:
    """Warn, once, of a ``RAGLOOM_*`` variable that is no setting but looks like one
    (``RAGLOOM_COLECTION``): pydantic-settings ignores it without a word."""
    global _warned_variables
    if _warned_variables:
        return
    _warned_variables = True
    known = {f"RAGLOOM_{name.upper()}" for name in Settings.model_fields}
    known |= {CONFIG_FILE_ENV, *_ENVIRONMENT_ONLY.values()}
    for name in sorted(os.environ):
        if name.startswith("RAGLOOM_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if close:
                log.warning(
                    "%s is not a ragloom setting (ignored): did you mean %s?", name, close[0]
                )


_warned_variables = False


def _check_key(key: str, where: str) -> None:
    """Refuse ``key`` (given in ``where``) unless it names a setting."""
    if key in _ENVIRONMENT_ONLY:
        raise ConfigError(
            f"{where}: {key} is read from the environment only:"
            f" set {_ENVIRONMENT_ONLY[key]} instead"
        )
    known = set(Settings.model_fields)
    if key not in known:
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see docs/configuration.md"
        raise ConfigError(f"{where}: unknown setting {key!r}; {hint}")


# ``ragloom serve``'s own settings, read where they are used.
_ENVIRONMENT_ONLY = {"api_key": "RAGLOOM_API_KEY", "query_batch": "RAGLOOM_QUERY_BATCH"}
