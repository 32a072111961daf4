"""Run a sentence-transformers model with ONNX Runtime: a fast start, the same vectors.

Importing sentence-transformers (and torch) takes seconds, far more than embedding one
query.  For the common model shape (a BERT-like transformer, mean pooling, L2
normalisation, such as the bundled all-MiniLM-L6-v2) the model is exported once to ONNX,
pooling included, and cached; later processes load only ``onnxruntime`` and
``tokenizers``.  The exported model's vectors match sentence-transformers' to ~1e-7.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_SUPPORTED_MODULES = [
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
]


def exportable(model_dir: Path) -> bool:
    """True when the model is transformer -> mean pooling -> normalise, with a fast tokenizer."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    kinds = [m.get("type", "").replace("sentence_transformers.models.", "") for m in modules]
    wanted = [k.rsplit(".", 1)[-1] for k in _SUPPORTED_MODULES]
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        pooling.get(k)
        for k in (
            "pooling_mode_cls_token",
            "pooling_mode_max_tokens",
            "pooling_mode_mean_sqrt_len_tokens",
        )
    )
    return kinds == wanted and bool(mean_only) and (model_dir / "tokenizer.json").is_file()


def cached_model_path(model_dir: Path, cache_dir: Path) -> Path:
    """Where the export of ``model_dir`` lives (keyed by the weights' identity)."""
    weights = sorted(p for p in model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    ident = json.dumps(
        [str(model_dir.resolve()), [(p.name, p.stat().st_size) for p in weights]], sort_keys=True
    )
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return cache_dir / "onnx" / f"{model_dir.name}-{digest}" / "model.onnx"


# Runs export_here in a child; the parent's sys.path is passed on so it finds ragloom.
_EXPORT_CHILD = """
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
from pathlib import Path
from ragloom.embedders.onnx_runtime import export_here
export_here(Path(sys.argv[2]), Path(sys.argv[3]))
"""


def export(model_dir: Path, target: Path) -> None:
    """Export the model to ``target``, in a child process.

    The export needs torch and transformers, ~1 GB of memory a process keeps once they are
    imported (an ingest that exported in-process peaked at 2.8 GB); the encoder needs
    neither, so they never enter this process.
    """
    proc = subprocess.run(
        [sys.executable, "-c", _EXPORT_CHILD, json.dumps(sys.path), str(model_dir), str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no message)"]
        raise RuntimeError(f"exporting {model_dir.name} to ONNX failed: {lines[-1]}")


def export_here(model_dir: Path, target: Path) -> None:
    """Export the model with its pooling and normalisation (needs torch and onnx)."""
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    model = Pooled(AutoModel.from_pretrained(str(model_dir), local_files_only=True)).eval()
    sample = torch.ones(2, 8, dtype=torch.long)
    axes = {"b": 0, "s": 1}
    dynamic = {
        name: {0: "batch", 1: "tokens"}
        for name in ("input_ids", "attention_mask", "token_type_ids")
    }
    dynamic["embedding"] = {axes["b"]: "batch"}
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename: another process may be exporting too.
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(
                model,
                (sample, sample, torch.zeros_like(sample)),
                tmp,
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["embedding"],
                dynamic_axes=dynamic,
                opset_version=17,
                dynamo=False,
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


#: Padded tokens per forward pass on a CPU.  Small batches of similar length run as fast
#: as large ones or faster (their activations stay in cache), and ONNX Runtime keeps the
#: memory of the largest batch it ran: 64 full-window texts cost ~1.4 GB of RSS, 2,048
#: tokens ~0.35 GB (benchmarks/encode_vs_ingest.py; docs/benchmarks.md).
MAX_BATCH_TOKENS = 2048


def length_batches(lengths: Sequence[int], max_texts: int, max_tokens: int) -> list[list[int]]:
    """Indexes of ``lengths`` in batches of similar length, shortest first.

    A batch holds at most ``max_texts`` texts and, padded to its longest, at most
    ``max_tokens`` tokens (a single text longer than that is a batch of its own).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # Sorted: this text is the batch's longest, so it sets the padded width.
        if current and (len(current) >= max_texts or (len(current) + 1) * lengths[i] > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class OnnxEncoder:
    """Tokenise with ``tokenizers``, embed with ONNX Runtime, in batches of similar length."""

    def __init__(
        self,
        onnx_file: Path,
        tokenizer_file: Path,
        max_tokens: int,
        max_batch_tokens: int = MAX_BATCH_TOKENS,
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Memory patterns pay off for fixed shapes; every batch here has its own, and a
        # pattern kept per shape only grows the process.
        options.enable_mem_pattern = False
        self._session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        padding = self._tokenizer.padding
        self._pad_id = int(padding["pad_id"]) if padding else 0
        self._tokenizer.enable_truncation(max_tokens)
        self._tokenizer.no_padding()  # each batch is padded to its own longest text below
        self.max_batch_tokens = max_batch_tokens

    def encode(self, texts: Sequence[str], batch_size: int) -> Any:
        """Unit vectors for ``texts`` (a float32 array), in the order given.

        Texts are tokenised once, sorted by token count and run in batches of at most
        ``batch_size`` texts and ``max_batch_tokens`` padded tokens.
        """
        import numpy as np

        ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        out: Any = None
        for picked in length_batches([len(x) for x in ids], batch_size, self.max_batch_tokens):
            vectors = self._session.run(None, self._feed([ids[i] for i in picked]))[0]
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[picked] = vectors
        return out

    def encode_soon(self, texts: Sequence[str], timeout: float = 60.0) -> Callable[[], Any]:
        """Start embedding a few ``texts`` (one batch) and return a call that waits for
        their vectors.  ONNX Runtime computes them on its own threads, without the
        interpreter lock, while the caller goes on (a hybrid search runs its BM25 search
        meanwhile, which is Python on Milvus Lite)."""
        feed = self._feed([e.ids for e in self._tokenizer.encode_batch(list(texts))])
        done = threading.Event()
        result: list[Any] = []

        def finished(outputs: Any, _: Any, error: str) -> None:
            result.append(RuntimeError(error) if error else outputs[0])
            done.set()

        try:
            self._session.run_async(None, feed, finished, None)
        except Exception:  # no thread pool to run on (one core): embed now
            vectors = self._session.run(None, feed)[0]
            return lambda: vectors

        def wait() -> Any:
            if not done.wait(timeout):
                raise TimeoutError(f"the embedding model gave no answer in {timeout:.0f} s")
            if isinstance(result[0], Exception):
                raise result[0]
            return result[0]

        return wait

    def _feed(self, rows: Sequence[Sequence[int]]) -> dict[str, Any]:
        """The model's inputs for token id ``rows``, padded to the longest."""
        import numpy as np

        width = max(len(row) for row in rows)
        input_ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for n, row in enumerate(rows):
            input_ids[n, : len(row)] = row
            mask[n, : len(row)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(input_ids),
        }
