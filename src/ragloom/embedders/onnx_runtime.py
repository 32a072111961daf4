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
import tempfile
from collections.abc import Sequence
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


def export(model_dir: Path, target: Path) -> None:
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


class OnnxEncoder:
    """Tokenise with ``tokenizers``, embed with ONNX Runtime, in length-sorted batches."""

    def __init__(self, onnx_file: Path, tokenizer_file: Path, max_tokens: int) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(max_tokens)
        self._tokenizer.enable_padding()

    def encode(self, texts: Sequence[str], batch_size: int) -> Any:
        """Unit vectors for ``texts`` (a float32 array), in the order given."""
        import numpy as np

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: Any = None
        for start in range(0, len(order), batch_size):
            picked = order[start : start + batch_size]
            encoded = self._tokenizer.encode_batch([texts[i] for i in picked])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            vectors = self._session.run(None, feed)[0]
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[picked] = vectors
        return out
