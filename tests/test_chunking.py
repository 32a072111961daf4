"""Chunking: the tutorial's seed split, heading paths, ids and hashes, the whole archive.

Code blocks, tables and long sections cut to the window are in test_chunking_windows.py.
"""

from __future__ import annotations

import collections
import re
import zipfile
from glob import glob
from pathlib import Path

import pytest

from ragloom.chunking import ChunkSettings, chunk_document, chunk_id, document_hash
from ragloom.errors import ConfigError
from ragloom.types import Chunk, Document
from tests.chunking_helpers import (
    Counter,
    chunks_of,
    fenced,
    fences_closed,
    md,
    paragraph,
    words,
)

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
FAQ_DIR = CORPUS / "milvus_faq_2.4"
ARCHIVE = CORPUS / "milvus_docs_2.4.x_en.zip"
FRONT_MATTER = re.compile(r"---\n(.*?)\n---\n", re.S)


def archive_docs() -> list[Document]:
    """The 272 members of the docs archive, front matter stripped as the loader does."""
    if not ARCHIVE.exists():
        pytest.skip(f"{ARCHIVE} is missing")
    docs = []
    with zipfile.ZipFile(ARCHIVE) as zf:
        for name in zf.namelist():
            if name.endswith("/"):
                continue
            text = zf.read(name).decode("utf-8")
            title = ""
            front = FRONT_MATTER.match(text)
            if name.endswith(".md") and front:
                text = text[front.end() :]
                found = re.search(r"^title:\s*(.*)$", front.group(1), re.M)
                title = found.group(1).strip().strip("'\"") if found else ""
            fmt = "markdown" if name.endswith(".md") else "text"
            docs.append(Document(source=f"{ARCHIVE}::{name}", text=text, format=fmt, title=title))
    assert len(docs) == 272
    return docs


# --- seed: the tutorials' split ----------------------------------------------------------


def test_seed_reproduces_the_tutorial_on_the_faq_files() -> None:
    if not FAQ_DIR.exists():
        pytest.skip(f"{FAQ_DIR} is missing")
    text_lines: list[str] = []
    pieces: list[Chunk] = []
    for file_path in sorted(glob(str(FAQ_DIR / "*.md"), recursive=True)):
        with open(file_path) as file:
            file_text = file.read()
        text_lines += file_text.split("# ")  # the tutorial, verbatim
        doc = Document(source=file_path, text=file_text, format="markdown")
        pieces += chunks_of(doc, splitter="seed")
    assert len(text_lines) == 72
    assert [c.text for c in pieces] == text_lines
    assert all(c.embed_text == c.text for c in pieces)
    assert "Where does Milvus store data?" in [c.heading for c in pieces]


def test_seed_keeps_every_piece_even_empty_ones() -> None:
    chunks = chunks_of(md("# A\ntext\n# B\n"), splitter="seed")
    assert [c.text for c in chunks] == ["", "A\ntext\n", "B\n"]
    assert [c.heading for c in chunks] == ["", "A", "B"]
    assert [c.position for c in chunks] == [0, 1, 2]
    assert {c.doc_chunks for c in chunks} == {3}


# --- markdown: structure ----------------------------------------------------------------


DOC = """\
# Guide

Intro words here.

## Install

Install words.

```bash
# not a heading
pip install thing
```

### On Linux

Linux words.

~~~
## also not a heading
~~~

## Use

Use words.
"""


def test_heading_paths_follow_the_headings_and_skip_the_title_h1() -> None:
    chunks = chunks_of(md(DOC, title="Guide"), min_tokens=0)
    assert [c.heading for c in chunks] == [
        "Guide",
        "Guide > Install",
        "Guide > Install > On Linux",
        "Guide > Use",
    ]
    assert "# not a heading" in chunks[1].text
    assert "## also not a heading" in chunks[2].text
    assert chunks[1].text.startswith("## Install")  # the heading line stays in the text
    assert chunks[1].embed_text == "Guide > Install\n\n" + chunks[1].text


def test_an_h1_other_than_the_title_is_kept_in_the_path() -> None:
    chunks = chunks_of(md("# Other\n\nbody\n", title="Guide"), min_tokens=0)
    assert [c.heading for c in chunks] == ["Guide > Other"]
    untitled = chunks_of(md("# Other\n\nbody\n## Sub ##\n\nmore\n"), min_tokens=0)
    assert [c.heading for c in untitled] == ["Other", "Other > Sub"]


