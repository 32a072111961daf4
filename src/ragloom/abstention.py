"""When ragloom declines to answer before asking a model, and why.

Three checks run before the model is called (``RAG.coverage``):

1. **relevance**: the best passage's dense (cosine) score is under the threshold
   calibrated for the embedder (``RAGLOOM_ABSTAIN_SCORE``).  This catches questions about
   other subjects: nothing in the collection is close.
2. **unknown names**: the question names something (a product, a protocol, a place:
   ``GraphQL``, ``SMS``, ``Dropbox``) that occurs nowhere in the collection.  Questions
   about a feature the documents lack are on topic, so their best passages score like
   those of answerable questions; but what they ask about is often a name the documents
   never use.  Only names count, not ordinary words: users phrase answerable questions
   with words the documents do not use ("paid", "ceiling", "sensible"), and that must
   not stop them.  A name is a word with a capital letter that is not just the first of
   a sentence (``GraphQL``, ``FTP``, ``Nintendo``), without digits or underscores (those
   are values: ``2024_products``); ``RISC-V`` counts as unknown only when none of its
   parts occurs.  Names given only as examples or contrasts ("something like pgAdmin",
   "is not Intel") are not what is asked about, and do not count (``_asides``).  The
   check needs the collection's lexical (BM25) field; on a store without one it is
   skipped.
3. **names the passages never mention**: the collection knows the name, but none of the
   passages found for the question does (``Microsoft Excel``, ``French``: the docs
   mention them elsewhere, not where the question leads).  Acronyms in capitals
   (``ID``, ``SQL``, ``GUI``) do not count here: questions use them in passing for
   generic things, and answerable questions were declined for them.

When the model is called, it is told to say when the passages lack the answer, and
``abstained`` is true when it does (``answer.says_no_answer``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragloom import lexical

_TOKEN = re.compile(r"[A-Za-z][\w.+-]*[A-Za-z0-9]|[A-Za-z]")
# a sentence (or a quotation) starts after these: its first capital says nothing
_SENTENCE_END = ".?!:"
_OPENERS = "\"'(\u201c\u2018"
_PARTS = re.compile(r"[.+-]")
# Examples and contrasts ("like" as a preposition: not "I'd like", not "like to").
_ASIDE = re.compile(
    r"\b(?:for example|for instance|e\.g\.|such as|something like|similar to|comparable to"
    r"|(?<!would )(?<!'d )like(?! to\b)|other than|instead of|rather than|apart from"
    r"|(?:is|are|was|were) not|isn't|aren't)(?=\s)",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"[,;?!()]|\.(?=\s)")


@dataclass(frozen=True)
class Coverage:
    """Whether the collection can answer a question, as far as retrieval can tell."""

    relevance: float | None
    threshold: float | None
    unknown_names: tuple[str, ...] = ()
    #: Names the collection has, but none of the passages found for the question.
    absent_names: tuple[str, ...] = ()
    found: bool = True
    #: The search was restricted (``--where``/``--source``): finding nothing says so.
    filtered: bool = False
    #: Where the threshold was set, as the user set it (a variable, ragloom.toml...).
    threshold_set_by: str = "RAGLOOM_ABSTAIN_SCORE"

    @property
    def too_weak(self) -> bool:
        """The best passage scores under the threshold."""
        return (
            self.threshold is not None
            and self.relevance is not None
            and self.relevance < self.threshold
        )

    @property
    def abstain(self) -> bool:
        """Decline without asking the model."""
        return not self.found or self.too_weak or bool(self.unknown_names or self.absent_names)

    @property
    def reason(self) -> str | None:
        """Why, as ``Answer.abstain_reason`` says it."""
        if not self.found or self.too_weak:
            return "retrieval"
        if self.unknown_names:
            return "unknown_names"
        if self.absent_names:
            return "absent_names"
        return None

    def note(self) -> str | None:
        """One line for the user saying why ragloom declined, if it did."""
        if not self.found and self.filtered:
            return (
                "no passages match the filter (the sources or where given): loosen it, or drop it"
            )
        if not self.found:
            return "no passages found: ingest documents first (ragloom ingest PATH)"
        if self.too_weak:
            return (
                f"the best passage scores {self.relevance:.3f}, below the abstain threshold "
                f"{self.threshold:.3f} ({self.threshold_set_by})"
            )
        if self.unknown_names:
            return f"the documents never mention {_quoted(self.unknown_names)}"
        if self.absent_names:
            return f"none of the passages found mentions {_quoted(self.absent_names)}"
        return None


def _quoted(names: Sequence[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def names_in(question: str) -> list[str]:
    """The names a question uses (see the module docstring), in order, once each; not
    those in an aside (see ``_asides``)."""
    found: dict[str, None] = {}  # a dict keeps the order and looks up in constant time
    asides = _asides(question)
    for match in _TOKEN.finditer(question):
        if any(start <= match.start() < end for start, end in asides):
            continue
        word = match.group().strip(".-+")
        if len(word) < 2 or any(ch.isdigit() or ch == "_" for ch in word):
            continue
        capitals = [ch.isupper() for ch in word]
        if not any(capitals[1:]) and not (
            capitals[0] and not _starts_sentence(question, match.start())
        ):
            continue
        found.setdefault(word)
    return list(found)


def _asides(question: str) -> list[tuple[int, int]]:
    """Where the question names things only as examples or contrasts, to the end of the
    clause: "something like pgAdmin", "for example an IBM POWER box", "is not Intel",
    "instead of Kafka".  What is asked about is something else, which the documents may
    well cover (QA: both were declined, "the documents never mention 'pgAdmin'")."""
    spans = []
    for match in _ASIDE.finditer(question):
        end = _CLAUSE_END.search(question, match.end())
        spans.append((match.end(), end.start() if end else len(question)))
    return spans


def _starts_sentence(text: str, start: int) -> bool:
    """Whether ``text[start:]`` starts a sentence or a quotation: at the start, after an
    opening quote or parenthesis, or after ``.?!:`` and any spaces.

    Reads back from ``start`` only as far as it must: a regular expression searched on
    ``text[:start]`` for each word made a long question quadratic (a 40,000-character
    question took seconds, one of 750,000 hours).
    """
    i = start - 1
    if i < 0 or text[i] in _OPENERS:
        return True
    if text[i] == "\n" and i > 0 and text[i - 1] in _OPENERS:  # as the regex's "$" did
        return True
    while i >= 0 and text[i].isspace():
        i -= 1
    return i >= 0 and text[i] in _SENTENCE_END


def name_parts(name: str) -> list[str]:
    """``RISC-V`` -> ``["RISC", "V"]``: a name is unknown when none of its parts is known."""
    return [p for p in _PARTS.split(name) if p]


def unknown_names(question: str, occurs: Callable[[str], bool]) -> tuple[str, ...]:
    """The names in ``question`` none of whose parts ``occurs`` in the collection."""
    return tuple(
        name for name in names_in(question) if not any(occurs(p) for p in name_parts(name))
    )


def absent_names(
    question: str, passages: Sequence[str], skip: Sequence[str] = ()
) -> tuple[str, ...]:
    """The names in ``question`` (but acronyms in capitals, ``IDs`` too, and ``skip``)
    none of whose parts occurs in ``passages``."""
    words = set(lexical.terms("\n".join(passages)))

    def absent(name: str) -> bool:
        parts = [lexical.word_term(p) for p in name_parts(name)]
        parts = [p for p in parts if p not in lexical.STOP_WORDS]
        return bool(parts) and not any(p in words for p in parts)

    return tuple(
        name
        for name in names_in(question)
        if name not in skip and not name.removesuffix("s").isupper() and absent(name)
    )
