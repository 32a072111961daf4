"""Retrieval: each mode on Milvus Lite, fusion, passages, filters, reranking, and the dense
fallback (with its one warning) on the real Milvus 2.3 server."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragloom import lexical
from ragloom.errors import ConfigError, StoreError
from ragloom.rag import RAG
from ragloom.retrieval import (
    CrossEncoderReranker,
    SearchOptions,
    fuse_weighted,
    join_headings,
    join_neighbours,
    join_text,
    resolve_mode,
    retrieve,
)
from ragloom.store import CollectionInfo
from ragloom.testing import FakeEmbedder
from ragloom.types import Hit
from tests.cli_helpers import ragloom

DOCS = {
    "guide/storage.md": (
        "# Storage\n\n## Where data lives\n\nMilvus keeps inserted data in MinIO object"
        " storage.\n\n## Metadata\n\nModule metadata goes to etcd.\n"
    ),
    "guide/limits.md": "# Limits\n\nA collection name holds at most 255 characters.\n",
    "faq/auth.md": "# Users\n\nA password needs at least 6 characters; passwords are hashed.\n",
    "notes.txt": "Vectors are flushed to disk in sealed segments.\n",
}


def write_docs(root: Path, docs: dict[str, str] = DOCS) -> Path:
    for name, text in docs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture
def rag(tmp_path: Path) -> Iterator[RAG]:
    folder = write_docs(tmp_path / "docs")
    with RAG(uri=str(tmp_path / "r.db"), embedder=FakeEmbedder(), cache_dir="") as r:
        r.ingest([str(folder)])
        yield r


def h(chunk_id: str, score: float, source: str = "a.md", position: int = 0, text: str = "") -> Hit:
    return Hit(1, score, text or chunk_id, source, f"H {chunk_id}", chunk_id, position)


# -- modes on Milvus Lite ----------------------------------------------------------------------


def test_lite_defaults_to_hybrid(rag: RAG) -> None:
    info = rag.store.info()
    assert info is not None and info.bm25 and info.analyzer == lexical.ANALYZER
    assert resolve_mode(info, None) == ("hybrid", None)
    assert resolve_mode(info, "bm25") == ("bm25", None)
    with pytest.raises(ConfigError, match="use one of dense, bm25, hybrid"):
        resolve_mode(info, "sparse")


def test_bm25_matches_word_forms_through_stemming(rag: RAG) -> None:
    # "hashes" appears nowhere: only the stem "hash" joins it to "hashed".
    hits = rag.search("hashes", 3, mode="bm25")
    assert hits[0].source.endswith("faq/auth.md")
    assert all(hit.score > 0 for hit in hits)  # positive on every backend
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert rag.search("the of and", 3, mode="bm25") == []  # only stop words: nothing to match


def test_each_mode_finds_its_match(rag: RAG) -> None:
    dense = rag.search("A collection name holds at most 255 characters.", 2, mode="dense")
    assert dense[0].source.endswith("limits.md") and dense[0].score == pytest.approx(1.0, abs=0.2)
    # The fake embedder's vectors put auth.md third; BM25's stemmed match lifts it.
    question = "hashes password"
    assert not rag.search(question, 1, mode="dense")[0].source.endswith("faq/auth.md")
    assert rag.search(question, 1)[0].source.endswith("faq/auth.md")  # default: hybrid
    assert rag.search(question, 1, mode="hybrid")[0].source.endswith("faq/auth.md")
    rrf = retrieve(rag.store, rag.embedder, question, 2, options=SearchOptions(fusion="rrf"))
    assert rrf[0].source.endswith("faq/auth.md") and [x.rank for x in rrf] == [1, 2]


def test_ingest_leaves_lite_indexed(rag: RAG) -> None:
    from ragloom.lite import engine_collection

    engine = engine_collection(rag.store.uri, rag.store.collection)
    if engine is None or not hasattr(engine, "_segments_snapshot"):
        pytest.skip("this Milvus Lite does not expose its segments")
    segments = [s for s in engine._segments_snapshot() if s.num_rows]
    assert segments and all("vector" in s.indexes for s in segments)
    assert all("sparse" in s.sparse_indexes for s in segments)


# -- fusion and passages -----------------------------------------------------------------------


def test_weighted_fusion_scales_each_route() -> None:
    dense = [h("a", 1.0), h("b", 0.75), h("c", 0.5)]
    lexical_hits = [h("c", 12.0), h("d", 3.0)]
    fused = fuse_weighted([(dense, 1.0), (lexical_hits, 0.5)])
    scores = {x.chunk_id: round(x.score, 6) for x in fused}
    assert scores == {"a": 1.0, "b": 0.5, "c": 0.5, "d": 0.0}
    assert [x.chunk_id for x in fused] == ["a", "b", "c", "d"]  # ties keep dense order
    assert [x.rank for x in fused] == [1, 2, 3, 4]
    assert [x.chunk_id for x in fuse_weighted([([h("x", 2.0)], 1.0), ([], 0.5)])] == ["x"]


def test_join_text_writes_the_overlap_once() -> None:
    first = "Intro sentence one. The shared overlap sentence is here, long enough."
    second = "The shared overlap sentence is here, long enough. And what follows."
    assert join_text(first, second) == (
        "Intro sentence one. The shared overlap sentence is here, long enough. And what follows."
    )
    assert join_text("First part.", "Second part.") == "First part.\n\nSecond part."


def test_join_text_writes_a_short_overlap_once() -> None:
    # docs/answers.md: the overlap is the one short line before a code block; the joined
    # passage said "From Python:" twice.
    first = "Intro.\n\n```console\n$ ragloom ask\n```\n\nFrom Python:"
    second = "From Python:\n\n```python\nfrom ragloom import RAG\n```"
    assert join_text(first, second) == first + second[len("From Python:") :]
    assert join_text("It works. Yes.", "Yes. And more.") == "It works. Yes. And more."
    # a word that merely repeats is not an overlap
    assert join_text("We said yes", "yes again") == "We said yes\n\nyes again"


def test_adjacent_candidates_become_one_passage() -> None:
    hits = [
        h("a2", 0.9, "a.md", 2, "two"),
        h("b0", 0.8, "b.md", 0, "bee"),
        h("a1", 0.7, "a.md", 1, "one"),
        h("a3", 0.6, "a.md", 3, "three"),
        h("b1", 0.1, "b.md", 1, "bee one"),
    ]
    joined = join_neighbours(hits, pool=4)
    # a2 takes its better-ranked neighbour a1 (listed first in the text); a3 stays alone;
    # b1 is outside the pool, so b0 has no partner.
    assert [(x.text, x.score) for x in joined] == [
        ("one\n\ntwo", 0.9), ("bee", 0.8), ("three", 0.6), ("bee one", 0.1),
    ]  # fmt: skip
    # The joined passage is named by where it begins: a1's id, heading and position
    # (a citation of it sent readers to a2's section, below where the text starts).
    assert (joined[0].chunk_id, joined[0].position) == ("a1", 1)
    assert joined[0].heading == "H a1 – H a2"
    assert join_headings("Guide > Install", "Guide > Configure") == "Guide > Install – Configure"
    assert join_headings("m > page 1", "m > page 2") == "m > page 1 – page 2"
    assert join_headings("Guide > A > x", "Guide > B") == "Guide > A > x – B"
    assert join_headings("Guide > A", "Guide > A") == "Guide > A"
    assert join_headings("Guide", "Guide > Install") == "Guide > Install"  # not "Guide – Guide >"


def test_a_section_cut_in_two_comes_back_whole(tmp_path: Path) -> None:
    # Two paragraphs of about 40 (fake) tokens each: a 64-token window holds one.
    first = "Vacuum compaction " + " ".join(f"a{i}" for i in range(36)) + "."
    second = "Vacuum compaction " + " ".join(f"b{i}" for i in range(36)) + "."
    doc = {"long.md": f"# Vacuum\n\n{first}\n\n{second}\n", "other.md": "# Other\n\nunrelated\n"}
    folder = write_docs(tmp_path / "docs", doc)
    with RAG(uri=str(tmp_path / "j.db"), embedder=FakeEmbedder(), chunk_tokens=64) as r:
        r.ingest([str(folder)])
        assert r.store.count() == 3  # the section was cut in two
        (hit,) = r.search("vacuum compaction", 1, mode="bm25")
        assert first in hit.text and second in hit.text
        apart = retrieve(
            r.store, r.embedder, "vacuum compaction", 2, "bm25",
            options=SearchOptions(join_neighbours=False),
        )  # fmt: skip
        assert all(not (first in x.text and second in x.text) for x in apart)


def test_seed_pieces_are_never_joined(tmp_path: Path) -> None:
    text = "# A\nvacuum compaction one\n# B\nvacuum compaction two\n"
    folder = write_docs(tmp_path / "docs", {"seed.md": text})
    with RAG(uri=str(tmp_path / "s.db"), embedder=FakeEmbedder(), splitter="seed") as r:
        r.ingest([str(folder)])
        texts = [x.text for x in r.search("vacuum compaction", 3)]
        assert "A\nvacuum compaction one\n" in texts and "B\nvacuum compaction two\n" in texts


# -- filters ---------------------------------------------------------------------------------


def test_source_globs_and_where_expressions(rag: RAG) -> None:
    every = {x.source.rsplit("/docs/", 1)[1] for x in rag.search("characters data", 10)}
    assert every == set(DOCS)
    only = rag.search("characters", 10, sources=["*limits.md"])
    assert {x.source.rsplit("/", 1)[1] for x in only} == {"limits.md"}
    faq = rag.search("characters", 10, sources=["faq/*"])
    assert {x.source.rsplit("/docs/", 1)[1] for x in faq} == {"faq/auth.md"}
    guide = rag.search("data characters", 10, where='source like "%/guide/%"')
    assert guide and all("/guide/" in x.source for x in guide)
    both = rag.search("segments", 10, where="position == 0", sources=["*.txt"], mode="bm25")
    assert [x.source.rsplit("/", 1)[1] for x in both] == ["notes.txt"]
    assert rag.search("data", 10, where='source like "%nothing%"') == []
    with pytest.raises(StoreError, match=r"the filter 'no_such_field >>> 1' \(where\) is not"):
        rag.search("data", 3, where="no_such_field >>> 1")


def test_source_globs_take_file_names_as_they_are(tmp_path: Path) -> None:
    names = {
        "product_faq.md": "# FAQ\n\nOtters hold hands while they sleep.\n",
        "productXfaq.md": "# Other\n\nOtters eat sea urchins.\n",
        "100%.txt": "Otters are fully waterproof.\n",
        "b.md": "# B\n\nOtters have dense fur.\n",
        "ab.md": "# AB\n\nOtters use stones as tools.\n",
        "c.rst": "Otters live in rivers.\n",
    }
    folder = write_docs(tmp_path / "docs", names)
    with RAG(uri=str(tmp_path / "r.db"), embedder=FakeEmbedder(), cache_dir="") as r:
        r.ingest([str(folder)])

        def found(*patterns: str) -> set[str]:
            hits = r.search("otters", 10, sources=list(patterns))
            return {h.source.rsplit("/", 1)[1] for h in hits}

        assert found("product_faq.md") == {"product_faq.md"}
        assert found("*_faq.md") == {"product_faq.md"}
        assert found("100%.txt") == {"100%.txt"}
        assert found("b.md") == {"b.md"}  # a path's end from a separator on: not ab.md
        assert found("*.[rt][sx]t") == {"100%.txt", "c.rst"}
        assert found(f"{folder}/*_faq.md") == {"product_faq.md"}


def test_a_filter_keeping_few_chunks_still_finds_them(tmp_path: Path) -> None:
    """Milvus Lite filters HNSW candidates while walking the graph: a selective filter
    must not come back empty while chunks match it."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "iota"]
    docs = {f"d{i:03d}.txt": " ".join(words[(i + j) % 9] for j in range(8)) for i in range(300)}
    docs["walrus.txt"] = "Walruses haul out on arctic ice.\n"
    folder = write_docs(tmp_path / "docs", docs)
    with RAG(uri=str(tmp_path / "r.db"), embedder=FakeEmbedder(), cache_dir="") as r:
        r.ingest([str(folder)])
        for mode in ("dense", "hybrid"):
            where = r.search("alpha beta gamma", 3, mode=mode, where='source like "%walrus%"')
            assert [h.source.rsplit("/", 1)[1] for h in where] == ["walrus.txt"], mode
            glob = r.search("alpha beta gamma", 3, mode=mode, sources=["walrus.*"])
            assert [h.source.rsplit("/", 1)[1] for h in glob] == ["walrus.txt"], mode