def test_a_title_the_h1_says_again_in_other_words_is_said_once() -> None:
    # QA: "Using a Milvus server > Using a Milvus server, a cluster or Zilliz Cloud > ..."
    # (front matter's title, then the page's own `# ` heading) in every citation.
    def path(title: str, h1: str) -> str:
        return chunks_of(md(f"# {h1}\n\nbody\n", title=title), min_tokens=0)[0].heading

    longer = "Using a Milvus server, a cluster or Zilliz Cloud"
    assert path("Using a Milvus server", longer) == longer
    assert path("What is Milvus", "What is Milvus?") == "What is Milvus?"
    assert path("Deploy on EC2", "(Deprecated) Deploy on EC2") == "(Deprecated) Deploy on EC2"
    assert path("Jina AI - Embed", "Jina AI") == "Jina AI - Embed"
    # Titles that say something else are both kept; words, not letters, are compared.
    assert path("Set Limits", "Limit Collection Counts") == "Set Limits > Limit Collection Counts"
    assert path("Time", "Timestamp") == "Time > Timestamp"


def test_setext_headings_are_headings() -> None:
    text = (
        "Widget Guide\n============\n\nIntro text.\n\n"
        "Install on\nLinux\n-----------\n\nRun the installer.\n\n"
        "- a list item\n---\n\nafter a rule\n\n"  # a rule under a list, not a heading
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    chunks = chunks_of(md(text), min_tokens=0)
    assert [c.heading for c in chunks] == ["Widget Guide", "Widget Guide > Install on Linux"]
    assert chunks[1].text.startswith("## Install on Linux\n\nRun the installer.")
    assert "- a list item" in chunks[1].text and "| 1 | 2 |" in chunks[1].text
    assert "=====" not in "".join(c.text for c in chunks)


def test_tiny_sections_merge_under_their_common_heading() -> None:
    chunks = chunks_of(md(DOC, title="Guide"), min_tokens=40, max_tokens=64)
    assert len(chunks) == 1
    assert chunks[0].heading == "Guide"
    parent_then_child = chunks_of(md("## A\n\n### B\n\n" + paragraph(20)), min_tokens=5)
    assert [c.heading for c in parent_then_child] == ["A > B"]  # A has no text of its own
    assert parent_then_child[0].text.startswith("## A\n\n### B\n\nword0")


def test_a_parent_heading_leads_into_its_long_first_subsection() -> None:
    text = "## Parent\n\n### Child\n\n" + paragraph(200)
    chunks = chunks_of(md(text), max_tokens=64)
    assert chunks[0].text.startswith("## Parent\n\n### Child\n\nword0")
    assert {c.heading for c in chunks} == {"Parent > Child"}


def test_a_heading_line_is_never_a_chunk_of_its_own() -> None:
    text = "## Head\n\n" + fenced(10) + "\n\n## Next\n\n" + paragraph(50)
    chunks = chunks_of(md(text), max_tokens=43, overlap_tokens=0)
    assert all(not re.fullmatch(r"#+ \w+", c.text) for c in chunks)
    assert chunks[0].heading == "Head" and chunks[0].text == fenced(10)  # fits only alone


def test_an_unclosed_fence_runs_to_the_end_and_is_closed() -> None:
    chunks = chunks_of(md("intro\n\n```\n# inside\ncode\n"), min_tokens=0)
    assert [c.heading for c in chunks] == [""]
    assert chunks[0].text == "intro\n\n```\n# inside\ncode\n\n```"


def test_sections_do_not_merge_past_the_window() -> None:
    text = "## A\n\nshort.\n\n## B\n\n" + paragraph(60)
    chunks = chunks_of(md(text), max_tokens=64, min_tokens=20, overlap_tokens=0)
    assert [c.heading for c in chunks] == ["A", "B"]


def test_whitespace_only_documents_give_no_chunks() -> None:
    assert chunks_of(md("  \n\n\t\n")) == []


def test_plain_text_has_no_headings() -> None:
    doc = Document(source="t.txt", text="# a shell comment\n\nbody", format="text", title="T")
    chunks = chunks_of(doc)
    assert [(c.heading, c.text) for c in chunks] == [("T", "# a shell comment\n\nbody")]


def test_pdf_pages_are_chunked_separately_and_named() -> None:
    pages = ("first page words.", "", paragraph(300))
    doc = Document(
        source="a.pdf", text="\n\n".join(pages), format="pdf", title="Manual", pages=pages
    )
    chunks = chunks_of(doc, max_tokens=100)
    assert chunks[0].heading == "Manual > page 1"
    assert chunks[0].text == "first page words."
    assert {c.heading for c in chunks[1:]} == {"Manual > page 3"}
    assert len(chunks) > 3
    assert all(words(c.embed_text) <= 100 for c in chunks)


# --- ids and hashes ---------------------------------------------------------------------


def test_ids_are_stable_and_follow_the_text() -> None:
    text = "## A\n\n" + paragraph(80) + "\n\n## B\n\n" + paragraph(80, "b")
    first = chunks_of(md(text), max_tokens=64)
    again = chunks_of(md(text), max_tokens=64)
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    assert all(re.fullmatch(r"[0-9a-f]{32}", c.id) for c in first)
    assert first[0].id == chunk_id("mem://doc.md", 0, first[0].text)
    changed = chunks_of(md(text.replace("b79", "changed")), max_tokens=64)
    assert changed[0].id == first[0].id
    assert changed[-1].id != first[-1].id
    assert changed[0].doc_hash != first[0].doc_hash


def test_chunk_ids_differ_by_source_position_and_text() -> None:
    base = chunk_id("s", 0, "t")
    assert len({base, chunk_id("s2", 0, "t"), chunk_id("s", 1, "t"), chunk_id("s", 0, "u")}) == 4


def test_document_hash_covers_text_format_and_metadata() -> None:
    doc = md("text", metadata={"b": 1, "a": 2})
    same = md("text", metadata={"a": 2, "b": 1})
    assert document_hash(doc) == document_hash(same)
    assert document_hash(doc) != document_hash(md("text!", metadata={"a": 2, "b": 1}))
    assert document_hash(doc) != document_hash(md("text", metadata={"a": 3, "b": 1}))
    as_text = Document(source=doc.source, text="text", format="text", metadata=doc.metadata)
    assert document_hash(doc) != document_hash(as_text)
    moved = Document(source="elsewhere", text="text", format="markdown", metadata=doc.metadata)
    assert document_hash(doc) == document_hash(moved)


def test_chunks_carry_the_document_fields() -> None:
    doc = Document(
        source="s.md",
        text="## A\n\n" + paragraph(100),
        format="markdown",
        root="/docs",
        metadata={"lang": "en"},
    )
    chunks = chunks_of(doc, max_tokens=50)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert {c.doc_chunks for c in chunks} == {len(chunks)}
    assert {(c.source, c.root, c.doc_hash) for c in chunks} == {
        ("s.md", "/docs", document_hash(doc))
    }
    assert all(c.metadata == {"lang": "en"} and c.metadata is not doc.metadata for c in chunks)


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="splitter"):
        ChunkSettings(splitter="sentences")
    with pytest.raises(ConfigError, match="overlap"):
        ChunkSettings(max_tokens=64, overlap_tokens=64)


