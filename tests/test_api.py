"""The Python API a user imports, and the settings it reads."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

import ragloom
from ragloom import RAG, CollectionMismatchError, ConfigError, StoreError
from ragloom.config import load_settings
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


def test_flags_beat_environment_beat_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ragloom.toml").write_text('collection = "from_file"\nuri = "file.db"\n')
    assert RAG().settings.collection == "from_file"
    monkeypatch.setenv("RAGLOOM_COLLECTION", "from_env")
    assert RAG().settings.collection == "from_env"
    assert RAG(collection="from_flag").settings.collection == "from_flag"
    assert RAG().settings.uri == "file.db"
    with pytest.raises(ConfigError, match="collection"):
        RAG(collection="has-dash")


def test_a_config_file_key_that_is_no_setting_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ragloom.toml").write_text('colection = "handbook"\n')
    with pytest.raises(ConfigError, match=r"ragloom\.toml: unknown setting 'colection'; did you"):
        RAG()
    (tmp_path / "ragloom.toml").write_text('api_key = "s3cret"\n')  # not silently unprotected
    run = cli("status")
    assert run.code == 1 and "set RAGLOOM_API_KEY instead" in run.stderr
    (tmp_path / "ragloom.toml").write_text("uri = \n")
    run = cli("status")
    assert run.code == 1 and "configuration file ragloom.toml: " in run.stderr


def test_a_keyword_that_is_no_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"RAG\(\): unknown setting 'colection'; did you mean"):
        RAG(uri=str(tmp_path / "k.db"), colection="handbook")
    with pytest.raises(ConfigError, match="set RAGLOOM_API_KEY instead"):
        RAG(uri=str(tmp_path / "k.db"), api_key="s3cret")
    assert RAG(uri=str(tmp_path / "k.db"), search_mode="dense").settings.search_mode == "dense"


def test_a_misspelt_variable_is_named_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from ragloom import config

    monkeypatch.setattr(config, "_warned_variables", False)
    monkeypatch.setenv("RAGLOOM_COLECTION", "handbook")
    monkeypatch.setenv("RAGLOOM_SCREENSHOT_DIR", "/tmp")  # no setting's near namesake
    with caplog.at_level("WARNING", logger="ragloom.config"):
        assert load_settings().collection == "ragloom"
        load_settings()
    warned = [r.getMessage() for r in caplog.records]
    assert warned == [
        "RAGLOOM_COLECTION is not a ragloom setting (ignored): did you mean RAGLOOM_COLLECTION?"
    ]


def test_keywords_apply_on_top_of_given_settings(tmp_path: Path) -> None:
    base = load_settings(uri=str(tmp_path / "base.db"), candidates=30)
    rag = RAG(settings=base, uri=str(tmp_path / "other.db"), search_mode="dense", token="t0k")
    assert rag.settings.uri == str(tmp_path / "other.db")
    assert rag.settings.search_mode == "dense" and rag.settings.candidates == 30
    assert rag.settings.token is not None and rag.settings.token.get_secret_value() == "t0k"
    assert base.uri == str(tmp_path / "base.db")  # the caller's settings are not changed
    with pytest.raises(ConfigError, match="candidates"):
        RAG(settings=base, candidates=0)
    with pytest.raises(ConfigError, match=r"RAG\(\): unknown setting 'colection'"):
        RAG(settings=base, colection="handbook")


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


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TIMEOUT", "0"), ("CHUNK_TOKENS", "-5"), ("BATCH_SIZE", "0"), ("OVERLAP_TOKENS", "-1")],
)
def test_an_impossible_number_is_named_with_its_setting(
    variable: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"RAGLOOM_{variable}", value)
    run = cli("ingest", str(tmp_path), "--uri", str(tmp_path / "n.db"))
    assert run.code == 1
    # named as it was set (it said "chunk_tokens: ..." whatever the user had typed)
    assert f"invalid configuration: RAGLOOM_{variable}: Input should be" in run.stderr
    assert f"(got '{value}')" in run.stderr


def test_an_invalid_collection_name_is_shown_with_why(tmp_path: Path) -> None:
    # QA: "collection: Value error, may contain only letters..." named neither the value
    # nor anything a user could act on.
    with pytest.raises(ConfigError) as refused:
        RAG(uri=str(tmp_path / "c.db"), collection="my-coll")
    assert str(refused.value) == (
        "invalid configuration: collection: may contain only letters, digits and"
        " underscores (got 'my-coll')"
    )
    with pytest.raises(ConfigError) as secret:
        RAG(uri=str(tmp_path / "c.db"), token=12345)  # type: ignore[arg-type]
    assert "token" in str(secret.value) and "12345" not in str(secret.value)  # never shown


def test_a_mistake_is_named_as_the_caller_wrote_it(tmp_path: Path) -> None:
    # Python callers were told "--uri notes.txt", "--mode fuzzy", "(--where)": flags of a
    # command they never ran.  The command line keeps its flags.
    notes = tmp_path / "notes.txt"
    with pytest.raises(ConfigError) as python, RAG(uri=str(notes)) as rag:
        rag.search("x")
    assert str(python.value).startswith(f"uri={str(notes)!r}: a Milvus Lite database must end")
    run = cli("search", "x", "--uri", str(notes))
    assert run.code == 1 and f"--uri {notes}: a Milvus Lite database must end" in run.stderr
    with RAG(uri=str(tmp_path / "m.db"), embedder=FakeEmbedder()) as rag:
        with pytest.raises(ConfigError, match=r"^mode='fuzzy': use one of dense, bm25, hybrid"):
            rag.search("x", mode="fuzzy")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=r"^llm='claude': use one of deepseek"):
            rag.ask("x", llm="claude")
    # after a command ran in this process, Python's own calls are named as keywords again
    with pytest.raises(ConfigError, match=r"^uri="):
        RAG(uri=str(notes)).search("x")


def test_an_invalid_value_in_the_config_file_is_named_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ragloom.toml").write_text('search_mode = "dnse"\n')
    run = cli("search", "looms")
    assert run.code == 1
    assert "invalid configuration: search_mode in ragloom.toml: Input should be" in run.stderr
    with pytest.raises(ConfigError, match=r"configuration: search_mode: Input should be"):
        RAG(search_mode="dnse")  # a keyword is named as typed


def test_answer_settings_are_checked_when_loaded_and_named_where_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QA: a template without {context} and an unknown llm were accepted until `ask` had
    # searched (and refused even with --llm none, which uses no template), and were
    # blamed on "RAGLOOM_USER_PROMPT or ragloom.toml" whoever had set them.
    with pytest.raises(ConfigError, match=r"user_prompt: the user prompt template needs a"):
        RAG(uri=str(tmp_path / "t.db"), user_prompt="Q: {question}")
    with pytest.raises(ConfigError, match=r"llm: use one of deepseek, .* \(got 'bogus'\)"):
        RAG(uri=str(tmp_path / "t.db"), llm="bogus")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ragloom.toml").write_text('user_prompt = "no slots"\n')
    run = cli("ask", "x", "--llm", "none")
    assert run.code == 1 and "user_prompt in ragloom.toml: the user prompt" in run.stderr
    (tmp_path / "ragloom.toml").write_text('llm = "chatgpt"\n')
    assert "llm in ragloom.toml: use one of" in cli("ask", "x").stderr
    monkeypatch.setenv("RAGLOOM_LLM", " ")  # blank: no choice, as if unset
    with RAG(uri=str(tmp_path / "t.db")) as rag:
        assert rag.settings.llm is None


def test_collection_and_threshold_messages_name_the_file_that_set_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QA: a collection named in ragloom.toml was blamed on "--collection
    # (RAGLOOM_COLLECTION)", and its abstain_score on RAGLOOM_ABSTAIN_SCORE.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.md").write_text("# Looms\n\nA loom weaves thread into cloth.\n")
    assert cli("ingest", "a.md", "--uri", "c.db", "--embedder", "local").code == 0
    (tmp_path / "ragloom.toml").write_text('uri = "c.db"\ncollection = "fromtoml"\n')
    run = cli("status")
    assert run.code == 1 and "check collection in ragloom.toml" in run.stderr
    (tmp_path / "ragloom.toml").write_text('uri = "c.db"\nabstain_score = 0.99\n')
    run = cli("ask", "What does a loom weave?", "--llm", "none")
    assert "below the abstain threshold 0.990 (abstain_score in ragloom.toml)" in run.stderr


def test_secrets_are_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGLOOM_TOKEN", "s3cret-token")
    rag = RAG(uri=str(tmp_path / "s.db"))
    assert "s3cret-token" not in repr(rag.settings) and "s3cret-token" not in str(
        rag.settings.public()
    )
    run = cli("status", "--json", "--uri", str(tmp_path / "s.db"))
    assert run.code == 0 and "s3cret-token" not in run.stdout + run.stderr
    server = cli("status", "--uri", "http://user:pa55word@127.0.0.1:9", "--token", "s3cret-token")
    assert server.code == 1
    assert "pa55word" not in server.stderr and "s3cret-token" not in server.stderr


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
