"""Incremental, crash-safe ingestion on Milvus Lite."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from ragloom import RAG
from ragloom.store import MilvusStore, StoredChunks
from ragloom.testing import FakeEmbedder
from tests.conftest import DOCS_ZIP
from tests.sync_contract import MakeRag, SyncContract, extract

pytestmark = pytest.mark.skipif(not DOCS_ZIP.is_file(), reason="../shared/corpus not present")


class TestSyncOnMilvusLite(SyncContract):
    @pytest.fixture
    def target(self, tmp_path: Path) -> tuple[str, str]:
        return str(tmp_path / "sync.db"), "sync"

    @pytest.fixture
    def make_rag(self, target: tuple[str, str], tmp_path: Path) -> MakeRag:
        uri, collection = target

        def make(**settings: Any) -> RAG:
            embedder = FakeEmbedder(dim=32, max_tokens=256)
            settings.setdefault("cache_dir", str(tmp_path / "cache"))
            return RAG(uri=uri, collection=collection, embedder=embedder, **settings)

        return make


class LookupCountingStore(MilvusStore):
    """A real store that counts the per-batch lookups of what is stored."""

    lookups = 0

    def chunk_ids_by_source(self, sources: Any) -> dict[str, StoredChunks]:
        self.lookups += 1
        return super().chunk_ids_by_source(sources)


def test_a_first_ingest_asks_an_empty_collection_nothing(tmp_path: Path) -> None:
    # On Milvus Lite each lookup scans the collection: a first ingest must not pay for them.
    docs = extract(tmp_path / "docs", limit=40)
    embedder = FakeEmbedder(dim=32, max_tokens=256)
    with RAG(uri=str(tmp_path / "first.db"), embedder=embedder, cache_dir="") as rag:
        rag.store = store = LookupCountingStore(str(tmp_path / "first.db"), "ragloom")
        first = rag.ingest([str(docs)])
        assert (first.added, first.removed, store.lookups) == (40, 0, 0)
        assert store.count() == first.chunks == first.written
        next(docs.rglob("*.md")).unlink()
        again = rag.ingest([str(docs)])
    assert (again.unchanged, again.added, again.removed) == (39, 0, 1)
    assert store.lookups > 0 and again.written == 0


def _bm25_scores(rag: RAG, query: str) -> dict[tuple[str, int], float]:
    return {(h.source, h.position): h.score for h in rag.search(query, 10, mode="bm25")}


def test_an_edited_document_is_scored_as_in_a_fresh_ingest(tmp_path: Path) -> None:
    # Milvus Lite scores BM25 per segment: re-ingesting one edited page wrote it into a
    # segment of its own, where its words looked common and its scores fell.
    docs = extract(tmp_path / "docs", limit=30)
    page = sorted(docs.rglob("*.md"))[0]

    def make(name: str) -> RAG:
        embedder = FakeEmbedder(dim=32, max_tokens=256)
        return RAG(uri=str(tmp_path / name), embedder=embedder, cache_dir="")

    with make("edited.db") as rag:
        rag.ingest([str(docs)])
        page.write_text(page.read_text() + "\n\nZebrafish telemetry appendix.\n")
        assert rag.ingest([str(docs)]).changed == 1
        edited = _bm25_scores(rag, "zebrafish telemetry")
        other = _bm25_scores(rag, "index")
    with make("fresh.db") as rag:
        rag.ingest([str(docs)])
        assert _bm25_scores(rag, "zebrafish telemetry") == pytest.approx(edited)
        assert _bm25_scores(rag, "index") == pytest.approx(other)
    assert edited and all(source.endswith(page.name) for source, _ in edited)


def test_segments_too_large_to_merge_are_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from ragloom import lite

    monkeypatch.setattr(lite, "MERGE_MAX_ROWS", 10)
    docs = extract(tmp_path / "docs", limit=10)
    page = sorted(docs.rglob("*.md"))[0]
    embedder = FakeEmbedder(dim=32, max_tokens=256)
    with RAG(uri=str(tmp_path / "big.db"), embedder=embedder, cache_dir="") as rag:
        rag.ingest([str(docs)])
        assert "segments" not in caplog.text  # one segment: nothing to say
        page.write_text(page.read_text() + "\n\nZebrafish telemetry appendix.\n")
        rag.ingest([str(docs)])
        assert "big.db holds" in caplog.text and "ragloom ingest --rebuild" in caplog.text
        split = _bm25_scores(rag, "zebrafish telemetry")
        rag.ingest([str(docs)], rebuild=True)
        rebuilt = _bm25_scores(rag, "zebrafish telemetry")
    with RAG(uri=str(tmp_path / "fresh.db"), embedder=embedder, cache_dir="") as rag:
        rag.ingest([str(docs)])
        assert _bm25_scores(rag, "zebrafish telemetry") == pytest.approx(rebuilt)
    assert split != pytest.approx(rebuilt)


def test_a_document_named_twice_is_ingested_once_under_its_folder(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha.\n")
    (docs / "b.md").write_text("# B\n\nBeta.\n")
    with RAG(uri=str(tmp_path / "t.db"), embedder=FakeEmbedder(), cache_dir="") as rag:
        report = rag.ingest([str(docs), str(docs / "a.md"), str(docs / "a.md")])
        assert (report.files, report.added) == (2, 2)
        (docs / "a.md").unlink()
        again = rag.ingest([str(docs)])  # a.md went from the folder it was found in
        assert again.removed == 1
        assert [d.source for d in rag.sources()] == [str(docs / "b.md")]


def test_a_sub_folder_ingest_prunes_what_left_it(tmp_path: Path) -> None:
    # Documents first ingested from the parent folder are inside the sub-folder too.
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    for path in (docs / "top.md", docs / "sub" / "a.md", docs / "sub" / "b.md"):
        path.write_text(f"# {path.stem}\n\nText of {path.stem} about vectors.\n")
    embedder = FakeEmbedder(dim=32, max_tokens=256)
    with RAG(uri=str(tmp_path / "sub.db"), embedder=embedder, cache_dir="") as rag:
        assert rag.ingest([str(docs)]).added == 3
        assert rag.ingest([str(docs / "sub")]).unchanged == 2
        (docs / "sub" / "a.md").unlink()
        report = rag.ingest([str(docs / "sub")])
        assert report.removed == 1 and report.plan["removed"] == [str(docs / "sub" / "a.md")]
        assert sorted(d.source for d in rag.sources()) == [
            str(docs / "sub" / "b.md"), str(docs / "top.md")
        ]  # fmt: skip


def test_an_archive_in_a_folder_that_cannot_be_read_keeps_its_documents(tmp_path: Path) -> None:
    # A zip half copied into the folder deleted every document ingested from it, though
    # the same zip named directly removes nothing.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "top.md").write_text("# Top\n\nTop text.\n")
    (docs / "old.md").write_text("# Old\n\nOld text.\n")
    archive = docs / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.md", "# A\n\nAlpha about replicas.\n")
        zf.writestr("b.md", "# B\n\nBeta about shards.\n")
    with RAG(uri=str(tmp_path / "t.db"), embedder=FakeEmbedder(), cache_dir="") as rag:
        assert rag.ingest([str(docs)]).added == 4
        archive.write_bytes(archive.read_bytes()[:100])
        (docs / "old.md").unlink()
        report = rag.ingest([str(docs)])
        assert [e["source"] for e in report.errors] == [str(archive)]
        assert report.plan["removed"] == [str(docs / "old.md")]  # the rest is still pruned
        assert sorted(d.source for d in rag.sources()) == [
            f"{archive}::a.md", f"{archive}::b.md", str(docs / "top.md")
        ]  # fmt: skip


def test_a_document_that_breaks_the_chunker_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One such document (a non-UTF-8 file name did it) ended the whole ingest with a traceback.
    import ragloom.sync

    real = ragloom.sync.chunk_document

    def chunk(doc: Any, *args: Any) -> Any:
        if doc.source.endswith("odd.md"):
            raise ValueError("surrogates not allowed")
        return real(doc, *args)

    monkeypatch.setattr(ragloom.sync, "chunk_document", chunk)
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a.md", "odd.md", "z.md"):
        (docs / name).write_text(f"# {name}\n\nText of {name}.\n")
    with RAG(uri=str(tmp_path / "t.db"), embedder=FakeEmbedder(), cache_dir="") as rag:
        report = rag.ingest([str(docs)])
        assert report.added == 2 and [e["source"] for e in report.errors] == [str(docs / "odd.md")]
        assert report.errors[0]["error"] == (
            "could not be chunked (ValueError: surrogates not allowed); please report this"
            " ragloom bug"
        )
        assert sorted(d.source for d in rag.sources()) == [str(docs / "a.md"), str(docs / "z.md")]


def test_front_matter_milvus_cannot_hold_does_not_stop_the_folder(tmp_path: Path) -> None:
    # QA: a 30-digit number in one file's front matter made Milvus refuse the whole batch
    # ("Integer exceeds 64-bit range"), naming no file: nothing of the folder was stored,
    # on every run.  Such values are kept as text.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.md").write_text(
        "---\nbig: 123456789012345678901234567890\nodd: .inf\ntitle: 1984\n---\n\nThe ibis.\n"
    )
    (docs / "ok.md").write_text("# Ok\n\nThe kestrel.\n")
    with RAG(uri=str(tmp_path / "t.db"), embedder=FakeEmbedder(), cache_dir="") as rag:
        report = rag.ingest([str(docs)])
        assert (report.added, report.errors) == (2, []), report
        [hit] = rag.search("ibis", 1, sources=["big.md"])
    assert hit.metadata == {"big": "123456789012345678901234567890", "odd": "inf", "title": 1984}
    assert hit.heading.startswith("1984")  # a number is a title too


def test_a_hidden_file_named_on_purpose_stays_when_its_folder_is_ingested(
    tmp_path: Path,
) -> None:
    # QA: `ingest docs/.notes.md` added it; `ingest docs` then removed it as gone from
    # the folder, though the folder's walk skips hidden files on purpose.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAlpha.\n")
    (docs / ".notes.md").write_text("# Notes\n\nThe puma.\n")
    with RAG(uri=str(tmp_path / "t.db"), embedder=FakeEmbedder(), cache_dir="") as rag:
        assert rag.ingest([str(docs)]).added == 1
        assert rag.ingest([str(docs / ".notes.md")]).added == 1
        again = rag.ingest([str(docs)])
        assert (again.removed, again.unchanged) == (0, 1), again
        assert sorted(d.source for d in rag.sources()) == [
            str(docs / ".notes.md"), str(docs / "a.md")
        ]  # fmt: skip


def test_a_document_milvus_refuses_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Milvus refusing one document's rows (here front matter it cannot store, let through
    # by switching off the loader's clean-up) ended the whole run, naming no file, with
    # nothing of the batch stored.  The others are written; it is named, with the reason,
    # and an earlier version of it stays, as for a file that cannot be read.
    import ragloom.formats.markdown

    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a.md", "big.md", "z.md"):
        (docs / name).write_text(f"# {name}\n\nText of {name}.\n")
    with RAG(uri=str(tmp_path / "t.db"), embedder=FakeEmbedder(), cache_dir="") as rag:
        assert rag.ingest([str(docs)]).added == 3
        (docs / "a.md").write_text("# a.md\n\nNew text of a.md.\n")
        (docs / "big.md").write_text("---\nbig: 123456789012345678901234567890\n---\n\nNew.\n")
        monkeypatch.setattr(ragloom.formats.markdown, "_json_safe", lambda value: value)
        report = rag.ingest([str(docs)])
        assert (report.changed, report.unchanged) == (1, 1), report
        [error] = report.errors
        assert error["source"] == str(docs / "big.md")
        assert error["error"].startswith("Milvus would not store it: ")
        assert "64-bit" in error["error"]
        assert rag.search("New text", 1, sources=["a.md"])[0].text.endswith("New text of a.md.")
        kept = rag.search("Text of big", 1, sources=["big.md"])
        assert kept and kept[0].text.endswith("Text of big.md.")  # its earlier version
