"""The HTTP API while answers wait on a slow model: the other endpoints stay served, a
client that leaves stops its model call quietly, and stopping the server ends every
answer, streamed or not, with an error the client can read."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from ragloom.llms.base import Prompt
from ragloom.testing import FakeLLM
from tests.server_helpers import (
    ANSWER,
    QUESTION,
    STORAGE_FAQ,
    SlowLLM,
    ingest,
    running_server,
)

pytestmark = pytest.mark.timeout(60)


class WaitingLLM(FakeLLM):
    """A FakeLLM that answers only once ``go`` is set: a model slow to answer."""

    def __init__(self) -> None:
        super().__init__(ANSWER)
        self.go = threading.Event()
        self.waiting = 0

    def complete(self, prompt: Prompt) -> Any:
        self.waiting += 1
        self.go.wait(timeout=30)
        return super().complete(prompt)


def test_answers_waiting_on_a_slow_model_leave_the_other_endpoints_served(
    tmp_path: Path,
) -> None:
    """More answers wait on the model than anyio's shared pool has threads (40): searches,
    status and uploads are still answered at once, and every answer comes once it can."""
    llm = WaitingLLM()
    waiting = 45
    with (
        running_server(tmp_path / "ragloom.db", llm=llm) as url,
        httpx.Client(base_url=url, timeout=30) as client,
        ThreadPoolExecutor(waiting) as pool,
    ):
        assert ingest(client, {"storage_faq.md": STORAGE_FAQ})["status"] == "done"
        try:
            asks = [
                pool.submit(client.post, "/v1/ask", json={"question": QUESTION, "stream": s})
                for s in [True, False] * (waiting // 2) + [True]
            ]
            deadline = time.monotonic() + 20
            while llm.waiting < waiting and time.monotonic() < deadline:
                time.sleep(0.05)
            assert llm.waiting == waiting
            started = time.monotonic()
            for path in ("/v1/status", "/v1/sources"):
                assert client.get(path, timeout=5).status_code == 200
            hits = client.post("/v1/search", json={"query": QUESTION}, timeout=5).json()["hits"]
            assert hits[0]["name"] == "storage_faq.md"
            assert ingest(client, {"more.md": "# More\n\nOne more."})["status"] == "done"
            assert time.monotonic() - started < 5
        finally:
            llm.go.set()
        answers = [ask.result() for ask in asks]
    assert all(a.status_code == 200 and ANSWER in a.text for a in answers)


def test_a_client_leaving_mid_answer_stops_the_model_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The model's stream is closed once the piece being read arrives, and leaving is not
    logged as a failure."""
    llm = SlowLLM()
    with (
        running_server(tmp_path / "ragloom.db", llm=llm) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        assert ingest(client, {"storage_faq.md": STORAGE_FAQ})["status"] == "done"
        for path, body in [
            ("/v1/ask", {"question": QUESTION, "stream": True}),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}],
                                      "stream": True}),
        ]:  # fmt: skip
            llm.stopped = False
            with client.stream("POST", path, json=body) as response:
                lines = response.iter_lines()
                assert sum("word1" in line for line in itertools.islice(lines, 8)) == 1
            deadline = time.monotonic() + 3
            while not llm.stopped and time.monotonic() < deadline:
                time.sleep(0.05)
            assert llm.stopped, path
        assert client.get("/healthz").status_code == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_stopping_the_server_mid_answer_closes_the_model_stream(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn cancels an answer still streaming when it stops: the model's stream is
    closed after the piece being read, not raced (which failed with 'generator already
    executing' and sent the client an internal error)."""
    llm = SlowLLM()
    received: list[str] = []

    def listen(url: str) -> None:
        body = {"question": QUESTION, "stream": True}
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("POST", url + "/v1/ask", json=body, timeout=30) as response,
        ):
            received.extend(response.iter_lines())

    with running_server(tmp_path / "ragloom.db", llm=llm) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            assert ingest(client, {"storage_faq.md": STORAGE_FAQ})["status"] == "done"
        listener = threading.Thread(target=listen, args=(url,))
        listener.start()
        while not any("word1" in line for line in received) and listener.is_alive():
            time.sleep(0.05)
    listener.join(10)
    deadline = time.monotonic() + 3
    while not llm.stopped and time.monotonic() < deadline:
        time.sleep(0.05)
    assert llm.stopped
    assert not any("internal error" in line for line in received), received[-2:]
    assert [r.getMessage() for r in caplog.records if r.name == "ragloom.server"] == []


def test_stopping_the_server_ends_streaming_answers_with_an_error_event(tmp_path: Path) -> None:
    """A stream in progress ends at once with an error event (and the chat stream with
    [DONE]): it used to go on until uvicorn's graceful timeout (5 s), then was cut off
    mid-body, with a CancelledError traceback in the server's log."""
    llm = SlowLLM()
    received: dict[str, list[str]] = {"/v1/ask": [], "/v1/chat/completions": []}
    failures: list[Exception] = []
    bodies = {
        "/v1/ask": {"question": QUESTION, "stream": True},
        "/v1/chat/completions": {"messages": [{"role": "user", "content": QUESTION}],
                                 "stream": True},
    }  # fmt: skip

    def listen(url: str, path: str) -> None:
        try:
            with httpx.stream("POST", url + path, json=bodies[path], timeout=30) as response:
                received[path].extend(response.iter_lines())
        except httpx.HTTPError as exc:  # the body cut off
            failures.append(exc)

    with running_server(tmp_path / "ragloom.db", llm=llm) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            assert ingest(client, {"storage_faq.md": STORAGE_FAQ})["status"] == "done"
        listeners = [threading.Thread(target=listen, args=(url, path)) for path in bodies]
        for listener in listeners:
            listener.start()
        while not all(any("word1" in line for line in lines) for lines in received.values()):
            assert all(listener.is_alive() for listener in listeners), received
            time.sleep(0.05)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 4  # not uvicorn's 5 s graceful timeout
    for listener in listeners:
        listener.join(10)
    assert failures == []
    ask = [line for line in received["/v1/ask"] if line]
    assert ask[-2:] == ["event: error", ask[-1]]
    assert (
        "the server is stopping" in json.loads(ask[-1].removeprefix("data: "))["error"]["message"]
    )
    chat = [line for line in received["/v1/chat/completions"] if line]
    assert chat[-1] == "data: [DONE]"
    assert "the server is stopping" in chat[-2]
    deadline = time.monotonic() + 3
    while not llm.stopped and time.monotonic() < deadline:  # closed after the piece read
        time.sleep(0.05)
    assert llm.stopped
