"""The Python API a user imports (its settings: test_config.py)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

import ragloom
from ragloom import RAG, CollectionMismatchError, ConfigError, StoreError
from ragloom.embedders.local import bundled_model_path
from ragloom.testing import FakeEmbedder
from tests.cli_helpers import ragloom as cli


def test_public_names_resolve() -> None:
    for name in ragloom.__all__:
        assert getattr(ragloom, name) is not None, name
    assert {"RAG", "Hit", "Answer", "RagloomError", "ConfigError"} <= set(ragloom.__all__)


def test_ingest_search_status_in_python(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Looms\n\nA loom holds warp threads under tension.\n")
    (tmp_path / "b.md").write_text("# Dyes\n\nIndigo dye gives cloth a deep blue colour.\n")
    with RAG(uri=str(tmp_path / "api.db"), embedder=FakeEmbedder(dim=32)) as rag:
        report = rag.ingest(str(tmp_path))
        assert (report.files, report.errors) == (2, [])
        hits = rag.search("indigo blue dye", k=1)
        assert hits[0].source.endswith("b.md") and hits[0].heading == "Dyes"
        status = rag.status()
    assert status["chunks"] == 2 and status["documents"] == 2
    assert status["embedder"] == "fake:hashed-bow" and status["dim"] == 32


def test_a_closed_rag_is_not_quietly_reopened(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Looms\n\nA loom holds warp threads under tension.\n")
    with RAG(uri=str(tmp_path / "c.db"), embedder=FakeEmbedder(dim=32)) as rag:
        rag.ingest(str(tmp_path / "a.md"))
    with pytest.raises(StoreError, match=r"was closed .*open a new RAG"):
        rag.search("loom")
    with pytest.raises(StoreError, match="was closed"):
        rag.status()
    rag.close()  # closing twice is harmless
    # the file was left unlocked: another RAG opens it
    with RAG(uri=str(tmp_path / "c.db"), embedder=FakeEmbedder(dim=32)) as again:
        assert again.search("loom", k=1)[0].heading == "Looms"


def test_collection_built_with_another_embedder_is_refused(tmp_path: Path) -> None:
    bundled = bundled_model_path()
    assert bundled is not None
    copy = shutil.copytree(bundled, tmp_path / "my-model")
    doc = tmp_path / "docs" / "a.md"
    doc.parent.mkdir()
    doc.write_text("# Looms\n\nA loom holds warp threads under tension.\n")
    db = str(tmp_path / "e.db")
    assert cli("ingest", str(doc.parent), "--uri", db).code == 0
    other = cli("ingest", str(doc.parent), "--uri", db, "--embedder", f"local:{copy}")
    assert other.code == 1
    assert "all-MiniLM-L6-v2" in other.stderr and "--rebuild" in other.stderr
    assert "Traceback" not in other.stderr
    searching = cli("search", "loom", "--uri", db, "--embedder", f"local:{copy}")
    assert searching.code == 1 and "ingest with --rebuild" in searching.stderr
    with (
        RAG(uri=db, embedder=FakeEmbedder(dim=384)) as rag,
        pytest.raises(CollectionMismatchError, match="another collection"),
    ):
        rag.search("loom")
    rebuilt = cli(
        "ingest", str(doc.parent), "--uri", db, "--embedder", f"local:{copy}", "--rebuild"
    )
    assert rebuilt.code == 0


def test_a_model_that_cannot_be_fetched_says_so(tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# A\n\ntext\n")
    run = cli(
        "ingest",
        str(doc),
        "--uri",
        str(tmp_path / "m.db"),
        "--embedder",
        "local:no-such-org/no-such-model",
    )
    assert run.code == 1
    assert "no-such-org/no-such-model" in run.stderr and "could not be fetched" in run.stderr
    assert "Traceback" not in run.stderr


class SlowToLoad(FakeEmbedder):
    """A model still loading when a quick command (a search on an empty file) is done."""

    def __init__(self) -> None:
        super().__init__()
        self.go_on = threading.Event()
        self.loaded = threading.Event()

    def warm_up(self) -> None:
        self.go_on.wait(10)
        time.sleep(0.3)
        self.loaded.set()


def test_closing_waits_for_the_model_still_loading(tmp_path: Path) -> None:
    """A process must not exit while the model loads in native code: it aborts (134)."""
    embedder = SlowToLoad()
    with RAG(uri=str(tmp_path / "empty.db"), embedder=embedder) as rag:
        assert rag.search("anything", k=3) == []  # no collection yet: returns at once
        embedder.go_on.set()
    assert embedder.loaded.is_set()


def test_an_ingest_that_failed_before_any_chunk_does_not_pin_its_embedder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `ingest --embedder openai` with no key said "or use --embedder local"; doing so was
    # refused: the empty collection it left "was built with embedder 'openai:...'".
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Looms\n\nA loom holds warp threads.\n")
    db = str(tmp_path / "e.db")
    with RAG(uri=db, embedder="openai") as rag, pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        rag.ingest(str(tmp_path / "docs"))
    with RAG(uri=db, embedder=FakeEmbedder(dim=32)) as rag:
        assert rag.ingest(str(tmp_path / "docs")).errors == []
        assert rag.status()["chunks"] == 1
    with (  # not empty: still refused
        RAG(uri=db, embedder=FakeEmbedder(dim=16)) as rag,
        pytest.raises(CollectionMismatchError, match="rebuild=True"),
    ):
        rag.ingest(str(tmp_path / "docs"))


def test_the_offline_testing_sample_in_the_docs_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, onnx_cache: Path
) -> None:
    # docs/answers.md left setting DEEPSEEK_API_KEY and DEEPSEEK_BASE_URL to a comment: run
    # as written, the sample stopped at "DEEPSEEK_API_KEY is not set".
    import re

    docs = (Path(__file__).resolve().parents[1] / "docs" / "answers.md").read_text()
    section = docs.split("## Testing your own setup offline", 1)[1]
    sample = re.search(r"```python\n(.*?)```", section, re.S)
    assert sample is not None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGLOOM_CACHE_DIR", str(onnx_cache))
    for name in ("DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL"):  # the sample sets them
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    (tmp_path / "faq.md").write_text("# Storage\n\nMilvus stores inserted data in MinIO.\n")
    with RAG(uri="./ragloom.db") as rag:
        rag.ingest("faq.md")
    printed: list[str] = []
    exec(sample.group(1), {"print": lambda *a: printed.append(" ".join(map(str, a)))})
    assert printed[0].startswith("Milvus stores data in MinIO [1]. (Citation(n=1,")
    assert "<question>\nWhere is data stored?\n</question>" in printed[1]


def test_paths_and_single_names_are_taken_as_ingest_takes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QA: delete("docs/a.md") deleted nothing (sources are stored as absolute paths, and a
    # string was read as its characters); sources="a.md" found nothing; a Path crashed.
    monkeypatch.chdir(tmp_path)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Looms\n\nA loom holds warp threads under tension.\n")
    (docs / "b.md").write_text("# Dyes\n\nIndigo dye gives cloth a deep blue colour.\n")
    with RAG(uri=str(tmp_path / "p.db"), embedder=FakeEmbedder(dim=32)) as rag:
        assert rag.ingest(Path("docs")).files == 2
        assert rag.ingest([Path("docs") / "a.md"]).unchanged == 1
        only_b = rag.search("warp threads loom", k=3, sources="b.md")
        assert [h.source for h in only_b] == [str(docs / "b.md")]
        assert rag.search("warp threads loom", k=1, sources=Path("a.md"))[0].heading == "Looms"
        assert rag.delete("docs/a.md") == 1
        assert [d.source for d in rag.sources()] == [str(docs / "b.md")]
        named = rag.documents_named(["docs", "docs/a.md"])  # a folder: what is under it
        assert named == {str(docs): [str(docs / "b.md")], str(docs / "a.md"): []}
        assert rag.delete(Path("docs")) == 1 and rag.sources() == []
        assert rag.ingest("docs").added == 2  # the folder deleted, then ingested again
        with pytest.raises(ConfigError, match="the question must be a string, not NoneType"):
            rag.search(None, k=3)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="k='3': the number of passages"):
            rag.search("loom", k="3")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="sources=42: give a path or URL"):
            rag.ingest(42)  # type: ignore[arg-type]


def test_a_collection_built_with_an_embedder_object_asks_for_it_again(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Looms\n\nA loom holds warp threads.\n")
    db = str(tmp_path / "own.db")
    with RAG(uri=db, embedder=FakeEmbedder(dim=32)) as rag:
        rag.ingest(str(tmp_path / "a.md"))
    # QA: "unknown embedder 'fake:hashed-bow': use one of local, ..." did not say why.
    with RAG(uri=db) as rag, pytest.raises(ConfigError, match=r"pass the same embedder object"):
        rag.search("loom", k=1)


def test_every_chunk_carries_its_document_title(tmp_path: Path) -> None:
    # The docs promise meta["title"]; only markdown with front matter had one.
    (tmp_path / "page.html").write_text(
        "<html><head><title>Gamma page</title></head><body><h1>Gamma page</h1>"
        "<p>Shuttles carry the weft across the warp.</p></body></html>"
    )
    (tmp_path / "e.md").write_text("# Epsilon Title\n\nTreadles lift the harnesses.\n")
    (tmp_path / "f.md").write_text("---\ntitle: Front\nauthor: Ada\n---\n\nHeddles hold warp.\n")
    with RAG(uri=str(tmp_path / "t.db"), embedder=FakeEmbedder(dim=32)) as rag:
        rag.ingest(str(tmp_path))
        titles = {Path(h.source).name: h.metadata for h in rag.search("warp weft", k=5)}
        assert titles["page.html"] == {"title": "Gamma page"}
        assert titles["e.md"] == {"title": "Epsilon Title"}
        assert titles["f.md"] == {"title": "Front", "author": "Ada"}
        found = rag.search("warp", k=5, where='meta["title"] == "Gamma page"')
        assert [Path(h.source).name for h in found] == ["page.html"]


def test_a_script_that_never_closes_its_rag_waits_for_the_model_loading(tmp_path: Path) -> None:
    # QA: a script ending on a handled error, its RAG never closed, aborted ("terminate
    # called without an active exception", 134) with the model loading in native code.
    loaded = tmp_path / "loaded"
    script = tmp_path / "script.py"
    script.write_text(
        "import sys, time\n"
        "from ragloom import RAG\n"
        "from ragloom.testing import FakeEmbedder\n"
        "class Slow(FakeEmbedder):\n"
        "    def warm_up(self):\n"
        f"        time.sleep(1.0); open({str(loaded)!r}, 'w').close()\n"
        f"rag = RAG(uri={str(tmp_path / 'none.db')!r}, embedder=Slow())\n"
        "print(rag.search('anything', k=3))\n"
    )
    import subprocess
    import sys

    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]" and loaded.exists()
