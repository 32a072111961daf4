"""An in-process ``LLM`` with queued replies, for tests that need no HTTP at all."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ragloom.llms.base import Completion, Prompt, StreamItem, usage_dict
from ragloom.testing._server import DEFAULT_ANSWER
from ragloom.testing.scripts import _split_words


class FakeLLM:
    """Implements the ``LLM`` protocol: answers from a queue, else ``answer``; records prompts.

    ``enqueue`` takes reply strings, or exceptions to raise instead of answering.
    ``prompts`` keeps every prompt received, oldest first.
    """

    def __init__(
        self,
        answer: str | Callable[[Prompt], str] = DEFAULT_ANSWER,
        *,
        model: str = "fake-model",
        provider: str = "fake",
    ) -> None:
        self.answer = answer
        self.model = model
        self.provider = provider
        self.prompts: list[Prompt] = []
        self._queue: list[str | Exception] = []

    def enqueue(self, *replies: str | Exception) -> None:
        """Queue the next replies (or exceptions), in order."""
        self._queue.extend(replies)

    def complete(self, prompt: Prompt) -> Completion:
        """The next reply, whole."""
        self.prompts.append(prompt)
        text = self._next(prompt)
        usage = usage_dict(len(prompt.system.split()), len(text.split()), None)
        return Completion(text, self.model, usage, "stop")

    def stream(self, prompt: Prompt) -> Iterator[StreamItem]:
        """The next reply word by word, then the ``Completion``."""
        completion = self.complete(prompt)
        yield from _split_words(completion.text)
        yield completion

    def _next(self, prompt: Prompt) -> str:
        if self._queue:
            item = self._queue.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        return self.answer(prompt) if callable(self.answer) else self.answer