def test_filters_on_the_command_line(tmp_path: Path) -> None:
    folder = write_docs(tmp_path / "docs")
    db = str(tmp_path / "cli.db")
    assert ragloom("ingest", str(folder), "--uri", db, "--json").code == 0
    run = ragloom(
        "search", "How many characters?", "-k", "5", "--json", "--uri", db,
        "--source", "*.md", "--where", 'source like "%guide%"',
    )  # fmt: skip
    assert run.code == 0, run.stderr
    hits = run.json()["hits"]
    assert hits and {x["source"].rsplit("/", 1)[1] for x in hits} <= {"limits.md", "storage.md"}
    assert hits[0]["source"].endswith("limits.md")
    for mode in ("dense", "bm25", "hybrid"):
        one = ragloom("search", "password characters", "--mode", mode, "--json", "--uri", db)
        assert one.code == 0 and one.json()["hits"][0]["source"].endswith("auth.md"), mode
    none = ragloom("search", "characters", "--source", "*.pdf", "--uri", db)
    assert none.code == 0 and "no passages match --where/--source" in none.stdout
    bad = ragloom("search", "x", "--where", "position >>> 1", "--uri", db)
    assert bad.code == 1 and "Traceback" not in bad.stderr
    assert "the filter 'position >>> 1' (--where) is not one Milvus accepts: unexpected" in (
        bad.stderr
    )
    assert ragloom("search", "x", "--mode", "fuzzy", "--uri", db).code == 2


