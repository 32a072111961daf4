"""ragloom's own endpoints: ingest jobs, search, ask (JSON or SSE), sources, status.

Blocking work runs in worker threads (``anyio.to_thread``); see ``service``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ragloom.errors import RagloomError, StoreError
from ragloom.server.errors import stream_error
from ragloom.server.jobs import Job
from ragloom.server.service import Rewritten, Service
from ragloom.server.sse import event, in_threads, prefetch, sse_response, until_stopping
from ragloom.server.uploads import stage_uploads
from ragloom.types import Answer

router = APIRouter()
Mode = Literal["dense", "bm25", "hybrid"]
#: The longest question or query, in characters (``/v1/chat/completions`` too).
MAX_QUESTION_CHARS = 8000


def service_of(request: Request) -> Service:
    """The ``Service`` the app was created with."""
    service: Service = request.app.state.service
    return service


class SearchRequest(BaseModel):
    """``POST /v1/search``."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="what to look for")
    k: int = Field(3, ge=1, le=100, description="passages to return")
    mode: Mode | None = Field(
        None, description="dense, bm25 or hybrid; default: hybrid where the store has BM25"
    )
    where: str | None = Field(None, description="a Milvus filter expression")
    sources: list[str] = Field([], description="only sources matching these globs")


class Turn(BaseModel):
    """One earlier message of a conversation."""

    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    """``POST /v1/ask``: with ``stream`` (or ``Accept: text/event-stream``) the answer
    comes as server-sent events: ``question``, ``token``..., then ``answer``."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int = Field(5, ge=1, le=50, description="passages to retrieve")
    mode: Mode | None = None
    where: str | None = None
    sources: list[str] = []
    history: list[Turn] = Field([], description="the conversation so far, oldest first")
    stream: bool = False


def pair_turns(messages: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(question, answer) pairs from (role, content) messages, oldest first."""
    turns: list[tuple[str, str]] = []
    question: str | None = None
    for role, content in messages:
        if role == "user":
            question = content
        elif role == "assistant" and question is not None:
            turns.append((question, content))
            question = None
    return turns


@contextmanager
def refused_filter(where: str | None) -> Iterator[None]:
    """A store error on a search with a ``where`` filter is most likely the filter's: 400."""
    try:
        yield
    except StoreError as exc:
        if where is None:
            raise
        raise HTTPException(400, f"the search with where={where!r} was refused: {exc}") from None


@router.get("/healthz", tags=["server"])
@router.head("/healthz", include_in_schema=False)  # monitors probe with HEAD
async def healthz() -> dict[str, str]:
    """Liveness: answers without the API key and without touching the store."""
    return {"status": "ok"}


@router.get("/v1/status", tags=["documents"])
async def status(request: Request) -> dict[str, Any]:
    """Where the collection is, what it holds, how it was built, and who answers."""
    return await anyio.to_thread.run_sync(service_of(request).status)


@router.get("/v1/sources", tags=["documents"])
async def list_sources(request: Request) -> dict[str, Any]:
    """The documents in the collection (``id`` is what ``DELETE`` takes)."""
    return {"sources": await anyio.to_thread.run_sync(service_of(request).sources)}


@router.delete("/v1/sources/{source_id:path}", tags=["documents"])
async def delete_source(request: Request, source_id: str) -> dict[str, Any]:
    """Remove a document (by its ``id``, or its source as listed) and its chunks."""
    deleted = await anyio.to_thread.run_sync(service_of(request).delete, source_id)
    if deleted is None:
        raise HTTPException(404, f"no document with id or source {source_id!r} (GET /v1/sources)")
    return {"deleted": deleted}


@router.post("/v1/ingest", status_code=202, tags=["documents"])
async def ingest(
    request: Request,
    files: Annotated[list[UploadFile], File(description="documents, or .zip archives of them")],
) -> JSONResponse:
    """Upload documents or archives; they are ingested by a background job."""
    service = service_of(request)
    staging = service.uploads_dir / ".incoming" / uuid.uuid4().hex
    staged, refused = await stage_uploads(files, staging, service.options.limits)
    job = service.jobs.submit(Job(staged, refused=refused))
    return JSONResponse(
        {"job": job.to_dict()}, status_code=202, headers={"Location": f"/v1/jobs/{job.id}"}
    )


@router.get("/v1/jobs", tags=["documents"])
async def list_jobs(request: Request) -> dict[str, Any]:
    """Recent ingest jobs, newest first."""
    return {"jobs": [j.to_dict() for j in service_of(request).jobs.all()]}


@router.get("/v1/jobs/{job_id}", tags=["documents"])
async def get_job(request: Request, job_id: str) -> dict[str, Any]:
    """An ingest job's progress, and its result once done."""
    job = service_of(request).jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r} (jobs are kept while the server runs)")
    return {"job": job.to_dict()}


@router.post("/v1/search", tags=["questions"])
async def search(request: Request, body: SearchRequest) -> dict[str, Any]:
    """The ``k`` passages that best match ``query``, best first."""
    service = service_of(request)
    with refused_filter(body.where):
        hits = await anyio.to_thread.run_sync(
            lambda: service.search(body.query, body.k, body.mode, body.where, body.sources)
        )
    return {"query": body.query, "hits": [service.hit_json(h) for h in hits]}


@router.post("/v1/ask", tags=["questions"], response_model=None)
async def ask(request: Request, body: AskRequest) -> Response | dict[str, Any]:
    """Answer a question from the documents, citing passages as ``[n]``."""
    service = service_of(request)
    history = pair_turns([(t.role, t.content) for t in body.history])
    streamed = body.stream or "text/event-stream" in request.headers.get("accept", "")
    items = service.answer(
        body.question, history, k=body.k, mode=body.mode, where=body.where,
        sources=body.sources, stream=streamed,
    )  # fmt: skip
    # Raced with the server stopping, from the start: an answer still waiting for the
    # model's first word ends at once (503) instead of being cancelled with a traceback.
    pending = until_stopping(in_threads(items, service.answer_threads), service.stopping)
    if not streamed:
        searched_for, answer = body.question, None
        with refused_filter(body.where):
            async for item in pending:
                if isinstance(item, Rewritten):
                    searched_for = item.question
                elif isinstance(item, Answer):
                    answer = item
        if answer is None:  # pragma: no cover - every stream ends with an Answer
            raise RagloomError("the answer stream ended without an answer")
        return service.answer_json(answer, body.question, searched_for)

    with refused_filter(body.where):
        started = await prefetch(pending, lambda i: not isinstance(i, Rewritten))

    async def events() -> AsyncIterator[str]:
        searched_for = body.question
        try:
            async for item in started:
                if isinstance(item, Rewritten):
                    searched_for = item.question
                    yield event({"searched_for": searched_for}, "question")
                elif isinstance(item, Answer):
                    yield event(service.answer_json(item, body.question, searched_for), "answer")
                else:
                    yield event({"text": item}, "token")
        except Exception as exc:
            yield event(stream_error(exc), "error")

    return sse_response(events())
