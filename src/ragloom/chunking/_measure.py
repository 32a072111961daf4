"""Token counts that can be added up: a counter and its fixed cost per call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Measure:
    """A token counter plus its fixed cost per call, so sizes of parts can be added."""

    count: TokenCounter
    overhead: int

    @classmethod
    def of(cls, count: TokenCounter) -> Measure:
        """``count`` with its fixed cost, measured on "" and "a"."""
        # [CLS]/[SEP] for BERT tokenizers (2); 0 for plain counters; never more than ""'s.
        return cls(count, max(0, min(count(""), count("a") - 1)))

    def content(self, text: str) -> int:
        """Tokens of ``text`` without the fixed cost."""
        return max(0, self.count(text) - self.overhead)
