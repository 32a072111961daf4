"""``ragloom serve`` as a user runs it: a separate process that owns its Milvus Lite file,
so a search on the same file asks it, and other CLI commands say which server to use;
refusals before listening."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.cli_helpers import ragloom

pytestmark = pytest.mark.timeout(90)


@contextmanager
def serving(
    db: Path, cache: Path, cwd: Path, log: list[str] | None = None, **extra_env: str
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``python -m ragloom serve --port 0`` over ``db``; (url, process).  What it writes
    to stderr once serving goes to ``log``."""
    env = {**os.environ, "RAGLOOM_CACHE_DIR": str(cache), "RAGLOOM_LLM": "none"}
    env.pop("RAGLOOM_API_KEY", None)
    env.update(extra_env)
    process = subprocess.Popen(
        [sys.executable, "-m", "ragloom", "serve", "--port", "0", "--uri", str(db)],
        stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        for line in process.stderr:
            found = re.search(r" at (http://127\.0\.0\.1:\d+)/ ", line)
            if found:
                break
        else:
            pytest.fail(f"ragloom serve exited with {process.wait()} before serving")
        lines = log if log is not None else []
        threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True).start()
        yield found.group(1), process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    """A server over a new Milvus Lite file; (url, db, process)."""
    db = tmp_path / "owned.db"
    with serving(db, tmp_path / "cache", tmp_path) as (url, process):
        yield url, db, process


def test_a_cli_command_on_a_served_file_names_the_server(
    served: tuple[str, Path, subprocess.Popen[str]],
) -> None:
    url, db, process = served
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    record = db.with_name(".owned.db.server.json")
    assert record.is_file()

    run = ragloom("status", "--uri", str(db))
    assert run.code == 1
    assert f"is owned by a ragloom server at {url}" in run.stderr
    assert "stop it, or point --uri at a Milvus server" in run.stderr
    assert "Traceback" not in run.stderr

    second = ragloom("serve", "--uri", str(db), "--port", "0")
    assert second.code == 1 and f"ragloom server at {url}" in second.stderr

    process.send_signal(signal.SIGTERM)  # as a service manager stops it
    assert process.wait(timeout=30) == 0
    assert not record.exists()
    after = ragloom("status", "--uri", str(db), "--json")
    assert after.code == 0 and after.json()["exists"] is False


def test_listening_beyond_loopback_needs_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAGLOOM_API_KEY", raising=False)
    run = ragloom("serve", "--host", "0.0.0.0", "--uri", str(tmp_path / "x.db"))
    assert run.code == 1
    assert "no RAGLOOM_API_KEY is set" in run.stderr and "--allow-no-key" in run.stderr


def test_a_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = ragloom(
            "serve", "--port", str(port), "--uri", str(tmp_path / "x.db"), "--llm", "none"
        )
    assert run.code == 1
    assert f"port {port} on 127.0.0.1 is in use" in run.stderr
    assert not (tmp_path / ".x.db.server.json").exists()


