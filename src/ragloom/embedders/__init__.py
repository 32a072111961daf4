"""Embedders: one protocol, one module per provider; ``make_embedder`` picks one by name.

Spec strings: ``local`` (the bundled all-MiniLM-L6-v2), ``local:MODEL`` (any
sentence-transformers model name or folder), ``milvus-default`` (the tutorials'
pymilvus DefaultEmbeddingFunction), ``gemini[:MODEL]``, ``openai[:MODEL]``.
"""

from __future__ import annotations

from ragloom.embedders.base import Embedder, InputType
from ragloom.errors import ConfigError

__all__ = ["EMBEDDER_KINDS", "IN_PROCESS_EMBEDDERS", "Embedder", "InputType", "make_embedder"]

EMBEDDER_KINDS = ("local", "milvus-default", "gemini", "openai")
#: Name prefixes of the embedders that run in this process (no API, no cost per call).
IN_PROCESS_EMBEDDERS = ("local:", "milvus-default:")


def make_embedder(
    spec: str, batch_size: int | None = None, cache_dir: str | None = None
) -> Embedder:
    """Build the embedder named by ``spec``; no model is loaded yet."""
    kind, _, model = spec.partition(":")
    kind = kind.strip().lower()
    model = model.strip()
    if kind == "local":
        from ragloom.embedders.local import BUNDLED_MODEL, LocalEmbedder

        return LocalEmbedder(model or BUNDLED_MODEL, batch_size=batch_size, cache_dir=cache_dir)
    if kind == "milvus-default":
        from ragloom.embedders.milvus_default import MilvusDefaultEmbedder

        return MilvusDefaultEmbedder()
    if kind == "gemini":
        from ragloom.embedders.gemini_embedder import GeminiEmbedder

        return GeminiEmbedder(model=model) if model else GeminiEmbedder()
    if kind == "openai":
        from ragloom.embedders.openai_embedder import OpenAIEmbedder

        return OpenAIEmbedder(model=model) if model else OpenAIEmbedder()
    raise ConfigError(
        f"unknown embedder '{spec}': use one of {', '.join(EMBEDDER_KINDS)}"
        " (optionally with ':MODEL', e.g. local:BAAI/bge-small-en-v1.5)"
    )
