"""ragloom: ask your documents, on Milvus.

from ragloom import RAG
rag = RAG(uri="./ragloom.db")
rag.ingest(["docs/"])
for hit in rag.search("How do I use a Milvus server?", k=3):
    print(hit.rank, hit.source, hit.heading)
answer = rag.ask("How do I use a Milvus server?")   # an LLM if a key is set, else extractive
print(answer.text, [c.source for c in answer.citations])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ragloom.errors import (
    CollectionMismatchError,
    ConfigError,
    EmbedderError,
    MissingDependencyError,
    ProviderError,
    RagloomError,
    SourceError,
    StoreError,
    StoreLockedError,
)
from ragloom.types import Answer, Chunk, Citation, Document, Hit, IngestReport, LoadIssue

if TYPE_CHECKING:
    from ragloom.rag import RAG

__version__ = "0.1.0"

__all__ = [
    "RAG",
    "Answer",
    "Chunk",
    "Citation",
    "CollectionMismatchError",
    "ConfigError",
    "Document",
    "EmbedderError",
    "Hit",
    "IngestReport",
    "LoadIssue",
    "MissingDependencyError",
    "ProviderError",
    "RagloomError",
    "SourceError",
    "StoreError",
    "StoreLockedError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # RAG pulls in settings and the store wiring: load it when asked for, so that
    # `ragloom --help` and `import ragloom.errors` stay fast.
    if name == "RAG":
        from ragloom.rag import RAG

        return RAG
    raise AttributeError(f"module 'ragloom' has no attribute {name!r}")
