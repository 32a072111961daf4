"""The HTTP API on a real uvicorn server over Milvus Lite: uploads become jobs with
progress, search, answers as JSON and as server-sent events, follow-ups, sources, status,
and errors that are JSON with a message, never a traceback."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from ragloom.errors import ProviderError
from ragloom.llms.base import Prompt, StreamItem
from ragloom.testing import FakeLLM
from tests.server_helpers import (
    ANSWER,
    INDEX_FAQ,
    LICENSE_FAQ,
    QUESTION,
    STORAGE_FAQ,
    SlowLLM,
    ingest,
    running_server,
    zip_bytes,
)

pytestmark = pytest.mark.timeout(60)


class CuttingLLM(FakeLLM):
    """A FakeLLM whose next stream can be made to fail after two pieces."""

    cut_with: Exception | None = None

    def stream(self, prompt: Prompt) -> Iterator[StreamItem]:
        failure, self.cut_with = self.cut_with, None
        for n, item in enumerate(super().stream(prompt)):
            if failure is not None and n == 2:
                raise failure
            yield item


LLM = CuttingLLM(ANSWER)


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


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    db = tmp_path_factory.mktemp("server") / "ragloom.db"
    with running_server(db, llm=LLM) as url, httpx.Client(base_url=url, timeout=30) as c:
        job = ingest(c, {"storage_faq.md": STORAGE_FAQ, "faqs.zip": zip_bytes(
            {"en/product_faq.md": LICENSE_FAQ, "en/performance_faq.md": INDEX_FAQ}
        )})  # fmt: skip
        assert job["status"] == "done", job
        yield c


def sse(text: str) -> list[tuple[str, Any]]:
    """(event name, data) pairs of a server-sent event stream."""
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines.get("event", "message"), json.loads(lines["data"])))
    return events


def test_an_upload_is_a_job_whose_progress_and_result_can_be_read(client: httpx.Client) -> None:
    job = ingest(client, {"again.md": "# Again\n\nA document uploaded on its own."})
    assert job["status"] == "done"
    assert job["files"] == ["again.md"]
    assert job["progress"]["documents_done"] == job["progress"]["documents_total"] == 1
    assert job["progress"]["fraction"] == 1.0
    assert job["result"]["added"] == 1 and job["result"]["errors"] == []
    assert job["result"]["plan"] == {"added": ["again.md"]}
    listed = client.get("/v1/jobs").json()["jobs"]
    assert listed[0]["id"] == job["id"]


def test_uploading_the_same_file_again_changes_nothing(client: httpx.Client) -> None:
    job = ingest(client, {"storage_faq.md": STORAGE_FAQ})
    assert job["result"]["unchanged"] == 1 and job["result"]["embedded"] == 0


def test_sources_list_uploads_and_archive_members_by_name(client: httpx.Client) -> None:
    sources = client.get("/v1/sources").json()["sources"]
    names = {s["name"] for s in sources}
    assert {"storage_faq.md", "faqs.zip::en/product_faq.md",
            "faqs.zip::en/performance_faq.md"} <= names  # fmt: skip
    assert all(len(s["id"]) == 16 and s["chunks"] >= 1 for s in sources)


def test_search_returns_the_passage_with_its_file_and_heading(client: httpx.Client) -> None:
    body = client.post("/v1/search", json={"query": QUESTION, "k": 2}).json()
    assert body["query"] == QUESTION
    top = body["hits"][0]
    assert top["name"] == "storage_faq.md"
    assert top["heading"] == "Storage FAQ > Where does Milvus store data?"
    assert "MinIO" in top["text"] and top["rank"] == 1
    assert len(body["hits"]) == 2


def test_search_by_bm25_with_a_source_filter(client: httpx.Client) -> None:
    body = client.post(
        "/v1/search", json={"query": "nlist nprobe", "mode": "bm25", "sources": ["*.zip::*"]}
    ).json()
    assert body["hits"] and all("faqs.zip::" in h["source"] for h in body["hits"])
    assert body["hits"][0]["name"] == "faqs.zip::en/performance_faq.md"


def test_ask_answers_as_json_with_checked_citations(client: httpx.Client) -> None:
    body = client.post("/v1/ask", json={"question": QUESTION, "k": 3}).json()
    assert body["answer"] == ANSWER
    assert [c["n"] for c in body["citations"]] == [1]
    assert body["citations"][0]["name"] == body["hits"][0]["name"] == "storage_faq.md"
    assert body["provider"] == "fake" and body["abstained"] is False
    assert body["searched_for"] == QUESTION
    assert f"<question>\n{QUESTION}\n</question>" in LLM.prompts[-1].messages[0].content


def test_ask_streams_tokens_then_the_answer(client: httpx.Client) -> None:
    response = client.post("/v1/ask", json={"question": QUESTION, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse(response.text)
    names = [name for name, _ in events]
    assert names[0] == "question" and names[-1] == "answer"
    tokens = [data["text"] for name, data in events if name == "token"]
    assert len(tokens) > 3 and "".join(tokens) == ANSWER
    final = events[-1][1]
    assert final["answer"] == ANSWER and final["citations"][0]["source"].endswith("storage_faq.md")


def test_accept_event_stream_also_streams(client: httpx.Client) -> None:
    response = client.post(
        "/v1/ask", json={"question": QUESTION}, headers={"Accept": "text/event-stream"}
    )
    assert [name for name, _ in sse(response.text)][-1] == "answer"


def test_a_follow_up_is_rewritten_with_the_conversation(client: httpx.Client) -> None:
    LLM.enqueue("Is Milvus free to use?", "Yes, it is free and open source [1].")
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": ANSWER}]
    body = client.post("/v1/ask", json={"question": "And is it free?", "history": history}).json()
    assert body["searched_for"] == "Is Milvus free to use?"
    assert body["question"] == "And is it free?"  # what the user asked (QA: the rewrite)
    assert body["answer"] == "Yes, it is free and open source [1]."
    rewrite = LLM.prompts[-2].messages[0].content
    assert QUESTION in rewrite and "And is it free?" in rewrite
    assert body["hits"][0]["name"] == "faqs.zip::en/product_faq.md"


def test_status_reports_the_collection_and_the_server(client: httpx.Client) -> None:
    status = client.get("/v1/status").json()
    assert status["exists"] is True and status["documents"] >= 3 and status["chunks"] >= 3
    assert status["embedder"] == "fake:hashed-bow"
    assert status["server"]["llm"] == {"provider": "fake", "model": "fake-model"}
    assert status["server"]["auth"] is False


def test_documents_under_the_working_folder_are_named_relative_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QA: documents ingested with the CLI showed as absolute paths on the page.
    from ragloom import RAG
    from ragloom.testing import FakeEmbedder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Looms\n\nA loom holds warp threads.\n")
    db = tmp_path / "ragloom.db"
    with RAG(uri=str(db), embedder=FakeEmbedder(), cache_dir="") as rag:
        rag.ingest("docs")
    with running_server(db) as url, httpx.Client(base_url=url, timeout=30) as client:
        [source] = client.get("/v1/sources").json()["sources"]
        assert source["source"] == str(tmp_path / "docs" / "a.md")
        assert source["name"] == "docs/a.md"


def test_delete_a_source_by_id(client: httpx.Client, tmp_path: Path) -> None:
    job = ingest(client, {"temporary.md": "# Temporary\n\nSoon gone."})
    assert job["progress"]["current"] == "temporary.md"  # as users know it, not the path
    uploaded = Path(client.get("/v1/status").json()["server"]["uploads_dir"]) / "temporary.md"
    assert uploaded.is_file()
    sources = client.get("/v1/sources").json()["sources"]
    target = next(s for s in sources if s["name"] == "temporary.md")
    by_name = ingest(client, {"other.md": "# Other\n\nAlso gone."})["result"]
    assert by_name["added"] == 1
    # By the name /v1/sources and the page show (QA: only the id or full source worked).
    assert client.delete("/v1/sources/other.md").json()["deleted"]["name"] == "other.md"
    deleted = client.delete(f"/v1/sources/{target['id']}").json()["deleted"]
    assert deleted["deleted_chunks"] == 1 and deleted["name"] == "temporary.md"
    assert not uploaded.exists()
    names = {s["name"] for s in client.get("/v1/sources").json()["sources"]}
    assert "temporary.md" not in names
    again = client.delete(f"/v1/sources/{target['id']}")
    assert again.status_code == 404 and "GET /v1/sources" in again.json()["error"]["message"]


def test_an_uploaded_archive_goes_with_its_last_member(client: httpx.Client) -> None:
    job = ingest(client, {"pair.zip": zip_bytes({"a.md": "# A\n\nAlpha.", "b.md": "# B\n\nBeta."})})
    assert job["progress"]["current"].startswith("pair.zip::")
    uploaded = Path(client.get("/v1/status").json()["server"]["uploads_dir"]) / "pair.zip"
    members = [s for s in client.get("/v1/sources").json()["sources"] if "pair.zip::" in s["name"]]
    assert len(members) == 2 and uploaded.is_file()
    client.delete(f"/v1/sources/{members[0]['id']}").raise_for_status()
    assert uploaded.is_file()  # the other member is still searchable from it
    client.delete(f"/v1/sources/{members[1]['id']}").raise_for_status()
    assert not uploaded.exists()


def test_a_document_that_cannot_be_read_is_reported_in_the_job(client: httpx.Client) -> None:
    job = ingest(client, {"broken.pdf": b"%PDF-1.4 this is not really a pdf"})
    assert job["status"] == "done"
    assert job["result"]["errors"][0]["name"] == "broken.pdf"
    uploads = Path(client.get("/v1/status").json()["server"]["uploads_dir"])
    assert not (uploads / "broken.pdf").exists()  # nothing stored from it: not kept either
    assert (uploads / "storage_faq.md").is_file()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("POST", "/v1/search", {"k": 0}, 422, "body.query: Field required"),
        ("POST", "/v1/search", {"query": "x", "mode": "fuzzy"}, 422, "body.mode"),
        ("POST", "/v1/search", {"query": "   "}, 400, "the question is empty"),
        ("GET", "/v1/nothing", None, 404, "no such endpoint: GET /v1/nothing"),
        ("GET", "/v1/jobs/unknown", None, 404, "no job 'unknown'"),
        ("PUT", "/v1/search", None, 405, "PUT is not allowed"),
    ],
)
def test_errors_are_json_with_a_message(
    client: httpx.Client, method: str, path: str, body: Any, status: int, words: str
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert words in error["message"] and error["type"]


def test_a_body_that_is_not_json_is_a_400_that_says_so(client: httpx.Client) -> None:
    # QA: a 422 "invalid request: body.14: JSON decode error", and for a form or text body
    # "Input should be a valid dictionary", without a word about JSON or Content-Type.
    broken = client.post(
        "/v1/search", content=b'{"query": "x",', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json()["error"]["message"], broken.text
    for path in ("/v1/search", "/v1/chat/completions"):
        form = client.post(path, data={"query": "x"})
        assert form.status_code == 400, form.text
        message = form.json()["error"]["message"]
        assert "Content-Type: application/json" in message and "x-www-form-urlencoded" in message


def test_a_model_failure_is_a_502_with_its_message(client: httpx.Client) -> None:
    LLM.enqueue(ProviderError("deepseek: the account has no balance (HTTP 402)"))
    response = client.post("/v1/ask", json={"question": QUESTION})
    assert response.status_code == 502
    assert response.json()["error"] == {
        "message": "deepseek: the account has no balance (HTTP 402)",
        "type": "provider_error", "param": None, "code": None,
    }  # fmt: skip


def test_a_model_failure_before_the_first_token_is_an_http_error_not_a_stream(
    client: httpx.Client,
) -> None:
    LLM.enqueue(ProviderError("the model is overloaded"))
    response = client.post("/v1/ask", json={"question": QUESTION, "stream": True})
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "the model is overloaded"


def test_an_unexpected_failure_is_a_500_without_a_traceback(client: httpx.Client) -> None:
    LLM.enqueue(ZeroDivisionError("division by zero"))
    connection = http.client.HTTPConnection(client.base_url.host, client.base_url.port)
    body, headers = json.dumps({"question": QUESTION}), {"Content-Type": "application/json"}
    connection.request("POST", "/v1/ask", body, headers)
    response = connection.getresponse()
    text = response.read().decode()
    assert response.status == 500
    message = json.loads(text)["error"]["message"]
    assert message == "internal error (ZeroDivisionError): the server log has the details"
    assert "Traceback" not in text
    # The connection stays usable (keep-alive clients must not see it dropped).
    socket_before = connection.sock
    connection.request("GET", "/healthz")
    assert connection.getresponse().read() == b'{"status":"ok"}'
    assert connection.sock is socket_before
    connection.close()


@pytest.mark.parametrize(
    ("failure", "message"),
    [(ProviderError("the stream was cut"), "the stream was cut"),
     (ZeroDivisionError("x"), "internal error (ZeroDivisionError)")],
)  # fmt: skip
def test_a_failure_in_the_middle_of_a_stream_is_an_error_event(
    client: httpx.Client, failure: Exception, message: str
) -> None:
    LLM.cut_with = failure
    response = client.post("/v1/ask", json={"question": QUESTION, "stream": True})
    events = sse(response.text)
    assert response.status_code == 200
    assert [name for name, _ in events[:3]] == ["question", "token", "token"]
    assert events[-1][0] == "error" and message in events[-1][1]["error"]["message"]


def test_the_page_and_its_files_are_served_with_no_external_resources(
    client: httpx.Client,
) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<title>ragloom</title>" in page.text
    for asset in ("/web/app.js", "/web/style.css"):
        response = client.get(asset)
        assert response.status_code == 200 and len(response.text) > 1000
    for text in (page.text, client.get("/web/app.js").text, client.get("/web/style.css").text):
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_openapi_docs_describe_the_endpoints(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/ingest", "/v1/jobs/{job_id}", "/v1/search", "/v1/ask", "/v1/sources",
                 "/v1/status", "/healthz", "/v1/models", "/v1/chat/completions"):  # fmt: skip
        assert path in paths
    docs = client.get("/docs")
    assert docs.status_code == 200
    # Swagger UI from this server, not a CDN: the API docs work on an offline machine.
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert len(assets) >= 3
    for asset in assets:
        assert asset.startswith(str(client.base_url).rstrip("/") + "/docs/files/"), asset
        response = client.get(asset)
        assert response.status_code == 200 and len(response.content) > 500


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
