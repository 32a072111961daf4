"""Shared fixtures: the real Milvus server (one per session), shared data, a docs folder of
every format for the loader tests, no network."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
FAQ_DIR = CORPUS / "milvus_faq_2.4"
DOCS_ZIP = CORPUS / "milvus_docs_2.4.x_en.zip"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may reach loopback only: any other connection is a test bug."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
            raise OSError(f"test tried to reach {host}: tests must not use the network")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _own_embedding_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with an empty embedding cache, outside the user's home."""
    monkeypatch.setenv("RAGLOOM_CACHE_DIR", str(tmp_path / "embedding-cache"))


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus standalone server (PyPI package 'milvus'), started once per session."""
    from tests.milvus_server import start_milvus_server

    handle = start_milvus_server(tmp_path_factory.mktemp("milvus-server"))
    try:
        yield handle.uri
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def milvus_server_with_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus server with authentication on: clients need ``ROOT_TOKEN``."""
    from tests.milvus_server import start_milvus_server

    handle = start_milvus_server(tmp_path_factory.mktemp("milvus-auth"), auth=True)
    try:
        yield handle.uri
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the bundled model's ONNX export (made once a session: ~10 s)."""
    from ragloom.embedders.local import LocalEmbedder

    path = tmp_path_factory.mktemp("onnx-cache")
    LocalEmbedder(cache_dir=str(path)).embed(["export the model once"])
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A docs folder with every supported format, an image, hidden files and a subfolder."""
    from tests.loader_helpers import FRONT_MATTER_MD, HTML_PAGE, make_pdf

    root = tmp_path / "docs"
    (root / "guide" / "deep").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "install.md").write_bytes(FRONT_MATTER_MD)
    (root / "notes.txt").write_text("Plain notes about collections.\n", encoding="utf-8")
    (root / "page.html").write_bytes(HTML_PAGE)
    (root / "manual.pdf").write_bytes(make_pdf(["First page text", "Second page text"], "Manual"))
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (root / ".hidden.md").write_text("# Hidden\n", encoding="utf-8")
    (root / ".git" / "HEAD.md").write_text("# Git internals\n", encoding="utf-8")
    (root / "guide" / "intro.md").write_text("# Intro\n\nHello.\n", encoding="utf-8")
    (root / "guide" / "deep" / "more.md").write_text("No heading here.\n", encoding="utf-8")
    (root / "guide" / "deep" / "more.rst").write_text("Restructured.\n", encoding="utf-8")
    return root


CHROMIUM = Path(os.environ.get("RAGLOOM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        if os.environ.get("RAGLOOM_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def bert_tokens() -> Callable[[str], int]:
    """Token counts of the bundled model's tokenizer (see tests/chunking_helpers.py)."""
    from tests.chunking_helpers import bert_token_counter

    return bert_token_counter()
