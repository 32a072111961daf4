"""``--llm none``: an answer made of the passages' most relevant sentences, no model at all.

What a fresh machine with no API key gets.  Sentences are scored by the question words
they share (weighted by how rare each word is among the passages) and the passage's
rank; the best few are returned in document order, each with its ``[n]`` citation.
Nothing touches the network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence

from ragloom.llms.base import Completion, Prompt, StreamItem

MODEL = "extractive"
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]*[a-z0-9]|[a-z0-9]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])")
_MARKUP = re.compile(r"^\s*(?:[-*+]\s+|\d+[.)]\s+|>\s*)|\*\*|__|`")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_ITEM = re.compile(r"[-*+]\s+|\d+[.)]\s+")
_STOPWORDS = frozenset(
    """a an and are as at be but by can could did do does doing for from had has have how
    i if in into is it its me my no not of on or our should so than that the their them
    then there these they this to too was we were what when where which while who why will
    with would you your yours i'm don't does doesn't""".split()  # noqa: SIM905
)


class ExtractiveLLM:
    """An ``LLM`` that answers with sentences from the prompt's passages, verbatim."""

    provider = "none"
    model = MODEL

    def __init__(self, sentences: int = 3) -> None:
        self.sentences = sentences

    def complete(self, prompt: Prompt) -> Completion:
        """The best sentences, each followed by its passage number."""
        passages = [hit.text for hit in prompt.passages]
        return Completion(extract(prompt.question, passages, self.sentences), MODEL)

    def stream(self, prompt: Prompt) -> Iterator[StreamItem]:
        """The same answer as one piece, then the ``Completion``."""
        completion = self.complete(prompt)
        yield completion.text
        yield completion


def extract(question: str, passages: Sequence[str], limit: int = 3) -> str:
    """Up to ``limit`` sentences of ``passages`` that best match ``question``, cited ``[n]``.

    ``passages[0]`` is passage ``[1]``.  With no word in common the opening of the best
    passage is returned, so there is always something to read.
    """
    candidates = [
        (n, sentence, set(_terms(sentence)))
        for n, text in enumerate(passages, start=1)
        for sentence in _sentences(text)
    ]
    if not candidates:
        return ""
    wanted = set(_terms(question))
    df: dict[str, int] = {}
    for _, _, terms in candidates:
        for term in terms & wanted:
            df[term] = df.get(term, 0) + 1
    total = len(candidates)
    scored = []
    for order, (n, sentence, terms) in enumerate(candidates):
        shared = terms & wanted
        if not shared:
            continue
        weight = sum(math.log(1 + total / df[t]) for t in shared)
        score = weight / math.sqrt(max(len(terms), 4)) + 0.5 / n
        scored.append((score, -order, n, sentence))
    if not scored:
        n, sentence, _ = candidates[0]
        return f"{sentence} [{n}]"
    best: list[tuple[float, int, int, str]] = []
    for item in sorted(scored, reverse=True):
        # The same sentence twice (one document stored under two names, a repeated
        # warning) is said once, cited where it ranks best.
        if len(best) < limit and not any(_same(item[3], chosen[3]) for chosen in best):
            best.append(item)
    best.sort(key=lambda item: -item[1])  # chosen by score, read in document order
    return "\n".join(f"{sentence} [{n}]" for _, _, n, sentence in best)


def _same(a: str, b: str) -> bool:
    """Whether two sentences say the same, letter case and spacing aside."""
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def _terms(text: str) -> list[str]:
    out = []
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        # Plural and singular forms count as one word (a cheap stemmer).
        if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


def _sentences(text: str) -> Iterator[str]:
    """Readable prose sentences of a markdown passage (code, tables, tags skipped)."""
    for paragraph in _paragraphs(text):
        for sentence in _SENTENCE_END.split(paragraph):
            sentence = sentence.strip()
            # A question restated (FAQ headings in prose) answers nothing.
            if len(sentence.split()) >= 3 and len(sentence) <= 600 and not sentence.endswith("?"):
                yield sentence


def _paragraphs(text: str) -> Iterator[str]:
    """Prose paragraphs, wrapped lines joined; each list item is a paragraph of its own."""
    in_code = False
    lines: list[str] = []
    for raw in [*text.splitlines(), ""]:
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            in_code = not in_code
            line = ""
        # Headings are in the citation already; tables, tags and images are not prose.
        skip = in_code or line.startswith(("#", "|", "<", "!", "[!"))
        starts_item = bool(_ITEM.match(line))
        if (skip or not line or starts_item) and lines:
            yield " ".join(lines)
            lines = []
        if not skip and line:
            lines.append(_LINK.sub(r"\1", _MARKUP.sub("", line)).strip())
