"""What a ragloom collection records: the settings it was built with, and its documents."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ragloom import lexical

SCHEMA_VERSION = 1
METRIC = "IP"


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection was built with; a mismatch means its vectors are not comparable."""

    embedder: str
    dim: int
    splitter: str
    chunk_tokens: int
    metric: str = METRIC
    bm25: bool = False
    schema: int = SCHEMA_VERSION
    analyzer: str = lexical.RAW  # how the BM25 text was normalised (ragloom.lexical)

    def to_json(self) -> str:
        """The collection description Milvus stores."""
        return json.dumps({"ragloom": asdict(self)}, sort_keys=True)

    @classmethod
    def from_description(cls, description: str) -> CollectionInfo | None:
        """Parse a description written by ``to_json``; None for foreign collections."""
        try:
            data = json.loads(description)["ragloom"]
            return cls(**data)
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class StoredDocument:
    """One ingested document as the collection records it."""

    source: str
    root: str
    doc_hash: str
    chunks: int
    ingested_at: int


@dataclass
class StoredChunks:
    """The rows stored for one document: chunk id -> document hash, and chunk counts."""

    hashes: dict[str, str] = field(default_factory=dict)
    counts: set[int] = field(default_factory=set)

    def complete(self, doc_hash: str) -> bool:
        """True when every chunk of this version of the document, and nothing else, is here."""
        return (
            bool(self.hashes)
            and self.counts == {len(self.hashes)}
            and all(h == doc_hash for h in self.hashes.values())
        )
