"""The text BM25 sees: words lower-cased, stop words dropped, English stems.

Milvus's BM25 function tokenises with its ``standard`` analyzer (words, lower case, no
stemming), so "stored" never matches "store".  ragloom normalises both sides itself
before Milvus sees them: the chunk's lexical field when it is written, and the question
when it is searched.  The output is plain words separated by spaces, which every
analyzer splits the same way, so the behaviour is the same on Milvus Lite and on any
Milvus server with BM25.  A collection records the ``ANALYZER`` it was written with,
and queries are normalised to match it.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

ANALYZER = "en-snowball-1"
RAW = ""  # collections written before ragloom normalised lexical text

_WORD = re.compile(r"\w+")
_CAMEL = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")

# Lucene's English stop set: words too common to say anything, whose long posting lists
# make BM25 slow.  Question words ("how", "what", "does") stay: they match the questions
# that FAQ headings are written as (measured: dropping them costs about 0.05 MRR on dev).
STOP_WORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into",
        "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then",
        "there", "these", "they", "this", "to", "was", "will", "with",
    }
)  # fmt: skip


_local = threading.local()


def _stemmer() -> Any:
    """This thread's stemmer: a snowballstemmer object holds the word it is working on,
    so threads sharing one (a server's searches, answers and upload ingest) got one
    another's stems, and IndexErrors."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import snowballstemmer  # type: ignore[import-untyped]

        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    return stemmer


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball (Porter 2) English stem of a lower-case word; cached per process."""
    if len(word) < 3 or not word.isalpha():
        return word
    result: str = _stemmer().stemWord(word)
    return result


def _parts(token: str) -> list[str]:
    """``maxGeneralCapacity`` / ``partition_key_field`` as their words (identifiers in
    docs and prose name the same thing differently)."""
    pieces = [p for chunk in token.split("_") for p in _CAMEL.findall(chunk)]
    return pieces if len(pieces) > 1 else []


def terms(text: str) -> list[str]:
    """The normalised terms of ``text``, in order (an identifier adds its parts)."""
    out = []
    for token in _WORD.findall(text):
        lowered = token.lower()
        if lowered not in STOP_WORDS:
            out.append(stem(lowered))
        for part in _parts(token):
            part = part.lower()
            if part not in STOP_WORDS:
                out.append(stem(part))
    return out


def word_term(word: str, analyzer: str = ANALYZER) -> str:
    """The one term a whole word becomes in the lexical field (``MinIO`` -> ``minio``,
    ``stored`` -> ``store``), without the parts of an identifier."""
    lowered = word.lower()
    return lowered if analyzer == RAW else stem(lowered)


def analyze(text: str, analyzer: str = ANALYZER) -> str:
    """``text`` as the lexical field or query holds it under ``analyzer``."""
    if analyzer == RAW:
        return text
    return " ".join(terms(text))
