"""Hits + question -> prompt -> LLM -> ``Answer`` with checked citations.

The prompt is the tutorials' (passages in ``<context>``, the question in ``<question>``)
with numbered passages, a request for ``[n]`` citations, and for saying when the
passages lack the answer.  Passages are added best first until the token budget is
spent.  Every ``[n]`` in the reply is checked against the passages sent: numbers that
cite nothing are taken out, while streaming too, and reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ragloom.abstention import Coverage
from ragloom.embedders.base import approx_tokens
from ragloom.errors import ConfigError, ProviderError, on_command_line
from ragloom.llms.base import LLM, Completion, Message, Prompt, StreamItem
from ragloom.types import Answer, Citation, Hit

TUTORIAL_SYSTEM = (
    "You are an AI assistant. You are able to find answers to the questions from the "
    "contextual passage snippets provided."
)
DEFAULT_SYSTEM = (
    TUTORIAL_SYSTEM + " The passages are numbered. After each statement, cite the passages "
    "that support it with their numbers in square brackets, like [1] or [2][3]. Use only "
    "the passages. If they do not contain the answer, say: "
    '"The passages do not contain the answer."'
)
DEFAULT_USER = """Use the following pieces of information enclosed in <context> tags to \
provide an answer to the question enclosed in <question> tags.
<context>
{context}
</context>
<question>
{question}
</question>"""


def no_llm_hint() -> str:
    """How to get written answers instead of extractive ones."""
    return (
        "to get written answers, export DEEPSEEK_API_KEY, LEPTONAI_TOKEN, GEMINI_API_KEY or "
        "OPENAI_API_KEY (or point OPENAI_BASE_URL at a local server such as Ollama), "
        "or pass " + ("--llm PROVIDER" if on_command_line() else "llm=PROVIDER")
    )


#: Dense (cosine) score of the best passage below which ragloom abstains, per embedder;
#: calibrated with benchmarks/abstention.py and recorded in docs/answers.md.
CALIBRATED_ABSTAIN_SCORES: dict[str, float] = {"local:all-MiniLM-L6-v2": 0.28}
NO_ANSWER = (
    "The documents do not seem to cover this question: no passage is relevant enough "
    "to answer from."
)
NO_MATCH = "No passage matches the filter (the sources or where given): loosen it, or drop it."
NO_PASSAGES = "The collection holds no passages to answer from: ingest documents first."
_ABSTAIN_PATTERNS = re.compile(
    r"(passages?|context|documents?|snippets?|information)\s+(provided\s+)?"
    r"(do|does|did)\s*(not|n't)\s+(contain|include|provide|mention|cover|say|specify|address)"
    r"|\b(no|not enough|insufficient)\s+(relevant\s+)?information\b"
    r"|\bcannot\s+(be\s+)?(answer|determine|find)|\bcan't\s+(answer|determine|find)"
    r"|\bI\s+(do\s+not|don't)\s+know\b"
    r"|\bnot\s+(mentioned|covered|specified|addressed)\s+in\s+the\s+(provided\s+)?"
    r"(passages?|context|documents?)",
    re.IGNORECASE,
)
_CITATION_GROUP = re.compile(r"[ \t]*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_UNFINISHED_GROUP = re.compile(r"\[[\d,;\s]*")
#: How far ahead an unfinished ``[...`` is held back while streaming.
_MAX_GROUP = 24


@dataclass(frozen=True)
class Templates:
    """The prompt's parts; ``user`` has ``{context}`` and ``{question}`` placeholders."""

    system: str = DEFAULT_SYSTEM
    user: str = DEFAULT_USER

    def __post_init__(self) -> None:
        for slot in ("{context}", "{question}"):
            if slot not in self.user:
                raise ConfigError(
                    f"the user prompt template needs a {slot} placeholder"
                    " (user_prompt: RAGLOOM_USER_PROMPT or ragloom.toml)"
                )


