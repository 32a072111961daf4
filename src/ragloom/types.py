"""Small immutable records passed between the parts of the pipeline."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


def as_metadata(value: Any) -> dict[str, Any]:
    """Metadata as a dict, also from its JSON text (Milvus Lite returns a JSON field as
    text, and older ``ragloom serve`` versions sent it so); anything else is empty."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Document:
    """A loaded source: its text, where it came from and what it is.

    ``source`` is the document's identity (an absolute path, ``archive.zip::member``
    or a URL); ``root`` is the ingest argument it was found under, so documents that
    disappear from a directory or archive can be found again.  ``pages`` holds one
    string per page for paginated formats (PDF), and then ``text`` is their join.
    ``raw`` keeps a markdown file's full text when front matter was removed from
    ``text``: the tutorials' seed splitter cuts the file exactly as read.
    """

    source: str
    text: str
    format: str  # "markdown" | "text" | "html" | "pdf"
    root: str = ""
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    pages: tuple[str, ...] | None = None
    raw: str = ""  # the file's text before front matter was taken out (if it had any)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document as stored in Milvus.

    ``text`` is the passage shown to users and LLMs; ``heading`` is its heading path
    (``Title > Section > Subsection``); ``embed_text`` is what the embedder and BM25
    see (the heading path joined to the text, so structure is searchable).
    """

    id: str
    source: str
    root: str
    text: str
    heading: str
    position: int
    doc_hash: str
    doc_chunks: int
    embed_text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its rank (1-based) and score.

    ``dense_score`` is the chunk's cosine with the question when a dense search saw it
    (None for a chunk only BM25 found): what abstention compares with its threshold,
    whatever the mode's own ``score`` is.
    """

    rank: int
    score: float
    text: str
    source: str
    heading: str
    chunk_id: str
    position: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    dense_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape the CLI and HTTP API print."""
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "text": self.text,
            "source": self.source,
            "heading": self.heading,
            "chunk_id": self.chunk_id,
            "position": self.position,
            "dense_score": None if self.dense_score is None else round(self.dense_score, 6),
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hit:
        """A hit from its JSON shape (``to_dict``; extra keys are ignored)."""
        dense = data.get("dense_score")
        return cls(
            rank=int(data["rank"]), score=float(data["score"]), text=str(data["text"]),
            source=str(data["source"]), heading=str(data.get("heading", "")),
            chunk_id=str(data["chunk_id"]), position=int(data.get("position", 0)),
            metadata=as_metadata(data.get("metadata")),
            dense_score=None if dense is None else float(dense),
        )  # fmt: skip


@dataclass
class IngestReport:
    """What one ingest did: counts and the sources that failed (with reasons).

    ``added``/``changed``/``unchanged``/``removed`` count documents; ``embedded`` counts
    chunks the model embedded (cache hits excluded), ``written`` chunks written to Milvus;
    ``plan`` lists the sources added, changed and removed.
    """

    files: int = 0
    chunks: int = 0
    embedded: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    written: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    plan: dict[str, list[str]] = field(default_factory=dict)
    interrupted: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary printed by ``ragloom ingest --json``."""
        return {
            "files": self.files,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "written": self.written,
            "skipped": self.skipped,
            "errors": self.errors,
            "plan": self.plan,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class LoadIssue:
    """A source that produced no document: an error, or a file skipped on purpose.

    ``skipped`` is true for files that are not documents at all (an image in a
    docs folder); false for documents that could not be read (a corrupt PDF).
    """

    source: str
    reason: str
    skipped: bool = False
    root: str = ""  # the ingest argument it was found under (kept from pruning)


@dataclass(frozen=True)
class Citation:
    """A passage an answer cites as ``[n]``: ``n`` is its number in the prompt."""

    n: int
    chunk_id: str
    source: str
    heading: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``ragloom ask --json`` prints."""
        return {"n": self.n, "chunk_id": self.chunk_id, "source": self.source,
                "heading": self.heading}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Citation:
        """A citation from its JSON shape (``to_dict``; extra keys are ignored)."""
        return cls(int(data["n"]), str(data["chunk_id"]), str(data["source"]),
                   str(data.get("heading", "")))  # fmt: skip


@dataclass(frozen=True)
class Answer:
    """An answer to one question, with the passages it was given and the ones it cites.

    ``hits`` are the passages sent to the model, numbered 1.. in order (``[n]`` cites
    ``hits[n-1]``); ``removed_citations`` are numbers the model cited that match no
    passage (they were taken out of ``text``).  ``abstained`` is true when retrieval
    found nothing relevant (the model was not called, ``abstain_reason`` "retrieval"),
    the question names something the documents ("unknown_names") or the passages found
    ("absent_names") never mention (not called either), or the model said the passages
    lack the answer (``abstain_reason`` "llm").
    ``provider`` is ``"none"`` for an extractive answer built without a model.
    ``notes`` are messages for the user (which provider was chosen and why, ...).
    """

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    abstained: bool = False
    abstain_reason: str | None = None
    provider: str = "none"
    model: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    removed_citations: tuple[int, ...] = ()
    relevance: float | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``ragloom ask --json`` prints."""
        return {
            "question": self.question,
            "answer": self.text,
            "citations": [c.to_dict() for c in self.citations],
            "hits": [h.to_dict() for h in self.hits],
            "abstained": self.abstained,
            "abstain_reason": self.abstain_reason,
            "provider": self.provider,
            "model": self.model,
            "usage": dict(self.usage),
            "removed_citations": list(self.removed_citations),
            "relevance": None if self.relevance is None else round(self.relevance, 6),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """An answer from its JSON shape (``to_dict``, as ``POST /v1/ask`` returns it)."""
        relevance = data.get("relevance")
        return cls(
            question=str(data.get("question", "")),
            text=str(data.get("answer", "")),
            citations=tuple(Citation.from_dict(c) for c in data.get("citations", [])),
            hits=tuple(Hit.from_dict(h) for h in data.get("hits", [])),
            abstained=bool(data.get("abstained", False)),
            abstain_reason=data.get("abstain_reason"),
            provider=str(data.get("provider", "none")),
            model=str(data.get("model", "")),
            usage={str(k): int(v) for k, v in (data.get("usage") or {}).items()},
            removed_citations=tuple(int(n) for n in data.get("removed_citations", [])),
            relevance=None if relevance is None else float(relevance),
            notes=tuple(str(n) for n in data.get("notes", [])),
        )
