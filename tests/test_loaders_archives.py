"""Loaders: zip archives (files, folders and downloads) -> Documents, and unsafe ones."""

from __future__ import annotations

import struct
import warnings
import zipfile
from pathlib import Path

import pytest

from ragloom.archives import FILE_LIMIT_SETTING
from ragloom.types import Document
from tests.conftest import DOCS_ZIP
from tests.loader_helpers import docs, issues, load, make_zip, only_issue

needs_docs_zip = pytest.mark.skipif(not DOCS_ZIP.exists(), reason=f"{DOCS_ZIP} is not there")


# --- zip archives ---------------------------------------------------------------------


@needs_docs_zip
def test_docs_zip_with_glob_selects_the_four_faq_pages() -> None:
    items = load(DOCS_ZIP, glob="en/faq/*.md")
    prefix = str(DOCS_ZIP.resolve())
    assert sorted(item.source for item in items) == [
        f"{prefix}::en/faq/operational_faq.md",
        f"{prefix}::en/faq/performance_faq.md",
        f"{prefix}::en/faq/product_faq.md",
        f"{prefix}::en/faq/troubleshooting.md",
    ]
    assert all(isinstance(item, Document) and item.root == prefix for item in items)
    product = docs(items)[f"{prefix}::en/faq/product_faq.md"]
    assert product.title == "Product FAQ" and product.metadata["id"] == "product_faq.md"
    assert product.text.startswith("# Product FAQ")


@needs_docs_zip
def test_whole_docs_zip_yields_one_item_per_member() -> None:
    items = load(DOCS_ZIP)
    assert len(items) == 272
    assert len(docs(items)) == 269
    skipped = issues(items)
    assert {Path(s.split("::")[1]).name for s in skipped} == {
        "Variables.json",
        "home.json",
        "en.json",
    }
    assert all(
        i.skipped and i.reason == "not a document (.json); skipped" for i in skipped.values()
    )


def test_zip_slip_members_are_refused_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    (work / "inner").mkdir(parents=True)
    monkeypatch.chdir(work / "inner")
    archive = work / "inner" / "slip.zip"
    members = {
        "../evil.md": b"# Evil\n",
        "../../evil2.md": b"# Evil\n",
        "/abs/evil3.md": b"# Evil\n",
        "docs/../../evil4.md": b"# Evil\n",
        "C:/evil5.md": b"# Evil\n",
        "docs/ok.md": b"# Fine\n\nText.\n",
    }
    archive.write_bytes(make_zip(members))
    before = sorted(p for p in tmp_path.rglob("*"))
    items = load(archive)
    prefix = str(archive.resolve())
    assert set(docs(items)) == {f"{prefix}::docs/ok.md"}
    refused = issues(items)
    assert set(refused) == {f"{prefix}::{name}" for name in members if "evil" in name}
    for issue in refused.values():
        assert issue.reason == "unsafe path in archive (absolute or with '..'); refused"
        assert not issue.skipped
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not any(p.name.startswith("evil") for p in tmp_path.parent.rglob("evil*"))


def test_zip_bomb_refused_by_compression_ratio(tmp_path: Path) -> None:
    (tmp_path / "bomb.zip").write_bytes(make_zip({"zeros.txt": b"\x00" * (8 * 1024**2)}))
    issue = only_issue(load(tmp_path / "bomb.zip"))
    assert issue.source.endswith("bomb.zip::zeros.txt")
    assert issue.reason.startswith("suspicious compression ratio")
    assert "zip bomb" in issue.reason


def test_zip_member_over_max_file_bytes_by_declared_size(tmp_path: Path) -> None:
    archive = make_zip({"big.md": b"a" * 5000, "small.md": b"# Small\n"})
    (tmp_path / "a.zip").write_bytes(archive)
    items = load(tmp_path / "a.zip", max_file_bytes=1000)
    assert [type(i).__name__ for i in items] == ["LoadIssue", "Document"]
    assert (
        items[0].reason == f"too large: 5000 bytes, over the limit of 1000 ({FILE_LIMIT_SETTING})"
    )


def test_zip_refused_when_total_exceeds_max_archive_bytes(tmp_path: Path) -> None:
    archive = make_zip({f"{i}.md": b"b" * 1500 for i in range(3)})
    (tmp_path / "a.zip").write_bytes(archive)
    issue = only_issue(load(tmp_path / "a.zip", max_archive_bytes=4000))
    assert issue.source == str((tmp_path / "a.zip").resolve())
    assert issue.reason.startswith("archive refused: too large: 4500 bytes")
    assert "(ragloom's limit for an archive's unpacked size)" in issue.reason


def test_zip_with_lying_size_header_is_read_bounded(tmp_path: Path) -> None:
    """Headers claim 10 bytes but the data inflates to 3 MB: refused, never inflated whole."""
    data = bytearray(make_zip({"liar.txt": b"y" * (3 * 1024**2)}))
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 10)  # local header: uncompressed size
    struct.pack_into("<I", data, central + 24, 10)  # central directory: uncompressed size
    (tmp_path / "liar.zip").write_bytes(bytes(data))
    issue = only_issue(load(tmp_path / "liar.zip"))
    assert issue.source.endswith("liar.zip::liar.txt")
    assert issue.reason.startswith("corrupt archive member: Bad CRC-32")


def test_corrupt_zip(tmp_path: Path) -> None:
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 this is not a zip at all")
    issue = only_issue(load(tmp_path / "broken.zip"))
    assert issue.reason.startswith("not a readable zip archive: ")
    assert not issue.skipped


def test_zip_member_stored_twice_is_one_document_its_last_copy(tmp_path: Path) -> None:
    archive = tmp_path / "twice.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(archive, "w") as zf:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        zf.writestr("notes.md", "# Old\n\nThe first copy.\n")
        zf.writestr("notes.md", "# New\n\nThe copy an extraction keeps.\n")
    [doc] = load(archive)
    assert isinstance(doc, Document) and doc.title == "New"


def test_zip_made_on_windows_with_backslashes_is_globbed_by_slash_paths(tmp_path: Path) -> None:
    # PowerShell 5 writes "docs\\faq\\a.md": `--glob 'docs/faq/*.md'` matched nothing.
    archive = tmp_path / "win.zip"
    archive.write_bytes(
        make_zip({"docs\\": b"", "docs\\faq\\a.md": b"# A\n", "docs\\b.md": b"# B\n"})
    )
    assert list(docs(load(archive, glob="docs/faq/*.md"))) == [f"{archive}::docs/faq/a.md"]
    assert list(docs(load(archive))) == [f"{archive}::docs/b.md", f"{archive}::docs/faq/a.md"]
    assert not issues(load(archive))  # the folder entry is no "not a document"


def test_zip_skips_hidden_members_and_reports_nested_archives(tmp_path: Path) -> None:
    archive = make_zip(
        {
            "__MACOSX/._a.md": b"junk",
            ".git/config.md": b"junk",
            "docs/.draft.md": b"junk",
            "docs/a.md": b"# A\n",
            "docs/inner.zip": make_zip({"x.md": b"# X\n"}),
            "docs/img.jpg": b"\xff\xd8\xff",
        }
    )
    (tmp_path / "a.zip").write_bytes(archive)
    items = load(tmp_path / "a.zip")
    assert [i.source.split("::")[1] for i in items] == [
        "docs/a.md",
        "docs/img.jpg",
        "docs/inner.zip",
    ]
    assert items[1].reason == "not a document (.jpg); skipped" and items[1].skipped
    assert items[2].reason.startswith("nested archive; skipped") and items[2].skipped