def fit_passages(hits: Sequence[Hit], budget: int) -> list[Hit]:
    """The best hits whose passages fit in ``budget`` tokens, in rank order.

    Stops at the first passage that does not fit, so passage ``[n]`` is always the
    ``n``-th best; a first passage larger than the whole budget is cut to fit.
    """
    out: list[Hit] = []
    used = 0
    for hit in hits:
        cost = approx_tokens(format_passage(len(out) + 1, hit))
        if used + cost > budget:
            if not out and budget > 0:
                keep = max(0, len(hit.text) - (cost - budget) * 4)
                out.append(_replace_text(hit, hit.text[:keep]))
            break
        out.append(hit)
        used += cost
    return out


def _replace_text(hit: Hit, text: str) -> Hit:
    return Hit(hit.rank, hit.score, text, hit.source, hit.heading, hit.chunk_id,
               hit.position, hit.metadata)  # fmt: skip


def short_source(source: str) -> str:
    """A source as the model sees it: the archive member, the URL, or the file name."""
    if "::" in source:
        return source.split("::", 1)[1]
    if "://" in source:
        return source
    return source.replace("\\", "/").rsplit("/", 1)[-1]


def format_passage(n: int, hit: Hit) -> str:
    """One numbered passage of the ``<context>``."""
    where = short_source(hit.source) + (f" › {hit.heading}" if hit.heading else "")
    return f"[{n}] ({where})\n{hit.text.strip()}"


def fill(template: str, **values: str) -> str:
    """``template`` with each ``{name}`` of ``values`` put in, in one pass: a value's own
    text is never filled again (a passage saying "{question}" is sent as it is)."""
    names = "|".join(re.escape(name) for name in values)
    return re.sub(r"\{(" + names + r")\}", lambda m: values[m.group(1)], template)


def build_prompt(question: str, passages: Sequence[Hit], templates: Templates) -> Prompt:
    """The system prompt and user message for ``question`` over numbered ``passages``."""
    context = "\n\n".join(format_passage(n, h) for n, h in enumerate(passages, start=1))
    user = fill(templates.user, context=context, question=question)
    return Prompt(
        system=templates.system,
        messages=(Message("user", user),),
        question=question,
        passages=tuple(passages),
    )


class CitationFilter:
    """Removes ``[n]`` citations that match no passage, from a text fed in pieces.

    ``feed`` returns what can be shown so far (an unfinished ``[..`` is held back);
    ``finish`` returns the rest.  Feeding a whole text at once gives the same result
    as streaming it, so the printed and the returned answers agree.
    """

    def __init__(self, passages: int) -> None:
        self.passages = passages
        self.cited: list[int] = []
        self.removed: list[int] = []
        self._pending = ""

    def feed(self, piece: str) -> str:
        """Text safe to show after ``piece`` arrived."""
        self._pending += piece
        out, self._pending = self._split(self._pending)
        return out

    def finish(self) -> str:
        """Whatever was held back, checked."""
        rest, self._pending = self._clean(self._pending), ""
        return rest

    def _split(self, text: str) -> tuple[str, str]:
        """``(checked text to show, text to hold back)``."""
        hold = len(text)
        open_at = text.rfind("[")
        unfinished = open_at != -1 and len(text) - open_at <= _MAX_GROUP
        if unfinished and _UNFINISHED_GROUP.fullmatch(text[open_at:]):
            hold = open_at
        # Whitespace before a possible group goes with it (removed if the group is).
        while hold > 0 and text[hold - 1].isspace():
            hold -= 1
        return self._clean(text[:hold]), text[hold:]

    def _clean(self, text: str) -> str:
        return _CITATION_GROUP.sub(self._check, text)

    def _check(self, match: re.Match[str]) -> str:
        numbers = [int(x) for x in re.split(r"\s*[,;]\s*", match.group(1))]
        good = [n for n in numbers if 1 <= n <= self.passages]
        for n in numbers:
            bucket = self.cited if n in good else self.removed
            if n not in bucket:
                bucket.append(n)
        if not good:
            return ""
        if len(good) == len(numbers):
            return match.group(0)
        lead = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
        return lead + "".join(f"[{n}]" for n in good)


