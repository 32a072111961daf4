"""Helpers the loader tests share: ``load`` and its sorters, a PDF writer, sample files.

The ``corpus`` fixture in conftest builds a folder of every format from these.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from ragloom.loaders import LoadLimits, load_sources
from ragloom.types import Document, LoadIssue


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A minimal valid PDF: Helvetica text lines ("\\n"-separated) per page, correct xrefs."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        lines = " T* ".join(f"({line}) Tj" for line in text.split("\n"))
        content = f"BT /F1 12 Tf 14 TL 72 720 Td {lines} ET".encode() if text else b""
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    info = ""
    if title:
        objects.append(f"<< /Title ({title}) >>".encode())
        info = f" /Info {len(objects)} 0 R"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def load(*sources: str | Path, glob: str | None = None, **limits: Any) -> list[Any]:
    return list(load_sources([str(s) for s in sources], glob=glob, limits=LoadLimits(**limits)))


def docs(items: list[Any]) -> dict[str, Document]:
    return {item.source: item for item in items if isinstance(item, Document)}


def issues(items: list[Any]) -> dict[str, LoadIssue]:
    return {item.source: item for item in items if isinstance(item, LoadIssue)}


def only_issue(items: list[Any]) -> LoadIssue:
    assert len(items) == 1, items
    assert isinstance(items[0], LoadIssue), items[0]
    return items[0]


FRONT_MATTER_MD = b"""---
title: Installing Milvus
tags: [install, docker]
date: 2024-05-01
---

# Install with Docker

Run the container.
"""

HTML_PAGE = b"""<!doctype html>
<html><head><title>Milvus Page</title><style>.x { color: red }</style>
<script>var secret = "script text";</script></head>
<body>
<header><a href="/">Site header link</a></header>
<nav><ul><li>Nav item</li></ul></nav>
<main>
  <h1>Vector search</h1>
  <p>Milvus stores <b>vectors</b> and
     searches them.</p>
  <h2>Indexes</h2>
  <ul><li>HNSW</li><li>IVF_FLAT</li></ul>
  <pre>pip install pymilvus
print("hi")</pre>
</main>
<aside>Related posts aside</aside>
<footer>Copyright footer</footer>
</body></html>
"""


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive in memory; member names are written exactly as given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buffer.getvalue()
