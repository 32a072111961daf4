"""The CLI end to end on Milvus Lite with the bundled model: ingest, search, status."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.cli_helpers import ragloom
from tests.conftest import DOCS_ZIP, FAQ_DIR

needs_corpus = pytest.mark.skipif(not FAQ_DIR.is_dir(), reason="../shared/corpus not present")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.db")


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a folder."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


@needs_corpus
def test_tutorial_reproduced_with_seed_splitter(db: str) -> None:
    run = ragloom("ingest", str(FAQ_DIR), "--splitter", "seed", "--rebuild", "--uri", db, "--json")
    assert run.code == 0, run.stderr
    assert run.json()["errors"] == []
    status = ragloom("status", "--json", "--uri", db).json()
    assert status["chunks"] == 72
    assert status["documents"] == 4
    assert status["embedder"] == "local:all-MiniLM-L6-v2" and status["dim"] == 384
    hits = ragloom("search", "How is data stored in milvus?", "-k", "3", "--json", "--uri", db)
    payload = hits.json()
    assert payload["query"] == "How is data stored in milvus?"
    assert len(payload["hits"]) == 3
    first = payload["hits"][0]
    assert first["text"].startswith(" Where does Milvus store data?")  # the tutorial's piece
    assert first["rank"] == 1 and first["source"].endswith("product_faq.md")
    assert set(first) == {
        "rank", "score", "text", "source", "heading", "chunk_id", "position", "dense_score",
        "metadata",
    }  # fmt: skip
    assert first["position"] >= 0 and 0 < first["dense_score"] <= 1


@needs_corpus
def test_zip_with_glob_takes_only_matching_members(db: str) -> None:
    run = ragloom("ingest", str(DOCS_ZIP), "--glob", "en/faq/*.md", "--uri", db, "--json")
    assert run.code == 0, run.stderr
    summary = run.json()
    assert summary["files"] == 4 and summary["errors"] == []
    assert summary["chunks"] == summary["embedded"] > 4
    sources = {d["source"] for d in ragloom("sources", "--json", "--uri", db).json()}
    assert sources == {
        f"{DOCS_ZIP.resolve()}::en/faq/{n}.md"
        for n in ("operational_faq", "performance_faq", "product_faq", "troubleshooting")
    }
    hits = ragloom("search", "Where does Milvus store data?", "--json", "--uri", db).json()["hits"]
    assert "Where does Milvus store data?" in hits[0]["text"]
    assert hits[0]["heading"].startswith("Product FAQ")


def test_directory_url_and_formats(db: str, tmp_path: Path, http_root: tuple[str, Path]) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "guide.md").write_text(
        "---\ntitle: Loom guide\ntags: [weaving]\n---\n# Loom guide\n\n## Warping\n\n"
        + "Warping the loom means winding the long threads onto the back beam. " * 8
        + "\n\n## Finishing\n\n"
        + "Finishing means washing and pressing the cloth after it leaves the loom. " * 8
    )
    (docs / "sub" / "notes.txt").write_text("Heddles lift the warp threads to open a shed.\n")
    (docs / "page.html").write_text(
        "<html><head><title>Shuttles</title></head><body><nav>menu</nav><main>"
        "<h1>Shuttles</h1><p>A boat shuttle carries the weft across the shed.</p></main>"
        "</body></html>"
    )
    base, www = http_root
    (www / "remote.md").write_text("# Remote\n\nThe reed beats each weft thread into place.\n")
    run = ragloom("ingest", str(docs), f"{base}/remote.md", "--uri", db, "--json")
    assert run.code == 0, run.stderr
    assert run.json()["files"] == 4
    cases = {
        "How are the long threads wound on the back beam?": "guide.md",
        "What lifts the warp threads?": "notes.txt",
        "What carries the weft across?": "page.html",
        "What does the reed do?": "remote.md",
    }
    for question, expected in cases.items():
        hits = ragloom("search", question, "-k", "1", "--json", "--uri", db).json()["hits"]
        assert hits[0]["source"].endswith(expected), (question, hits[0])
    question = "winding long threads onto the back beam"
    warp = ragloom("search", question, "-k", "1", "--json", "--uri", db).json()["hits"][0]
    # Warping, joined with the next section when that matched too (both are headed).
    assert warp["heading"] in ("Loom guide > Warping", "Loom guide > Warping – Finishing")
    assert "tags" not in warp["text"] and "---" not in warp["text"]


def _pdf_bytes(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of text a page (Helvetica)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>"
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{n} 0 obj\n{body}\nendobj\n".encode())
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def test_pdf_pages_are_cited(db: str, tmp_path: Path) -> None:
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(
        _pdf_bytes(
            [
                "The treadles are pressed with the feet.",
                "The breast beam sits at the front of the loom.",
            ]
        )
    )
    run = ragloom("ingest", str(pdf), "--uri", db, "--json")
    assert run.code == 0, run.stderr
    hit = ragloom("search", "Where is the breast beam?", "-k", "1", "--json", "--uri", db)
    first = hit.json()["hits"][0]
    assert "breast beam" in first["text"]
    # Both pages matched and come back as one passage, headed by both (page 2 is where the
    # answer is; the passage begins on page 1).
    assert first["heading"].endswith("page 1 – page 2") or first["heading"].endswith("page 2")


def test_bad_inputs_are_named_and_good_files_still_ingested(
    db: str, tmp_path: Path, http_root: tuple[str, Path]
) -> None:
    docs = tmp_path / "mixed"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\n\nThe loom weaves cloth from warp and weft.\n")
    (docs / "empty.md").write_text("")
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02\xff" * 64)
    (docs / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    with zipfile.ZipFile(docs / "slip.zip", "w") as zf:
        zf.writestr("../../escaped.md", "# Escaped\n\nshould never be written\n")
        zf.writestr("inside.md", "# Inside\n\nThe shuttle flies through the shed.\n")
    with zipfile.ZipFile(docs / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("huge.md", b"# Huge\n" + b"a" * (80 * 1024 * 1024))
    base, _ = http_root
    missing = str(tmp_path / "nowhere")
    run = ragloom("ingest", str(docs), f"{base}/absent.md", missing, "--uri", db, "--json")
    assert run.code == 1
    summary = run.json()
    reasons = {Path(e["source"].split("::")[-1]).name: e["error"] for e in summary["errors"]}
    assert "empty" in reasons["empty.md"]
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "PDF" in reasons["corrupt.pdf"]
    assert any("escaped.md" in s for s in reasons) or any(
        ".." in e["source"] for e in summary["errors"]
    )
    assert any("huge" in s or "bomb" in s for s in reasons)
    assert "404" in reasons["absent.md"]
    assert "nowhere" in reasons and "no such" in reasons["nowhere"].lower()
    assert not (tmp_path / "escaped.md").exists() and not (tmp_path.parent / "escaped.md").exists()
    for question, name in [
        ("What does the loom weave?", "good.md"),
        ("What flies through the shed?", "inside.md"),
    ]:
        hits = ragloom("search", question, "-k", "1", "--json", "--uri", db).json()["hits"]
        assert hits[0]["source"].endswith(name)


def test_usage_errors_exit_2_and_failures_exit_1(db: str, tmp_path: Path) -> None:
    assert ragloom("search").code == 2
    for question in ("", "   "):  # as `ragloom ask ""` (search exited 1)
        empty = ragloom("search", question, "--uri", db)
        assert empty.code == 2 and "the question is empty: ask something" in empty.stderr
    # a search run from another folder, or with a mistyped --collection, says where it looked
    nothing = ragloom("search", "looms", "--collection", "handbok", "--uri", db)
    assert nothing.code == 0
    assert f"no passages found in the collection 'handbok' at {db}: ingest" in nothing.stdout
    # reading a database that does not exist does not create it
    missing = str(tmp_path / "typo.db")
    for command in (["search", "looms"], ["status", "--json"], ["sources"]):
        assert ragloom(*command, "--uri", missing).code == 0
    assert ragloom("status", "--json", "--uri", missing).json()["exists"] is False
    assert not Path(missing).exists()
    plain = tmp_path / "notes.db"  # a file, not the folder Milvus Lite keeps
    plain.write_text("not a database")
    run = ragloom("status", "--uri", str(plain))
    assert run.code == 1 and "is a file, not a Milvus Lite database" in run.stderr
    assert plain.read_text() == "not a database"
    assert ragloom("ingest", "x", "--splitter", "bogus", "--uri", db).code == 2
    bad = ragloom("status", "--uri", str(tmp_path / "no-such-dir" / "x.db"))
    assert bad.code == 1 and "does not exist" in bad.stderr
    wrong = ragloom("ingest", str(tmp_path), "--embedder", "nonsense", "--uri", db)
    assert wrong.code == 1 and "unknown embedder" in wrong.stderr


def test_other_embedder_is_refused_with_rebuild_hint(db: str, tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# A\n\nSome text about looms.\n")
    assert ragloom("ingest", str(doc), "--uri", db).code == 0
    run = ragloom("ingest", str(doc), "--uri", db, "--splitter", "seed")
    assert run.code == 1 and "--rebuild" in run.stderr
    assert "Traceback" not in run.stderr


def test_search_json_metadata_is_an_object(db: str, tmp_path: Path) -> None:
    # Milvus Lite gives the JSON field back as text: --json printed "metadata" as a string,
    # and an answer forwarded by `ragloom serve` could not be read back (Hit.from_dict).
    from ragloom.types import Hit

    page = tmp_path / "page.md"
    page.write_text("---\ntitle: Loom guide\n---\n# Loom guide\n\nWarping winds the threads.\n")
    assert ragloom("ingest", str(page), "--uri", db).code == 0
    hit = ragloom("search", "warping threads", "--json", "--uri", db).json()["hits"][0]
    assert hit["metadata"] == {"title": "Loom guide"}
    assert Hit.from_dict({**hit, "metadata": '{"title": "Loom guide"}'}).metadata == {
        "title": "Loom guide"
    }
