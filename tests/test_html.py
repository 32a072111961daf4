"""HTML pages -> Documents: the main content as markdown-ish text, page chrome dropped."""

from __future__ import annotations

from pathlib import Path

from ragloom.types import Document
from tests.loader_helpers import load


def test_html_keeps_main_content_with_markdown_headings(corpus: Path) -> None:
    [doc] = load(corpus / "page.html")
    assert isinstance(doc, Document)
    assert doc.format == "html" and doc.title == "Milvus Page"
    assert doc.text.startswith("# Vector search\n\nMilvus stores vectors and searches them.")
    assert "\n## Indexes\n" in doc.text
    assert "- HNSW\n- IVF_FLAT" in doc.text
    assert '```\npip install pymilvus\nprint("hi")\n```' in doc.text
    for chrome in ("script text", "color: red", "Site header", "Nav item", "aside", "footer"):
        assert chrome not in doc.text


def test_html_title_falls_back_to_h1_and_body_without_main(tmp_path: Path) -> None:
    page = tmp_path / "plain.htm"
    page.write_text("<html><body><h1>Only H1</h1><p>Body text.</p></body></html>", "utf-8")
    [doc] = load(page)
    assert isinstance(doc, Document)
    assert doc.title == "Only H1" and doc.text == "# Only H1\n\nBody text."


def test_html_meta_charset_is_honoured(tmp_path: Path) -> None:
    html = '<html><head><meta charset="iso-8859-1"></head><body><p>caf\u00e9</p></body></html>'
    (tmp_path / "old.html").write_bytes(html.encode("latin-1"))
    [doc] = load(tmp_path / "old.html")
    assert isinstance(doc, Document) and doc.text == "caf\u00e9"


def test_html_latin1_label_is_decoded_as_windows_1252(tmp_path: Path) -> None:
    # Browsers read pages labelled ISO-8859-1 as Windows-1252: 0x92 is a curly apostrophe.
    html = '<html><head><meta charset="iso-8859-1"></head><body><p>I\u2019ve \u201cit\u201d</p>'
    (tmp_path / "old.html").write_bytes(html.encode("cp1252"))
    [doc] = load(tmp_path / "old.html")
    assert isinstance(doc, Document) and doc.text == "I\u2019ve \u201cit\u201d"


def test_html_with_no_charset_that_is_not_utf8_is_read_as_windows_1252(tmp_path: Path) -> None:
    # Old pages often declare no charset; such a page was refused with "re-save it as
    # UTF-8", which a user ingesting someone else's site cannot do.
    html = "<html><body><h1>Caf\u00e9</h1><p>I\u2019ve \u201cit\u201d</p></body></html>"
    (tmp_path / "old.html").write_bytes(html.encode("cp1252"))
    (tmp_path / "new.html").write_bytes(html.encode("utf-8"))
    found = load(tmp_path / "old.html", tmp_path / "new.html")
    assert all(isinstance(doc, Document) for doc in found), found
    assert [doc.text for doc in found] == ["# Caf\u00e9\n\nI\u2019ve \u201cit\u201d"] * 2


def test_html_whose_bytes_are_not_its_declared_charset_is_read_as_windows_1252(
    tmp_path: Path,
) -> None:
    # QA: a page saying charset=utf-8 but written in Windows-1252 (common; browsers show
    # it) was refused with "re-save it as UTF-8", as for a URL one does not control.
    html = '<html><head><meta charset="utf-8"></head><body><p>Caf\u00e9 \u201cq\u201d</p>'
    (tmp_path / "wrong.html").write_bytes(html.encode("cp1252"))
    [doc] = load(tmp_path / "wrong.html")
    assert isinstance(doc, Document) and doc.text == "Caf\u00e9 \u201cq\u201d"


DOCS_SITE_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<title>Configuring the server &mdash; Widget Docs 3.2</title></head><body>
<div class="cookie-banner"><p>We use cookies.</p><button>Accept all</button></div>
<div id="header"><a href="/">WidgetCo home</a></div>
<div class="sidebar" role="navigation"><p>Sidebar link</p></div>
<div class="content"><div class="breadcrumbs">Home &rsaquo; Docs</div>
<h1>Configuring the server<a class="headerlink" href="#top">\u00b6</a></h1>
<p>Settings come from widget.toml.</p>
<h2 id="ports">Ports<a class="headerlink" href="#ports">\u00b6</a></h2>
<div class="highlight-toml"><pre><span>listen</span> = <span>"0.0.0.0:80"</span>
</pre></div><button class="copybtn">Copy to clipboard</button>
<table><thead><tr><th>Port</th><th>Use</th></tr></thead>
<tbody><tr><td>80</td><td>http | redirect</td></tr><tr><td>443</td><td><code>https</code></td></tr>
</tbody></table>
<ol><li><p>Open the port.</p></li><li>Restart.</li></ol>
<div class="prev-next"><a href="/install">Previous: Installing</a></div></div>
<div id="footer">Copyright 2024 WidgetCo</div>
</body></html>"""


def test_html_docs_page_without_main_loses_its_chrome(tmp_path: Path) -> None:
    (tmp_path / "configure.html").write_text(DOCS_SITE_PAGE, "utf-8")
    [doc] = load(tmp_path / "configure.html")
    assert isinstance(doc, Document)
    # The page's <h1>, not "<h1> - site name", so heading paths do not say it twice.
    assert doc.title == "Configuring the server"
    assert doc.text == (
        "# Configuring the server\n\n"  # no permalink pilcrow
        "Settings come from widget.toml.\n\n"
        "## Ports\n\n"
        '```toml\nlisten = "0.0.0.0:80"\n```\n\n'
        "| Port | Use |\n| --- | --- |\n| 80 | http \\| redirect |\n| 443 | https |\n\n"
        "1. Open the port.\n\n2. Restart."
    )


def test_html_title_without_the_h1_is_kept(tmp_path: Path) -> None:
    page = tmp_path / "post.html"
    page.write_text("<title>Notes | Blog</title><h1>Blog</h1><h2>Notes</h2><p>Text.</p>", "utf-8")
    [doc] = load(page)
    assert isinstance(doc, Document) and doc.title == "Notes | Blog"
