"""Chunking within the window: code blocks and tables kept whole or cut between lines and
rows, long sections cut with overlap, the real tokenizer's window respected."""

from __future__ import annotations

import itertools
import re

from tests.chunking_helpers import (
    Counter,
    chunks_of,
    fenced,
    fences_closed,
    md,
    paragraph,
    words,
)

# --- markdown: windows, blocks and tables -----------------------------------------------


def test_a_code_block_that_fits_is_never_split() -> None:
    code = fenced(12)  # 50 words, longer than any paragraph around it
    text = "## S\n\n" + "\n\n".join([paragraph(30), code, paragraph(30, "w"), paragraph(30, "v")])
    chunks = chunks_of(md(text), max_tokens=80, overlap_tokens=10)
    holding = [c for c in chunks if "x0 =" in c.text or "x19 =" in c.text]
    assert len(holding) == 1 and code in holding[0].text, [c.text for c in chunks]
    assert all(fences_closed(c.text) for c in chunks)
    assert all(words(c.embed_text) <= 80 for c in chunks)


def test_a_code_block_over_the_window_is_cut_at_lines_and_refenced() -> None:
    text = "## S\n\n" + fenced(100)
    chunks = chunks_of(md(text), max_tokens=50)
    code_chunks = [c for c in chunks if "compute" in c.text]
    assert len(code_chunks) > 5
    for c in code_chunks:
        lines = c.text.split("\n")
        body = lines[lines.index("```python") :]
        assert body[0] == "```python" and body[-1] == "```"
        assert all(line.startswith("x") for line in body[1:-1])
        assert words(c.embed_text) <= 50
    seen = [line for c in code_chunks for line in c.text.split("\n") if line.startswith("x")]
    assert seen == [f"x{i} = compute({i}, {i + 1})" for i in range(100)]


def test_code_is_cut_at_blank_lines_first() -> None:
    groups = ["\n".join(f"g{g}_{i} = {i}" for i in range(5)) for g in range(6)]
    text = "```\n" + "\n\n".join(groups) + "\n```"
    chunks = chunks_of(md(text), max_tokens=40)
    for c in chunks:
        names = {line.split("_")[0] for line in c.text.split("\n") if line.startswith("g")}
        for g in names:  # a group of lines is never spread over two chunks
            assert sum(1 for line in c.text.split("\n") if line.startswith(g + "_")) == 5


def table(rows: int) -> str:
    head = "| name | value | note |\n|:-----------|-------:|------|"
    body = [f"| row{i} | {i} | some words for row {i} |" for i in range(rows)]
    return "\n".join([head, *body])


def test_a_table_that_fits_is_never_cut() -> None:
    text = "## T\n\n" + paragraph(40) + "\n\n" + table(8) + "\n\n" + paragraph(40, "w")
    chunks = chunks_of(md(text), max_tokens=120)
    holding = [c for c in chunks if "row0" in c.text or "row7" in c.text]
    assert len(holding) == 1
    assert "| row0 |" in holding[0].text and "| row7 |" in holding[0].text


def test_a_long_table_is_cut_between_rows_with_its_header_repeated() -> None:
    chunks = chunks_of(md("## T\n\n" + table(60)), max_tokens=80)
    rows = []
    for c in chunks:
        lines = c.text.split("\n")
        start = lines.index("| name | value | note |")
        assert lines[start + 1] == "| :--- | ---: | --- |"  # the delimiter row, compacted
        rows += lines[start + 2 :]
        assert words(c.embed_text) <= 80
    assert rows == [f"| row{i} | {i} | some words for row {i} |" for i in range(60)]


def test_a_long_html_table_is_cut_between_rows() -> None:
    body = "\n".join(f"  <tr>\n    <td>cell {i} words</td>\n  </tr>" for i in range(40))
    head = '<table id="t">\n<thead>\n  <tr><th>H</th></tr>\n</thead>\n<tbody>'
    html = f"{head}\n{body}\n</tbody>\n</table>"
    chunks = chunks_of(md("## H\n\n" + html), max_tokens=40)
    assert len(chunks) > 3
    for c in chunks:
        assert c.text.startswith('## H\n\n<table id="t">') or c.text.startswith('<table id="t">')
        assert "<th>H</th>" in c.text and c.text.endswith("</tbody>\n</table>")
        assert c.text.count("<tr>") == c.text.count("</tr>")
    cells = [m for c in chunks for m in re.findall(r"cell (\d+)", c.text)]
    assert cells == [str(i) for i in range(40)]


def test_long_sections_split_within_the_window_with_overlap() -> None:
    text = "# Long\n\n" + "\n\n".join(paragraph(45, f"p{k}x") for k in range(12))
    chunks = chunks_of(md(text, title="Doc"), max_tokens=100, overlap_tokens=20)
    assert len(chunks) >= 6
    assert all(words(c.embed_text) <= 100 for c in chunks)
    assert all(c.heading == "Doc > Long" for c in chunks)
    overlapping = 0
    for prev, nxt in itertools.pairwise(chunks):
        first_sentence = nxt.text.split(". ")[0]
        overlapping += first_sentence in prev.text
    assert overlapping >= len(chunks) // 2


def test_a_giant_paragraph_is_cut_at_sentences_then_words() -> None:
    sentences = paragraph(300)
    one_long_sentence = " ".join(f"w{i}" for i in range(300))
    chunks = chunks_of(md(sentences + "\n\n" + one_long_sentence), max_tokens=64)
    assert all(words(c.embed_text) <= 64 for c in chunks)
    by_sentence = [c for c in chunks if "word" in c.text and "w1 " not in c.text]
    assert all(c.text.endswith(".") for c in by_sentence[:-1])


def test_the_real_tokenizer_window_is_respected(bert_tokens: Counter) -> None:
    text = "# T\n\n" + "\n\n".join(
        [paragraph(400), fenced(80), table(40), "Supercalifragilistic" * 200]
    )
    chunks = chunks_of(md(text, title="Title"), bert_tokens, max_tokens=128)
    assert len(chunks) > 10
    assert max(bert_tokens(c.embed_text) for c in chunks) <= 128


def test_a_page_on_one_heading_line_is_cut_like_a_long_section(bert_tokens: Counter) -> None:
    # QA: a 16 KB file on one `# ` line (exported or minified markdown) made a heading
    # path longer than the window, and 3,994 chunks of one word each (5 minutes).  The
    # path is cut to half the window; the line itself is text like any other.
    line = "verylongheading " * 1000
    doc = md(f"# {line}\n\nabout the wren\n", title=line.strip())
    chunks = chunks_of(doc, bert_tokens, max_tokens=256)
    assert 10 < len(chunks) < 60  # about 4,000 tokens of text; it was 3,994 chunks
    assert all(bert_tokens(c.embed_text) <= 256 for c in chunks)
    assert all(c.heading.endswith(" …") and bert_tokens(c.heading) <= 130 for c in chunks)
    assert chunks[-1].text.endswith("about the wren")
    assert sum(c.text.count("verylongheading") for c in chunks) >= 1000  # all of the text
