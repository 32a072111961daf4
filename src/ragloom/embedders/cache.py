"""An on-disk embedding cache keyed by model and text, so no text is embedded twice.

``--rebuild``, re-chunking with the same model, a renamed file, or a section that moved
all produce chunk texts that were embedded before; their vectors come from here.  The
cache is a SQLite file (atomic writes, safe across processes); losing it costs only time.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ragloom.embedders.base import Embedder, InputType

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, text_hash)
) WITHOUT ROWID
"""
_LOOKUP_BATCH = 500


def text_key(text: str) -> str:
    """The cache key of a text (its SHA-256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors by (model, text hash) in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get(self, model: str, keys: Sequence[str]) -> dict[str, list[float]]:
        """The cached vectors among ``keys``."""
        import numpy as np

        found: dict[str, list[float]] = {}
        for start in range(0, len(keys), _LOOKUP_BATCH):
            batch = list(keys[start : start + _LOOKUP_BATCH])
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT text_hash, vector FROM vectors WHERE model = ? AND text_hash IN ({marks})",
                [model, *batch],
            )
            for key, blob in rows:
                found[key] = np.frombuffer(blob, dtype=np.float32).tolist()
        return found

    def put(self, model: str, items: Mapping[str, Sequence[float]]) -> None:
        """Store vectors (float32)."""
        import numpy as np

        self._db.executemany(
            "INSERT OR REPLACE INTO vectors (model, text_hash, vector) VALUES (?, ?, ?)",
            [(model, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
        )
        self._db.commit()

    def close(self) -> None:
        """Close the file."""
        self._db.close()


class CachingEmbedder:
    """Wraps an embedder: document texts seen before are not embedded again."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        # vectors are filed under the embedder's cache_key when it has one (remote models:
        # the server and dimension too), else its name
        self._key = str(getattr(inner, "cache_key", inner.name))
        self.hits = 0

    @property
    def dim(self) -> int:
        """The wrapped embedder's dimension."""
        return self.inner.dim

    @property
    def max_tokens(self) -> int:
        """The wrapped embedder's window."""
        return self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        """Tokens as the wrapped embedder counts them."""
        return self.inner.count_tokens(text)

    def embed(self, texts: Sequence[str], input_type: InputType = "document") -> list[list[float]]:
        """Embed, taking document vectors from the cache where it has them."""
        if input_type != "document" or not texts:
            return self.inner.embed(texts, input_type)
        keys, found = self._lookup(texts)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            fresh = self.inner.embed([texts[i] for i in missing], input_type)
            new = {keys[i]: v for i, v in zip(missing, fresh, strict=True)}
            self.cache.put(self._key, new)
            found.update(new)
        self.hits += len(texts) - len(missing)
        return [found[k] for k in keys]

    def uncached(self, texts: Sequence[str]) -> int:
        """How many of the document ``texts`` an ``embed`` would send to the model."""
        keys, found = self._lookup(texts)
        return sum(1 for k in keys if k not in found)

    def _lookup(self, texts: Sequence[str]) -> tuple[list[str], dict[str, list[float]]]:
        """The texts' cache keys, and the vectors the cache holds for them."""
        keys = [text_key(t) for t in texts]
        return keys, self.cache.get(self._key, keys)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
