"""A deterministic in-process embedder, and the hashed bag-of-words vectors it and the fakes use.

Texts sharing words get vectors with a high cosine, so retrieval tests behave sensibly
without a model; the same text always gives the same vector, in every process.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from ragloom.embedders.base import InputType, approx_tokens, normalise

_WORD = re.compile(r"\w+")


def hashed_embedding(text: str, dim: int) -> list[float]:
    """A unit vector of ``dim`` floats: each lower-cased word adds ±1 at a hashed index."""
    if dim < 1:
        raise ValueError("dim must be at least 1")
    vec = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        n = int.from_bytes(digest, "little")
        vec[n % dim] += 1.0 if (n >> 63) & 1 else -1.0
    if not any(vec):
        vec[0] = 1.0  # empty or word-less text: a fixed unit vector, never zero
    return normalise([vec])[0]


class FakeEmbedder:
    """Implements the ``Embedder`` protocol with hashed bag-of-words vectors; counts its use.

    ``calls`` counts ``embed`` calls, ``texts_embedded`` the texts across them, and
    ``batches`` keeps each call's ``(input_type, texts)`` for assertions.
    """

    def __init__(self, dim: int = 64, name: str = "fake:hashed-bow", max_tokens: int = 512) -> None:
        self.name = name
        self._dim = dim
        self._max_tokens = max_tokens
        self.calls = 0
        self.texts_embedded = 0
        self.batches: list[tuple[InputType, list[str]]] = []

    @property
    def dim(self) -> int:
        """Vector dimension, as configured."""
        return self._dim

    @property
    def max_tokens(self) -> int:
        """Tokens of one input the fake pretends to read."""
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        """The model-free estimate remote embedders use."""
        return approx_tokens(text)

    def embed(self, texts: Sequence[str], input_type: InputType = "document") -> list[list[float]]:
        """Embed ``texts``; queries and documents share one space, as with symmetric models."""
        batch = list(texts)
        self.calls += 1
        self.texts_embedded += len(batch)
        self.batches.append((input_type, batch))
        return [hashed_embedding(t, self._dim) for t in batch]
