"""``--llm none``: an answer made of the passages' most relevant sentences, no model at all.

What a fresh machine with no API key gets.  Sentences are scored by the question words
they share (weighted by how rare each word is among the passages) and the passage's
rank, and, given the collection's own in-process embedding model, first by how close
each sentence (headed by its passage's heading) comes to the question in meaning; the
best few are returned in document order, each with its ``[n]`` citation.  Nothing
touches the network.

Measured with ``benchmarks/extractive.py``: of the answerable questions whose answer
sentence is among the passages, the meaning-first choice quotes it in 31 of 49 cases,
the words alone in 23.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence

from ragloom.embedders.base import InputType
from ragloom.llms.base import Completion, Prompt, StreamItem

MODEL = "extractive"
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]*[a-z0-9]|[a-z0-9]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])")
# List marks, quotes and emphasis go; inline code marks stay (`./ragloom.db` is quoted as
# the document writes it, and the page shows it as code).
_MARKUP = re.compile(r"^\s*(?:[-*+]\s+|\d+[.)]\s+|>\s*)|\*\*|__")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_ITEM = re.compile(r"[-*+]\s+|\d+[.)]\s+")
_CODE_LINES = 8  # the longest code block an extractive answer quotes after its sentence
_STOPWORDS = frozenset(
    """a an and are as at be but by can could did do does doing for from had has have how
    i if in into is it its me my no not of on or our should so than that the their them
    then there these they this to too was we were what when where which while who why will
    with would you your yours i'm don't does doesn't""".split()  # noqa: SIM905
)


#: An embedding call: texts and their input type ("document" or "query") -> vectors.
Embed = Callable[[Sequence[str], InputType], list[list[float]]]


class ExtractiveLLM:
    """An ``LLM`` that answers with sentences from the prompt's passages, verbatim.

    ``embed`` (texts, input type -> vectors) is an embedding model that runs in this
    process; without it sentences are chosen by the words they share with the question.
    """

    provider = "none"
    model = MODEL

    def __init__(self, sentences: int = 3, embed: Embed | None = None) -> None:
        self.sentences = sentences
        self.embed = embed

    def complete(self, prompt: Prompt) -> Completion:
        """The best sentences, each followed by its passage number."""
        passages = [hit.text for hit in prompt.passages]
        headings = [hit.heading for hit in prompt.passages]
        text = extract(prompt.question, passages, self.sentences, headings=headings,
                       embed=self.embed)  # fmt: skip
        return Completion(text, MODEL)

    def stream(self, prompt: Prompt) -> Iterator[StreamItem]:
        """The same answer as one piece, then the ``Completion``."""
        completion = self.complete(prompt)
        yield completion.text
        yield completion


def extract(
    question: str,
    passages: Sequence[str],
    limit: int = 3,
    *,
    headings: Sequence[str] = (),
    embed: Embed | None = None,
) -> str:
    """Up to ``limit`` sentences of ``passages`` that best match ``question``, cited ``[n]``.

    ``passages[0]`` is passage ``[1]``; ``headings[i]`` is the heading of
    ``passages[i]``.  Without ``embed``, a sentence must share a word with the question;
    with no word in common the opening of the best passage is returned, so there is
    always something to read.
    """
    candidates = []
    code: dict[tuple[int, str], str] = {}  # the block a sentence introduces
    for n, text in enumerate(passages, start=1):
        for sentence, block in _sentences(text):
            candidates.append((n, sentence, set(_terms(sentence))))
            if block:
                code[n, sentence] = block
    if not candidates:
        return ""
    lexical = _lexical_scores(question, [terms for _, _, terms in candidates])
    if embed is not None:
        # Meaning first: the sentence's cosine to the question, the shared rare words
        # (scaled to 0..1) as a third of that, and a little for the passage's rank.
        heads = [headings[n - 1] if n <= len(headings) else "" for n, _, _ in candidates]
        texts = [f"{head}: {sentence}" if head else sentence
                 for head, (_, sentence, _) in zip(heads, candidates, strict=True)]  # fmt: skip
        cosines = _cosines(embed, question, texts)
        top = max(lexical) or 1.0
        scores: list[float | None] = [
            cosine + 0.3 * lex / top + 0.05 / n
            for cosine, lex, (n, _, _) in zip(cosines, lexical, candidates, strict=True)
        ]
    else:
        scores = [
            lex + 0.5 / n if lex else None
            for lex, (n, _, _) in zip(lexical, candidates, strict=True)
        ]
    scored = [
        (score, -order, n, sentence)
        for order, (score, (n, sentence, _)) in enumerate(zip(scores, candidates, strict=True))
        if score is not None
    ]
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
    return "\n".join(
        f"{sentence} [{n}]" + (f"\n{code[n, sentence]}" if (n, sentence) in code else "")
        for _, _, n, sentence in best
    )