def ingested(tmp_path: Path) -> Path:
    """A Milvus Lite file holding two small documents (ingested in this process)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "storage.md").write_text("# Storage\n\nMilvus stores inserted data in MinIO.\n")
    (docs / "tokens.md").write_text("# Tokens\n\nAn API key is sent as a bearer token.\n")
    db = tmp_path / "owned.db"
    assert ragloom("ingest", str(docs), "--uri", str(db)).code == 0
    return db


def test_search_and_ask_on_a_served_file_go_through_the_server(
    tmp_path: Path, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGLOOM_CACHE_DIR", str(onnx_cache))
    db = ingested(tmp_path)
    question = "Where does Milvus store data?"
    alone = ragloom("search", question, "--uri", str(db), "--json")
    assert alone.code == 0 and "ragloom server" not in alone.stderr
    monkeypatch.setenv("RAGLOOM_LLM", "none")
    asked_alone = ragloom("ask", question, "--uri", str(db), "--json")
    assert asked_alone.code == 0 and asked_alone.json()["citations"]

    with serving(db, onnx_cache, tmp_path) as (url, _):
        run = ragloom("search", question, "--uri", str(db), "--json")
        assert run.code == 0, run.stderr
        assert f"searched through the ragloom server at {url}" in run.stderr
        assert run.json() == alone.json()  # the same passages, scores and order

        text = ragloom("search", question, "--uri", str(db), "-k", "1", "--mode", "dense")
        assert text.code == 0 and "storage.md" in text.stdout and "[1]" in text.stdout

        bad = ragloom("search", question, "--uri", str(db), "--where", "no_such_field == 1")
        assert bad.code == 1 and f"the ragloom server at {url} refused the search" in bad.stderr

        # Not what the server serves: the file is still locked, and the message says by whom.
        other = ragloom("search", question, "--uri", str(db), "--collection", "other")
        assert other.code == 1 and f"is owned by a ragloom server at {url}" in other.stderr

        # Asking: the server's extractive answer, the same as the one given without it.
        asked = ragloom("ask", question, "--uri", str(db), "--json")
        assert asked.code == 0, asked.stderr
        assert f"asking the ragloom server at {url}" in asked.stderr
        served_answer, local_answer = asked.json(), asked_alone.json()
        assert served_answer.pop("notes") and local_answer.pop("notes")  # who chose the model
        assert served_answer == local_answer
        for streamed in ("--stream", "--no-stream"):
            shown = ragloom("ask", question, "--uri", str(db), streamed)
            assert shown.code == 0, shown.stderr
            assert "Extractive answer" in shown.stdout and "MinIO" in shown.stdout
            assert "Sources:" in shown.stdout and "storage.md" in shown.stdout
        # A model the server does not answer with: not forwarded, the lock is reported.
        monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-never-used")
        elsewhere = ragloom("ask", question, "--uri", str(db), "--llm", "deepseek")
        assert elsewhere.code == 1 and f"owned by a ragloom server at {url}" in elsewhere.stderr


def test_ask_through_a_server_whose_model_is_down_says_so(
    tmp_path: Path, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGLOOM_CACHE_DIR", str(onnx_cache))
    db = ingested(tmp_path)
    with socket.socket() as closed:  # a port nothing listens on: the model is down
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
    down = {"RAGLOOM_LLM": "openai", "OPENAI_API_KEY": "sk-fake", "OPENAI_BASE_URL": dead,
            "RAGLOOM_LLM_RETRIES": "0"}  # fmt: skip
    with serving(db, onnx_cache, tmp_path, **down) as (url, _):
        for streamed in ("--stream", "--no-stream"):
            run = ragloom("ask", "Where does Milvus store data?", "--uri", str(db), streamed)
            assert run.code == 1
            assert f"the ragloom server at {url} could not answer: could not reach" in run.stderr
            assert "OPENAI_BASE_URL" in run.stderr and "Traceback" not in run.stderr


def test_chat_on_a_served_file_goes_through_the_server(
    tmp_path: Path, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ragloom.cli import app
    from ragloom.testing import FakeOpenAIServer, HttpError, Reply

    monkeypatch.setenv("RAGLOOM_CACHE_DIR", str(onnx_cache))
    db = ingested(tmp_path)
    with FakeOpenAIServer() as provider:
        provider.enqueue(HttpError(400))  # the first question fails: it stays a turn
        provider.enqueue(Reply("Where does Milvus store data?"))  # rewritten, knowing it
        provider.enqueue(Reply("Milvus keeps inserted data in MinIO [1]."))
        provider.enqueue(Reply("How is an API key sent?"))  # the follow-up, rewritten
        provider.enqueue(Reply("As a bearer token [1]."))
        model = {"RAGLOOM_LLM": "openai", "OPENAI_API_KEY": "sk-fake",
                 "OPENAI_BASE_URL": provider.base_url}  # fmt: skip
        with serving(db, onnx_cache, tmp_path, **model) as (url, _):
            typed = (
                "Is data stored?\nWhere does Milvus store data?\nAnd how is the key sent?\n"
                "/sources\n/quit\n"
            )
            run = CliRunner().invoke(app, ["chat", "--uri", str(db)], input=typed)
        assert run.exit_code == 0, run.stderr
        assert "chatting with openai (" in run.stderr
        assert f"through the ragloom server at {url}" in run.stderr
        assert "Milvus keeps inserted data in MinIO [1]." in run.stdout
        assert "As a bearer token [1]." in run.stdout
        assert "searching for: How is an API key sent?" in run.stderr  # rewritten by the server
        # /sources: the last answer's source, listed again before the prompt that quits
        assert run.stdout.rstrip().endswith("tokens.md › Tokens\nyou>")
        # The failed question was kept in the conversation the next one was read in.
        assert "User: Is data stored?\nAssistant: (not answered)" in provider.chat_texts()[1]
        # The server's model saw the conversation so far when it rewrote the follow-up.
        rewrite = provider.chat_texts()[3]
        assert "Where does Milvus store data?" in rewrite and "MinIO" in rewrite
        assert "And how is the key sent?" in rewrite


def test_a_served_file_whose_server_needs_a_key_says_which_variable_to_set(
    tmp_path: Path, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QA: `ask` and `chat` said the file was "owned by a ragloom server ... use it, stop it,
    # or point --uri elsewhere" without a word about the key (`search` named it).
    monkeypatch.setenv("RAGLOOM_CACHE_DIR", str(onnx_cache))
    monkeypatch.delenv("RAGLOOM_API_KEY", raising=False)
    db = ingested(tmp_path)
    with serving(db, onnx_cache, tmp_path, RAGLOOM_API_KEY="s3cret"):
        for command in (("search", "data"), ("ask", "Where is data?"), ("chat",)):
            run = ragloom(*command, "--uri", str(db))
            assert run.code == 1, (command, run.stderr)
            assert "needs its API key: set RAGLOOM_API_KEY" in run.stderr, (command, run.stderr)
        monkeypatch.setenv("RAGLOOM_API_KEY", "s3cret")
        assert ragloom("ask", "Where is data?", "--uri", str(db)).code == 0


def test_stopping_the_server_does_not_wait_for_a_hung_model(
    tmp_path: Path, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragloom.testing import FakeOpenAIServer, Hang

    monkeypatch.setenv("RAGLOOM_CACHE_DIR", str(onnx_cache))
    db = ingested(tmp_path)
    with FakeOpenAIServer() as model:
        model.enqueue(Hang(), Hang())
        hung = {"RAGLOOM_LLM": "openai", "OPENAI_API_KEY": "sk-fake",
                "OPENAI_BASE_URL": model.base_url, "RAGLOOM_LLM_DEADLINE": "60"}  # fmt: skip
        log: list[str] = []
        with serving(db, onnx_cache, tmp_path, log, **hung) as (url, process):
            answers: dict[str, httpx.Response] = {}
            question = "Where does Milvus store data?"
            asks = {  # QA: both got a plain-text 500 and the server printed two tracebacks
                "ask": ("/v1/ask", {"question": question}),
                "chat": ("/v1/chat/completions", {"model": "ragloom", "stream": True,
                         "messages": [{"role": "user", "content": question}]}),
            }  # fmt: skip
            for name, (path, body) in asks.items():
                threading.Thread(
                    target=lambda n=name, p=path, b=body: answers.update(
                        {n: httpx.post(url + p, json=b, timeout=90)}
                    ),
                    daemon=True,
                ).start()
            deadline = time.monotonic() + 30
            while len(model.requests) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(model.requests) == 2, "the questions never reached the model"
            stopping = time.monotonic()
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
            assert time.monotonic() - stopping < 10  # not the model's 60 s deadline
    # Answered at once, as JSON errors that say why (they waited for the model's first word).
    for name in asks:
        assert answers[name].status_code == 503, (name, answers[name].text)
        error = answers[name].json()["error"]
        assert "the server is stopping" in error["message"], error
    assert not any("Traceback" in line or "CancelledError" in line for line in log), log


def test_a_second_ctrl_c_stops_the_server_at_once_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "RAGLOOM_CACHE_DIR": str(tmp_path / "cache"), "RAGLOOM_LLM": "none"}
    env.pop("RAGLOOM_API_KEY", None)
    db = tmp_path / "twice.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "ragloom", "serve", "--port", "0", "--uri", str(db)],
        stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert process.stderr is not None
    found = re.search(r" at (http://127\.0\.0\.1:\d+)/ ", process.stderr.readline())
    assert found, "ragloom serve did not say where it serves"
    assert httpx.get(f"{found.group(1)}/healthz", timeout=30).status_code == 200
    process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=30)
    assert "Traceback" not in rest and "stopped" in rest, rest
    assert not (tmp_path / ".twice.db.server.json").exists()  # no stale record left
