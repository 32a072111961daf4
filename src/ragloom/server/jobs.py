"""Background ingest jobs: one at a time, in a worker thread, with progress to poll.

An upload becomes a ``Job`` at once (the request returns 202 and the job's id); the
worker runs jobs in order, since they write to the same collection, and updates their
progress as batches are stored.  Finished jobs are kept (the latest ``keep``) so a
client can read their result.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ragloom.errors import RagloomError
from ragloom.server.uploads import Refused, StagedFile

log = logging.getLogger("ragloom.server")

JobStatus = Literal["queued", "running", "done", "failed"]


@dataclass
class Job:
    """One ingest request: its files, where it is, and what it did.

    ``status`` is ``done`` once the ingest ran, even when some documents failed (they
    are in ``result["errors"]``, with the upload's files ``refused`` as they arrived);
    ``failed`` when the ingest itself could not run
    (``error`` says why).
    """

    files: list[StagedFile]
    refused: list[Refused] = field(default_factory=list)  # files of the upload not taken
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: JobStatus = "queued"
    documents_done: int = 0
    chunks_embedded: int = 0
    current: str = ""
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def documents_total(self) -> int:
        """Documents the uploads are expected to hold (archives counted by member)."""
        return sum(f.documents for f in self.files)

    def progress(self, current: str, documents: int, chunks: int) -> None:
        """A ``ProgressFn`` for ``RAG.ingest``: called after each stored batch."""
        self.current, self.documents_done, self.chunks_embedded = current, documents, chunks

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``GET /v1/jobs/{id}`` answers."""
        total = self.documents_total
        done = total if self.status == "done" else min(self.documents_done, total)
        return {
            "id": self.id,
            "status": self.status,
            "files": [f.name for f in self.files],
            "refused": [r.to_dict() for r in self.refused],
            "progress": {
                "documents_done": done,
                "documents_total": total,
                "chunks_embedded": self.chunks_embedded,
                "fraction": round(done / total, 3) if total else 1.0,
                "current": self.current,
            },
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


Runner = Callable[[Job], dict[str, Any]]


class JobQueue:
    """Runs jobs one after another in a daemon thread; ``runner`` does the work."""

    def __init__(self, runner: Runner, keep: int = 100) -> None:
        self._runner = runner
        self._keep = keep
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="ragloom-jobs", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Let the running job finish and stop; queued jobs are dropped.  (The server's
        ingest jobs end at the end of a document once it is stopping; a second Ctrl-C
        ends the process at once.  Leaving the job running instead would end the
        process under Milvus Lite and the model: it aborted.)"""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def submit(self, job: Job) -> Job:
        """Queue ``job``; returns it."""
        with self._lock:
            self._jobs[job.id] = job
            finished = [j for j in self._jobs.values() if j.status in ("done", "failed")]
            for old in finished[: max(0, len(self._jobs) - self._keep)]:
                del self._jobs[old.id]
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with this id, if it is known."""
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        """Known jobs, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)

    def pending(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return sum(j.status in ("queued", "running") for j in self._jobs.values())

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            job.status, job.started_at = "running", time.time()
            try:
                job.result = self._runner(job)
                job.status = "done"
            except RagloomError as exc:
                job.error, job.status = str(exc), "failed"
            except Exception as exc:  # a bug must not kill the worker: the job says so
                log.exception("ingest job %s failed unexpectedly", job.id)
                job.error = f"internal error ({type(exc).__name__}): the server log has the details"
                job.status = "failed"
            finally:
                job.finished_at = time.time()
