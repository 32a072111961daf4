"""One exception hierarchy for everything ragloom raises on purpose.

RagloomError                 base: the CLI prints its message, never a traceback
├── ConfigError              the caller's mistake: a bad flag, setting or missing key
│   └── MissingDependencyError   an optional extra is not installed (names the pip command)
├── SourceError              one input (file, member, URL) could not be read
├── EmbedderError            an embedding model could not be loaded or called
├── StoreError               Milvus could not be reached or used
│   ├── StoreLockedError         a Milvus Lite file is held by another process
│   └── CollectionMismatchError  the collection was built with other settings
└── ProviderError            a remote LLM or embedding API failed (issue: answers)
"""

from __future__ import annotations


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


class CollectionMismatchError(StoreError):
    """The collection was built with another embedder, dimension or chunker."""


class ProviderError(RagloomError):
    """A remote model API failed after retries, or answered something unusable."""
