"""The LLM providers: the real openai and google-genai SDKs against the loopback fakes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ragloom.errors import ConfigError, ProviderError
from ragloom.llms import (
    LLM,
    Completion,
    Message,
    Prompt,
    ProviderChoice,
    Reliability,
    choose_provider,
    llm_names,
    make_llm,
)
from ragloom.llms._retry import parse_retry_after
from ragloom.llms.gemini import GeminiLLM
from ragloom.llms.openai_compat import OpenAICompatLLM
from ragloom.testing import (
    Cut,
    FakeGeminiServer,
    FakeOpenAIServer,
    Hang,
    HttpError,
    Malformed,
    Reply,
)

pytest.importorskip("openai")
pytest.importorskip("google.genai")
pytestmark = pytest.mark.timeout(20)

PROVIDER_ENV = (
    "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", "LEPTONAI_TOKEN", "LEPTON_BASE_URL",
    "GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL",
    "RAGLOOM_LLM", "RAGLOOM_LLM_MODEL",
)  # fmt: skip
FAST = Reliability(read_timeout=5, deadline=8, retries=3, backoff=0.01)
PROMPT = Prompt(
    system="You are an AI assistant.",
    messages=(
        Message("user", "<context>\n[1] Milvus stores data in MinIO.\n</context>"),
        Message("assistant", "Noted."),
        Message("user", "<question>\nWhere is data stored?\n</question>"),
    ),
)


@pytest.fixture(autouse=True)
def no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def oai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(api_key="sk-right") as fake:
        yield fake


@pytest.fixture
def gem() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(api_key="g-right") as fake:
        yield fake


def deepseek(fake: FakeOpenAIServer, policy: Reliability = FAST, **kw: str) -> OpenAICompatLLM:
    return OpenAICompatLLM(
        "deepseek", base_url=fake.base_url, api_key=kw.get("key", "sk-right"), reliability=policy
    )


def gemini(fake: FakeGeminiServer, policy: Reliability = FAST, key: str = "g-right") -> GeminiLLM:
    return GeminiLLM(base_url=fake.base_url, api_key=key, reliability=policy)


def drain(llm: LLM) -> tuple[list[str], Completion]:
    pieces, final = [], None
    for item in llm.stream(PROMPT):
        if isinstance(item, Completion):
            final = item
        else:
            pieces.append(item)
    assert final is not None
    return pieces, final


# -- what each provider receives ---------------------------------------------------------


def test_deepseek_request_and_answer(oai: FakeOpenAIServer) -> None:
    oai.enqueue("Data is stored in MinIO [1].")
    llm = deepseek(oai)
    assert isinstance(llm, LLM) and (llm.provider, llm.model) == ("deepseek", "deepseek-flash")
    done = llm.complete(PROMPT)
    assert done.text == "Data is stored in MinIO [1]."
    assert (
        done.usage["total_tokens"] == done.usage["prompt_tokens"] + done.usage["completion_tokens"]
    )
    body = oai.last_request.body
    assert body["model"] == "deepseek-flash"
    assert body["thinking"] == {"type": "disabled"}  # DeepSeek's thinking mode is off
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][0]["content"] == "You are an AI assistant."
    assert oai.last_request.headers["authorization"] == "Bearer sk-right"
    assert oai.last_request.headers["x-stainless-retry-count"] == "0"  # SDK retries are off


def test_deepseek_stream_skips_keep_alives(oai: FakeOpenAIServer) -> None:
    text = "Milvus keeps inserted data in object storage such as MinIO [1]."
    oai.enqueue(Reply(text))
    pieces, final = drain(deepseek(oai))
    assert len(pieces) > 5 and "".join(pieces) == text == final.text
    assert final.finish_reason == "stop" and final.usage["completion_tokens"] > 0
    assert oai.last_request.stream
    assert oai.last_request.body["stream_options"] == {"include_usage": True}


def test_preset_urls_keys_and_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEPTONAI_TOKEN", "lt")
    lepton = make_llm("lepton")
    assert lepton.model == "mistral-7b"
    assert lepton.base_url == "https://mistral-7b.lepton.run/api/v1/"  # type: ignore[attr-defined]
    assert make_llm("lepton", "llama3-8b").base_url.startswith("https://llama3-8b.")  # type: ignore[attr-defined]
    monkeypatch.setenv("DEEPSEEK_API_KEY", "d")
    assert make_llm("deepseek").base_url == "https://api.deepseek.com"  # type: ignore[attr-defined]
    monkeypatch.setenv("DEEPSEEK_BASE_URL", "http://127.0.0.1:9/v1")
    assert make_llm("deepseek").base_url == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]
    # A local OpenAI-compatible server (Ollama, vLLM) needs no key.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    assert make_llm("openai", "llama3.2").model == "llama3.2"
    assert make_llm("none").provider == "none"


@pytest.mark.parametrize(
    ("name", "variable"),
    [("deepseek", "DEEPSEEK_API_KEY"), ("lepton", "LEPTONAI_TOKEN"),
     ("openai", "OPENAI_API_KEY"), ("gemini", "GEMINI_API_KEY")],
)  # fmt: skip
def test_missing_key_names_its_variable(name: str, variable: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable} is not set: export it, or pass llm='none'"):
        make_llm(name)


def test_lepton_against_a_fake_lepton_url(oai: FakeOpenAIServer) -> None:
    llm = OpenAICompatLLM(
        "lepton", base_url=f"{oai.url}/api/v1/", api_key="sk-right", reliability=FAST
    )
    oai.enqueue("Mistral says hi.")
    assert llm.complete(PROMPT).text == "Mistral says hi."
    assert oai.last_request.path == "/api/v1/chat/completions"
    assert oai.last_request.body["model"] == "mistral-7b"
    assert "thinking" not in oai.last_request.body


def test_gemini_request_and_stream(gem: FakeGeminiServer) -> None:
    gem.enqueue("Stored in MinIO [1].", Reply("Stored in object storage [1]."))
    llm = gemini(gem)
    assert (llm.provider, llm.model) == ("gemini", "gemini-3.5-flash-lite")
    done = llm.complete(PROMPT)
    assert done.text == "Stored in MinIO [1]." and done.usage["total_tokens"] > 0
    req = gem.last_request
    assert req.path.endswith("/models/gemini-3.5-flash-lite:generateContent")
    assert req.body["systemInstruction"]["parts"] == [{"text": "You are an AI assistant."}]
    assert [c["role"] for c in req.body["contents"]] == ["user", "model", "user"]
    assert "<question>" in req.body["contents"][2]["parts"][0]["text"]
    pieces, final = drain(llm)
    assert len(pieces) > 3 and final.text == "Stored in object storage [1]."
    assert gem.last_request.query == {"alt": "sse"}
    assert gem.system_instructions() == ["You are an AI assistant."] * 2


# -- faults --------------------------------------------------------------------------------


def test_429_with_retry_after_then_success(oai: FakeOpenAIServer, gem: FakeGeminiServer) -> None:
    oai.enqueue(HttpError(429, retry_after=0.2), "ok")
    started = time.monotonic()
    assert deepseek(oai).complete(PROMPT).text == "ok"
    assert time.monotonic() - started >= 0.2  # Retry-After was honoured
    assert len(oai.requests_to("chat")) == 2
    gem.enqueue(HttpError(429, retry_after=0.2), "ok")
    started = time.monotonic()
    assert gemini(gem).complete(PROMPT).text == "ok"
    assert time.monotonic() - started >= 0.2
    assert len(gem.requests_to("generate")) == 2


def test_500_twice_then_success(oai: FakeOpenAIServer, gem: FakeGeminiServer) -> None:
    oai.enqueue(HttpError(500), HttpError(503), Reply("fine"))
    _, final = drain(deepseek(oai))
    assert final.text == "fine" and len(oai.requests_to("chat")) == 3
    gem.enqueue(HttpError(500), HttpError(500), "fine")
    assert gemini(gem).complete(PROMPT).text == "fine"


def test_retries_run_out_with_a_clear_message(oai: FakeOpenAIServer) -> None:
    oai.enqueue(*[HttpError(503)] * 3)
    policy = Reliability(deadline=5, retries=2, backoff=0.01)
    with pytest.raises(ProviderError, match=r"failed with HTTP 503: .*\(after 3 attempts\)"):
        deepseek(oai, policy).complete(PROMPT)
    oai.enqueue(HttpError(429, retry_after=30))
    with pytest.raises(ProviderError, match=r"rate limited \(429.*no time left to retry"):
        deepseek(oai, policy).complete(PROMPT)


@pytest.mark.parametrize("streaming", [False, True])
def test_hang_ends_by_the_deadline(
    oai: FakeOpenAIServer, gem: FakeGeminiServer, streaming: bool
) -> None:
    policy = Reliability(read_timeout=60, deadline=1.0, retries=3, backoff=0.01)
    for llm, fake in ((deepseek(oai, policy), oai), (gemini(gem, policy), gem)):
        fake.enqueue(Hang())
        started = time.monotonic()
        with pytest.raises(ProviderError, match=r"did not answer within the 1s deadline"):
            drain(llm) if streaming else llm.complete(PROMPT)
        assert time.monotonic() - started < 2.5


def test_401_names_the_key_variable(oai: FakeOpenAIServer, gem: FakeGeminiServer) -> None:
    with pytest.raises(ConfigError, match=r"rejected the API key \(401.*check DEEPSEEK_API_KEY"):
        deepseek(oai, key="sk-wrong").complete(PROMPT)
    assert len(oai.requests) == 1  # not retried
    with pytest.raises(ConfigError, match=r"rejected the API key \(400.*check GEMINI_API_KEY"):
        gemini(gem, key="g-wrong").complete(PROMPT)


def test_a_rejected_google_api_key_is_named(
    gem: FakeGeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only GOOGLE_API_KEY is set: that is the variable the user has to fix."""
    monkeypatch.setenv("GOOGLE_API_KEY", "g-wrong")
    with pytest.raises(ConfigError, match=r"rejected the API key") as info:
        GeminiLLM(base_url=gem.base_url, reliability=FAST).complete(PROMPT)
    assert "check GOOGLE_API_KEY, or pass llm='none'" in str(info.value)
    assert gem.last_request.headers["x-goog-api-key"] == "g-wrong"


