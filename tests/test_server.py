"""The HTTP API on a real uvicorn server over Milvus Lite: uploads become jobs with
progress, search, answers as JSON and as server-sent events, follow-ups, sources, status,
and errors that are JSON with a message, never a traceback.  Answers that wait on a slow
model, and stopping the server, are in test_server_stopping.py."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
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
    # QA: an empty body was a 422 "body: Field required".
    empty = client.post("/v1/search", content=b"", headers={"Content-Type": "application/json"})
    assert empty.status_code == 400 and "body is empty" in empty.json()["error"]["message"]
    assert client.head("/healthz").status_code == 200  # monitors probe with HEAD (it was 405)


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