# -- reranking -----------------------------------------------------------------------------------


def test_rerank_names_a_model_it_cannot_load(rag: RAG, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rerank='no-such/cross-encoder': could not load"):
        rag.search("data", 3, rerank="no-such/cross-encoder")
    db = tmp_path / "none.db"
    run = ragloom("search", "data", "--rerank", str(tmp_path / "missing"), "--uri", str(db))
    assert run.code in (0, 1)  # an empty collection may answer before loading anything


def tiny_cross_encoder(folder: Path) -> Path:
    """A randomly initialised one-layer BERT cross-encoder with the bundled tokenizer."""
    import shutil

    from transformers import BertConfig, BertForSequenceClassification

    from ragloom.embedders.local import bundled_model_path

    source = bundled_model_path()
    if source is None:
        pytest.skip("the bundled model (for its tokenizer) is not installed")
    folder.mkdir()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy(source / name, folder / name)
    config = BertConfig(
        vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=512, num_labels=1,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def test_rerank_with_a_local_cross_encoder(rag: RAG, tmp_path: Path) -> None:
    model = str(tiny_cross_encoder(tmp_path / "tiny-ce"))
    plain = rag.search("characters data", 3, mode="bm25")
    reranked = rag.search("characters data", 3, mode="bm25", rerank=model)
    assert {x.chunk_id for x in reranked} == {x.chunk_id for x in plain}
    from sentence_transformers import CrossEncoder

    scores = CrossEncoder(model, device="cpu").predict([("characters data", x.text) for x in plain])
    expected = [x.chunk_id for _, x in sorted(zip(scores, plain, strict=True), key=lambda p: -p[0])]
    assert [x.chunk_id for x in reranked] == expected
    assert len(plain) == 3 and [x.rank for x in reranked] == [1, 2, 3]
    assert reranked[0].score == pytest.approx(float(max(scores)), abs=1e-5)
    assert CrossEncoderReranker(model).rerank("q", []) == []


# -- the dense fallback on a Milvus server without BM25 ---------------------------------------


@pytest.mark.server
def test_server_without_bm25_searches_dense_and_says_so_once(
    milvus_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_docs(tmp_path / "docs")
    name = f"retrieval_{uuid.uuid4().hex[:8]}"
    with RAG(uri=milvus_server, collection=name) as r:  # the bundled model, as the CLI uses
        r.ingest([str(folder)])
        info = r.store.info()
        assert info is not None and not info.bm25 and info.analyzer == lexical.RAW
        mode, notice = resolve_mode(info, None, r.store.uri)
        assert mode == "dense" and notice is not None and "needs BM25" in notice
        dense = r.search("How many characters may a password have?", 2, mode="dense")
        with caplog.at_level(logging.WARNING, logger="ragloom.retrieval"):
            first = r.search("How many characters may a password have?", 2)
            r.search("Where is data kept?", 2, mode="hybrid")
        assert [x.chunk_id for x in first] == [x.chunk_id for x in dense]
        warnings = [rec for rec in caplog.records if "needs BM25" in rec.getMessage()]
        assert len(warnings) == 1
        # Milvus 2.3 takes only prefix LIKE patterns: source globs still filter (QA: every
        # --source failed with Milvus's parser error).
        for pattern in ("auth.md", "faq/*.md", str(folder / "faq" / "auth.md")):
            only = r.search("Where is data kept?", 3, sources=[pattern])
            assert only and {Path(h.source).name for h in only} == {"auth.md"}, pattern
        assert r.search("Where is data kept?", 3, sources=["*.pdf"]) == []
    run = ragloom("search", "password length", "--uri", milvus_server, "--collection", name)
    assert run.code == 0, run.stderr
    assert run.stderr.count("needs BM25") == 1 and run.stderr.count("\n") == 1
    assert "auth.md" in run.stdout
    explicit = ragloom(
        "search", "password", "--mode", "bm25", "--json", "--uri", milvus_server,
        "--collection", name,
    )  # fmt: skip
    assert explicit.code == 0 and "bm25 search needs BM25" in explicit.stderr
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"question": "How long can a collection name be?", "answer_keys": ["255"]}\n'
        '{"question": "Where does metadata go?", "answer_keys": ["etcd"]}\n'
    )
    evaluated = ragloom("eval", str(questions), "--uri", milvus_server, "--collection", name)
    assert evaluated.code == 0, evaluated.stderr
    assert evaluated.stderr.count("needs BM25") == 1
    assert "mode dense" in evaluated.stdout


def test_collection_info_defaults_to_raw_lexical_text() -> None:
    old = CollectionInfo.from_description(
        '{"ragloom": {"embedder": "e", "dim": 3, "splitter": "markdown", "chunk_tokens": 9}}'
    )
    assert old is not None and old.analyzer == lexical.RAW