def _lexical_scores(question: str, sentences: Sequence[set[str]]) -> list[float]:
    """For each sentence, its shared question words weighted by how rare each is among
    the sentences, over the square root of its length (0 when it shares none)."""
    wanted = set(_terms(question))
    df: dict[str, int] = {}
    for terms in sentences:
        for term in terms & wanted:
            df[term] = df.get(term, 0) + 1
    total = len(sentences)
    return [
        sum(math.log(1 + total / df[t]) for t in terms & wanted) / math.sqrt(max(len(terms), 4))
        for terms in sentences
    ]


def _cosines(embed: Embed, question: str, texts: list[str]) -> list[float]:
    import numpy as np

    vectors = np.asarray(embed(texts, "document"), dtype=np.float32)
    query = np.asarray(embed([question], "query")[0], dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1) * (np.linalg.norm(query) or 1.0)
    return [float(c) for c in (vectors @ query) / np.where(norms > 0, norms, 1.0)]


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


def _sentences(text: str) -> Iterator[tuple[str, str]]:
    """Readable prose sentences of a markdown passage (code, tables, tags skipped), each
    with the code block it introduces: a paragraph's last sentence ending in ":" and
    followed by a short fenced block (``Give a URI with --uri:`` and the command)."""
    for paragraph, code in _paragraphs(text):
        sentences = [s.strip() for s in _SENTENCE_END.split(paragraph)]
        for i, sentence in enumerate(sentences):
            # A question restated (FAQ headings in prose) answers nothing.
            if len(sentence.split()) >= 3 and len(sentence) <= 600 and not sentence.endswith("?"):
                last = i == len(sentences) - 1 and sentence.endswith(":")
                yield sentence, code if last else ""


def _paragraphs(text: str) -> Iterator[tuple[str, str]]:
    """Prose paragraphs, wrapped lines joined, each list item a paragraph of its own; each
    with the fenced code block right after it when it has at most ``_CODE_LINES`` lines."""
    blocks = list(_blocks(text))
    for i, (kind, body) in enumerate(blocks):
        if kind == "prose":
            after = blocks[i + 1] if i + 1 < len(blocks) else ("", "")
            short = after[0] == "code" and after[1].count("\n") <= _CODE_LINES + 1
            yield body, after[1] if short else ""


def _blocks(text: str) -> Iterator[tuple[str, str]]:
    """``("prose", paragraph)``, ``("code", fenced block)`` and ``("other", "")`` (a
    heading, table, tag or image) in order; blank lines separate and are not blocks."""
    code: list[str] | None = None
    lines: list[str] = []
    for raw in [*text.splitlines(), ""]:
        line = raw.strip()
        fence = line.startswith(("```", "~~~"))
        if code is not None:
            code.append(raw.rstrip())
            if fence:
                yield "code", "\n".join(code)
                code = None
            continue
        # Headings are in the citation already; tables, tags and images are not prose.
        other = line.startswith(("#", "|", "<", "!", "[!"))
        if (fence or other or not line or _ITEM.match(line)) and lines:
            yield "prose", " ".join(lines)
            lines = []
        if fence:
            code = [line]
        elif other:
            yield "other", ""
        elif line:
            lines.append(_LINK.sub(r"\1", _MARKUP.sub("", line)).strip())
