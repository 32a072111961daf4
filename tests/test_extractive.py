"""Extractive answers (``--llm none``) chosen with the collection's own embedding model.

What a fresh machine gets: these run the bundled model on Milvus Lite, over the
project's own docs (what ``make demo`` asks) and the tutorials' FAQ pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragloom import RAG
from ragloom.llms.extractive import extract
from ragloom.testing import FakeEmbedder
from tests.conftest import FAQ_DIR

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def docs_rag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RAG]:
    """The project's docs folder, ingested with the defaults, as ``make demo`` does."""
    with RAG(uri=str(tmp_path_factory.mktemp("demo") / "demo.db")) as rag:
        assert rag.ingest(str(ROOT / "docs")).errors == []
        yield rag


def test_the_demo_question_is_answered_with_the_command(docs_rag: RAG) -> None:
    # QA: `make demo` asks this; the answer quoted where ragloom keeps its data and left
    # out the passage's own answer, the sentence giving --uri and the command after it.
    answer = docs_rag.ask("How do I point ragloom at a Milvus server?", llm="none")
    assert "Give a server URI instead of a file with `--uri`" in answer.text
    assert "ragloom ingest docs/ --uri http://localhost:19530" in answer.text
    block = answer.text.split("`--uri` (or `RAGLOOM_URI`", 1)[1]
    assert block.startswith(", or `uri` in `ragloom.toml`): [")  # the citation, then the code
    assert "\n```bash\nragloom ingest docs/" in block
    assert answer.citations and not answer.abstained


@pytest.mark.skipif(not FAQ_DIR.is_dir(), reason="../shared/corpus not present")
def test_sentences_are_chosen_by_meaning_with_the_bundled_model(tmp_path: Path) -> None:
    # From the development set, over the tutorials' FAQ pages: the answers share few
    # words with the questions ("reject" / "does not check"; "edited" / "modification").
    # Chosen by shared words alone, neither answer was quoted.
    asked = {
        "Will Milvus reject my insert if a row with the same ID is already in the collection?":
            "Milvus does not check if vector primary keys are duplicates.",
        "I edited the YAML config of a running Milvus but it keeps using the old values. Why?":
            "Milvus does not support modification to configuration files during runtime.",
    }  # fmt: skip
    with RAG(uri=str(tmp_path / "faq.db")) as rag:
        rag.ingest(str(FAQ_DIR))
        extractive = rag.get_llm("none")
        assert getattr(extractive, "embed", None) is not None  # the bundled model, in process
        for question, sentence in asked.items():
            assert sentence in rag.ask(question, llm="none").text


def test_a_remote_or_unknown_embedder_is_not_called_for_sentences(tmp_path: Path) -> None:
    # A paid API would be billed, and waited for, on every extractive answer.
    with RAG(uri=str(tmp_path / "fake.db"), embedder=FakeEmbedder()) as rag:
        assert getattr(rag.get_llm("none"), "embed", "missing") is None


def test_a_sentence_introducing_a_short_code_block_brings_it() -> None:
    passage = (
        "Install it with pip:\n\n```bash\npip install ragloom\n```\n\n"
        "Configure it with a file:\n\n```toml\n" + "key = 1\n" * 12 + "```\n\n"
        "Extras can be added with pip install later."
    )
    text = extract("How do I install and configure it?", [passage], 3)
    assert text.splitlines() == [
        "Install it with pip: [1]",
        "```bash",
        "pip install ragloom",
        "```",
        "Configure it with a file: [1]",  # a 12-line block is not quoted
        "Extras can be added with pip install later. [1]",
    ]
