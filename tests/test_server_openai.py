"""The OpenAI-compatible face, driven by the real ``openai`` client.

Behind ragloom the model is ``FakeOpenAIServer`` (the real SDK over loopback HTTP), so a
chat client talks to ragloom, which talks to a "provider": the test checks both ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ragloom.testing import FakeOpenAIServer, HttpError
from tests.server_helpers import ANSWER, LICENSE_FAQ, QUESTION, STORAGE_FAQ, ingest, running_server

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(answer=ANSWER) as fake:
        yield fake


@pytest.fixture(scope="module")
def ragloom_url(
    tmp_path_factory: pytest.TempPathFactory, provider: FakeOpenAIServer
) -> Iterator[str]:
    import httpx

    from ragloom.llms.openai_compat import OpenAICompatLLM

    llm = OpenAICompatLLM("openai", "gpt-4o-mini", api_key="sk-fake", base_url=provider.base_url)
    db = tmp_path_factory.mktemp("openai-face") / "ragloom.db"
    with running_server(db, llm=llm) as url, httpx.Client(base_url=url) as client:
        assert (
            ingest(client, {"storage.md": STORAGE_FAQ, "license.md": LICENSE_FAQ})["status"]
            == "done"
        )
        yield url


@pytest.fixture
def client(ragloom_url: str) -> Any:
    return openai.OpenAI(base_url=f"{ragloom_url}/v1", api_key="unused", max_retries=0)


def test_models_lists_ragloom(client: Any) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["ragloom"]
    assert client.models.retrieve("ragloom").owned_by == "ragloom"


def test_a_chat_completion_answers_from_the_documents_with_citations(
    client: Any, provider: FakeOpenAIServer
) -> None:
    completion = client.chat.completions.create(
        model="ragloom", messages=[{"role": "user", "content": QUESTION}]
    )
    content = completion.choices[0].message.content
    assert content.startswith(ANSWER)
    assert content.endswith(
        "\n\nSources:\n[1] storage.md › Storage FAQ > Where does Milvus store data?"
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "ragloom"
    citations = completion.model_extra["citations"]
    assert [(c["n"], c["name"]) for c in citations] == [(1, "storage.md")]
    assert "MinIO" in citations[0]["text"]
    assert completion.model_extra["ragloom"]["provider"] == "openai"
    assert completion.usage.total_tokens > 0
    # What the provider behind ragloom was asked: ragloom's prompt, with the passage.
    asked = provider.requests_to("chat")[-1]
    assert asked.body["model"] == "gpt-4o-mini" and asked.body.get("stream") is not True
    user = provider.chat_texts()[-1]
    assert "<context>" in user and "[1] (storage.md › Storage FAQ" in user
    assert f"<question>\n{QUESTION}\n</question>" in user


def test_a_streamed_chat_completion_in_openai_chunks(
    client: Any, provider: FakeOpenAIServer
) -> None:
    stream = client.chat.completions.create(
        model="ragloom", messages=[{"role": "user", "content": QUESTION}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    text = "".join(pieces)
    assert text.startswith(ANSWER) and "Sources:\n[1] storage.md" in text
    assert len([p for p in pieces if p]) > 5  # token by token, not one block
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finals) == 1
    assert finals[0].model_extra["citations"][0]["name"] == "storage.md"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    # OpenAI sends "usage": null on every earlier chunk when usage is asked for.
    assert all("usage" in c.model_fields_set and c.usage is None for c in chunks[:-1])
    assert provider.requests_to("chat")[-1].body["stream"] is True


def test_the_raw_stream_ends_with_done(ragloom_url: str) -> None:
    import httpx

    body = {"model": "ragloom", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    response = httpx.post(f"{ragloom_url}/v1/chat/completions", json=body, timeout=30)
    events = [e for e in response.text.split("\n\n") if e.strip()]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert '"object": "chat.completion.chunk"' in events[0]


def test_earlier_turns_make_a_follow_up_understood(client: Any, provider: FakeOpenAIServer) -> None:
    provider.enqueue("Is Milvus free of charge?", "Yes: Milvus is free and open source [1].")
    completion = client.chat.completions.create(
        model="ragloom",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": ANSWER + "\n\nSources:\n[1] storage.md"},
            {"role": "user", "content": [{"type": "text", "text": "And is it free?"}]},
        ],
    )
    assert completion.model_extra["ragloom"]["searched_for"] == "Is Milvus free of charge?"
    assert completion.model_extra["citations"][0]["name"] == "license.md"
    rewrite = provider.chat_texts()[-2]
    assert "And is it free?" in rewrite and "Sources:" not in rewrite


def test_an_unknown_model_is_404(client: Any) -> None:
    with pytest.raises(openai.NotFoundError, match="use 'ragloom'"):
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": QUESTION}]
        )


def test_a_provider_failure_reaches_the_client_as_an_error(
    client: Any, provider: FakeOpenAIServer
) -> None:
    provider.enqueue(HttpError(401))
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(
            model="ragloom", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
    assert info.value.status_code == 502
    assert "OPENAI_API_KEY" in info.value.message


def test_a_question_over_the_length_limit_is_400_before_any_work(
    client: Any, provider: FakeOpenAIServer
) -> None:
    # as POST /v1/ask refuses questions over 8000 characters: one of 750,000 ran for hours
    asked = len(provider.requests)
    with pytest.raises(openai.BadRequestError, match="over the limit of 8000") as info:
        client.chat.completions.create(
            model="ragloom", messages=[{"role": "user", "content": "Where is it? " * 700}]
        )
    assert info.value.status_code == 400
    assert len(provider.requests) == asked  # the model was not asked
