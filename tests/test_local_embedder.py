"""The bundled model: ONNX Runtime and PyTorch give the same vectors; queries skip torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from ragloom.embedders.local import LocalEmbedder

TEXTS = [
    "Where does Milvus store data?",
    "Milvus deals with two types of data, inserted data and metadata. " * 20,
    "etcd stores Milvus module metadata; MinIO stores entities.",
]


def test_onnx_and_torch_backends_agree(tmp_path: Path) -> None:
    onnx = LocalEmbedder(cache_dir=str(tmp_path))
    torch = LocalEmbedder(backend="torch")
    assert onnx.backend == "onnx" and torch.backend == "torch"
    a = np.array(onnx.embed(TEXTS))
    b = np.array(torch.embed(TEXTS))
    assert a.shape == b.shape == (3, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.99999
    assert onnx.count_tokens(TEXTS[1]) > 256  # counted in full, though the model reads 256


def test_a_query_in_a_fresh_process_does_not_import_torch(tmp_path: Path) -> None:
    LocalEmbedder(cache_dir=str(tmp_path)).embed(["warm the export cache"])
    script = textwrap.dedent(f"""
        import sys
        from ragloom.embedders.local import LocalEmbedder
        vec = LocalEmbedder(cache_dir={str(tmp_path)!r}).embed(["a question"], "query")[0]
        assert len(vec) == 384
        print("torch" in sys.modules, "sentence_transformers" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
