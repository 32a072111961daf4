"""PDF files -> Documents: one text per page, without what the page layout added."""

from __future__ import annotations

from pathlib import Path

from ragloom.types import Document
from tests.loader_helpers import load, make_pdf


def test_pdf_pages_text_and_title(corpus: Path) -> None:
    [doc] = load(corpus / "manual.pdf")
    assert isinstance(doc, Document)
    assert doc.format == "pdf" and doc.title == "Manual"
    assert doc.pages == ("First page text", "Second page text")
    assert doc.text == "First page text\n\nSecond page text"


def test_pdf_running_headers_and_page_numbers_are_dropped(tmp_path: Path) -> None:
    pages = [
        f"ACME Report 2023 - Confidential\nSection {n}\nBody text of page {n}.\nPage {n} of 3"
        for n in (1, 2, 3)
    ]
    (tmp_path / "report.pdf").write_bytes(make_pdf(pages))
    [doc] = load(tmp_path / "report.pdf")
    assert isinstance(doc, Document)
    assert doc.pages == tuple(f"Section {n}\nBody text of page {n}." for n in (1, 2, 3))


def test_pdf_words_hyphenated_at_line_ends_are_joined(tmp_path: Path) -> None:
    page = (
        "The thermo-\ndynamic test of the sub-\nstrate was unex-\npected.\n"
        "A self-\nhealing coat: self-healing is rare. Anglo-\nSaxon runes."
    )
    (tmp_path / "paper.pdf").write_bytes(make_pdf([page]))
    [doc] = load(tmp_path / "paper.pdf")
    assert isinstance(doc, Document)
    assert doc.text == (
        "The thermodynamic test of the substrate was unexpected.\n"
        "A self-healing coat: self-healing is rare. Anglo-Saxon runes."
    )


def test_pdf_lines_wrapped_by_the_layout_are_joined_into_sentences(tmp_path: Path) -> None:
    page = (
        "1. Results\nThe flux capacitor overheats when the\nhumidity is above sixty percent,\n"
        "Counterintuitively, cooling made it worse.\nA new sentence starts here.\n- a list item"
    )
    (tmp_path / "wrapped.pdf").write_bytes(make_pdf([page]))
    [doc] = load(tmp_path / "wrapped.pdf")
    assert isinstance(doc, Document)
    assert doc.text == (
        "1. Results\nThe flux capacitor overheats when the humidity is above sixty percent,"
        " Counterintuitively, cooling made it worse.\nA new sentence starts here.\n- a list item"
    )


def test_pdf_title_falls_back_to_stem(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(make_pdf(["Quarterly numbers"]))
    [doc] = load(tmp_path / "report.pdf")
    assert isinstance(doc, Document) and doc.title == "report"
