"""HTML text -> a Document: the page's main content, without its chrome, as markdown-ish text.

Headings become markdown ``#`` lines, code blocks and tables become fenced code and
markdown rows, so the markdown chunker can cut an HTML page the way it cuts a ``.md``
file.  ``meta_charset`` reads the encoding a page declares, for decoding it first.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Tag
from bs4.element import NavigableString

from ragloom.formats.text import collapse_whitespace
from ragloom.types import Document

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def meta_charset(data: bytes) -> str | None:
    """The charset an HTML file declares in a <meta> tag near its top, if any."""
    found = _META_CHARSET.search(data[:4096])
    return found.group(1).decode("ascii") if found else None


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


def parse_html(html: str, *, source: str, root: str, stem: str) -> Document:
    """HTML: the main content as text, headings kept as markdown '#' lines for the chunker.

    Content is the first of <main>, role=main, <article>, <body>; scripts, styles,
    navigation, asides, forms and page-level header/footer are dropped.  The format
    stays "html" (the source's format) although headings are markdown-style.
    """
    soup = BeautifulSoup(_MARKERS.sub("", html), "html.parser")
    title = collapse_whitespace(soup.title.get_text()) if soup.title else ""
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
    h1_text = collapse_whitespace(h1.get_text()) if isinstance(h1, Tag) else ""
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
        text = collapse_whitespace(heading.get_text())
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
        cells = [
            collapse_whitespace(c.get_text()).replace("|", "\\|") for c in tr.find_all(["th", "td"])
        ]
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
