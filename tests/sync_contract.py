"""Incremental ingestion, held to one behaviour on every store (see test_sync_*.py)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ragloom import RAG
from tests.conftest import DOCS_ZIP

MakeRag = Callable[..., RAG]
ROOT = Path(__file__).resolve().parents[1]


def extract(dest: Path, prefix: str = "en/", limit: int | None = None) -> Path:
    """Members of the shared docs archive under ``prefix``, as files under ``dest``."""
    with zipfile.ZipFile(DOCS_ZIP) as zf:
        names = sorted(n for n in zf.namelist() if n.startswith(prefix) and n.endswith(".md"))
        for name in names[:limit]:
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
    return dest


def snapshot(rag: RAG) -> dict[str, tuple[str, str]]:
    """Every stored chunk: id -> (source, text)."""
    rows = rag.store._query_all('id != ""', ["id", "source", "text"])
    return {r["id"]: (r["source"], r["text"]) for r in rows}


class SyncContract:
    """Subclasses provide ``make_rag(**settings) -> RAG`` and ``target`` (uri, collection)."""

    make_rag: MakeRag

    def test_unchanged_archive_embeds_nothing(self, make_rag: MakeRag) -> None:
        with make_rag() as rag:
            first = rag.ingest([str(DOCS_ZIP)])
            assert first.errors == [] and first.written == first.chunks
            assert first.files + len(first.skipped) == 272  # 3 JSON menus are not documents
            assert 0 < first.embedded <= first.chunks  # identical texts are embedded once
            again = rag.ingest([str(DOCS_ZIP)])
        assert (again.unchanged, again.added, again.changed, again.removed) == (
            first.files,
            0,
            0,
            0,
        )
        assert again.embedded == 0 and again.written == 0

    def test_edit_append_delete_rename(self, make_rag: MakeRag, tmp_path: Path) -> None:
        docs = extract(tmp_path / "docs", "en/faq/")
        with make_rag() as rag:
            rag.ingest([str(docs)])
            before = snapshot(rag)
            faq = docs / "en/faq/product_faq.md"
            faq.write_text(faq.read_text() + "\n\n## Does ragloom weave?\n\nYes, it weaves.\n")
            edited = rag.ingest([str(docs)])
            assert (edited.changed, edited.unchanged, edited.added) == (1, 3, 0)
            assert 0 < edited.embedded <= 2  # the new tail only: the rest came from the cache
            after = snapshot(rag)
            assert len(set(after.values())) == len(after)  # no duplicate (source, text)
            others = {k: v for k, v in before.items() if not v[0].endswith("product_faq.md")}
            assert others.items() <= after.items()
            assert any("it weaves" in text for _, text in after.values())

            (docs / "en/faq/troubleshooting.md").unlink()
            removed = rag.ingest([str(docs)])
            assert removed.removed == 1 and removed.embedded == 0
            assert not any(s.endswith("troubleshooting.md") for s, _ in snapshot(rag).values())

            (docs / "en/faq/performance_faq.md").rename(docs / "en/faq/speed.md")
            renamed = rag.ingest([str(docs)])
            assert (renamed.added, renamed.removed, renamed.embedded) == (1, 1, 0)
            sources = {s for s, _ in snapshot(rag).values()}
            assert any(s.endswith("speed.md") for s in sources)
            assert not any(s.endswith("performance_faq.md") for s in sources)
            assert len(rag.sources()) == 3

    def test_dry_run_writes_nothing_and_no_prune_keeps(
        self, make_rag: MakeRag, tmp_path: Path
    ) -> None:
        docs = extract(tmp_path / "docs", "en/faq/")
        with make_rag() as rag:
            rag.ingest([str(docs)])
            before = snapshot(rag)
            (docs / "en/faq/troubleshooting.md").unlink()
            (docs / "en/faq/new.md").write_text("# New\n\nA new page about shuttles.\n")
            plan = rag.ingest([str(docs)], dry_run=True)
            assert (plan.added, plan.removed, plan.unchanged) == (1, 1, 3)
            assert plan.plan["added"][0].endswith("new.md")
            assert plan.plan["removed"][0].endswith("troubleshooting.md")
            assert snapshot(rag) == before
            kept = rag.ingest([str(docs)], prune=False)
            assert kept.removed == 0
            assert any(s.endswith("troubleshooting.md") for s, _ in snapshot(rag).values())

    def test_rebuild_takes_vectors_from_the_cache(self, make_rag: MakeRag, tmp_path: Path) -> None:
        docs = extract(tmp_path / "docs", "en/faq/")
        with make_rag() as rag:
            first = rag.ingest([str(docs)])
            rebuilt = rag.ingest([str(docs)], rebuild=True)
        assert rebuilt.added == 4 and rebuilt.written == first.chunks and rebuilt.embedded == 0

    def test_killed_at_random_moments_converges_to_a_clean_ingest(
        self, make_rag: MakeRag, target: tuple[str, str], tmp_path: Path
    ) -> None:
        docs = tmp_path / "docs"
        for part in ("en/userGuide/", "en/reference/", "en/adminGuide/"):
            extract(docs, part)
        uri, collection = target
        cache = tmp_path / "crash-cache"
        # Each run starts without cached vectors, so kills land in real embedding work.
        command = [sys.executable, "-m", "tests.sync_worker", uri, collection, str(docs), ""]
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
        started = time.time()
        first = _report(subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True))
        # Time-aimed kills land inside the ingest itself, not in start-up or in the final
        # flush (on a server that can take longer than all the writes).
        window = (first["began"] - started, first["writes"][-1] - started)
        with make_rag() as rag:
            clean = snapshot(rag)
            rag.store.drop()
        rng = random.Random(20261121)
        kills = partial_states = 0
        for round_ in range(60):  # bounded: each round is one run, killed or not
            if kills >= 10:
                break
            proc = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
            assert proc.stdout is not None
            if round_ % 2:
                # Every other kill comes right after a random one of the first writes.
                for _ in range(rng.randint(1, 3)):
                    if not proc.stdout.readline().startswith(b"WROTE"):
                        break
                time.sleep(rng.uniform(0, 0.05))
            else:
                time.sleep(rng.uniform(*window))
            killed = proc.poll() is None
            if killed:
                proc.kill()
                kills += 1
            proc.communicate()
            with make_rag() as rag:
                stored = snapshot(rag)
                if not killed:
                    assert stored == clean  # a resumed run finished: it must have converged
                if stored == clean:
                    rag.store.drop()  # converged (or killed after its last write): start over
            partial_states += killed and len(stored) > 0 and stored != clean
        assert kills >= 10
        assert partial_states >= 3  # kills did land between writes
        final = subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True)
        assert _report(final)["errors"] == []
        with make_rag() as rag:
            assert snapshot(rag) == clean
            assert rag.store.count() == len(clean)
        shutil.rmtree(cache, ignore_errors=True)


def _report(run: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    """The JSON report a worker prints last."""
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith(b"REPORT "))
    result: dict[str, Any] = json.loads(line.removeprefix(b"REPORT "))
    return result
