"""Running ``ragloom serve``'s app for tests: Milvus Lite in a temp folder, a real uvicorn
server on a free loopback port in a thread, documents uploaded through the API."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from ragloom.embedders.base import Embedder
from ragloom.llms import LLM
from ragloom.llms.base import Prompt, StreamItem
from ragloom.rag import RAG
from ragloom.server import ServerOptions, ServerThread, create_app
from ragloom.testing import FakeEmbedder, FakeLLM

STORAGE_FAQ = """# Storage FAQ

## Where does Milvus store data?

Milvus deals with two types of data, inserted data and metadata. Inserted data, including
vector data, scalar data, and collection-specific schema, are stored in persistent storage
as incremental log. Milvus supports multiple object storage backends, including MinIO,
AWS S3 and Azure Blob Storage. Metadata are generated within Milvus and stored in etcd.
"""
LICENSE_FAQ = """# Product FAQ

## Is Milvus free?

Milvus is a 100% free open-source project. Please adhere to the Apache License 2.0 when
using Milvus for production or distribution purposes.
"""
INDEX_FAQ = """# Performance FAQ

## How to set nlist and nprobe for IVF indexes?

Setting nlist is scenario-specific. As a rule of thumb, the recommended value of nlist is
4 × sqrt(n), where n is the total number of entities in a segment.
"""
QUESTION = "Where does Milvus store data?"
ANSWER = "Inserted data goes to object storage such as MinIO or S3 [1], metadata to etcd [1]."


class SlowLLM(FakeLLM):
    """Streams a word every 0.2 s; ``stopped``: a stream was closed before its end."""

    def __init__(self) -> None:
        super().__init__(" ".join(f"word{i}" for i in range(100)) + " [1].")
        self.stopped = False

    def stream(self, prompt: Prompt) -> Iterator[StreamItem]:
        finished = False
        try:
            for item in super().stream(prompt):
                time.sleep(0.2)
                yield item
            finished = True
        finally:
            self.stopped = self.stopped or not finished


def zip_bytes(members: dict[str, str]) -> bytes:
    """A zip archive holding ``members`` (name -> text)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@contextmanager
def running_server(
    db: Path,
    *,
    llm: str | LLM | None = "none",
    model: str | None = None,
    embedder: Embedder | None = None,
    **options: Any,
) -> Iterator[str]:
    """The app over a Milvus Lite file ``db``, served on loopback; yields its URL."""
    rag = RAG(uri=str(db), embedder=embedder or FakeEmbedder(), cache_dir=str(db.parent / "cache"))
    opts = ServerOptions(llm=llm, model=model, uploads_dir=db.parent / "uploads", **options)
    try:
        with ServerThread(create_app(rag, opts)) as server:
            yield server.url
    finally:
        rag.close()


def upload(client: httpx.Client, files: dict[str, bytes | str], **kwargs: Any) -> httpx.Response:
    """``POST /v1/ingest`` with ``files`` (name -> content)."""
    parts = [
        ("files", (name, data.encode() if isinstance(data, str) else data))
        for name, data in files.items()
    ]
    return client.post("/v1/ingest", files=parts, **kwargs)


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/{id}`` until the job is done or failed; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()["job"]
        if job["status"] in ("done", "failed"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s")
        time.sleep(0.05)


def ingest(client: httpx.Client, files: dict[str, bytes | str]) -> dict[str, Any]:
    """Upload ``files`` and wait for their job; returns the finished job."""
    response = upload(client, files)
    assert response.status_code == 202, response.text
    return wait_for_job(client, response.json()["job"]["id"])
