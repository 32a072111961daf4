"""What the endpoints call: one ``RAG`` shared by every request, made safe to share.

Requests run their blocking work (embedding, Milvus, the model) in worker threads.  A
``MilvusClient`` may be shared by threads; the embedding model is wrapped in a
``SharedEmbedder`` (one call at a time, concurrent queries batched together).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ragloom import __version__, lite
from ragloom.errors import ConfigError, ProviderError, RagloomError
from ragloom.llms.base import Completion, Prompt, StreamItem
from ragloom.names import display_name
from ragloom.server.embedding import MAX_QUERY_BATCH, SharedEmbedder
from ragloom.server.jobs import Job, JobQueue
from ragloom.server.uploads import UploadLimits
from ragloom.types import Answer, Hit

if TYPE_CHECKING:
    from ragloom.llms import LLM
    from ragloom.rag import RAG
    from ragloom.store import SearchMode


#: Most queries embedded together under load (1: one at a time); see docs/server.md.
QUERY_BATCH_ENV = "RAGLOOM_QUERY_BATCH"
#: Answers written at once (each holds a thread while it waits on the model), apart from
#: the threads every other request uses.
ANSWER_THREADS = 64


log = logging.getLogger("ragloom.server")


@dataclass(frozen=True)
class ServerOptions:
    """How the server behaves beyond the ``RAG`` it serves.

    ``api_key``: required as a bearer token when set.  ``allowed_hosts``: the ``Host``
    names answered (loopback by default; None for any).  ``llm``/``model``: who answers
    (a provider name or an ``LLM``; default as for ``ragloom ask``).  ``uploads_dir``:
    where uploaded files are kept (default: beside a Milvus Lite file, else under
    ``$XDG_DATA_HOME/ragloom/uploads``); their paths are the documents' identities, so
    uploading a file again updates it.
    """

    api_key: str | None = None
    allowed_hosts: tuple[str, ...] | None = ("127.0.0.1", "localhost", "::1")
    llm: str | LLM | None = None
    model: str | None = None
    uploads_dir: Path | None = None
    limits: UploadLimits = field(default_factory=UploadLimits)


@dataclass(frozen=True)
class Rewritten:
    """First item of an answer stream: the standalone question that was searched for."""

    question: str


class UpstreamLLM:
    """The server's model: its key or model name being refused (a ``ConfigError`` at the
    CLI) is the server's problem, not the caller's, so it becomes a ``ProviderError``
    (502) with the same message."""

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model

    def complete(self, prompt: Prompt) -> Completion:
        """The wrapped model's answer."""
        try:
            return self.inner.complete(prompt)
        except ConfigError as exc:
            raise ProviderError(str(exc)) from None

    def stream(self, prompt: Prompt) -> Iterator[StreamItem]:
        """The wrapped model's stream."""
        try:
            yield from self.inner.stream(prompt)
        except ConfigError as exc:
            raise ProviderError(str(exc)) from None


def default_uploads_dir(uri: str, collection: str) -> Path:
    """Beside a Milvus Lite file (``.NAME.db.uploads``), else in the user's data folder."""
    if lite.is_lite_uri(uri):
        db = lite.lite_path(uri)
        return db.with_name(f".{db.name}.uploads") / collection
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "ragloom" / "uploads" / collection


def _query_batch() -> int:
    raw = os.environ.get(QUERY_BATCH_ENV, "").strip() or str(MAX_QUERY_BATCH)
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{QUERY_BATCH_ENV}={raw}: use a whole number, 1 or more")
    return int(raw)


def source_id(source: str) -> str:
    """A short stable id for a document source, usable in a URL."""
    return hashlib.sha256(source.encode()).hexdigest()[:16]