@pytest.mark.parametrize("pasted", ["\u201csk-right\u201d", "sk-right extra", "sk-r\u00efght"])
def test_a_key_pasted_with_quotes_or_spaces_is_named_before_any_request(
    oai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, pasted: str
) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", pasted)
    monkeypatch.setenv("DEEPSEEK_BASE_URL", oai.base_url)
    with pytest.raises(ConfigError, match=r"DEEPSEEK_API_KEY contains .*cannot have") as info:
        make_llm("deepseek", reliability=FAST).complete(PROMPT)
    assert "sk-r" not in str(info.value) and oai.requests == []


def test_402_says_there_is_no_balance(oai: FakeOpenAIServer, gem: FakeGeminiServer) -> None:
    oai.enqueue(HttpError(402, "Insufficient Balance"))
    with pytest.raises(ProviderError, match=r"DeepSeek says the account has no balance") as info:
        deepseek(oai).complete(PROMPT)
    assert "platform.deepseek.com/top_up" in str(info.value)
    gem.enqueue(HttpError(402, "billing required"))  # it said "failed with HTTP 402: HTTP 402"
    with pytest.raises(ProviderError, match=r"Gemini says the account has no balance \(402"):
        gemini(gem).complete(PROMPT)


def test_stream_cut_mid_way(oai: FakeOpenAIServer, gem: FakeGeminiServer) -> None:
    for llm, fake in ((deepseek(oai), oai), (gemini(gem), gem)):
        fake.enqueue(Cut(after=3))
        shown = []
        with pytest.raises(ProviderError, match=r"dropped the connection mid-answer.*incomplete"):
            for item in llm.stream(PROMPT):
                shown.append(item)
        assert shown and all(isinstance(s, str) for s in shown)
        fake.reset()


