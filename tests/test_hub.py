"""Models named by a Hugging Face Hub id, on a machine where the Hub cannot be reached.

Each run is a real ``ragloom`` process with its own Hugging Face cache (``HF_HOME``), the
Hub switched back on (the suite sets ``HF_HUB_OFFLINE``) and pointed at a closed loopback
port (``HF_ENDPOINT``): nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragloom import RAG
from ragloom.embedders.local import bundled_model_path
from tests.test_retrieval import tiny_cross_encoder

SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hub_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_HOME=str(home), HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    env["RAGLOOM_CACHE_DIR"] = ""  # no ONNX export: the model loads as it is
    return env


def cache_model(home: Path, repo_id: str, files: Path) -> None:
    """Put ``files`` in the Hugging Face cache under ``home`` as ``repo_id``'s main."""
    repo = home / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(files, repo / "snapshots" / SNAPSHOT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SNAPSHOT)


def ragloom(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "ragloom", *args],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return run, time.monotonic() - started


@pytest.fixture
def page(tmp_path: Path) -> Path:
    path = tmp_path / "page.md"
    path.write_text("# Storage\n\nMilvus keeps inserted data in object storage such as MinIO.\n")
    return path


def test_a_model_neither_cached_nor_reachable_fails_at_once(tmp_path: Path, page: Path) -> None:
    # Before, sentence-transformers retried the Hub for about a minute before failing.
    env = hub_env(tmp_path / "hf")
    db = str(tmp_path / "a.db")
    run, seconds = ragloom(
        env, "ingest", str(page), "--embedder", "local:acme/nowhere", "--uri", db
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "'acme/nowhere'" in run.stderr and "not in the Hugging Face cache" in run.stderr
    assert env["HF_ENDPOINT"] in run.stderr and "did not answer" in run.stderr
    ragloom(env, "ingest", str(page), "--uri", db)
    run, rerank_seconds = ragloom(env, "search", "storage", "--rerank", "acme/no-ce", "--uri", db)
    assert run.returncode == 1 and "--rerank acme/no-ce" in run.stderr
    assert "did not answer" in run.stderr
    # the Hub is asked once, not retried for a minute (the bound leaves room for a start-up
    # on a busy machine: 33 s were seen with two other ingests running)
    assert seconds < 50 and rerank_seconds < 50


def test_models_in_the_hugging_face_cache_load_without_the_network(
    tmp_path: Path, page: Path
) -> None:
    bundled = bundled_model_path()
    if bundled is None:
        pytest.skip("the bundled model is not installed")
    home = tmp_path / "hf"
    cache_model(home, "acme/minilm-copy", bundled)
    cache_model(home, "acme/tiny-ce", tiny_cross_encoder(tmp_path / "ce"))
    env = hub_env(home)
    db = str(tmp_path / "copy.db")
    run, seconds = ragloom(
        env, "ingest", str(page), "--embedder", "local:acme/minilm-copy", "--uri", db
    )
    assert run.returncode == 0, run.stderr
    query = ("search", "where is data stored", "--json", "--mode", "dense", "--uri", db)
    found, _ = ragloom(env, *query)
    assert found.returncode == 0, found.stderr
    [hit] = json.loads(found.stdout)["hits"]
    with RAG(uri=str(tmp_path / "bundled.db"), cache_dir="") as bundled_rag:
        bundled_rag.ingest([str(page)])
        [expected] = bundled_rag.search("where is data stored", 1, mode="dense")
    assert hit["score"] == pytest.approx(expected.score, abs=1e-5)  # the same model's vectors
    reranked, _ = ragloom(env, *query, "--rerank", "acme/tiny-ce")
    assert reranked.returncode == 0, reranked.stderr
    assert [h["text"] for h in json.loads(reranked.stdout)["hits"]] == [hit["text"]]
    assert seconds < 50  # the Hub is not asked about a cached model (it was, a minute long)
