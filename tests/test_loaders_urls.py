"""Loaders: URLs on a loopback HTTP server -> Documents, and every failure of a download."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from ragloom.loaders import source_name
from ragloom.types import Document
from tests.loader_helpers import HTML_PAGE, docs, load, make_pdf, make_zip, only_issue

# --- URLs on a loopback server --------------------------------------------------------

Route = tuple[int, dict[str, str], bytes]


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, Route]] = {}
    user_agents: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.user_agents.append(self.headers.get("User-Agent", ""))
        if self.path == "/slow":
            time.sleep(1.5)
        if self.path == "/trickle":  # never silent for long, never done
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"drip ")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass  # the client gave up, as it should
            return
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


def test_a_url_fragment_names_the_same_page(server: str) -> None:
    # QA: page.html#install was stored as a second copy of page.html.
    [doc] = load(f"{server}/page.html#install")
    assert isinstance(doc, Document) and doc.source == doc.root == f"{server}/page.html"
    assert source_name(f"{server}/page.html#install") == f"{server}/page.html"


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


def test_a_server_that_trickles_is_given_up_on(server: str) -> None:
    # QA: a server sending a few bytes a second (never silent for the read timeout) held
    # `ragloom ingest URL` for as long as it liked; only Ctrl-C ended it.
    started = time.monotonic()
    issue = only_issue(load(f"{server}/trickle", read_timeout=0.5))
    assert issue.reason.startswith("the server sent ") and "too slow to finish" in issue.reason
    assert time.monotonic() - started < 5  # the server would trickle for 10 s


def test_url_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/doc.md"
    issue = only_issue(load(url, connect_timeout=2))
    assert issue.source == url
    assert issue.reason.startswith("cannot connect (") and "check the URL" in issue.reason
