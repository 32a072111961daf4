"""Which words of a question count as names, and when an unknown one stops an answer."""

from __future__ import annotations

import time

import pytest

from ragloom.abstention import Coverage, absent_names, names_in, unknown_names


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


def test_names_in_a_long_question_take_linear_time() -> None:
    # each word used to search the whole text before it: 200,000 characters took minutes
    question = "Where does Milvus store data? It is in MinIO. " * 4_000 + "And GraphQL?"
    started = time.perf_counter()
    assert names_in(question) == ["Milvus", "MinIO", "GraphQL"]
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("(Milvus)", []),
        ('"Milvus"', []),
        ("\u201cMilvus\u201d", []),
        ('Really?  "Milvus" too', []),
        ("A list:\n\tMilvus", []),
        ("She said \u2018\nMilvus", []),
        ("  Milvus", ["Milvus"]),
        ("it is Milvus", ["Milvus"]),
        ('it is " Milvus', ["Milvus"]),
    ],
)
def test_a_capital_after_a_sentence_end_or_an_opening_quote_is_not_a_name(
    question: str, names: list[str]
) -> None:
    assert names_in(question) == names


@pytest.mark.parametrize(
    ("question", "names"),
    [
        # QA: declined as "the documents never mention 'pgAdmin'" / "... 'Intel', 'AMD',
        # 'IBM', 'POWER' or 'RISC-V'"; both are answered in the Milvus docs.
        ("Is there a GUI, something like pgAdmin for Postgres, to manage Milvus?",
         ["GUI", "Milvus"]),
        ("Can I install Milvus on a server whose processor is not Intel/AMD, for example "
         "an IBM POWER or RISC-V box?", ["Milvus"]),
        ("Does the new row replace the old one like an UPDATE in SQL would?", []),
        ("Which brokers, e.g. Pulsar or Kafka, does it use? And Redis?", ["Redis"]),
        ("Can I stream from RabbitMQ instead of Kafka. Or Redis?", ["RabbitMQ", "Redis"]),
        # what is asked about stays a name
        ("I'd like to query Milvus with GraphQL", ["Milvus", "GraphQL"]),
        ("I would like GraphQL", ["GraphQL"]),
        ("Does Milvus not support GraphQL?", ["Milvus", "GraphQL"]),
    ],
)  # fmt: skip
def test_names_given_as_examples_or_contrasts_are_not_what_is_asked(
    question: str, names: list[str]
) -> None:
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
    elsewhere = Coverage(relevance=0.6, threshold=0.28, absent_names=("Excel",))
    assert elsewhere.abstain and elsewhere.reason == "absent_names"
    assert elsewhere.note() == "none of the passages found mentions 'Excel'"
    fine = Coverage(relevance=0.6, threshold=0.28)
    assert not fine.abstain and fine.reason is None and fine.note() is None
    assert Coverage(relevance=None, threshold=None, found=False).abstain


def test_a_name_none_of_the_passages_mentions_is_absent() -> None:
    passages = ["Storage > Buckets\nMilvus keeps its Partitions in MinIO buckets.", "Etcd"]
    question = "Can Milvus copy MinIO partitions to Microsoft Excel?"
    assert absent_names(question, passages) == ("Microsoft", "Excel")
    # word forms meet (stems), headings count, case does not matter
    assert absent_names("Are Buckets and PARTITION-keys in ETCD?", passages) == ()
    # acronyms in capitals are used in passing for generic things; names already
    # reported as unknown to the documents are not reported twice
    assert absent_names("Does the ID or SQL of Milvus matter?", passages) == ()
    assert absent_names("Which IDs can I give my GPUs?", passages) == ()  # plural acronyms
    assert absent_names("Does Milvus speak GraphQL?", passages, skip=("GraphQL",)) == ()
    # a capitalised stop word says nothing
    assert absent_names("Is it in The MinIO bucket?", passages) == ()
