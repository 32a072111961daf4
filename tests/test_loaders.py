"""Loaders: files and directories -> Documents, and every bad input.

Zip archives are tested in test_loaders_archives.py, URLs in test_loaders_urls.py, what
the HTML and PDF parsers make of a page in test_html.py and test_pdf.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragloom.archives import FILE_LIMIT_SETTING
from ragloom.loaders import PathGlob, load_sources
from ragloom.types import Document
from tests.loader_helpers import docs, issues, load, make_pdf, make_zip, only_issue

# --- local files and directories ------------------------------------------------------


def test_directory_loads_every_format_and_skips_non_documents(corpus: Path) -> None:
    items = load(corpus)
    found, problems = docs(items), issues(items)
    root = str(corpus.resolve())
    assert set(found) == {
        f"{root}/install.md",
        f"{root}/notes.txt",
        f"{root}/page.html",
        f"{root}/manual.pdf",
        f"{root}/guide/intro.md",
        f"{root}/guide/deep/more.md",
        f"{root}/guide/deep/more.rst",
    }
    assert all(doc.root == root for doc in found.values())
    # The image is skipped on purpose; hidden files and .git are not even mentioned.
    assert set(problems) == {f"{root}/logo.png"}
    png = problems[f"{root}/logo.png"]
    assert png.skipped and png.reason == "not a document (.png); skipped" and png.root == root
    assert {d.format for d in found.values()} == {"markdown", "text", "html", "pdf"}


def test_markdown_front_matter_becomes_metadata_and_leaves_the_text(corpus: Path) -> None:
    doc = docs(load(corpus / "install.md"))[str((corpus / "install.md").resolve())]
    assert doc.format == "markdown"
    assert doc.title == "Installing Milvus"
    assert doc.metadata == {
        "title": "Installing Milvus",
        "tags": ["install", "docker"],
        "date": "2024-05-01",  # YAML dates become ISO strings, so stores can keep them
    }
    assert doc.text.startswith("# Install with Docker")
    assert "---" not in doc.text and "tags:" not in doc.text


def test_markdown_title_falls_back_to_first_heading_then_stem(corpus: Path) -> None:
    found = docs(load(corpus / "guide"))
    titles = {Path(source).name: doc.title for source, doc in found.items()}
    assert titles == {"intro.md": "Intro", "more.md": "more", "more.rst": "more"}


@pytest.mark.parametrize("name", ["saved.html", "notes.md", "export.txt"])
def test_a_pdf_under_another_name_is_read_as_a_pdf(tmp_path: Path, name: str) -> None:
    # QA: a PDF named .html (or sent as text/html) was stored as its PDF source, and one
    # named .md was told to "re-save it as UTF-8".  Its bytes say what it is.
    (tmp_path / name).write_bytes(make_pdf(["The capybara is the largest rodent."]))
    [doc] = load(tmp_path / name)
    assert isinstance(doc, Document) and doc.format == "pdf"
    assert "capybara is the largest rodent" in doc.text and "%PDF" not in doc.text


def test_a_setext_heading_is_a_title(tmp_path: Path) -> None:
    # QA: "Title line" over "=====" was a heading in the chunks but not the title.
    (tmp_path / "setext.md").write_text("Title line\n==========\n\nText.\n")
    (tmp_path / "rule.md").write_text("Some text\n\n---\n\nMore.\n")  # a rule: no title
    found = docs(load(tmp_path))
    titles = {Path(source).name: doc.title for source, doc in found.items()}
    assert titles == {"setext.md": "Title line", "rule.md": "rule"}


def test_single_file_root_is_its_source(corpus: Path) -> None:
    [doc] = load(corpus / "notes.txt")
    assert isinstance(doc, Document)
    assert doc.source == doc.root == str((corpus / "notes.txt").resolve())
    assert doc.text == "Plain notes about collections." and doc.format == "text"


def test_directory_glob_double_star_recurses(corpus: Path) -> None:
    names = {
        Path(s).relative_to(corpus.resolve()).as_posix() for s in docs(load(corpus, glob="**/*.md"))
    }
    assert names == {"install.md", "guide/intro.md", "guide/deep/more.md"}
    # The glob selects: nothing else is loaded or reported, not even the image.
    assert issues(load(corpus, glob="**/*.md")) == {}


def test_directory_glob_star_does_not_cross_slash(corpus: Path) -> None:
    names = {Path(s).name for s in docs(load(corpus, glob="guide/*.md"))}
    assert names == {"intro.md"}
    names = {Path(s).name for s in docs(load(corpus, glob="guide/**/*.rst"))}
    assert names == {"more.rst"}


def test_glob_semantics() -> None:
    assert PathGlob("en/faq/*.md")("en/faq/a.md")
    assert not PathGlob("en/faq/*.md")("en/faq/sub/a.md")
    assert not PathGlob("en/faq/*.md")("en/faq/a.mdx")
    assert PathGlob("**/*.md")("a.md") and PathGlob("**/*.md")("x/y/a.md")
    assert PathGlob("en/**")("en/a/b/c.txt") and not PathGlob("en/**")("fr/a.md")
    assert PathGlob("*.md")("deep/down/a.md")  # no '/': matched against the name
    assert PathGlob("doc[0-9].md")("doc7.md") and not PathGlob("doc[!0-9].md")("doc7.md")
    assert PathGlob("a?.md")("ab.md") and not PathGlob("a?.md")("a/.md")
    assert not PathGlob("*.MD")("a.md")  # case-sensitive everywhere


def test_glob_matching_nothing_is_reported(corpus: Path) -> None:
    issue = only_issue(load(corpus, glob="*.docx"))
    assert issue.source == str(corpus.resolve()) and not issue.skipped
    assert "no files in this directory match the glob '*.docx'" in issue.reason


def test_zip_inside_directory_is_read(corpus: Path) -> None:
    (corpus / "bundle.zip").write_bytes(make_zip({"inner/a.md": b"# A\n\nInside.\n"}))
    found = docs(load(corpus, glob="*.zip"))
    zip_path = str((corpus / "bundle.zip").resolve())
    assert set(found) == {f"{zip_path}::inner/a.md"}
    assert found[f"{zip_path}::inner/a.md"].root == str(corpus.resolve())


# --- bad local inputs -----------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    issue = only_issue(load(tmp_path / "nope.md"))
    assert issue.source == str(tmp_path / "nope.md")
    assert issue.reason.startswith("no such file or directory")
    assert not issue.skipped


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.md", b"", "empty file: nothing to index"),
        ("blank.txt", b"  \n\n\t\n", "empty file: nothing to index (only whitespace)"),
        ("binary.md", b"# Title\n\x00\x01\x02\x03", "binary content, not text"),
        (
            "latin1.txt",
            "caf\u00e9 au lait".encode("latin-1"),
            "not valid UTF-8 (byte 0xe9 at offset 3); re-save it as UTF-8",
        ),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf\n", "not a readable PDF: "),
        ("scan.pdf", make_pdf(["", ""]), "no text layer (scanned?)"),
        ("bad.md", b"---\ntitle: [unclosed\n---\nBody\n", "invalid YAML front matter"),
        ("only-front.md", b"---\ntitle: x\n---\n\n", "no text left after parsing the markdown"),
        ("scripts.html", b"<html><script>x()</script></html>", "no text left after parsing"),
        ("Makefile", b"all:\n\techo hi\n", "not a document (no file extension); skipped"),
    ],
)
def test_bad_file_is_an_issue_with_its_reason(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    (tmp_path / name).write_bytes(data)
    issue = only_issue(load(tmp_path / name))
    assert issue.source == str((tmp_path / name).resolve())
    assert issue.root == issue.source
    assert issue.reason.startswith(reason), issue.reason
    assert issue.skipped == ("skipped" in reason)


def test_utf8_bom_and_utf16_are_decoded(tmp_path: Path) -> None:
    (tmp_path / "bom.md").write_bytes("\ufeff# Caf\u00e9\n".encode())
    (tmp_path / "wide.txt").write_bytes("Gr\u00fc\u00dfe\r\n".encode("utf-16"))
    found = {Path(s).name: d for s, d in docs(load(tmp_path)).items()}
    assert found["bom.md"].title == "Caf\u00e9"
    assert found["wide.txt"].text == "Gr\u00fc\u00dfe"


def test_utf16_without_a_byte_order_mark_is_decoded(tmp_path: Path) -> None:
    # QA: some Windows tools write UTF-16 without a BOM; it was "binary content".
    (tmp_path / "le.txt").write_bytes("Caf\u00e9 about the iguana.\r\n".encode("utf-16-le"))
    (tmp_path / "be.md").write_bytes("# Gr\u00fc\u00dfe\n\nText.\n".encode("utf-16-be"))
    found = {Path(s).name: d for s, d in docs(load(tmp_path)).items()}
    assert found["le.txt"].text == "Caf\u00e9 about the iguana."
    assert found["be.md"].title == "Gr\u00fc\u00dfe"


def test_file_over_max_file_bytes(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * 5000, encoding="utf-8")
    issue = only_issue(load(tmp_path / "big.txt", max_file_bytes=1000))
    assert issue.reason == f"too large: 5000 bytes, over the limit of 1000 ({FILE_LIMIT_SETTING})"


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n", encoding="utf-8")
    (tmp_path / "b.pdf").write_bytes(b"junk")
    (tmp_path / "c.md").write_text("# C\n", encoding="utf-8")
    items = load(tmp_path)
    assert [type(i).__name__ for i in items] == ["Document", "LoadIssue", "Document"]


def test_file_and_folder_names_that_are_not_utf8_are_named_and_refused(tmp_path: Path) -> None:
    # Such a name crashed the whole ingest (UnicodeEncodeError making its chunk ids).
    root = bytes(tmp_path)
    (tmp_path / "ok.md").write_text("# Ok\n", encoding="utf-8")
    Path(os.fsdecode(root + b"/caf\xe9.md")).write_text("# Cafe\n", encoding="utf-8")
    Path(os.fsdecode(root + b"/r\xe9sum\xe9s")).mkdir()
    Path(os.fsdecode(root + b"/r\xe9sum\xe9s/cv.md")).write_text("# CV\n", encoding="utf-8")
    items = load(tmp_path)
    assert list(docs(items)) == [str(tmp_path / "ok.md")]
    found = issues(items)
    assert set(found) == {str(tmp_path / "caf\\xe9.md"), str(tmp_path / "r\\xe9sum\\xe9s")}
    for issue in found.values():
        issue.source.encode("utf-8")  # printable, storable
        assert issue.reason.startswith("the name is not valid UTF-8"), issue.reason
        assert not issue.skipped and issue.root == str(tmp_path)
    named = only_issue(load(os.fsdecode(root + b"/caf\xe9.md")))
    assert named.source == str(tmp_path / "caf\\xe9.md")


def test_an_empty_source_is_an_issue_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.md").write_text("# A\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for empty in ("", "  "):
        issue = only_issue(load(empty))
        assert issue.reason.startswith("empty source; name a file, folder"), issue.reason
        assert not issue.skipped


def test_a_symlinked_file_is_read_once(tmp_path: Path) -> None:
    # QA: docs/alias.md -> real.md was stored twice, so every search gave it twice.  A
    # link to a file outside the folder is that file's only way in, and is kept.
    docs_dir, outside = tmp_path / "docs", tmp_path / "elsewhere.md"
    docs_dir.mkdir()
    (docs_dir / "real.md").write_text("# Real\n\nText.\n")
    outside.write_text("# Elsewhere\n\nMore.\n")
    (docs_dir / "alias.md").symlink_to("real.md")
    (docs_dir / "link.md").symlink_to(outside)
    found = docs(load(docs_dir))
    assert sorted(Path(s).name for s in found) == ["link.md", "real.md"]


def test_broken_symlinks_and_loops_in_a_folder_are_named_as_such(tmp_path: Path) -> None:
    # They were "cannot read: No such file or directory", of a file the user can see.
    (tmp_path / "a.md").write_text("# A\n", encoding="utf-8")
    (tmp_path / "broken.md").symlink_to("moved-away.md")
    (tmp_path / "loop1.md").symlink_to("loop2.md")
    (tmp_path / "loop2.md").symlink_to("loop1.md")
    found = issues(load(tmp_path))
    assert found[str(tmp_path / "broken.md")].reason == (
        "a broken symbolic link (to 'moved-away.md', which does not exist); fix or remove it"
    )
    for name in ("loop1.md", "loop2.md"):
        assert found[str(tmp_path / name)].reason == "a symbolic link loop; fix or remove the link"


@pytest.mark.timeout(10)
def test_a_pipe_named_like_an_archive_is_skipped_not_read(tmp_path: Path) -> None:
    # Named directly, zipfile opened it and waited forever for a writer.
    os.mkfifo(tmp_path / "docs.zip")
    issue = only_issue(load(tmp_path / "docs.zip"))
    assert issue.skipped and issue.reason.startswith("not a regular file"), issue.reason


def test_unsupported_url_scheme() -> None:
    issue = only_issue(load("ftp://example.com/a.md"))
    assert issue.reason.startswith("unsupported URL scheme 'ftp'")


def test_a_single_string_is_one_source(corpus: Path) -> None:
    items = list(load_sources(str(corpus / "notes.txt")))
    assert [item.source for item in items] == [str((corpus / "notes.txt").resolve())]


def test_loading_is_lazy(tmp_path: Path) -> None:
    """Documents are yielded as read: the first arrives before later files are touched."""
    (tmp_path / "a.md").write_text("# A\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("# B\n", encoding="utf-8")
    stream = load_sources([str(tmp_path)])
    first = next(stream)
    assert isinstance(first, Document) and first.title == "A"
    (tmp_path / "b.md").write_text("# B changed\n", encoding="utf-8")
    second = next(stream)
    assert isinstance(second, Document) and second.title == "B changed"
