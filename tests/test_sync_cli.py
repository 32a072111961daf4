"""Sync from the command line: Ctrl-C stops cleanly and resumes; sources and delete."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from ragloom import RAG
from ragloom.embedders.base import InputType
from ragloom.loaders import load_sources
from ragloom.store import MilvusStore
from ragloom.testing import FakeEmbedder
from ragloom.types import LoadIssue
from tests.cli_helpers import background_job, ctrl_c_raises, foreground_job, ragloom
from tests.conftest import DOCS_ZIP
from tests.sync_contract import extract

ROOT = Path(__file__).resolve().parents[1]


def test_ctrl_c_stops_after_the_batch_and_the_same_command_resumes(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    for part in ("en/userGuide/", "en/reference/", "en/adminGuide/"):
        extract(docs, part)
    db = str(tmp_path / "c.db")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    # The real command, with the fake embedder's speed: the worker prints after each batch.
    command = [sys.executable, "-m", "tests.sync_worker", db, "ragloom", str(docs), ""]
    proc = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=foreground_job,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"WROTE")  # one batch is in
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0  # the worker returns its report normally
    report = [line for line in out.decode().splitlines() if line.startswith("REPORT ")]
    assert '"interrupted": true' in report[0]
    # it reports what it wrote, not what it had planned
    summary = json.loads(report[0].removeprefix("REPORT "))
    store = MilvusStore(db, "ragloom")
    stored = store.documents()
    store.close()
    assert summary["added"] == summary["files"] == len(stored) > 0
    assert summary["chunks"] == sum(d.chunks for d in stored)
    assert sorted(summary["plan"]["added"]) == sorted(d.source for d in stored)
    started = time.monotonic()
    again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, check=True)
    assert b'"interrupted": false' in again.stdout
    assert b'"unchanged": 0' not in again.stdout  # finished documents were skipped
    assert time.monotonic() - started < 120


def test_an_ingest_started_with_ctrl_c_ignored_keeps_ignoring_it(tmp_path: Path) -> None:
    # A shell script's background job (`ragloom ingest docs &`) is started with SIGINT
    # ignored, so that the script's Ctrl-C is not for it; ingest installed its own
    # handler over that and stopped (ask and chat kept it ignored).
    docs = tmp_path / "docs"
    extract(docs, "en/userGuide/")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    command = [sys.executable, "-m", "tests.sync_worker", str(tmp_path / "b.db"), "b", str(docs)]
    proc = subprocess.Popen(
        [*command, ""], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=background_job,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"WROTE")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b'"interrupted": false' in out


def test_the_cli_says_how_to_resume(tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# A\n\nSome words about looms and their many threads.\n" * 40)
    db = str(tmp_path / "r.db")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragloom", "ingest", str(tmp_path), "--uri", db],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=foreground_job,
    )  # fmt: skip
    # Once ragloom runs (its database is there; a fixed sleep could signal Python itself
    # while it started, on a busy machine): the run stops at its first batch boundary.
    deadline = time.monotonic() + 60
    while not Path(db).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 130:
        assert "run the same command again" in err or "interrupted" in err
        assert "Traceback" not in err
    else:  # it finished before the signal arrived
        assert proc.returncode == 0, (proc.returncode, err)


class _Trickle(http.server.BaseHTTPRequestHandler):
    """A page that never ends: a few bytes every tenth of a second, never a read timeout
    (``/stall``: a few bytes, then nothing until the read timeout)."""

    started = threading.Event()
    done = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        _Trickle.started.set()
        while not _Trickle.done.wait(0.1):
            if self.path == "/stall":
                continue
            try:
                self.wfile.write(b"<p>x</p>")
                self.wfile.flush()
            except OSError:
                return

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def trickle() -> Iterator[str]:
    _Trickle.started.clear()
    _Trickle.done.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Trickle.done.set()
    server.shutdown()
    server.server_close()


def test_one_ctrl_c_stops_an_ingest_waiting_on_a_download(tmp_path: Path, trickle: str) -> None:
    # The first Ctrl-C waited for the download to end (here the 60 s read timeout) before
    # the run stopped; a second one was the only way out.
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragloom", "ingest", f"{trickle}/stall", "--uri",
         str(tmp_path / "t.db")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=foreground_job,
    )  # fmt: skip
    try:
        assert _Trickle.started.wait(60), "the ingest never asked for the page"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err


def test_a_stopped_run_ends_its_download(trickle: str) -> None:
    # Through the Python API the download went on in the background to its end (a large
    # archive: minutes) after the run had stopped.
    stop = threading.Event()
    items = load_sources([f"{trickle}/endless"], stop=stop)
    threading.Timer(0.5, stop.set).start()
    (issue,) = list(items)
    assert isinstance(issue, LoadIssue) and "download stopped" in issue.reason


def test_an_empty_source_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `ragloom ingest "$DOCS"` with DOCS unset ingested the whole working directory.
    (tmp_path / "a.md").write_text("# A\n\nNot meant to be ingested.\n")
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "e.db")
    run = ragloom("ingest", "", "--uri", db)
    assert run.code == 2 and "an empty source" in run.stderr, run.stderr
    gone = ragloom("delete", " ", "--uri", db)
    assert gone.code == 2 and "an empty source" in gone.stderr
    assert not (tmp_path / "e.db").exists()


def test_sources_and_delete(tmp_path: Path) -> None:
    db = str(tmp_path / "d.db")
    empty = ragloom("sources", "--uri", db)
    assert empty.code == 0 and "no documents in the collection 'ragloom'" in empty.stderr
    run = ragloom("ingest", str(DOCS_ZIP), "--glob", "en/faq/*.md", "--uri", db, "--json")
    assert run.code == 0
    listed = ragloom("sources", "--json", "--uri", db).json()
    assert len(listed) == 4
    assert {"source", "chunks", "doc_hash", "ingested_at"} <= set(listed[0])
    gone = next(d["source"] for d in listed if d["source"].endswith("troubleshooting.md"))
    deleted = ragloom("delete", gone, "--uri", db)
    assert deleted.code == 0 and "deleted" in deleted.stdout
    assert len(ragloom("sources", "--json", "--uri", db).json()) == 3
    one = ragloom("ingest", str(DOCS_ZIP), "--glob", "en/faq/troubleshooting.md", "--uri", db)
    assert one.stdout.startswith("1 document (1 added, 0 changed"), one.stdout
    ragloom("delete", gone, "--uri", db)
    again = ragloom("delete", gone, "--uri", db)
    assert again.code == 1 and f"{gone}: no such document in the collection" in again.stderr
    fresh = ragloom("delete", gone, "--uri", str(tmp_path / "fresh.db"))
    assert fresh.code == 1 and "no such document" in fresh.stderr and "failed" not in fresh.stderr
    text = ragloom("sources", "--uri", db).stdout
    assert "product_faq.md" in text and "troubleshooting.md" not in text
    # The archive by its name: every document ingested from it (it was refused).
    whole = ragloom("delete", str(DOCS_ZIP), "--uri", db)
    assert whole.code == 0, whole.stderr
    assert whole.stdout.startswith("deleted ") and " of 3 documents" in whole.stdout
    assert ragloom("sources", "--json", "--uri", db).json() == []


def test_a_folder_emptied_since_the_last_ingest_is_emptied_in_the_collection(
    tmp_path: Path,
) -> None:
    docs, db = tmp_path / "docs", str(tmp_path / "e.db")
    docs.mkdir()
    (docs / "only.md").write_text("# Only\n\nThe last file of this folder.\n")
    (docs / "photo.jpg").write_bytes(b"\xff\xd8")
    first = ragloom("ingest", str(docs), "--uri", db)
    assert first.code == 0
    assert f"ragloom: {docs}/photo.jpg: not a document (.jpg); skipped\n" in first.stderr
    (docs / "only.md").unlink()
    (docs / "photo.jpg").unlink()
    run = ragloom("ingest", str(docs), "--uri", db)
    assert run.code == 0, run.stderr
    assert f"{docs}: empty directory: no files to index (hidden files and" in run.stderr
    assert "1 removed" in run.stdout
    assert ragloom("sources", "--json", "--uri", db).json() == []
    typo = ragloom("ingest", str(tmp_path / "docs"), "--glob", "*.mdd", "--uri", db)
    assert typo.code == 1 and "match the glob '*.mdd'" in typo.stderr


def test_the_file_size_limit_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "big.md"
    page.write_text("# Big\n\n" + "Milvus stores vectors. " * 3000)  # ~69 KB
    db = str(tmp_path / "limit.db")
    monkeypatch.setenv("RAGLOOM_MAX_FILE_MB", "0.05")
    refused = ragloom("ingest", str(page), "--uri", db)
    assert refused.code == 1
    assert "big.md" in refused.stderr and "over the limit of 52428 (max_file_mb" in refused.stderr
    assert "RAGLOOM_MAX_FILE_MB" in refused.stderr
    monkeypatch.setenv("RAGLOOM_MAX_FILE_MB", "1")
    taken = ragloom("ingest", str(page), "--uri", db)
    assert taken.code == 0 and taken.stdout.startswith("1 document (1 added")


def test_delete_takes_the_path_the_documents_were_ingested_by(tmp_path: Path) -> None:
    # Ingest stores resolved paths; a path through a symlink must find them again.
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.md").write_text("# A\n\nAbout partitions.\n")
    (real / "b.md").write_text("# B\n\nAbout segments.\n")
    link = tmp_path / "link"
    link.symlink_to(real)
    db = str(tmp_path / "l.db")
    assert ragloom("ingest", str(link), "--uri", db).code == 0
    # A folder inside the ingested one: every document under it.
    (real / "sub").mkdir()
    (real / "sub" / "c.md").write_text("# C\n\nAbout shards.\n")
    (real / "sub" / "d.md").write_text("# D\n\nAbout replicas.\n")
    (real / "subway.md").write_text("# Subway\n\nNot under sub/.\n")
    assert ragloom("ingest", str(link), "--uri", db).code == 0
    sub = ragloom("delete", str(link / "sub"), "--uri", db)
    assert sub.code == 0 and sub.stdout == "deleted 2 chunks of 2 documents\n", sub.stderr
    gone = ragloom("delete", str(link / "a.md"), "--uri", db)
    assert gone.code == 0 and gone.stdout.startswith("deleted 1 chunk of 1 document"), gone.stderr
    left = {Path(d["source"]).name for d in ragloom("sources", "--json", "--uri", db).json()}
    assert left == {"b.md", "subway.md"}
    # The folder that was ingested, through the symlink it was ingested by.
    folder = ragloom("delete", str(link), "--uri", db)
    assert folder.code == 0 and folder.stdout == "deleted 2 chunks of 2 documents\n"
    assert ragloom("sources", "--json", "--uri", db).json() == []
    again = ragloom("delete", str(link), "--uri", db)
    assert again.code == 1 and "no such document in the collection" in again.stderr


def test_a_dry_run_of_rebuild_shows_what_the_rebuild_does(tmp_path: Path) -> None:
    # It was refused with "ingest with --rebuild" when the settings changed, and otherwise
    # showed everything unchanged, not the documents the rebuild would drop.
    docs, other, db = tmp_path / "docs", tmp_path / "other.md", str(tmp_path / "r.db")
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nAbout partitions.\n")
    other.write_text("# Other\n\nAbout segments.\n")
    assert ragloom("ingest", str(docs), str(other), "--uri", db).code == 0
    for extra in ((), ("--splitter", "seed")):
        dry = ragloom("ingest", str(docs), "--rebuild", "--dry-run", *extra, "--uri", db, "--json")
        assert dry.code == 0, dry.stderr
        report = dry.json()
        assert report["plan"] == {"added": [str(docs / "a.md")], "removed": [str(other)]}
        assert (report["added"], report["unchanged"], report["removed"]) == (1, 0, 1)
        # What would be sent to the model: the vectors of the same chunks are in the cache
        # (a dry run counted every chunk, overstating what a paid embedding API would bill).
        assert (report["embedded"] == 0) is (not extra), report  # seed: new chunks
    assert len(ragloom("sources", "--json", "--uri", db).json()) == 2  # nothing written
    run = ragloom("ingest", str(docs), "--rebuild", "--uri", db, "--json")
    assert (run.json()["added"], run.json()["removed"], run.json()["embedded"]) == (1, 1, 0)
    assert [d["source"] for d in ragloom("sources", "--json", "--uri", db).json()] == [
        str(docs / "a.md")
    ]


def test_many_files_that_are_not_documents_make_one_line(tmp_path: Path) -> None:
    docs, db = tmp_path / "site", str(tmp_path / "s.db")
    docs.mkdir()
    (docs / "page.md").write_text("# Page\n\nThe only document among the images.\n")
    for n in range(7):
        (docs / f"image{n}.png").write_bytes(b"\x89PNG")
    (docs / "data.json").write_text("{}")
    run = ragloom("ingest", str(docs), "--uri", db)
    assert run.code == 0, run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    assert "skipped 8 files that are not documents (.png 7, .json 1); --json lists them" in (
        run.stderr
    )
    listed = ragloom("ingest", str(docs), "--uri", db, "--json").json()["skipped"]
    assert len(listed) == 8


class _CtrlCOnce(FakeEmbedder):
    """Presses Ctrl-C (SIGINT to this process) while embedding its first chunks."""

    def embed(self, texts: Sequence[str], input_type: InputType = "document") -> list[list[float]]:
        if input_type == "document" and not getattr(self, "pressed", False):
            self.pressed = True
            os.kill(os.getpid(), signal.SIGINT)
        return super().embed(texts, input_type)


def test_ctrl_c_stops_at_the_end_of_a_document_not_of_a_batch(tmp_path: Path) -> None:
    # QA: a Ctrl-C took 20-40 s to stop an ingest of the docs archive: the run went on to
    # the end of its batch of 32 documents (600-1000 chunks).
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(40):
        body = "".join(
            f"## Part {p}\n\nLoom {n} part {p} has {p * n} threads.\n\n" for p in range(20)
        )
        (docs / f"d{n:02}.md").write_text(f"# Document {n}\n\n{body}")
    db = str(tmp_path / "c.db")
    with ctrl_c_raises(), RAG(uri=db, embedder=_CtrlCOnce(dim=16), cache_dir="") as rag:
        report = rag.ingest([str(docs)])
        stored = {d.source: d.chunks for d in rag.sources()}
    assert report.interrupted and 0 < report.files < 32, report
    # The same command finishes the rest; every document written before was whole.
    with RAG(uri=db, embedder=FakeEmbedder(dim=16), cache_dir="") as rag:
        again = rag.ingest([str(docs)])
        complete = {d.source: d.chunks for d in rag.sources()}
    assert (again.added, again.unchanged) == (40 - report.files, report.files), again
    assert len(complete) == 40 and stored == {s: complete[s] for s in stored}, stored


def test_documents_added_later_are_cut_as_the_collection_was_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QA: after the quickstart's `ingest ... --splitter seed --rebuild`, a plain `ingest`
    # of one more file was refused ("built with splitter 'seed', not 'markdown'"), while
    # `search` follows the collection's own settings.
    first, later, db = tmp_path / "a.md", tmp_path / "b.md", str(tmp_path / "s.db")
    first.write_text("# A\n\nAbout partitions.\n\n# B\n\nAbout segments.\n")
    later.write_text("# C\n\nAbout replicas.\n")
    assert ragloom("ingest", str(first), "--splitter", "seed", "--uri", db).code == 0
    run = ragloom("ingest", str(later), "--uri", db, "--json")
    assert run.code == 0, run.stderr
    assert ragloom("status", "--uri", db, "--json").json()["splitter"] == "seed"
    named = ragloom("ingest", str(later), "--splitter", "markdown", "--uri", db)
    assert named.code == 1 and "--rebuild" in named.stderr  # other settings, named: refused
    # A chunk size over the model's window (which ignores the rest) was taken silently.
    monkeypatch.setenv("RAGLOOM_CHUNK_TOKENS", "100000")
    big = ragloom("ingest", str(later), "--uri", str(tmp_path / "big.db"))
    assert big.code == 1 and "chunk_tokens 100000 (RAGLOOM_CHUNK_TOKENS)" in big.stderr
    assert "use at most 256" in big.stderr


def test_a_mistyped_collection_is_an_error_naming_the_ones_there(tmp_path: Path) -> None:
    # QA: `search --collection other` on a database holding only 'ragloom' printed "no
    # passages found ... ingest documents first" and exited 0: a typo scripts cannot see.
    doc, db = tmp_path / "a.md", str(tmp_path / "t.db")
    doc.write_text("# A\n\nLooms hold warp threads.\n")
    assert ragloom("ingest", str(doc), "--uri", db).code == 0
    for command in (("search", "looms"), ("ask", "looms?", "--llm", "none"), ("sources",)):
        run = ragloom(*command, "--uri", db, "--collection", "ragloon")
        assert run.code == 1, (command, run.stdout, run.stderr)
        assert "there is no collection 'ragloon'" in run.stderr and "holds ragloom" in run.stderr
    fresh = ragloom("search", "looms", "--uri", str(tmp_path / "new.db"))
    assert fresh.code == 0 and "ingest documents first" in fresh.stdout  # nothing there yet
