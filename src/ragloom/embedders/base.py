"""The protocol every embedder follows, and helpers they share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol, runtime_checkable

InputType = Literal["query", "document"]
TokenCounter = Callable[[str], int]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors.

    Construction is cheap: models are loaded, and clients created, on first use.
    ``name`` identifies the model for the collection's record (``local:all-MiniLM-L6-v2``).
    """

    name: str

    @property
    def dim(self) -> int:
        """Vector dimension (may load the model)."""
        ...

    @property
    def max_tokens(self) -> int:
        """How many tokens of one input the model reads; the rest is ignored."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` as the model counts them (approximate for remote APIs)."""
        ...

    def embed(self, texts: Sequence[str], input_type: InputType = "document") -> list[list[float]]:
        """Embed ``texts`` in batches; vectors are L2-normalised so IP equals cosine."""
        ...


Pending = Callable[[], list[list[float]]]


def embed_soon(embedder: Embedder, texts: Sequence[str], input_type: InputType) -> Pending:
    """Start embedding ``texts``; the returned call waits for the vectors.

    An embedder that can compute in the background (``embed_soon``: the local model under
    ONNX Runtime) does so while the caller goes on; any other embeds now.
    """
    start = getattr(embedder, "embed_soon", None)
    if callable(start):
        pending: Pending = start(texts, input_type)
        return pending
    vectors = embedder.embed(texts, input_type)
    return lambda: vectors


def approx_tokens(text: str) -> int:
    """A model-free token estimate (about four characters a token) for remote APIs."""
    return max(1, (len(text) + 3) // 4)


def normalise(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """Scale each vector to unit length (zero vectors are left as they are)."""
    out = []
    for v in vectors:
        norm = sum(x * x for x in v) ** 0.5
        out.append([x / norm for x in v] if norm else list(v))
    return out
