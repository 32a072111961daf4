"""The tutorials' embedder: pymilvus's ``DefaultEmbeddingFunction`` (768-d ONNX ALBERT).

Needs the optional extra ``ragloom[milvus-default]`` and, on first use, the network:
its weights come from the Hugging Face Hub (``GPTCache/paraphrase-albert-onnx``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from ragloom.embedders.base import InputType
from ragloom.errors import EmbedderError, MissingDependencyError, option

DIM = 768  # hidden size of paraphrase-albert-small-v2


class MilvusDefaultEmbedder:
    """pymilvus ``DefaultEmbeddingFunction``, as in the Milvus RAG tutorials."""

    name = "milvus-default:paraphrase-albert-onnx"

    @cached_property
    def _function(self) -> Any:
        try:
            from pymilvus import model as milvus_model
        except ImportError:
            raise MissingDependencyError(
                "pymilvus-model", "milvus-default", "The milvus-default embedder"
            ) from None
        try:
            return milvus_model.DefaultEmbeddingFunction()
        except Exception as exc:  # hub, network and file errors all surface here
            raise EmbedderError(
                "could not load pymilvus's DefaultEmbeddingFunction: its ONNX weights"
                " (GPTCache/paraphrase-albert-onnx) could not be fetched from the Hugging Face"
                f" Hub ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})."
                " Connect to the network once so they are cached, or use"
                f" {option('embedder', 'local')}."
            ) from None

    @property
    def dim(self) -> int:
        """768, known without loading the model."""
        return DIM

    @property
    def max_tokens(self) -> int:
        """The tokenizer's window (the function truncates to it)."""
        return min(int(self._function.tokenizer.model_max_length), 512)

    def count_tokens(self, text: str) -> int:
        """Tokens as the ALBERT tokenizer counts them."""
        return len(self._function.tokenizer(text)["input_ids"])

    def embed(self, texts: Sequence[str], input_type: InputType = "document") -> list[list[float]]:
        """Embed ``texts`` one by one, as the function does; vectors are unit length."""
        if not texts:
            return []
        encode = (
            self._function.encode_queries
            if input_type == "query"
            else self._function.encode_documents
        )
        return [[float(x) for x in v] for v in encode(list(texts))]