def check_citations(text: str, passages: int) -> tuple[str, list[int], list[int]]:
    """``text`` without citations beyond ``passages``; the valid and the removed numbers."""
    f = CitationFilter(passages)
    cleaned = f.feed(text) + f.finish()
    return cleaned, f.cited, f.removed


def says_no_answer(text: str) -> bool:
    """True when a reply says the passages do not contain the answer."""
    return bool(_ABSTAIN_PATTERNS.search(text))


def make_answer(
    question: str,
    completion: Completion,
    text: str,
    passages: Sequence[Hit],
    llm: LLM,
    cited: Sequence[int],
    removed: Sequence[int],
    relevance: float | None,
    notes: Sequence[str],
) -> Answer:
    """Put an answer together once the model's reply is complete and checked."""
    citations = tuple(
        Citation(n, passages[n - 1].chunk_id, passages[n - 1].source, passages[n - 1].heading)
        for n in sorted(set(cited))
    )
    abstained = says_no_answer(text) and not citations and llm.provider != "none"
    extra = list(notes)
    if removed:
        nums = ", ".join(f"[{n}]" for n in removed)
        extra.append(f"removed citation {nums}: only {len(passages)} passages were sent")
    if completion.finish_reason in ("length", "MAX_TOKENS"):
        extra.append("the model stopped at its output limit: the answer may be cut short")
    return Answer(
        question=question, text=text.strip(), citations=citations, hits=tuple(passages),
        abstained=abstained, abstain_reason="llm" if abstained else None,
        provider=llm.provider, model=completion.model or llm.model, usage=completion.usage,
        removed_citations=tuple(removed), relevance=relevance, notes=tuple(extra),
    )  # fmt: skip


def abstain(
    question: str, hits: Sequence[Hit], llm: LLM, coverage: Coverage, notes: Sequence[str]
) -> Answer:
    """The answer when retrieval says the documents do not cover the question: the
    model is not called."""
    text = NO_ANSWER
    if coverage.reason in ("unknown_names", "absent_names"):
        text = f"The documents do not cover this question: {coverage.note()}."
    elif not coverage.found:
        text = NO_MATCH if coverage.filtered else NO_PASSAGES
    return Answer(
        question=question, text=text, hits=tuple(hits), abstained=True,
        abstain_reason=coverage.reason, provider=llm.provider, model=llm.model,
        relevance=coverage.relevance, notes=tuple(notes),
    )  # fmt: skip


def stream_answer(
    question: str,
    passages: Sequence[Hit],
    llm: LLM,
    templates: Templates,
    *,
    stream: bool = True,
    relevance: float | None = None,
    notes: Sequence[str] = (),
) -> Iterator[str | Answer]:
    """Ask ``llm``: checked text pieces as they arrive, then the ``Answer``.

    With ``stream=False`` the model is called once (no SSE) and the text comes as one
    piece.
    """
    prompt = build_prompt(question, passages, templates)
    items: Iterator[StreamItem] = llm.stream(prompt) if stream else _at_once(llm, prompt)
    checker = CitationFilter(len(passages))
    shown: list[str] = []
    completion: Completion | None = None
    for item in items:
        if isinstance(item, Completion):
            completion = item
            continue
        piece = checker.feed(item)
        if piece:
            shown.append(piece)
            yield piece
    tail = checker.finish()
    if tail:
        shown.append(tail)
        yield tail
    if completion is None:
        raise ProviderError(f"{llm.provider} ({llm.model}) ended without a complete answer")
    yield make_answer(
        question, completion, "".join(shown), passages, llm, checker.cited, checker.removed,
        relevance, notes,
    )  # fmt: skip


def _at_once(llm: LLM, prompt: Prompt) -> Iterator[StreamItem]:
    completion = llm.complete(prompt)
    yield completion.text
    yield completion


def final_answer(items: Iterator[str | Answer]) -> Answer:
    """Drain an answer stream and return its ``Answer``."""
    answer = None
    for item in items:
        if isinstance(item, Answer):
            answer = item
    if answer is None:  # pragma: no cover - stream_answer always ends with one
        raise ProviderError("the answer stream ended without an answer")
    return answer
