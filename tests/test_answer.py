"""Answers: the prompt, the token budget, checked citations, abstention, extractive answers.

Retrieval runs on a small Milvus Lite collection with the ``FakeEmbedder``; the model
is the in-process ``FakeLLM`` (the HTTP providers have their own tests).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragloom import RAG, ConfigError
from ragloom.answer import (
    DEFAULT_SYSTEM,
    NO_ANSWER,
    TUTORIAL_SYSTEM,
    CitationFilter,
    Templates,
    build_prompt,
    check_citations,
    fit_passages,
    says_no_answer,
)
from ragloom.llms.extractive import extract
from ragloom.testing import FakeEmbedder, FakeLLM
from ragloom.types import Answer, Citation, Hit

DOCS = {
    "storage.md": "# Storage\n\nMilvus stores inserted data in object storage such as MinIO "
    "and keeps metadata in etcd. Vector data and scalar data are persisted as logs.\n",
    "license.md": "# License\n\nMilvus is a free open-source project under the Apache "
    "License 2.0, free for production use.\n",
    "index.md": "# Indexes\n\nAn IVF index splits vectors into nlist clusters; a search "
    "probes nprobe of them. More probes give better recall and slower search.\n",
    "bread.md": "# Bread\n\nSourdough bread needs flour, water and a starter fed every day.\n",
}
QUESTION = "Where does Milvus store inserted data?"


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RAG]:
    root = tmp_path_factory.mktemp("answer")
    for name, text in DOCS.items():
        (root / name).write_text(text)
    with RAG(uri=str(root / "answer.db"), embedder=FakeEmbedder(), abstain_score=0.1) as r:
        r.ingest([str(root)])
        yield r


def hit(n: int, text: str = "some passage text", source: str = "/d/doc.md") -> Hit:
    return Hit(n, 1.0 / n, text, source, f"Heading {n}", f"chunk-{n}")


# -- prompt ------------------------------------------------------------------------------


def test_prompt_extends_the_tutorials_and_numbers_passages() -> None:
    assert DEFAULT_SYSTEM.startswith(TUTORIAL_SYSTEM)
    assert "[1]" in DEFAULT_SYSTEM and "do not contain the answer" in DEFAULT_SYSTEM
    passages = [hit(1, "Alpha."), hit(2, "Beta.", "/z/a.zip::en/faq/b.md")]
    prompt = build_prompt("What is alpha?", passages, Templates())
    assert prompt.system == DEFAULT_SYSTEM and len(prompt.messages) == 1
    user = prompt.messages[0].content
    assert user.startswith("Use the following pieces of information enclosed in <context>")
    assert (
        "<context>\n[1] (doc.md › Heading 1)\nAlpha.\n\n[2] (en/faq/b.md › Heading 2)\nBeta."
        in user
    )
    assert user.endswith("<question>\nWhat is alpha?\n</question>")
    assert prompt.passages == tuple(passages) and prompt.question == "What is alpha?"


def test_passages_and_questions_are_sent_as_they_are() -> None:
    # QA: the question was filled in after the passages, so a document that says
    # "{question}" (a mail-merge manual, ragloom's own docs) reached the model altered.
    passage = hit(1, "Write {question} where the question goes and {context} for the rest.")
    prompt = build_prompt("Which {context} placeholder?", [passage], Templates())
    user = prompt.messages[0].content
    assert "Write {question} where the question goes and {context} for the rest." in user
    assert user.endswith("<question>\nWhich {context} placeholder?\n</question>")


def test_templates_are_checked_and_replaceable() -> None:
    # says which setting holds the template (it did not: a user could not tell where to look)
    with pytest.raises(
        ConfigError, match=r"needs a \{context\} placeholder \(user_prompt: RAGLOOM_"
    ):
        Templates(user="Answer {question}")
    custom = Templates(system="Be brief.", user="Q: {question}\nDocs:\n{context}")
    prompt = build_prompt("why?", [hit(1, "Because.")], custom)
    assert prompt.system == "Be brief."
    assert prompt.messages[0].content.startswith("Q: why?\nDocs:\n[1]")


def test_context_is_cut_to_the_token_budget_best_first() -> None:
    hits = [hit(n, "word " * 100) for n in range(1, 6)]  # ~135 tokens each with its label
    assert [h.rank for h in fit_passages(hits, 300)] == [1, 2]
    assert [h.rank for h in fit_passages(hits, 10_000)] == [1, 2, 3, 4, 5]
    (only,) = fit_passages([hit(1, "x" * 8000)], 100)  # a huge first passage is cut
    assert 200 < len(only.text) < 400


# -- citations -----------------------------------------------------------------------------


def test_citations_beyond_the_passages_are_removed() -> None:
    text, cited, removed = check_citations("A [1]. B [42]. C [2, 42][3]. D [7].", 3)
    assert text == "A [1]. B. C [2][3]. D."
    assert cited == [1, 2, 3] and removed == [42, 7]


def test_streamed_citation_check_matches_the_whole_text() -> None:
    text = "Milvus [1] stores [12] data [2,9] in MinIO [3].\n[4] See [docs] and [ 1 ]."
    whole = check_citations(text, 3)[0]
    rng = random.Random(7)
    for _ in range(100):
        checker, out, i = CitationFilter(3), "", 0
        while i < len(text):
            step = rng.randint(1, 6)
            out += checker.feed(text[i : i + step])
            i += step
        assert out + checker.finish() == whole


def test_answer_citing_42_of_3_passages(rag: RAG) -> None:
    llm = FakeLLM()
    llm.enqueue("Inserted data goes to MinIO [1][42] and metadata to etcd [1]. Free [2].")
    answer = rag.ask(QUESTION, k=3, llm=llm)
    assert len(answer.hits) == 3
    assert answer.text == "Inserted data goes to MinIO [1] and metadata to etcd [1]. Free [2]."
    assert answer.removed_citations == (42,)
    assert "removed citation [42]: only 3 passages were sent" in answer.notes
    assert [c.n for c in answer.citations] == [1, 2]
    first = answer.citations[0]
    assert isinstance(first, Citation) and first.source.endswith("storage.md")
    assert first.chunk_id == answer.hits[0].chunk_id and first.heading == "Storage"
    assert not answer.abstained and answer.provider == "fake"
    sent = llm.prompts[-1].messages[0].content
    assert "[1] (storage.md › Storage)" in sent and f"<question>\n{QUESTION}\n</question>" in sent
    payload = answer.to_dict()
    assert set(payload) >= {
        "answer",
        "citations",
        "hits",
        "abstained",
        "provider",
        "model",
        "usage",
    }
    assert payload["citations"][0] == {
        "n": 1, "chunk_id": first.chunk_id, "source": first.source, "heading": "Storage",
    }  # fmt: skip


def test_stream_yields_checked_text_then_the_answer(rag: RAG) -> None:
    llm = FakeLLM("MinIO holds it [1] [99].")
    items = list(rag.stream(QUESTION, k=2, llm=llm))
    answer = items[-1]
    assert isinstance(answer, Answer) and all(isinstance(i, str) for i in items[:-1])
    assert "".join(items[:-1]) == answer.text == "MinIO holds it [1]."  # type: ignore[arg-type]
    assert answer.removed_citations == (99,)


# -- abstention ----------------------------------------------------------------------------


def test_model_saying_the_passages_lack_the_answer_abstains(rag: RAG) -> None:
    llm = FakeLLM("The passages do not contain the answer.")
    answer = rag.ask("Which port does Milvus use for metrics?", llm=llm)
    assert answer.abstained and answer.abstain_reason == "llm" and not answer.citations
    assert says_no_answer("I'm sorry, the provided context does not mention this.")
    assert not says_no_answer("Milvus stores data in MinIO [1].")


def test_weak_retrieval_abstains_without_calling_the_model(rag: RAG) -> None:
    llm = FakeLLM()
    saved = rag.settings
    rag.settings = saved.model_copy(update={"abstain_score": 0.99})
    try:
        answer = rag.ask(QUESTION, llm=llm)
    finally:
        rag.settings = saved
    assert llm.prompts == []
    assert answer.abstained and answer.abstain_reason == "retrieval"
    assert answer.text == NO_ANSWER and answer.relevance is not None
    assert any("below the abstain threshold 0.990" in n for n in answer.notes)


def test_a_name_the_documents_never_mention_abstains_without_the_model(rag: RAG) -> None:
    llm = FakeLLM()
    answer = rag.ask("Does Milvus store inserted data in MinIO through GraphQL?", llm=llm)
    assert llm.prompts == []
    assert answer.abstained and answer.abstain_reason == "unknown_names"
    assert "never mention 'GraphQL'" in answer.text and answer.relevance is not None
    # names the documents do use (in any form: "MinIO", "etcd") go to the model
    answer = rag.ask("Does Milvus keep data in MinIO or in Etcd?", llm=FakeLLM("In MinIO [1]."))
    assert not answer.abstained and answer.text == "In MinIO [1]."


def test_a_name_none_of_the_passages_mentions_abstains_without_the_model(rag: RAG) -> None:
    question = "Does Milvus store inserted data in MinIO under the Apache License?"
    llm = FakeLLM()
    answer = rag.ask(question, k=1, llm=llm)  # the storage passage: no "Apache" in it
    assert llm.prompts == [] and answer.hits[0].source.endswith("storage.md")
    assert answer.abstained and answer.abstain_reason == "absent_names"
    assert "none of the passages found mentions 'Apache'" in answer.text
    answer = rag.ask(question, k=4, llm=FakeLLM("Yes [1]."))  # the license passage too
    assert not answer.abstained and answer.text == "Yes [1]."


def test_the_unknown_name_check_can_be_switched_off(rag: RAG) -> None:
    saved = rag.settings
    rag.settings = saved.model_copy(update={"abstain_unknown_names": False})
    try:
        answer = rag.ask("Does Milvus store data through GraphQL?", llm=FakeLLM("No idea."))
    finally:
        rag.settings = saved
    assert answer.text == "No idea." and not answer.abstained


def test_relevance_is_the_dense_score_whatever_the_mode(rag: RAG) -> None:
    dense = rag.search(QUESTION, 1, mode="dense")[0].score
    hybrid = rag.search(QUESTION, 3, mode="hybrid")
    assert rag.relevance(QUESTION, hybrid, mode="hybrid") == pytest.approx(dense)
    assert rag.relevance(QUESTION) == pytest.approx(dense)
    assert rag.abstain_threshold() == 0.1  # configured; calibrated only for known embedders


def test_hybrid_hits_carry_their_dense_scores_so_asking_searches_once(
    rag: RAG, monkeypatch: pytest.MonkeyPatch
) -> None:
    hybrid = rag.search(QUESTION, 3)
    assert hybrid[0].dense_score is not None
    calls: list[str] = []
    original = rag.store.search

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(str(args[3] if len(args) > 3 else kwargs.get("mode")))
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rag.store, "search", counted)
    rag.relevance(QUESTION, hybrid, mode="hybrid")
    assert calls == []  # no second, dense-only search for the relevance
    rag.ask(QUESTION, llm="none")
    assert sorted(calls) == ["bm25", "dense"]  # the hybrid search's two routes, once each


def test_empty_collection_abstains(tmp_path: Path) -> None:
    with RAG(uri=str(tmp_path / "empty.db"), embedder=FakeEmbedder()) as empty:
        answer = empty.ask("anything?", llm=FakeLLM())
    assert answer.abstained and answer.hits == ()
    assert any("ingest documents first" in n for n in answer.notes)


# -- extractive (--llm none) ---------------------------------------------------------------


def test_extractive_answer_quotes_and_cites(rag: RAG, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DEEPSEEK_API_KEY", "LEPTONAI_TOKEN", "GEMINI_API_KEY", "GOOGLE_API_KEY",
                 "OPENAI_API_KEY", "OPENAI_BASE_URL", "RAGLOOM_LLM"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    answer = rag.ask(QUESTION, k=3)
    assert (answer.provider, answer.model) == ("none", "extractive")
    assert answer.text.splitlines()[0].startswith("Milvus stores inserted data in object storage")
    assert answer.text.splitlines()[0].endswith("[1]")
    assert answer.citations[0].source.endswith("storage.md")
    assert answer.notes[0].startswith("extractive answer, no language model (no LLM key is set)")
    assert "export DEEPSEEK_API_KEY, LEPTONAI_TOKEN, GEMINI_API_KEY or" in answer.notes[0]


def test_extract_picks_matching_sentences() -> None:
    passages = [
        "# Title\n\nIntro text here. The proxy keeps ten rotated access logs by default.\n"
        "```\nmaxBackups: 10\n```",
        "Rotated files are deleted when [maxBackups](conf.md) is exceeded. Unrelated words.",
    ]
    text = extract("How many rotated access-log files does the proxy keep?", passages, 2)
    assert text.splitlines() == [
        "The proxy keeps ten rotated access logs by default. [1]",
        "Rotated files are deleted when maxBackups is exceeded. [2]",
    ]
    assert extract("zebra?", ["Nothing in common at all."]) == "Nothing in common at all. [1]"
    # QA: inline code marks were dropped, so the "quoted" sentence was not the document's.
    code = ["- Data lives in a Milvus Lite file, `./ragloom.db`, **by default**."]
    assert extract("Where does data live by default?", code) == (
        "Data lives in a Milvus Lite file, `./ragloom.db`, by default. [1]"
    )
    assert extract("q", []) == ""
    # QA: one file stored twice (zebra.md and bundle.zip::zebra.md) said each sentence twice.
    twice = ["Zebras have stripes. Zebras eat grass.", "zebras  have stripes. Zebras eat grass."]
    assert extract("What do zebras eat and have?", twice, 3).splitlines() == [
        "Zebras have stripes. [1]",
        "Zebras eat grass. [1]",
    ]