# --- the whole docs archive -------------------------------------------------------------


def is_oversize(chunk: Chunk, limit: int, count: Counter) -> bool:
    """A code/table piece that would fit without its single longest line or row."""
    body = chunk.text.lstrip()
    if not body.startswith(("```", "~~~", "|", "<table")):
        return False
    lines = chunk.text.split("\n")
    longest = max(range(len(lines)), key=lambda i: count(lines[i]))
    rest = "\n".join(lines[:longest] + lines[longest + 1 :])
    return count(f"{chunk.heading}\n\n{rest}") <= limit


@pytest.mark.parametrize("counter_name", ["words", "bert"])
def test_every_archive_chunk_fits_the_window(
    counter_name: str, request: pytest.FixtureRequest
) -> None:
    count: Counter = words if counter_name == "words" else request.getfixturevalue("bert_tokens")
    settings = ChunkSettings(max_tokens=256)
    oversize = 0
    for doc in archive_docs():
        chunks = chunk_document(doc, settings, count)
        for c in chunks:
            assert c.text.strip(), doc.source
            if count(c.embed_text) > 256:
                assert is_oversize(c, 256, count), (doc.source, c.position, c.text[:300])
                oversize += 1
            assert fences_closed(c.text), (doc.source, c.position)
    assert oversize < 60


def test_archive_chunks_cover_every_word(bert_tokens: Counter) -> None:
    for doc in archive_docs():
        chunks = chunk_document(doc, ChunkSettings(), bert_tokens)
        # not table delimiter rows (compacted) nor the #s of a heading that only its path names
        markup = re.compile(r"[|:-]+|#{1,6}")
        wanted = collections.Counter(w for w in doc.text.split() if not markup.fullmatch(w))
        found = collections.Counter(w for c in chunks for w in f"{c.heading} {c.text}".split())
        for word in wanted - found:  # only words too long for any window may be cut
            assert bert_tokens(word) > 128, (doc.source, word)
