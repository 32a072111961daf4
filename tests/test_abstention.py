"""Which words of a question count as names, and when an unknown one stops an answer."""

from __future__ import annotations

import pytest

from ragloom.abstention import Coverage, names_in, unknown_names


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("What is the URL of the Milvus GraphQL endpoint?", ["URL", "Milvus", "GraphQL"]),
        ("How do I back up my iPhone?", ["iPhone"]),
        ("Can I run it on a Nintendo Switch?", ["Nintendo", "Switch"]),
        # a capital that only starts a sentence is not a name
        ("Does it scale? Which setting matters?", []),
        ("Is a paid license required?", []),
        # values and identifiers with digits or underscores are not names
        ("Can I call a collection 2024_products or Col2?", []),
        ("Does it run on RISC-V?", ["RISC-V"]),
        ('He said "Hello" then left.', []),
    ],
)
def test_names_in_a_question(question: str, names: list[str]) -> None:
    assert names_in(question) == names


def test_a_name_is_unknown_only_when_none_of_its_parts_occurs() -> None:
    known = {"milvus", "risc"}

    def occurs(word: str) -> bool:
        return word.lower() in known

    assert unknown_names("Does Milvus speak GraphQL over RISC-V?", occurs) == ("GraphQL",)
    assert unknown_names("Does Milvus run on ARM-V8?", occurs) == ()  # digits: a value


def test_coverage_says_why_it_declines() -> None:
    weak = Coverage(relevance=0.2, threshold=0.28)
    assert weak.abstain and weak.reason == "retrieval"
    assert "0.200, below the abstain threshold 0.280" in (weak.note() or "")
    named = Coverage(relevance=0.6, threshold=0.28, unknown_names=("GraphQL", "SMS"))
    assert named.abstain and named.reason == "unknown_names"
    assert named.note() == "the documents never mention 'GraphQL' or 'SMS'"
    fine = Coverage(relevance=0.6, threshold=0.28)
    assert not fine.abstain and fine.reason is None and fine.note() is None
    assert Coverage(relevance=None, threshold=None, found=False).abstain