class Service:
    """The ``RAG`` behind the endpoints, its ingest jobs and its upload folder."""

    def __init__(self, rag: RAG, options: ServerOptions) -> None:
        self.rag = rag
        self.options = options
        self.uploads_dir = (
            options.uploads_dir or default_uploads_dir(rag.settings.uri, rag.settings.collection)
        ).absolute()
        self.jobs = JobQueue(self._run_job)
        self.answer_threads = anyio.CapacityLimiter(ANSWER_THREADS)
        #: Set when the server starts stopping: streaming answers end (``until_stopping``).
        self.stopping = asyncio.Event()
        self._ingest_stop = threading.Event()  # set on close: the ingest job stops soon
        self._llm: LLM | None = None

    def open(self) -> None:
        """Open the store (a Milvus Lite file is then ours), pick the model, start the jobs."""
        self._ingest_stop.clear()
        _ = self.rag.store.client
        self.rag.wrap_embedder(
            lambda embedder: (
                embedder
                if isinstance(embedder, SharedEmbedder)
                else SharedEmbedder(embedder, _query_batch())
            )
        )
        _ = self.llm
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.jobs.start()

    def warm_up(self) -> None:
        """Load the embedding model in the background: while the user opens the page, not
        on the first question."""
        threading.Thread(target=self._warm_up, name="ragloom-warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        embedder = self.rag.embedder
        try:
            if isinstance(embedder, SharedEmbedder):
                embedder.warm_up()
        except RagloomError as exc:  # the first search will say it again
            log.warning("the embedding model could not be loaded: %s", exc)

    def close(self) -> None:
        """Stop the jobs (the running one finishes); the RAG is the caller's to close.

        Jobs still queued are dropped with their uploads: they were never ingested.
        """
        self._ingest_stop.set()  # the running ingest ends at the end of its document
        self.jobs.stop()
        for job in self.jobs.all():
            if job.status == "queued" and job.files:
                shutil.rmtree(job.files[0].path.parent, ignore_errors=True)

    @property
    def llm(self) -> LLM:
        """The model that answers."""
        if self._llm is None:
            self._llm = UpstreamLLM(self.rag.get_llm(self.options.llm, self.options.model))
        return self._llm

    # -- documents ---------------------------------------------------------------------

    def display(self, source: str) -> str:
        """A source as users know it: an upload's file name; a path under the folder the
        server runs in, relative to it (as the CLI shows it); else the path or URL."""
        prefix = str(self.uploads_dir) + os.sep
        return source[len(prefix) :] if source.startswith(prefix) else display_name(source)

    def hit_json(self, hit: Hit) -> dict[str, Any]:
        """A hit as the API shows it (with ``name``, the source as users know it)."""
        return {**hit.to_dict(), "name": self.display(hit.source)}

    def answer_json(self, answer: Answer, asked: str, searched_for: str) -> dict[str, Any]:
        """An answer as the API shows it: ``Answer.to_dict`` plus display names, with the
        ``question`` as ``asked`` (a follow-up is answered as its rewrite, ``searched_for``)."""
        data = answer.to_dict()
        data["question"] = asked
        data["hits"] = [self.hit_json(h) for h in answer.hits]
        for citation in data["citations"]:
            citation["name"] = self.display(citation["source"])
        data["searched_for"] = searched_for
        return data

    def sources(self) -> list[dict[str, Any]]:
        """The documents in the collection."""
        return [
            {"id": source_id(d.source), "source": d.source, "name": self.display(d.source),
             "root": d.root, "chunks": d.chunks, "doc_hash": d.doc_hash,
             "ingested_at": d.ingested_at}
            for d in self.rag.sources()
        ]  # fmt: skip

    def delete(self, key: str) -> dict[str, Any] | None:
        """Delete the document with this id, source, or name as shown (when one document
        has it), or every document of an archive named so; an uploaded file goes too, and
        an uploaded archive once none of its members is left."""
        stored = self.rag.sources()
        found = [s for s in stored if key in (source_id(s.source), s.source)]
        named = [s for s in stored if self.display(s.source) == key]
        found = found or (named if len(named) == 1 else [])
        if not found:
            return self._delete_archive(key, stored)
        source = found[0].source
        chunks = self.rag.delete([source])
        file, member, _ = source.partition("::")
        path = Path(file)
        others = member and any(
            s.source.startswith(file + "::") and s.source != source for s in stored
        )
        if path.parent == self.uploads_dir and path.is_file() and not others:
            path.unlink()
        return {"id": source_id(source), "source": source, "name": self.display(source),
                "deleted_chunks": chunks}  # fmt: skip

    def _delete_archive(self, key: str, stored: list[Any]) -> dict[str, Any] | None:
        """Every member of the archive whose id, source or shown name is ``key`` (QA: an
        upload of 120 documents took 120 requests to remove)."""
        archives = {s.source.partition("::")[0] for s in stored if "::" in s.source}
        matching = [a for a in archives if key in (source_id(a), a, self.display(a))]
        if len(matching) != 1:
            return None
        archive = matching[0]
        members = [s.source for s in stored if s.source.startswith(archive + "::")]
        chunks = self.rag.delete(members)
        path = Path(archive)
        if path.parent == self.uploads_dir and path.is_file():
            path.unlink()
        return {"id": source_id(archive), "source": archive, "name": self.display(archive),
                "deleted_chunks": chunks, "documents": len(members)}  # fmt: skip

    def status(self) -> dict[str, Any]:
        """The collection's status, and the server's."""
        llm = self.llm
        return {
            **self.rag.status(),
            "server": {
                "version": __version__,
                "llm": {"provider": llm.provider, "model": llm.model},
                "auth": self.options.api_key is not None,
                "jobs_pending": self.jobs.pending(),
                "uploads_dir": str(self.uploads_dir),
            },
        }

    def _run_job(self, job: Job) -> dict[str, Any]:
        """Move a job's staged files into the upload folder and ingest them."""
        targets = []
        for staged in job.files:
            target = self.uploads_dir / staged.name
            os.replace(staged.path, target)
            targets.append(str(target))
        if job.files:
            shutil.rmtree(job.files[0].path.parent, ignore_errors=True)

        def progress(current: str, documents: int, chunks: int) -> None:
            job.progress(self.display(current), documents, chunks)  # the name users know

        report = self.rag.ingest(targets, progress=progress, stop=self._ingest_stop).to_dict()
        self._drop_unread(targets)
        for entry in (*report["skipped"], *report["errors"]):
            entry["name"] = self.display(entry["source"])
        report["errors"].extend(r.to_dict() for r in job.refused)
        report["plan"] = {k: [self.display(s) for s in v] for k, v in report["plan"].items()}
        return report

    def _drop_unread(self, targets: Sequence[str]) -> None:
        """Remove uploaded files nothing was stored from (a broken PDF, a zip with no
        readable member): the job reports them, and no source would ever name them for
        deletion.  A failed re-upload of a stored document stays: its earlier version is
        still stored under that name, and DELETE removes both."""
        stored = [d.source for d in self.rag.sources()]
        for target in targets:
            if not any(s == target or s.startswith(target + "::") for s in stored):
                Path(target).unlink(missing_ok=True)

    # -- questions ---------------------------------------------------------------------

    def search(
        self, query: str, k: int, mode: SearchMode | None, where: str | None,
        sources: Sequence[str],
    ) -> list[Hit]:  # fmt: skip
        """The ``k`` best passages."""
        return self.rag.search(query, k, mode=mode, where=where, sources=sources)

    def answer(
        self, question: str, history: Sequence[tuple[str, str]], *, k: int,
        mode: SearchMode | None = None, where: str | None = None, sources: Sequence[str] = (),
        stream: bool = True,
    ) -> Iterator[Rewritten | str | Answer]:  # fmt: skip
        """``Rewritten``, then the answer's text pieces, then the ``Answer``.

        ``history`` holds the earlier (question, answer) turns; a follow-up is rewritten
        into a standalone question first (by the model, as ``ragloom chat`` does).
        """
        from ragloom.chat import Conversation

        searched_for = question
        if history:
            conversation = Conversation(self.rag, llm=self.llm, k=k, mode=mode, sources=sources)
            conversation.turns = list(history)
            searched_for = conversation.standalone(question)
        yield Rewritten(searched_for)
        yield from self.rag.stream(
            searched_for, k, llm=self.llm, mode=mode, where=where, sources=sources,
            stream=stream,
        )  # fmt: skip
