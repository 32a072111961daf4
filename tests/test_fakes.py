"""The fake provider servers, driven by the real openai and google-genai SDKs over loopback."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ragloom.embedders._remote import is_transport_error
from ragloom.testing import (
    DEFAULT_ANSWER,
    Cut,
    FakeEmbedder,
    FakeGeminiServer,
    FakeOpenAIServer,
    Hang,
    HttpError,
    Malformed,
    Reply,
    hashed_embedding,
)

openai = pytest.importorskip("openai")
genai = pytest.importorskip("google.genai")
from google.genai import errors as genai_errors  # noqa: E402
from google.genai import types as genai_types  # noqa: E402

pytestmark = pytest.mark.timeout(10)
MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def oai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(embedding_dim=32) as fake:
        yield fake


@pytest.fixture
def gem() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(embedding_dim=32) as fake:
        yield fake


def client(fake: FakeOpenAIServer, **kwargs: Any) -> Any:
    return openai.OpenAI(base_url=fake.base_url, api_key="sk-test", **kwargs)


def gclient(fake: FakeGeminiServer, **options: Any) -> Any:
    http = genai_types.HttpOptions(base_url=fake.base_url, **options)
    return genai.Client(api_key="g-test", http_options=http)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


# -- OpenAI ----------------------------------------------------------------------------


def test_chat_completion_json(oai: FakeOpenAIServer) -> None:
    oai.enqueue("Paris.")
    r = client(oai).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == "Paris."
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.total_tokens > 0
    req = oai.last_request
    assert (req.method, req.path, req.kind) == ("POST", "/v1/chat/completions", "chat")
    assert req.body["model"] == "gpt-4o-mini"
    assert req.headers["authorization"] == "Bearer sk-test"
    assert oai.chat_texts() == ["What is the capital of France?"]


def test_default_answer_when_queue_is_empty() -> None:
    with FakeOpenAIServer(answer=lambda req: f"echo: {req.body['messages'][-1]['content']}") as f:
        r = client(f).chat.completions.create(model="m", messages=MESSAGES)
        assert r.choices[0].message.content == "echo: What is the capital of France?"
    with FakeOpenAIServer() as f:
        r = client(f).chat.completions.create(model="m", messages=MESSAGES)
        assert r.choices[0].message.content == DEFAULT_ANSWER


def test_stream_with_keep_alive_comments_is_parsed(oai: FakeOpenAIServer) -> None:
    text = "The capital of France is Paris."
    oai.enqueue(Reply(text))
    stream = client(oai).chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    deltas, finishes, usage = [], [], None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.choices:
            deltas.append(chunk.choices[0].delta.content or "")
            finishes.append(chunk.choices[0].finish_reason)
        else:
            usage = chunk.usage
    assert "".join(deltas) == text
    assert len(deltas) > 3  # really streamed in pieces
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert usage is not None and usage.completion_tokens > 0
    assert oai.last_request.stream


def test_stream_wire_format_has_keep_alives_and_done(oai: FakeOpenAIServer) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    raw = httpx.post(f"{oai.base_url}/chat/completions", json=body).text
    assert raw.startswith(": keep-alive\n\n")
    assert "\n\n\ndata: " in raw  # a stray blank line between events
    assert raw.endswith("data: [DONE]\n\n")


def test_rate_limit_with_retry_after_then_success(oai: FakeOpenAIServer) -> None:
    # The SDK retries 429 itself (max_retries=2 by default), sleeping for Retry-After
    # when it is between 0 and 120 s, otherwise 0.5 s * 2^n with jitter.
    oai.enqueue(HttpError(429, retry_after=0.01), "Paris.")
    r = client(oai).chat.completions.create(model="m", messages=MESSAGES)
    assert r.choices[0].message.content == "Paris."
    chats = oai.requests_to("chat")
    assert len(chats) == 2
    assert chats[1].headers["x-stainless-retry-count"] == "1"


def test_rate_limit_error_has_openai_shape(oai: FakeOpenAIServer) -> None:
    oai.enqueue(HttpError(429, retry_after=3))
    with pytest.raises(openai.RateLimitError) as info:
        client(oai, max_retries=0).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "3"
    assert info.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]


def test_hang_times_out_and_the_fake_keeps_serving(oai: FakeOpenAIServer) -> None:
    oai.enqueue(Hang())
    with pytest.raises(openai.APITimeoutError):
        client(oai, max_retries=0, timeout=0.3).chat.completions.create(
            model="m", messages=MESSAGES
        )
    r = client(oai).chat.completions.create(model="m", messages=MESSAGES)
    assert r.choices[0].message.content == DEFAULT_ANSWER


def test_cut_stream_raises_mid_way(oai: FakeOpenAIServer) -> None:
    oai.enqueue(Cut(after=2))
    stream = client(oai, max_retries=0).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    )
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 2


def test_cut_json_and_malformed_bodies_raise(oai: FakeOpenAIServer) -> None:
    c = client(oai, max_retries=0)
    oai.enqueue(Cut())
    with pytest.raises(openai.APIConnectionError):
        c.chat.completions.create(model="m", messages=MESSAGES)
    for body in ('{"choices": [', ""):
        oai.enqueue(Malformed(body))
        with pytest.raises(ValueError):  # the SDK lets json.JSONDecodeError through
            c.chat.completions.create(model="m", messages=MESSAGES)


def test_embeddings_via_sdk_are_hashed_bag_of_words(oai: FakeOpenAIServer) -> None:
    texts = ["milvus vector database", "a vector database called milvus", "baking bread"]
    r = client(oai).embeddings.create(model="text-embedding-3-small", input=texts)
    assert oai.last_request.body["encoding_format"] == "base64"  # the SDK's default
    vectors = [d.embedding for d in r.data]
    assert [d.index for d in r.data] == [0, 1, 2]
    for text, vec in zip(texts, vectors, strict=True):
        assert vec == pytest.approx(hashed_embedding(text, 32), abs=1e-6)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    r = client(oai).embeddings.create(
        model="text-embedding-3-small", input="x", dimensions=8, encoding_format="float"
    )
    assert len(r.data[0].embedding) == 8


def test_errors_can_be_pinned_to_an_endpoint(oai: FakeOpenAIServer) -> None:
    oai.enqueue(HttpError(500), endpoint="embeddings")
    c = client(oai, max_retries=0)
    assert c.chat.completions.create(model="m", messages=MESSAGES).choices
    with pytest.raises(openai.InternalServerError):
        c.embeddings.create(model="e", input="x")
    assert oai.pending == 0


def test_models_prefixes_and_api_key() -> None:
    with FakeOpenAIServer(api_key="sk-right") as fake:
        with pytest.raises(openai.AuthenticationError) as info:
            client(fake).chat.completions.create(model="m", messages=MESSAGES)
        assert info.value.body["code"] == "invalid_api_key"  # type: ignore[index]
        # A Lepton-style base URL: any prefix before /chat/completions is served.
        lepton = openai.OpenAI(base_url=f"{fake.url}/api/v1/", api_key="sk-right")
        assert lepton.chat.completions.create(model="m", messages=MESSAGES).choices
        assert fake.last_request.path == "/api/v1/chat/completions"
        ids = [m.id for m in lepton.models.list()]
        assert "gpt-4o-mini" in ids


def test_unknown_path_is_404(oai: FakeOpenAIServer) -> None:
    r = httpx.post(f"{oai.base_url}/completions", json={})
    assert r.status_code == 404
    assert "error" in r.json()


# -- Gemini ----------------------------------------------------------------------------


def test_generate_content_with_system_instruction(gem: FakeGeminiServer) -> None:
    gem.enqueue("Paris.")
    config = genai_types.GenerateContentConfig(system_instruction="Answer in one word.")
    c = gclient(gem)  # keep a reference: a collected genai.Client closes its HTTP client
    r = c.models.generate_content(
        model="gemini-2.0-flash", contents="Capital of France?", config=config
    )
    assert r.text == "Paris."
    assert r.candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert r.usage_metadata.total_token_count > 0
    req = gem.last_request
    assert req.path.endswith("/models/gemini-2.0-flash:generateContent")
    assert req.body["systemInstruction"]["parts"] == [{"text": "Answer in one word."}]
    assert req.body["contents"][0]["parts"] == [{"text": "Capital of France?"}]
    assert req.headers["x-goog-api-key"] == "g-test"
    assert gem.system_instructions() == ["Answer in one word."]


def test_generate_content_stream(gem: FakeGeminiServer) -> None:
    text = "The capital of France is Paris."
    gem.enqueue(Reply(text))
    c = gclient(gem)
    chunks = list(c.models.generate_content_stream(model="gemini-2.0-flash", contents="Capital?"))
    assert "".join(c.text for c in chunks) == text
    assert len(chunks) > 3
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert gem.last_request.query == {"alt": "sse"}
    assert gem.last_request.path.endswith(":streamGenerateContent")


def test_gemini_errors_have_google_shape(gem: FakeGeminiServer) -> None:
    gem.enqueue(HttpError(429))
    c = gclient(gem)
    with pytest.raises(genai_errors.ClientError) as info:
        c.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert (info.value.code, info.value.status) == (429, "RESOURCE_EXHAUSTED")


def test_gemini_retry_then_success(gem: FakeGeminiServer) -> None:
    gem.enqueue(HttpError(503), "ok")
    retry = genai_types.HttpRetryOptions(attempts=2, initial_delay=0.01, jitter=0.01)
    c = gclient(gem, retry_options=retry)
    r = c.models.generate_content(model="g", contents="hi")
    assert r.text == "ok"
    assert len(gem.requests_to("generate")) == 2


def test_gemini_cut_stream_and_hang(gem: FakeGeminiServer) -> None:
    # google-genai lets its HTTP client's (httpx or httpx2) exceptions through.
    gem.enqueue(Cut(after=1))
    received = []
    c = gclient(gem)
    with pytest.raises(Exception) as info:
        for chunk in c.models.generate_content_stream(model="g", contents="hi"):
            received.append(chunk)
    assert is_transport_error(info.value)
    assert len(received) == 1
    gem.enqueue(Hang())
    c = gclient(gem, timeout=300)  # milliseconds
    with pytest.raises(Exception) as info:
        c.models.generate_content(model="g", contents="hi")
    assert is_transport_error(info.value) and "Timeout" in type(info.value).__name__


def test_gemini_embed_shapes(gem: FakeGeminiServer) -> None:
    c = gclient(gem)
    r = c.models.embed_content(
        model="text-embedding-004",
        contents=["alpha beta", "gamma"],
        config=genai_types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT"),
    )
    assert [e.values for e in r.embeddings] == [
        pytest.approx(hashed_embedding("alpha beta", 32)),
        pytest.approx(hashed_embedding("gamma", 32)),
    ]
    body = gem.last_request.body
    assert gem.last_request.path.endswith("/models/text-embedding-004:batchEmbedContents")
    assert body["requests"][0] == {
        "content": {"parts": [{"text": "alpha beta"}], "role": "user"},
        "taskType": "RETRIEVAL_DOCUMENT",
        "model": "models/text-embedding-004",
    }
    single = httpx.post(
        f"{gem.url}/v1beta/models/text-embedding-004:embedContent",
        json={"content": {"parts": [{"text": "gamma"}]}, "outputDimensionality": 4},
    ).json()
    assert len(single["embedding"]["values"]) == 4


def test_gemini_stream_wire_format(gem: FakeGeminiServer) -> None:
    url = f"{gem.url}/v1beta/models/g:streamGenerateContent?alt=sse"
    raw = httpx.post(url, json={"contents": [{"parts": [{"text": "hi"}]}]}).text
    events = [e for e in raw.split("\r\n\r\n") if e]
    assert all(e.startswith("data: ") for e in events)
    last = json.loads(events[-1].removeprefix("data: "))
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert set(last["usageMetadata"]) == {
        "promptTokenCount",
        "candidatesTokenCount",
        "totalTokenCount",
    }


# -- FakeEmbedder and lifecycle --------------------------------------------------------


def test_fake_embedder_is_deterministic_and_counts() -> None:
    emb = FakeEmbedder(dim=16)
    a = emb.embed(["hello world", "hello there"])
    b = emb.embed(["hello world"], input_type="query")
    assert a[0] == b[0]
    assert all(len(v) == 16 and math.isclose(cosine(v, v), 1.0) for v in a)
    assert (emb.calls, emb.texts_embedded) == (2, 3)
    assert emb.batches[1] == ("query", ["hello world"])
    assert emb.embed([""])[0][0] == 1.0  # never a zero vector


def test_stop_releases_a_hung_request_and_is_idempotent() -> None:
    fake = FakeOpenAIServer().start()
    fake.enqueue(Hang())
    c = client(fake, max_retries=0, timeout=5)
    threading.Timer(0.2, fake.stop).start()
    with pytest.raises(openai.APIConnectionError):
        c.chat.completions.create(model="m", messages=MESSAGES)
    fake.stop()
    with pytest.raises(RuntimeError):
        _ = fake.url
