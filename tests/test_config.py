"""Settings: where each comes from (flags, keywords, RAGLOOM_* variables, ragloom.toml),
which wins, and how a wrong one is named to the user."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragloom import RAG, ConfigError
from ragloom.config import load_settings
from ragloom.testing import FakeEmbedder
from tests.cli_helpers import ragloom as cli


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


def test_a_servers_clients_are_told_what_its_operator_can_change() -> None:
    # QA: a 502 told an HTTP client to "pass llm='none'", which only whoever started the
    # server can do; what a request sets keeps its JSON field's name.
    from ragloom.cli.serve import SERVER_FLAGS
    from ragloom.errors import command_line_names, keyword_names, option

    with command_line_names():
        assert (option("llm", "none"), option("mode", "x")) == ("--llm none", "--mode x")
        with keyword_names(server_flags=SERVER_FLAGS):
            assert option("llm", "none") == "the server's --llm none"
            assert option("mode", "x") == "mode='x'" and option("where") == "where"
        assert option("llm", "none") == "--llm none"
    assert option("llm", "none") == "llm='none'"
