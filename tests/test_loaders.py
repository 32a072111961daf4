"""Loaders: files, directories, zip archives and URLs -> Documents, and every bad input.

What the HTML and PDF parsers make of a page is tested in test_html.py and test_pdf.py.
"""

from __future__ import annotations

import http.server
import io
import os
import socket
import struct
import threading
import time
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from ragloom.archives import FILE_LIMIT_SETTING
from ragloom.loaders import PathGlob, load_sources
from ragloom.types import Document
from tests.conftest import DOCS_ZIP
from tests.loader_helpers import HTML_PAGE, docs, issues, load, make_pdf, only_issue

needs_docs_zip = pytest.mark.skipif(not DOCS_ZIP.exists(), reason=f"{DOCS_ZIP} is not there")


# --- helpers --------------------------------------------------------------------------


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive in memory; member names are written exactly as given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buffer.getvalue()


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


# --- URLs on a loopback server --------------------------------------------------------

Route = tuple[int, dict[str, str], bytes]


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, Route]] = {}
    user_agents: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.user_agents.append(self.headers.get("User-Agent", ""))
        if self.path == "/slow":
            time.sleep(1.5)
        if self.path == "/stream":  # no Content-Length: the size is known only by reading
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            try:
                for _ in range(64):
                    self.wfile.write(b"z" * 1024)
            except OSError:
                pass  # the client hung up, as it should
            return
        status, headers, body = self.routes.get(self.path, (404, {}, b"nothing here"))
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """A loopback HTTP server in a thread; yields its base URL."""
    md = b"---\ntitle: Remote Doc\n---\n\n# Heading\n\nRemote body.\n"
    faq = make_zip({"en/faq/a.md": b"# A\n", "en/faq/b.md": b"# B\n", "en/other.md": b"# O\n"})
    _Handler.routes = {
        "/page.html": (200, {"Content-Type": "text/html; charset=utf-8"}, HTML_PAGE),
        "/doc.md": (200, {"Content-Type": "text/plain; charset=utf-8"}, md),
        "/notes": (200, {"Content-Type": "text/plain"}, b"Just notes.\n"),
        "/manual": (200, {"Content-Type": "application/pdf"}, make_pdf(["PDF over HTTP"])),
        "/docs.zip": (200, {"Content-Type": "application/octet-stream"}, faq),
        "/download?id=7": (200, {"Content-Type": "application/zip"}, faq),
        "/old": (301, {"Location": "/page.html"}, b""),
        "/logo": (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n"),
        "/get?file=9": (200, {"Content-Type": "application/octet-stream"}, make_pdf(["Sent"])),
        "/huge": (200, {"Content-Type": "text/plain", "Content-Length": str(10**9)}, b""),
        "/slow": (200, {"Content-Type": "text/plain"}, b"late"),
    }
    _Handler.user_agents = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_url_html_page(server: str) -> None:
    url = f"{server}/page.html"
    [doc] = load(url)
    assert isinstance(doc, Document)
    assert doc.source == doc.root == url
    assert doc.format == "html" and doc.title == "Milvus Page"
    assert doc.text.startswith("# Vector search")
    assert _Handler.user_agents == ["ragloom/0.1"]


def test_url_markdown_served_as_text_plain_is_markdown(server: str) -> None:
    [doc] = load(f"{server}/doc.md")
    assert isinstance(doc, Document)
    assert doc.format == "markdown" and doc.title == "Remote Doc"
    assert doc.metadata == {"title": "Remote Doc"} and doc.text.startswith("# Heading")


def test_url_text_and_pdf_by_content_type(server: str) -> None:
    text, pdf = load(f"{server}/notes", f"{server}/manual")
    assert isinstance(text, Document) and text.format == "text" and text.text == "Just notes."
    assert isinstance(pdf, Document) and pdf.format == "pdf" and pdf.pages == ("PDF over HTTP",)


def test_url_pdf_sent_as_octet_stream_without_an_extension_is_read(server: str) -> None:
    # A download link's PDF was skipped as "not a document (application/octet-stream)".
    [pdf] = load(f"{server}/get?file=9")
    assert isinstance(pdf, Document) and pdf.format == "pdf" and pdf.pages == ("Sent",)


def test_url_redirect_is_followed_and_keeps_the_given_url(server: str) -> None:
    [doc] = load(f"{server}/old")
    assert isinstance(doc, Document)
    assert doc.source == f"{server}/old" and doc.title == "Milvus Page"


def test_url_zip_by_suffix_with_glob(server: str) -> None:
    url = f"{server}/docs.zip"
    items = load(url, glob="en/faq/*.md")
    assert [item.source for item in items] == [f"{url}::en/faq/a.md", f"{url}::en/faq/b.md"]
    assert all(isinstance(item, Document) and item.root == url for item in items)


def test_url_zip_by_content_type(server: str) -> None:
    url = f"{server}/download?id=7"
    assert set(docs(load(url))) == {
        f"{url}::en/faq/a.md",
        f"{url}::en/faq/b.md",
        f"{url}::en/other.md",
    }


def test_url_404(server: str) -> None:
    issue = only_issue(load(f"{server}/missing.md"))
    assert issue.source == issue.root == f"{server}/missing.md"
    assert issue.reason == "HTTP 404 Not Found" and not issue.skipped


def test_url_not_a_document(server: str) -> None:
    issue = only_issue(load(f"{server}/logo"))
    assert issue.reason == "not a document (image/png); skipped" and issue.skipped


def test_url_refused_by_declared_length(server: str) -> None:
    issue = only_issue(load(f"{server}/huge"))
    assert issue.reason.startswith("download refused: too large: 1000000000 bytes")
    assert "max_file_mb" in issue.reason


def test_url_aborted_once_over_max_download_bytes(server: str) -> None:
    issue = only_issue(load(f"{server}/stream", max_download_bytes=10_000))
    assert issue.reason == "download aborted: over 10000 bytes (ragloom's limit for one download)"


def test_url_read_timeout(server: str) -> None:
    started = time.monotonic()
    issue = only_issue(load(f"{server}/slow", read_timeout=0.2))
    assert issue.reason == "timed out: no data for 0.2s; try again later"
    assert time.monotonic() - started < 1.4


def test_url_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/doc.md"
    issue = only_issue(load(url, connect_timeout=2))
    assert issue.source == url
    assert issue.reason.startswith("cannot connect (") and "check the URL" in issue.reason


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