def test_a_model_silent_mid_answer_names_the_read_timeout(
    oai: FakeOpenAIServer, gem: FakeGeminiServer
) -> None:
    # QA: "went silent mid-answer" said neither which timeout ended it nor how to give a
    # slow model (Ollama on a CPU) more time; the answer that had not started said both.
    slow = Reliability(read_timeout=0.5, deadline=8, retries=3, backoff=0.01)
    for llm, fake in ((deepseek(oai, slow), oai), (gemini(gem, slow), gem)):
        fake.enqueue(Cut(after=2, stall=True))
        shown = []
        with pytest.raises(ProviderError) as info:
            for item in llm.stream(PROMPT):
                shown.append(item)
        assert shown, "the first words arrived before the silence"
        assert "went silent for the 0.5s read timeout mid-answer" in str(info.value)
        assert "raise RAGLOOM_LLM_READ_TIMEOUT" in str(info.value)
        fake.reset()


def test_cut_before_any_text_is_retried(oai: FakeOpenAIServer) -> None:
    oai.enqueue(Cut(), Reply("whole"))
    assert deepseek(oai).complete(PROMPT).text == "whole"
    assert len(oai.requests_to("chat")) == 2


@pytest.mark.parametrize("body", ['{"choices": [ not json', ""])
def test_malformed_response_is_a_clear_error(oai: FakeOpenAIServer, body: str) -> None:
    oai.enqueue(Malformed(body))
    with pytest.raises(ProviderError, match="sent a malformed response"):
        deepseek(oai).complete(PROMPT)


