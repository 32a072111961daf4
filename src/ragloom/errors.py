"""One exception hierarchy for everything ragloom raises on purpose.

RagloomError                 base: the CLI prints its message, never a traceback
├── ConfigError              the caller's mistake: a bad flag, setting or missing key
│   └── MissingDependencyError   an optional extra is not installed (names the pip command)
├── SourceError              one input (file, member, URL) could not be read
├── EmbedderError            an embedding model could not be loaded or called
├── StoreError               Milvus could not be reached or used
│   ├── StoreLockedError         a Milvus Lite file is held by another process
│   ├── RowsRejectedError        Milvus refused the data of rows (not the store's fault)
│   └── CollectionMismatchError  the collection was built with other settings
└── ProviderError            a remote LLM or embedding API failed (issue: answers)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

#: True while the ``ragloom`` command runs: messages then name options as flags.
_command_line = False
#: Options a server's clients cannot set (its model, its store): named as its flags.
_server_flags: frozenset[str] = frozenset()


@contextmanager
def command_line_names() -> Iterator[None]:
    """Within, messages name options as the command line spells them (``--mode x``);
    elsewhere (the Python API, the HTTP API) as keyword arguments (``mode='x'``)."""
    global _command_line
    before, _command_line = _command_line, True
    try:
        yield
    finally:
        _command_line = before


@contextmanager
def keyword_names(server_flags: frozenset[str] = frozenset()) -> Iterator[None]:
    """Within, messages name options as keywords even under the command (a server's
    requests, whose JSON fields carry the keywords' names), except ``server_flags``:
    those only whoever started the server can change (``the server's --llm none``)."""
    global _command_line, _server_flags
    before = _command_line, _server_flags
    _command_line, _server_flags = False, server_flags
    try:
        yield
    finally:
        _command_line, _server_flags = before


def on_command_line() -> bool:
    """Whether messages now name options as flags (see ``command_line_names``)."""
    return _command_line


def option(name: str, value: object = None) -> str:
    """An option as the user gave it: ``--mode x``, ``--rebuild``, ``--collection`` at the
    command line; ``mode='x'``, ``rebuild=True``, ``collection`` in Python."""
    if _command_line or name in _server_flags:
        flag = "--" + name.replace("_", "-")
        flag = flag if value is None or value is True else f"{flag} {value}"
        return f"the server's {flag}" if name in _server_flags else flag
    return name if value is None else f"{name}={value!r}"


class RagloomError(Exception):
    """Base class: an expected failure with a message a user can act on."""


class ConfigError(RagloomError):
    """A setting, flag or key is wrong or missing."""


class MissingDependencyError(ConfigError):
    """An optional dependency is missing; the message names what to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{package}': pip install 'ragloom[{extra}]'"
        )
        self.package = package
        self.extra = extra


class SourceError(RagloomError):
    """One source (file, archive member, URL) could not be loaded."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class EmbedderError(RagloomError):
    """An embedding model could not be loaded or called."""


class StoreError(RagloomError):
    """Milvus could not be reached or used."""


class StoreLockedError(StoreError):
    """A Milvus Lite database file is in use by another process."""


class RowsRejectedError(StoreError):
    """Milvus refused rows for what they hold (a value its schema cannot store): the
    rows' documents are at fault, not the connection."""


class CollectionMismatchError(StoreError):
    """The collection was built with another embedder, dimension or chunker."""


class ProviderError(RagloomError):
    """A remote model API failed after retries, or answered something unusable."""
