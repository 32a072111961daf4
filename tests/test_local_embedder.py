"""The bundled model: ONNX Runtime and PyTorch give the same vectors; queries skip torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from ragloom.embedders.base import embed_soon
from ragloom.embedders.local import LocalEmbedder
from ragloom.embedders.onnx_runtime import length_batches
from ragloom.testing import FakeEmbedder

TEXTS = [
    "Where does Milvus store data?",
    "Milvus deals with two types of data, inserted data and metadata. " * 20,
    "etcd stores Milvus module metadata; MinIO stores entities.",
]


def test_onnx_and_torch_backends_agree(onnx_cache: Path) -> None:
    onnx = LocalEmbedder(cache_dir=str(onnx_cache))
    torch = LocalEmbedder(backend="torch")
    assert onnx.backend == "onnx" and torch.backend == "torch"
    a = np.array(onnx.embed(TEXTS))
    b = np.array(torch.embed(TEXTS))
    assert a.shape == b.shape == (3, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.99999
    assert onnx.count_tokens(TEXTS[1]) > 256  # counted in full, though the model reads 256


def test_a_query_in_a_fresh_process_does_not_import_torch(onnx_cache: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from ragloom.embedders.local import LocalEmbedder
        vec = LocalEmbedder(cache_dir={str(onnx_cache)!r}).embed(["a question"], "query")[0]
        assert len(vec) == 384
        print("torch" in sys.modules, "sentence_transformers" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_length_batches_bound_texts_and_padded_tokens() -> None:
    lengths = [5, 300, 12, 12, 7, 100, 2, 64, 40, 41]
    batches = length_batches(lengths, max_texts=3, max_tokens=128)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        # padded to its longest; only a text over the budget on its own may exceed it
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 128
    in_order = [lengths[i] for batch in batches for i in batch]
    assert in_order == sorted(in_order)
    assert length_batches([], 8, 64) == []


def test_vectors_do_not_depend_on_the_batch(onnx_cache: Path) -> None:
    texts = [*TEXTS, "", "short", "a middling sentence about segments " * 8, TEXTS[0]]
    embedder = LocalEmbedder(cache_dir=str(onnx_cache))
    together = np.array(embedder.embed(texts))
    alone = np.array([embedder.embed([text])[0] for text in texts])
    assert together.shape == (len(texts), 384)
    assert (together * alone).sum(axis=1).min() > 0.99999
    assert np.allclose(together[0], together[-1], atol=1e-6)  # the same text, same vector


def test_a_question_embedded_in_the_background_gets_the_same_vector(onnx_cache: Path) -> None:
    # Hybrid search starts the question's embedding, runs BM25, then takes the vector.
    embedder = LocalEmbedder(cache_dir=str(onnx_cache))
    assert embedder.backend == "onnx"
    questions = ["where does milvus store data?", "What is a partition key?"]
    pending = [embed_soon(embedder, [q], "query") for q in questions]  # both in flight
    later = np.array([wait()[0] for wait in pending])
    now = np.array(embedder.embed(questions, "query"))
    assert later.shape == (2, 384) and np.allclose(later, now, atol=1e-6)
    # On one core ONNX Runtime has no thread pool to run in the background: embedded now.
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    encoder = embedder._onnx
    encoder._session = onnxruntime.InferenceSession(encoder._session._model_path, options)
    assert np.allclose(embed_soon(embedder, questions[:1], "query")(), now[:1], atol=1e-6)
    plain = FakeEmbedder(dim=8)  # no background work: embedded at once, same contract
    assert embed_soon(plain, ["x"], "query")() == plain.embed(["x"], "query")


def test_the_export_runs_in_a_child_process(tmp_path: Path) -> None:
    # torch and transformers cost ~1 GB once imported: a first ingest must not keep them.
    script = textwrap.dedent(f"""
        import sys
        from ragloom.embedders.local import LocalEmbedder
        embedder = LocalEmbedder(cache_dir={str(tmp_path)!r})
        assert len(embedder.embed(["exported on first use"])[0]) == 384
        print(embedder.backend, "torch" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["onnx", "False"]
    assert list(tmp_path.glob("onnx/*/model.onnx"))


def test_python_api_search_in_fresh_processes(onnx_cache: Path, tmp_path: Path) -> None:
    """``RAG.search`` loads the model in a thread while the store opens: both import
    numpy, which must not meet half-initialised (it did in about half of fresh runs)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "storage.md").write_text("# Storage\n\nMilvus stores data in MinIO and etcd.\n")
    db = tmp_path / "fresh.db"
    setup = f"from ragloom import RAG\nprint(RAG(uri={str(db)!r}, cache_dir={str(onnx_cache)!r})"
    subprocess.run([sys.executable, "-c", f"{setup}.ingest([{str(docs)!r}]))"], check=True)
    search = f"{setup}.search('Where does Milvus store data?', k=1)[0].source)"
    for _ in range(4):
        out = subprocess.run([sys.executable, "-c", search], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip().endswith("storage.md")