def test_empty_answer_is_a_clear_error(oai: FakeOpenAIServer, gem: FakeGeminiServer) -> None:
    oai.enqueue(Reply(""))
    with pytest.raises(ProviderError, match="sent an empty answer"):
        deepseek(oai).complete(PROMPT)
    gem.enqueue(Reply("", finish_reason="SAFETY"))
    with pytest.raises(ProviderError, match="declined to answer"):
        gemini(gem).complete(PROMPT)


def test_unknown_model_is_a_config_error(oai: FakeOpenAIServer, gem: FakeGeminiServer) -> None:
    oai.enqueue(HttpError(404))
    with pytest.raises(ConfigError, match=r"was not found \(404.*check model .*DEEPSEEK_BASE_URL"):
        deepseek(oai).complete(PROMPT)
    gem.enqueue(HttpError(404))
    with pytest.raises(ConfigError, match=r"was not found \(404.*check model .*GEMINI_BASE_URL"):
        gemini(gem).complete(PROMPT)


# -- choosing a provider -------------------------------------------------------------------


def test_choose_provider_order_and_reasons() -> None:
    assert llm_names() == ("deepseek", "lepton", "gemini", "openai", "none")
    none = choose_provider(environ={})
    assert none == ProviderChoice("none", "no LLM key is set")
    env = {"OPENAI_API_KEY": "o", "GEMINI_API_KEY": "g"}
    assert choose_provider(environ=env) == ProviderChoice("gemini", "GEMINI_API_KEY is set")
    local = choose_provider(environ={"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"})
    assert local.name == "openai" and "local server" in local.reason
    assert choose_provider("Lepton", environ=env).name == "lepton"
    with pytest.raises(ConfigError, match="llm='claude': use one of deepseek, lepton"):
        choose_provider("claude")


def test_parse_retry_after() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None
