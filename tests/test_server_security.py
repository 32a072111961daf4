"""The server's defences: the API key, upload limits, archive members, loopback hosts,
cross-site requests; each refusal is JSON with a message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragloom.loaders import LoadLimits
from ragloom.server import UploadLimits
from ragloom.server.uploads import SUPPORTED
from tests.server_helpers import (
    STORAGE_FAQ,
    ingest,
    running_server,
    upload,
    wait_for_job,
    zip_bytes,
)

pytestmark = pytest.mark.timeout(60)
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("secure")
    limits = UploadLimits(
        max_request_bytes=64 * 1024, max_json_bytes=16 * 1024, max_files=3,
        load=LoadLimits(max_file_bytes=8 * 1024, max_archive_bytes=32 * 1024),
    )  # fmt: skip
    with running_server(root / "ragloom.db", api_key=KEY, limits=limits) as url:
        yield url, root


@pytest.fixture
def client(server: tuple[str, Path]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=server[0], headers=headers, timeout=30) as c:
        yield c


def uploads(server: tuple[str, Path]) -> list[str]:
    """Files kept in the upload folder (staging included)."""
    folder = server[1] / "uploads"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# -- the API key -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/status"), ("GET", "/v1/sources"), ("POST", "/v1/search"),
     ("POST", "/v1/ask"), ("POST", "/v1/ingest"), ("GET", "/v1/jobs/x"),
     ("DELETE", "/v1/sources/x"), ("GET", "/v1/models"), ("POST", "/v1/chat/completions"),
     ("GET", "/openapi.json"), ("GET", "/docs")],
)  # fmt: skip
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "Basic czNjcmV0LWtleQ=="])
def test_every_endpoint_needs_the_key(
    server: tuple[str, Path], method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.request(method, server[0] + path, headers=headers, json={"query": "x"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    message = response.json()["error"]["message"]
    assert "RAGLOOM_API_KEY" in message
    assert ("wrong API key" in message) == (authorization == "Bearer wrong-key")
    assert response.json()["error"]["code"] == "invalid_api_key"  # as OpenAI's API says it


def test_healthz_and_the_page_files_need_no_key(server: tuple[str, Path]) -> None:
    for path in ("/healthz", "/", "/web/app.js", "/web/style.css", "/web/fflate.min.js"):
        assert httpx.get(server[0] + path).status_code == 200, path
    # Paths that serve nothing are not open either (they were listed as key-free: 404).
    for path in ("/index.html", "/favicon.ico"):
        assert httpx.get(server[0] + path).status_code == 401, path


def test_the_right_key_is_let_in(client: httpx.Client) -> None:
    assert client.get("/v1/status").json()["server"]["auth"] is True


def test_the_openai_client_with_a_wrong_key_is_refused(server: tuple[str, Path]) -> None:
    openai = pytest.importorskip("openai")
    bad = openai.OpenAI(base_url=server[0] + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="wrong API key"):
        bad.models.list()
    good = openai.OpenAI(base_url=server[0] + "/v1", api_key=KEY, max_retries=0)
    assert [m.id for m in good.models.list().data] == ["ragloom"]


# -- uploads ---------------------------------------------------------------------------


def test_an_oversize_upload_is_refused(client: httpx.Client, server: tuple[str, Path]) -> None:
    before = uploads(server)
    response = upload(client, {"big.md": "# Big\n\n" + "word " * 20_000})  # 100 KB > 64 KB
    assert response.status_code == 413
    assert "over the limit of 65536 bytes" in response.json()["error"]["message"]
    assert uploads(server) == before


def test_an_oversize_upload_without_a_length_is_counted_and_refused(
    client: httpx.Client,
) -> None:
    def body() -> Iterator[bytes]:  # chunked: no Content-Length to check up front
        yield b"--b\r\nContent-Disposition: form-data; name=files; filename=a.md\r\n\r\n"
        for _ in range(100):
            yield b"x" * 1024
        yield b"\r\n--b--\r\n"

    response = client.post(
        "/v1/ingest", content=body(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413
    assert "too large" in response.json()["error"]["message"]


def test_a_document_over_the_file_limit_is_refused(client: httpx.Client) -> None:
    response = upload(client, {"long.md": "# Long\n\n" + "x" * 10_000})  # 10 KB > 8 KB
    assert response.status_code == 413
    assert "long.md is too large: 10008 bytes" in response.json()["error"]["message"]


def test_a_large_json_body_is_refused(client: httpx.Client) -> None:
    response = client.post("/v1/search", json={"query": "x" * 20_000})
    assert response.status_code == 413


@pytest.mark.parametrize(
    "member", ["../escape.md", "docs/../../escape.md", "/etc/passwd.md", "C:/temp/x.md"]
)
def test_an_archive_with_unsafe_members_is_refused_whole(
    client: httpx.Client, server: tuple[str, Path], member: str
) -> None:
    before = uploads(server)
    archive = zip_bytes({"good.md": STORAGE_FAQ, member: "# Escape\n\nI climbed out."})
    response = upload(client, {"docs.zip": archive})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert f"unsafe member path {member!r}" in message and "nothing in it was ingested" in message
    assert uploads(server) == before
    assert not any("escape" in s["source"] for s in client.get("/v1/sources").json()["sources"])


def test_an_archive_declaring_too_much_is_refused(client: httpx.Client) -> None:
    archive = zip_bytes({"a.md": "# A\n\n" + "a" * 20_000, "b.md": "# B\n\n" + "b" * 20_000})
    response = upload(client, {"bomb.zip": archive})
    assert response.status_code == 413
    assert "a zip bomb?" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [("../up.md", 400, "unsafe file name"), (".hidden.md", 400, "unsafe file name"),
     ("a::b.md", 400, "unsafe file name"), ("tool.exe", 415, "not a document ragloom reads"),
     ("", 400, "")],
)  # fmt: skip
def test_unsafe_or_unsupported_file_names_are_refused(
    client: httpx.Client, name: str, status: int, words: str
) -> None:
    response = upload(client, {name: "# Title\n\ntext"})
    assert response.status_code in (status, 422)
    assert words in response.json()["error"]["message"]


def test_too_many_files_and_duplicates_are_refused(client: httpx.Client) -> None:
    many = upload(client, {f"f{i}.md": "# F\n\ntext" for i in range(4)})
    assert many.status_code == 413 and "over the limit of 3" in many.json()["error"]["message"]
    parts = [("files", ("same.md", b"# A\n\na")), ("files", ("same.md", b"# B\n\nb"))]
    twice = client.post("/v1/ingest", files=parts)
    assert twice.status_code == 400 and "same file name twice" in twice.json()["error"]["message"]


def test_one_bad_file_does_not_refuse_the_others(
    client: httpx.Client, server: tuple[str, Path]
) -> None:
    # QA: a note and an empty file chosen together: 400 "empty.md is empty", and the
    # note was not ingested either; a .docx among them made the whole upload 415.
    bad_zip = zip_bytes({"../up.md": "# Up\n\nout"})
    files = {
        "note.md": "# Note\n\nWeavers count picks per inch.",
        "empty.md": "",
        "thing.docx": "PK",
    }  # fmt: skip (this server takes 3 files a request)
    response = upload(client, files)
    assert response.status_code == 202, response.text
    job = response.json()["job"]
    assert job["files"] == ["note.md"]
    refused = {r["name"]: r["error"] for r in job["refused"]}
    assert refused["empty.md"] == "empty.md is empty"
    assert "not a document ragloom reads" in refused["thing.docx"]
    done = wait_for_job(client, job["id"])
    assert done["status"] == "done" and done["result"]["added"] == 1
    assert {e["name"] for e in done["result"]["errors"]} == {"empty.md", "thing.docx"}
    kept = uploads(server)
    assert "note.md" in kept and not {"empty.md", "thing.docx"} & set(kept)
    # An unsafe archive is refused on its own too.
    with_zip = upload(client, {"note2.md": "# Note\n\nA reed spaces the warp.", "bad.zip": bad_zip})
    assert with_zip.status_code == 202
    assert "unsafe member path" in with_zip.json()["job"]["refused"][0]["error"]
    wait_for_job(client, with_zip.json()["job"]["id"])
    # Every file refused: the request is, naming each.
    response = upload(client, {"a.md": "", "b.exe": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "a.md is empty; b.exe: not a document ragloom reads; send " + SUPPORTED
    )


def test_a_safe_archive_is_ingested_and_kept(
    client: httpx.Client, server: tuple[str, Path]
) -> None:
    job = ingest(client, {"safe.zip": zip_bytes({"en/storage.md": STORAGE_FAQ})})
    assert job["status"] == "done" and job["result"]["added"] == 1
    assert "safe.zip" in uploads(server)


# -- loopback and cross-site requests ----------------------------------------------------


def test_a_foreign_host_name_is_refused(server: tuple[str, Path]) -> None:
    response = httpx.get(server[0] + "/healthz", headers={"Host": "evil.example:8000"})
    assert response.status_code == 403
    assert "loopback" in response.json()["error"]["message"]


def test_a_cross_site_post_is_refused(client: httpx.Client) -> None:
    response = client.post(
        "/v1/search", json={"query": "x"}, headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403
    assert "cross-origin request from http://evil.example refused" in response.text
    same = client.post(
        "/v1/search", json={"query": "x"}, headers={"Origin": client.base_url.__str__().rstrip("/")}
    )
    assert same.status_code == 200
