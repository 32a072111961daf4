"""Multi-turn conversations over ``RAG``: follow-ups become standalone questions first.

"And how do I change it?" retrieves nothing useful on its own, so before retrieval the
model rewrites each follow-up, given the conversation so far, into a question that
stands alone.  Without a model (``--llm none``) questions are used as typed.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING

from ragloom.answer import fill
from ragloom.llms.base import LLM, Message, Prompt
from ragloom.types import Answer

if TYPE_CHECKING:
    from ragloom.rag import RAG
    from ragloom.store import SearchMode

REWRITE_SYSTEM = (
    "You rewrite follow-up questions. Given a conversation and a follow-up question, "
    "write one standalone question that means the same and can be understood without "
    "the conversation. Reply with the question only, in the language of the follow-up."
)
REWRITE_USER = """<conversation>
{history}
</conversation>
<question>
{question}
</question>"""
#: Turns of history shown to the rewriter (older ones rarely matter, and cost tokens).
HISTORY_TURNS = 6
#: An answer is cut to this many characters in the rewriter's history.
_ANSWER_CHARS = 600


class Conversation:
    """A chat with one collection: ``ask`` answers, remembering the turns; ``reset`` forgets.

    ``last`` is the latest ``Answer`` (its ``question`` is the standalone question that
    was searched for).
    """

    def __init__(
        self,
        rag: RAG,
        *,
        llm: str | LLM | None = None,
        model: str | None = None,
        k: int | None = None,
        mode: SearchMode | None = None,
        sources: Sequence[str] = (),
    ) -> None:
        from ragloom.asking import ASK_K

        self.rag = rag
        self.llm = rag.get_llm(llm, model)
        self.k = k or ASK_K
        self.mode = mode
        self.sources = tuple(sources)
        self.turns: list[tuple[str, str]] = []
        self.last: Answer | None = None

    def reset(self) -> None:
        """Forget the conversation."""
        self.turns.clear()
        self.last = None

    def standalone(self, text: str) -> str:
        """``text`` rewritten to stand alone, given the turns so far (as is on the first)."""
        if not self.turns or self.llm.provider == "none":
            return text
        history = "\n".join(
            f"User: {q}\nAssistant: {_clip(a)}" for q, a in self.turns[-HISTORY_TURNS:]
        )
        user = fill(REWRITE_USER, history=history, question=text)
        prompt = Prompt(REWRITE_SYSTEM, (Message("user", user),), question=text)
        try:
            reply = self.llm.complete(prompt).text
        except BaseException:  # failed or interrupted before the answer: still a turn
            self.turns.append((text, unanswered([])))
            raise
        lines = [ln.strip() for ln in reply.splitlines() if ln.strip()]
        rewritten = lines[0].strip("\"'` ") if lines else ""
        return rewritten or text

    def ask(self, text: str, *, stream: bool = True) -> Iterator[str | Answer]:
        """Answer ``text`` in context: text pieces, then the ``Answer``."""
        return self.answer(self.standalone(text), stream=stream)

    def answer(self, question: str, *, stream: bool = True) -> Generator[str | Answer, None, None]:
        """Answer a standalone ``question`` and remember the turn."""
        items = self.rag.stream(
            question, self.k, llm=self.llm, mode=self.mode, sources=self.sources, stream=stream
        )
        for item in remembered(self.turns, question, items):
            if isinstance(item, Answer):
                self.last = item
            yield item


def remembered(
    turns: list[tuple[str, str]], question: str, items: Iterator[str | Answer]
) -> Generator[str | Answer, None, None]:
    """``items`` (an answer stream), adding the turn to ``turns`` once it ends: with the
    answer's text, or, interrupted (Ctrl-C) or failed, with the text written so far, so
    that the next follow-up ("and is it free?") still has the question to follow."""
    written: list[str] = []
    answer: Answer | None = None
    try:
        for item in items:
            if isinstance(item, Answer):
                answer = item
            else:
                written.append(item)
            yield item
    finally:
        turns.append((question, answer.text if answer is not None else unanswered(written)))


def unanswered(written: Sequence[str]) -> str:
    """What the conversation remembers of an answer that failed or was interrupted: the
    text written so far, else that there was none."""
    so_far = "".join(written).strip()
    return f"{so_far} …" if so_far else "(not answered)"


def _clip(text: str) -> str:
    return text if len(text) <= _ANSWER_CHARS else text[:_ANSWER_CHARS] + " …"
