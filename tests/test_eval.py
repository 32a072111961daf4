"""Metrics over question sets: computed right on hand-made results, and ``ragloom eval``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from ragloom import eval as metrics
from ragloom.errors import ConfigError
from ragloom.types import Hit
from tests.cli_helpers import ragloom


def hit(text: str, rank: int = 1) -> Hit:
    return Hit(rank=rank, score=1.0, text=text, source="doc.md", heading="", chunk_id=text)


def write_items(path: Path, items: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


ITEMS = [
    {"id": "a", "question": "qa", "answer_keys": ["alpha"], "kind": "faq", "lang": "en"},
    {"id": "b", "question": "qb", "answer_keys": ["beta", "bravo"], "kind": "faq", "lang": "en"},
    {"id": "c", "question": "qc", "answer_keys": ["gamma"], "kind": "docs", "lang": "de"},
    {"id": "d", "question": "qd", "answer_keys": ["delta"], "kind": "docs", "lang": "en"},
    {"id": "e", "question": "qe", "answer_keys": [], "kind": "unanswerable", "lang": "en"},
]
# What a pretend search returns for each question: relevant at rank 1, 3, never, 2.
RESULTS = {
    "qa": ["the alpha passage", "x", "y"],
    "qb": ["x", "y", "some bravo here", "beta too"],
    "qc": ["x", "gam ma", "y"],
    "qd": ["x", "delta!", "delta again"],
    "qe": ["nothing"],
}


def fake_search(question: str) -> list[Hit]:
    return [hit(t, n) for n, t in enumerate(RESULTS[question], start=1)]


def test_metrics_on_a_hand_made_set(tmp_path: Path) -> None:
    items = metrics.load_items(write_items(tmp_path / "set.jsonl", ITEMS))
    results = metrics.run(items, fake_search)
    assert [r.rank for r in results] == [1, 3, None, 2, None]
    summary = metrics.report(results)
    assert summary["n"] == 4  # the unanswerable item is scored as abstention, not hits
    assert summary["hit@1"] == 0.25
    assert summary["hit@3"] == 0.75
    assert summary["hit@10"] == 0.75
    assert summary["mrr@10"] == round((1 + 1 / 3 + 0 + 1 / 2) / 4, 4)
    assert summary["by_kind"]["faq"] == {
        "n": 2, "hit@1": 0.5, "hit@3": 1.0, "hit@10": 1.0, "mrr@10": round((1 + 1 / 3) / 2, 4)
    }  # fmt: skip
    assert summary["by_kind"]["docs"]["hit@3"] == 0.5
    assert summary["by_kind"]["docs"]["mrr@10"] == 0.25
    assert set(summary["by_kind"]) == {"faq", "docs"}
    assert summary["by_lang"]["de"]["n"] == 1 and summary["by_lang"]["de"]["hit@10"] == 0.0
    assert summary["by_lang"]["en"]["n"] == 3
    assert summary["abstain"] is None  # no abstention rule given
    assert set(summary["latency_ms"]) == {"p50", "p99"}


def test_hits_beyond_ten_do_not_count_for_mrr_at_10() -> None:
    items = [metrics.EvalItem("q", ("key",))]
    results = metrics.run(items, lambda q: [hit("x")] * 10 + [hit("key")], warm_up=False)
    assert results[0].rank == 11
    summary = metrics.report(results)
    assert summary["hit@10"] == 0.0 and summary["mrr@10"] == 0.0


def test_abstention_is_scored_on_unanswerable_items(tmp_path: Path) -> None:
    items = metrics.load_items(write_items(tmp_path / "set.jsonl", ITEMS))

    def rule(question: str, hits: Sequence[Hit]) -> bool:
        return question in ("qe", "qc")  # abstains on the unanswerable one and on qc

    summary = metrics.report(metrics.run(items, fake_search, rule))
    assert summary["abstain"] == {"n": 1, "rate": 1.0, "false_rate": 0.25}


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert metrics.percentile(values, 0.5) == 50.0
    assert metrics.percentile(values, 0.99) == 99.0
    assert metrics.percentile([7.0], 0.99) == 7.0
    assert metrics.percentile([], 0.5) == 0.0


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "fine", "answer_keys": []}\n{"answer_keys": ["x"]}\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:2: not a question item"):
        metrics.load_items(bad)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ConfigError, match="no questions"):
        metrics.load_items(tmp_path / "empty.jsonl")
    with pytest.raises(ConfigError, match="cannot read"):
        metrics.load_items(tmp_path / "missing.jsonl")


def test_question_sets_that_would_score_wrongly_are_refused(tmp_path: Path) -> None:
    # QA: an empty answer key is in every passage, so any question scored a perfect hit;
    # [null, 5] became the keys "None" and "5".  A non-UTF-8 file gave a traceback.
    for keys in ('[""]', '["  "]', "[null, 5]", "{}"):
        bad = tmp_path / "keys.jsonl"
        bad.write_text('{"question": "fine"}\n{"question": "q", "answer_keys": ' + keys + "}\n")
        with pytest.raises(ConfigError, match=r"keys.jsonl:2: "):
            metrics.load_items(bad)
    (tmp_path / "blank.jsonl").write_text('{"question": "  "}\n')
    with pytest.raises(ConfigError, match=r"blank.jsonl:1: the question is empty"):
        metrics.load_items(tmp_path / "blank.jsonl")
    (tmp_path / "latin1.jsonl").write_bytes('{"question": "caf\u00e9?"}\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.jsonl: not UTF-8 text \(byte 0xe9"):
        metrics.load_items(tmp_path / "latin1.jsonl")
    (tmp_path / "bom.jsonl").write_bytes('{"question": "Why?"}\n'.encode("utf-8-sig"))
    assert [i.question for i in metrics.load_items(tmp_path / "bom.jsonl")] == ["Why?"]


def test_only_question_is_required(tmp_path: Path) -> None:
    path = tmp_path / "min.jsonl"
    path.write_text('{"question": "What?"}\n')
    (item,) = metrics.load_items(path)
    assert item.answerable is False and item.kind == "-" and item.lang == "-"


# -- the command, on a small Milvus Lite collection -----------------------------------------

DOCS = {
    "storage.md": "# Storage\n\nMilvus keeps inserted data in object storage such as MinIO.\n",
    "limits.md": "# Limits\n\nA collection name may hold at most 255 characters.\n",
    "auth.md": "# Users\n\nA password must have at least 6 characters.\n",
}


@pytest.fixture
def collection(tmp_path: Path) -> str:
    from ragloom.rag import RAG

    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    uri = str(tmp_path / "eval.db")
    with RAG(uri=uri) as rag:  # the bundled model: the CLI must be able to load it
        rag.ingest([str(folder)])
    return uri


def test_eval_command_json(collection: str, tmp_path: Path) -> None:
    items = write_items(
        tmp_path / "q.jsonl",
        [
            {"question": "Where is inserted data kept?", "kind": "faq",
             "answer_keys": ["object storage such as MinIO"], "lang": "en"},
            {"question": "How long may a collection name be?", "kind": "docs",
             "answer_keys": ["at most 255 characters"], "lang": "en"},
            {"question": "Does it run on a toaster?", "answer_keys": [], "kind": "none"},
        ],
    )  # fmt: skip
    run = ragloom("eval", str(items), "--uri", collection, "--json")
    assert run.code == 0, run.stderr
    summary = run.json()
    assert set(summary) == {
        "n", "hit@1", "hit@3", "hit@10", "mrr@10", "by_kind", "by_lang", "abstain",
        "latency_ms", "k",
    }  # fmt: skip
    assert summary["n"] == 2
    assert summary["hit@1"] == 1.0 and summary["mrr@10"] == 1.0
    assert set(summary["by_kind"]) == {"faq", "docs"}
    assert summary["latency_ms"]["p50"] > 0

    text = ragloom("eval", str(items), "--uri", collection, "--mode", "dense", "--misses")
    assert text.code == 0, text.stderr
    assert "2 with answers; mode dense, top 10" in text.stdout
    assert "kind faq" in text.stdout and "latency: p50" in text.stdout


def test_eval_judges_abstention_on_the_passages_ask_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QA: eval's abstention looked at its -k (10) passages, `ask` at its 5: a name in the
    # 6th passage let eval answer what ask declines (43% declined against ask's 50%).
    from ragloom.asking import ASK_K, Asking
    from ragloom.rag import RAG

    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(12):
        (folder / f"d{n}.md").write_text(f"# Loom {n}\n\nLoom {n} weaves {n} threads.\n")
    uri = str(tmp_path / "k.db")
    with RAG(uri=uri) as rag:
        rag.ingest([str(folder)])
    judged: list[int] = []
    real = Asking.coverage

    def coverage(self: Asking, question: str, hits: Sequence[Hit], **kw: object) -> object:
        judged.append(len(hits))
        return real(self, question, hits, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Asking, "coverage", coverage)
    items = write_items(
        tmp_path / "q.jsonl",
        [{"question": "How many threads does loom 7 weave?", "answer_keys": ["7 threads"]},
         {"question": "Does a loom run on Kubernetes?"}],
    )  # fmt: skip
    run = ragloom("eval", str(items), "--uri", uri, "--json")
    assert run.code == 0, run.stderr
    assert judged == [ASK_K, ASK_K] and run.json()["k"] == 10
    shallow = ragloom("eval", str(items), "--uri", uri, "-k", "3")
    assert "top 3 (hit@10 and MRR@10 count these 3)" in shallow.stdout
    assert judged[-2:] == [ASK_K, ASK_K]  # -k 3 still judges what ask sends
    listed = ragloom("eval", str(items), "--uri", uri, "--json", "--misses", "-k", "1")
    assert "misses" in listed.json()  # --misses was dropped with --json


def test_eval_command_errors(collection: str, tmp_path: Path) -> None:
    assert ragloom("eval", str(tmp_path / "none.jsonl"), "--uri", collection).code == 1
    items = write_items(tmp_path / "q.jsonl", [{"question": "q", "answer_keys": ["k"]}])
    assert ragloom("eval", str(items), "--uri", collection, "--mode", "sparse").code == 2
    empty = ragloom("eval", str(items), "--uri", str(tmp_path / "empty.db"))
    assert empty.code == 1 and "ingest" in empty.stderr
    # QA: a collection that exists with no chunks left was scored as all zeros, exit 0.
    from ragloom.rag import RAG

    with RAG(uri=collection) as rag:
        rag.delete([s.source for s in rag.sources()])
    emptied = ragloom("eval", str(items), "--uri", collection)
    assert emptied.code == 1 and "is empty or does not exist" in emptied.stderr
