"""Bytes of one file -> a Document: decoding, and one parser per format.

Formats are chosen by file extension (``format_for_name``) or, for URLs, by the
Content-Type header (``format_for_content_type``).  ``parse_document`` raises
``SourceError`` with a reason a user can act on; ``loaders`` turns it into a
``LoadIssue``.  Nothing here touches the file system or the network.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import logging
import re
from pathlib import PurePosixPath
from typing import Any

import yaml
from bs4 import BeautifulSoup, Tag
from bs4.element import NavigableString
from pypdf import PdfReader

from ragloom.errors import SourceError
from ragloom.types import Document, LoadIssue

logger = logging.getLogger(__name__)

FORMAT_BY_SUFFIX: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
_FORMAT_BY_MEDIA_TYPE = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "application/pdf": "pdf",
}
_TEXT_FORMATS = frozenset({"markdown", "text", "html"})


def format_for_name(name: str) -> str | None:
    """The format of a file name by its extension, or None if it is not a document."""
    return FORMAT_BY_SUFFIX.get(PurePosixPath(name).suffix.lower())


def format_for_content_type(media_type: str, name: str) -> str | None:
    """The format of a downloaded page: a specific Content-Type wins, else the URL's extension.

    Servers often send ``text/plain`` or ``application/octet-stream`` for ``.md`` and
    ``.pdf`` files (raw GitHub URLs do), so those fall back to the extension.
    """
    media_type = media_type.lower()
    if media_type in _FORMAT_BY_MEDIA_TYPE:
        return _FORMAT_BY_MEDIA_TYPE[media_type]
    by_name = format_for_name(name)
    if by_name is not None:
        return by_name
    return "text" if media_type == "text/plain" else None


def not_a_document(source: str, name: str, root: str) -> LoadIssue:
    """The skip notice for a file whose extension is not a supported document format."""
    suffix = PurePosixPath(name).suffix.lower()
    reason = f"not a document ({suffix or 'no file extension'}); skipped"
    return LoadIssue(source, reason, skipped=True, root=root)


def parse_or_issue(
    data: bytes, fmt: str, *, source: str, root: str, name: str, charset: str | None = None
) -> Document | LoadIssue:
    """``parse_document``, with failures returned as a LoadIssue instead of raised."""
    try:
        return parse_document(data, fmt, source=source, root=root, name=name, charset=charset)
    except SourceError as exc:
        return LoadIssue(source, exc.reason, root=root)
    except Exception as exc:  # a parser bug on one odd file must not stop an ingest
        logger.debug("unexpected error parsing %s", source, exc_info=True)
        return LoadIssue(
            source,
            f"could not be parsed ({type(exc).__name__}: {exc}); please report this ragloom bug",
            root=root,
        )


def parse_document(
    data: bytes, fmt: str, *, source: str, root: str, name: str, charset: str | None = None
) -> Document:
    """Parse one file's bytes as ``fmt``; raise SourceError naming the reason it is unusable.

    ``name`` is the file name (its stem is the fallback title); ``charset`` is a
    declared encoding (an HTTP header), if any.
    """
    if not data:
        raise SourceError(source, "empty file: nothing to index")
    if fmt == "pdf":
        return _parse_pdf(data, source=source, root=root, name=name)
    if fmt not in _TEXT_FORMATS:
        raise ValueError(f"unknown document format {fmt!r}")
    if charset is None and fmt == "html":
        charset = _html_meta_charset(data)
    text = decode_text(data, source, charset)
    if not text.strip():
        raise SourceError(source, "empty file: nothing to index (only whitespace)")
    stem = PurePosixPath(name).stem or name
    if fmt == "markdown":
        doc = _parse_markdown(text, source=source, root=root, stem=stem)
    elif fmt == "html":
        doc = _parse_html(text, source=source, root=root, stem=stem)
    else:
        doc = Document(source=source, text=text.strip(), format="text", root=root, title=stem)
    if not doc.text.strip():
        raise SourceError(source, f"no text left after parsing the {fmt}: nothing to index")
    return doc


# --- decoding -------------------------------------------------------------------------


def decode_text(data: bytes, source: str, charset: str | None = None) -> str:
    """Decode a text file strictly: a BOM or the declared charset, else UTF-8.

    Undecodable bytes are an error, not replaced: indexing guessed characters would
    put mojibake into search results and citations without anyone noticing, while an
    error naming the byte and its offset lets the user fix the file once (the rest of
    the ingest goes on).  Line endings are normalised to ``\\n``.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        if b"\x00" in data:
            raise SourceError(
                source, "binary content, not text (it contains NUL bytes); is the extension right?"
            )
        encoding = "utf-8-sig"  # also drops a UTF-8 BOM, which outranks a declared charset
        if charset and _known_codec(charset) and not data.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig" if codecs.lookup(charset).name == "utf-8" else charset
            if codecs.lookup(charset).name in ("latin-1", "iso8859-1", "ascii"):
                # As browsers do (WHATWG Encoding): pages labelled Latin-1 or ASCII are
                # really Windows-1252, whose 0x80-0x9F are curly quotes, dashes, the euro.
                encoding = "cp1252"
    try:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            if encoding != "cp1252":
                raise
            text = data.decode("latin-1")  # the five bytes cp1252 leaves undefined
    except UnicodeDecodeError as exc:
        label = "UTF-8" if encoding == "utf-8-sig" else encoding
        bad = data[exc.start : exc.start + 1].hex()
        raise SourceError(
            source,
            f"not valid {label} (byte 0x{bad} at offset {exc.start}); re-save it as UTF-8",
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _known_codec(charset: str) -> bool:
    try:
        codecs.lookup(charset)
    except LookupError:
        return False
    return True


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def _html_meta_charset(data: bytes) -> str | None:
    """The charset an HTML file declares in a <meta> tag near its top, if any."""
    found = _META_CHARSET.search(data[:4096])
    return found.group(1).decode("ascii") if found else None


# --- markdown -------------------------------------------------------------------------


def _parse_markdown(text: str, *, source: str, root: str, stem: str) -> Document:
    """Markdown: YAML front matter becomes metadata; title from it, a '# ' heading or stem."""
    metadata, body = split_front_matter(text, source)
    title = metadata.get("title")
    if not isinstance(title, str) or not title.strip():
        title = _first_h1(body) or stem
    return Document(
        source=source,
        text=body.strip(),
        format="markdown",
        root=root,
        title=title.strip(),
        metadata=metadata,
        raw=text if body.strip() != text else "",
    )


def split_front_matter(text: str, source: str = "<text>") -> tuple[dict[str, Any], str]:
    """Split a leading ``---`` YAML block (closed by ``---`` or ``...``) from the body.

    A block that parses to something other than a mapping is not front matter (a
    document may open with a ``---`` rule), and the text is returned unchanged.
    Invalid YAML is an error: silently indexing it as prose would lose the metadata.
    """
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return {}, text
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if end is None:
        return {}, text
    try:
        parsed = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SourceError(
            source, f"invalid YAML front matter{where}: {problem}; fix it or remove the --- block"
        ) from None
    if parsed is None:
        parsed = {}
    if not isinstance(parsed, dict):
        return {}, text
    return _json_safe(parsed), "\n".join(lines[end + 1 :])


def _json_safe(value: Any) -> Any:
    """YAML values as JSON-compatible ones (dates as ISO strings) so stores can keep them."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_json_safe(v) for v in items]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_H1 = re.compile(r"^\s{0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")


def _first_h1(body: str) -> str:
    """The text of the first ATX '# ' heading outside fenced code, or ''."""
    in_fence = False
    for line in body.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (found := _H1.match(line)):
            return found.group(1).strip()
    return ""


# --- HTML -----------------------------------------------------------------------------

_DROP_TAGS = [
    "script", "style", "noscript", "template", "svg", "iframe", "nav", "aside", "form", "button",
]  # fmt: skip
# Page chrome marked by ARIA role, or by an id/class word that themes use for it.
_CHROME_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search"})
_CHROME_NAMES = re.compile(
    r"(?:site-?|page-?|global-?)?(?:nav|navbar|menu|sidebar|breadcrumbs?|toc|comments|related"
    r"|share|social|pager|pagination|prev-?next)|.*(?:cookie|consent|gdpr).*",
    re.I,
)
_HEADER_NAMES = re.compile(r"(?:site-?|page-?|global-?)?(?:header|footer)", re.I)
_BLOCK_TAGS = [
    "p", "div", "section", "article", "main", "blockquote", "ul", "ol", "dl", "dt", "dd",
    "table", "figure", "figcaption", "header", "footer", "address", "details", "summary",
    "hr", "fieldset", "caption", "body",
]  # fmt: skip
# Private-use characters mark structure while whitespace is collapsed.
_PARA, _LINE, _PRE_OPEN, _PRE_CLOSE = "\ue000", "\ue001", "\ue002", "\ue003"
_MARKERS = re.compile("[\ue000-\ue003]")


def _parse_html(html: str, *, source: str, root: str, stem: str) -> Document:
    """HTML: the main content as text, headings kept as markdown '#' lines for the chunker.

    Content is the first of <main>, role=main, <article>, <body>; scripts, styles,
    navigation, asides, forms and page-level header/footer are dropped.  The format
    stays "html" (the source's format) although headings are markdown-style.
    """
    soup = BeautifulSoup(_MARKERS.sub("", html), "html.parser")
    title = _clean(soup.title.get_text()) if soup.title else ""
    for tag in soup.find_all(_DROP_TAGS):
        tag.extract()
    for anchor in soup.select('a[href^="#"]'):  # permalinks: "¶", "#", "🔗" after a heading
        if not any(c.isalnum() for c in anchor.get_text()):
            anchor.extract()
    for tag in soup.find_all(_is_chrome):
        if not tag.decomposed and not tag.find(["main", "article"]):
            tag.decompose()
    container = _main_container(soup)
    h1 = container.find("h1") or soup.find("h1")
    h1_text = _clean(h1.get_text()) if isinstance(h1, Tag) else ""
    # "Page — Site name": the page's own <h1> without the site's name.
    if h1_text and (not title or title.casefold().startswith(h1_text.casefold())):
        title = h1_text
    code_blocks: list[str] = []
    for pre in container.find_all("pre"):
        code_blocks.append(f"```{_code_language(pre)}\n" + pre.get_text().strip("\n") + "\n```")
        marker = f"{_PARA}{_PRE_OPEN}{len(code_blocks) - 1}{_PRE_CLOSE}{_PARA}"
        pre.replace_with(NavigableString(marker))
    for table in container.find_all("table"):
        if not table.find("table"):
            rows = _markdown_table(table)
            if rows:
                code_blocks.append(rows)
                marker = f"{_PARA}{_PRE_OPEN}{len(code_blocks) - 1}{_PRE_CLOSE}{_PARA}"
                table.replace_with(NavigableString(marker))
    for heading in container.find_all(re.compile(r"^h[1-6]$")):
        text = _clean(heading.get_text())
        level = int(heading.name[1])
        heading.replace_with(NavigableString(f"{_PARA}{'#' * level} {text}{_PARA}" if text else ""))
    for br in container.find_all("br"):
        br.replace_with(NavigableString(_LINE))
    for li in container.find_all("li"):
        parent = li.find_parent(["ol", "ul"])
        if isinstance(parent, Tag) and parent.name == "ol":
            number = 1 + len(li.find_previous_siblings("li"))
            li.insert_before(NavigableString(f"{_LINE}{number}. "))
        else:
            li.insert_before(NavigableString(f"{_LINE}- "))
    for cell in container.find_all(["td", "th"]):
        if cell.find_previous_sibling(["td", "th"]) is not None:
            cell.insert_before(NavigableString(" | "))
    for block in container.find_all([*_BLOCK_TAGS, "tr"]):
        mark = _LINE if block.name == "tr" else _PARA
        block.insert_before(NavigableString(mark))
        block.insert_after(NavigableString(mark))
    text = re.sub(r"\s+", " ", container.get_text())
    text = text.replace(_PARA, "\n\n").replace(_LINE, "\n")
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"^(-|\d+\.) *\n+", r"\1 ", text, flags=re.M)  # <li><p>: keep the text
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    text = re.sub(f"{_PRE_OPEN}(\\d+){_PRE_CLOSE}", lambda m: code_blocks[int(m.group(1))], text)
    return Document(
        source=source, text=text, format="html", root=root, title=title or stem, metadata={}
    )


def _is_chrome(tag: Tag) -> bool:
    """Whether ``tag`` is page chrome: site header or footer, navigation, cookie banner..."""
    if tag.name in ("html", "body", "main", "article"):
        return False
    role = str(tag.get("role") or "").strip().lower()
    classes = tag.get("class")
    listed = classes if isinstance(classes, list) else [classes]
    names = [str(name) for name in [tag.get("id"), *listed] if name]
    if (
        tag.name in ("header", "footer")
        or role in ("banner", "contentinfo")
        or any(_HEADER_NAMES.fullmatch(name) for name in names)
    ):
        # An article's own header or footer (its title, author, date) is content.
        return tag.find_parent(["article", "main", "section"]) is None
    return role in _CHROME_ROLES or any(_CHROME_NAMES.fullmatch(name) for name in names)


def _code_language(pre: Tag) -> str:
    """The language a code block declares (``language-toml``, ``highlight-python``), or ''."""
    for tag in (pre, pre.find("code"), pre.parent, pre.parent.parent if pre.parent else None):
        classes = tag.get("class") if isinstance(tag, Tag) else None
        for name in classes or []:
            found = re.fullmatch(r"(?:language|lang|highlight)-([\w+#.-]+)", str(name))
            if found and found.group(1) not in ("default", "text", "none", "plaintext"):
                return found.group(1)
    return ""


def _markdown_table(table: Tag) -> str:
    """A table as markdown rows, first row as header, so the chunker keeps it whole."""
    rows = []
    for tr in table.find_all("tr"):
        cells = [_clean(c.get_text()).replace("|", "\\|") for c in tr.find_all(["th", "td"])]
        if any(cells):
            rows.append(cells)
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    lines = ["| " + " | ".join(r + [""] * (width - len(r))) + " |" for r in rows]
    return "\n".join([lines[0], "| " + " | ".join(["---"] * width) + " |", *lines[1:]])


def _main_container(soup: BeautifulSoup) -> Tag:
    """The element holding the page's main content."""
    for found in (soup.find("main"), soup.select_one('[role="main"]'), soup.find("article")):
        if isinstance(found, Tag) and found.get_text().strip():
            return found
    body = soup.find("body")
    return body if isinstance(body, Tag) else soup


def _clean(text: str) -> str:
    """Collapse runs of whitespace to single spaces."""
    return " ".join(text.split())


# --- PDF ------------------------------------------------------------------------------


def _parse_pdf(data: bytes, *, source: str, root: str, name: str) -> Document:
    """PDF via pypdf: one text per page; title from the PDF's metadata or the file stem."""
    with _PdfWarnings() as warnings:
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                reason = "encrypted PDF: it needs a password; save a decrypted copy"
                raise SourceError(source, reason)
            pages = _join_hyphenated(
                _drop_running_lines(
                    [_clean_page(page.extract_text() or "") for page in reader.pages]
                )
            )
            pages = tuple(_join_wrapped_lines(page) for page in pages)
            info = reader.metadata
            title = _clean(str(info.title)) if info is not None and info.title else ""
        except SourceError:
            raise
        except Exception as exc:  # pypdf raises many exception types on damaged files
            detail = str(exc) or type(exc).__name__
            if warnings.messages:
                detail += f" ({warnings.messages[0]})"
            raise SourceError(source, f"not a readable PDF: {detail}") from None
    if not any(page.strip() for page in pages):
        raise SourceError(
            source, "no text layer (scanned?): run OCR on it first, e.g. with ocrmypdf"
        )
    return Document(
        source=source,
        text="\n\n".join(pages),
        format="pdf",
        root=root,
        title=title or PurePosixPath(name).stem or name,
        pages=pages,
    )


class _PdfWarnings(logging.Handler):
    """Collects pypdf's log warnings while one PDF is parsed, instead of printing them.

    pypdf logs "EOF marker not found" and the like for damaged files; they belong in
    the LoadIssue's reason, not on the user's terminal.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._logger = logging.getLogger("pypdf")
        self._propagate = self._logger.propagate

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> _PdfWarnings:
        self._logger.addHandler(self)
        self._logger.propagate = False
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate


# A line the page's layout wrapped: the next goes on in lower case, or this one ends on a
# comma.  (Line breaks before a capital stay: a new sentence, heading or list item may
# start there, and the chunker cuts at sentences either way.)
_WRAPPED = re.compile(r"(?<=[^\s.!?:;])\n(?=[a-z(])|(?<=,)\n(?=\S)")


def _join_wrapped_lines(page: str) -> str:
    """A page's text with the lines its layout wrapped joined again into sentences, so
    that chunks, and their overlaps, begin and end at sentences rather than mid-line."""
    return _WRAPPED.sub(" ", page)


def _clean_page(text: str) -> str:
    """Normalise a page's line endings and trailing spaces; drop soft hyphens."""
    text = re.sub("\u00ad\\s*\n?", "", text)  # a soft hyphen only shows at a line break
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


_RUNNING_LINES = 3  # how far from the top or bottom of a page a running header may be


def _drop_running_lines(pages: list[str]) -> list[str]:
    """Pages without their running headers and footers ("Report 2023", "Page 3 of 9").

    A line among the first (or last) few of a page is one when it recurs, digits aside,
    among the first (or last) few of at least half the pages, and two: it would otherwise
    open or close a chunk of every page, and match every search for its words.  A short
    page is looked at only a line or two deep, so its own text is never taken for one.
    """
    if len(pages) < 2:
        return pages

    def edges(lines: list[str]) -> dict[int, tuple[str, str]]:
        depth = min(_RUNNING_LINES, len(lines) // 4 or 1)
        top = {i: ("top", lines[i]) for i in range(min(depth, len(lines)))}
        bottom = {i: ("bottom", lines[i]) for i in range(max(0, len(lines) - depth), len(lines))}
        return {
            i: (end, re.sub(r"\d+", "#", " ".join(line.split()).casefold()))
            for i, (end, line) in {**top, **bottom}.items()
        }

    split = [page.split("\n") for page in pages]
    seen: dict[tuple[str, str], int] = {}
    for lines in split:
        for key in set(edges(lines).values()):
            if any(c.isalnum() or c == "#" for c in key[1]):  # a page number is "#"
                seen[key] = seen.get(key, 0) + 1
    running = {key for key, n in seen.items() if n >= max(2, (len(pages) + 1) // 2)}
    if not running:
        return pages
    out = []
    for lines in split:
        at_edge = edges(lines)
        kept = [ln for i, ln in enumerate(lines) if at_edge.get(i) not in running]
        out.append("\n".join(kept).strip())
    return out


_HYPHENATED = re.compile(r"(\w*[^\W\d_])-\n([^\W\d_]\w*)")


def _join_hyphenated(pages: list[str]) -> tuple[str, ...]:
    """Words hyphenated across a line break joined again ("inter-\\nnational"), and the lines.

    The hyphen goes unless the document writes that word with a hyphen elsewhere and
    never without ("self-\\nhealing" when "self-healing" occurs), or the next part is
    capitalised ("Anglo-\\nSaxon").
    """
    words = set(re.findall(r"\w+(?:-\w+)*", " ".join(pages).casefold()))

    def join(m: re.Match[str]) -> str:
        head, tail = m.group(1), m.group(2)
        joined = (head + tail).casefold()
        hyphenated = f"{head}-{tail}".casefold()
        if tail[0].isupper() or (hyphenated in words and joined not in words):
            return f"{head}-{tail}"
        return f"{head}{tail}"

    return tuple(_HYPHENATED.sub(join, page) for page in pages)
