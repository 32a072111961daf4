"""Ingest jobs on the server: searches go on while a large document is embedded, and a
server told to stop ends the running ingest at the end of a document."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path

import httpx

from ragloom import RAG
from ragloom.embedders.base import InputType
from ragloom.testing import FakeEmbedder
from tests.server_helpers import running_server, upload, wait_for_job


class _PerText(FakeEmbedder):
    """A FakeEmbedder taking 4 ms a text, as a real model takes time."""

    def embed(self, texts: Sequence[str], input_type: InputType = "document") -> list[list[float]]:
        threading.Event().wait(0.004 * len(texts))
        return super().embed(texts, input_type)


def test_searches_during_the_ingest_of_one_large_document_wait_for_a_few_chunks(
    tmp_path: Path,
) -> None:
    # QA: one upload of a 432-chunk document held every search for the whole of its
    # embedding (35 s; 98 s for 861 chunks), and the job's chunks_embedded stayed 0 until
    # the end: the document was embedded in one call, under the shared model's lock.
    sections = "".join(
        f"## Section {n}\n\nThe loom number {n} weaves {n * 7} threads of wool and silk a day.\n\n"
        for n in range(600)
    )
    with (
        running_server(tmp_path / "big.db", embedder=_PerText()) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        job = upload(client, {"big.md": "# Looms\n\n" + sections}).json()["job"]
        seen: list[tuple[int, str]] = []  # (chunks embedded, status) right after a search
        while job["status"] in ("queued", "running"):
            found = client.post("/v1/search", json={"query": "wool and silk", "k": 1})
            assert found.status_code == 200
            job = client.get(f"/v1/jobs/{job['id']}").json()["job"]
            seen.append((job["progress"]["chunks_embedded"], job["status"]))
        total = job["result"]["chunks"]
        assert job["status"] == "done" and total >= 600
        during = [n for n, status in seen if status == "running" and 0 < n < total]
        assert len(during) >= 2, seen  # searches answered while the document was embedded


def test_a_stopping_server_ends_the_running_ingest_at_the_end_of_a_document(
    tmp_path: Path,
) -> None:
    # QA: Ctrl-C during an ingest longer than 10 s: the server said it would stop once the
    # ingest was done, gave up waiting after 10 s, and the process aborted (exit 134) with
    # the ingest still running; the upload was lost.
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(60):
            parts = "".join(
                f"## Part {p}\n\nLoom {n} part {p} spins {p * n} threads.\n\n" for p in range(40)
            )
            zf.writestr(f"d{n:02}.md", f"# Document {n}\n\n{parts}")
    db = tmp_path / "stop.db"
    with running_server(db, embedder=_PerText()) as url, httpx.Client(base_url=url) as client:
        job = upload(client, {"site.zip": archive.getvalue()}).json()["job"]
        while client.get(f"/v1/jobs/{job['id']}").json()["job"]["progress"]["documents_done"] < 2:
            threading.Event().wait(0.05)
    # The server stopped with the job: part of the archive is in, each document whole.
    with RAG(uri=str(db), embedder=FakeEmbedder(), cache_dir="") as rag:
        counts = {d.source: d.chunks for d in rag.sources()}
    assert 2 <= len(counts) < 60, counts
    assert len(set(counts.values())) == 1, counts  # the same size: none cut short


def test_an_uploaded_archive_is_deleted_by_its_name(tmp_path: Path) -> None:
    # QA: an uploaded .zip could only be removed one member at a time (120 DELETEs, 77 s,
    # for 120 documents): its name, as the sources list shows it, was a 404.
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(5):
            zf.writestr(f"d{n}.md", f"# Document {n}\n\nLoom {n} spins threads.\n")
    db = tmp_path / "del.db"
    with running_server(db) as url, httpx.Client(base_url=url) as client:
        job = upload(client, {"site.zip": archive.getvalue(), "note.md": "# Note\n\nA note.\n"})
        assert wait_for_job(client, job.json()["job"]["id"])["status"] == "done"
        names = sorted(s["name"] for s in client.get("/v1/sources").json()["sources"])
        assert names == ["note.md", *(f"site.zip::d{n}.md" for n in range(5))]
        gone = client.delete("/v1/sources/site.zip")
        assert gone.status_code == 200, gone.text
        assert gone.json()["deleted"]["documents"] == 5
        assert [s["name"] for s in client.get("/v1/sources").json()["sources"]] == ["note.md"]
        assert not (tmp_path / "uploads" / "site.zip").exists()
        assert client.delete("/v1/sources/site.zip").status_code == 404
