"""OpenAIEmbedder and GeminiEmbedder: the real SDKs against the loopback fakes."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragloom.embedders.base import Embedder
from ragloom.embedders.cache import CachingEmbedder, EmbeddingCache
from ragloom.embedders.gemini_embedder import GeminiEmbedder
from ragloom.embedders.openai_embedder import OpenAIEmbedder
from ragloom.errors import (
    ConfigError,
    EmbedderError,
    MissingDependencyError,
    ProviderError,
)
from ragloom.testing import FakeGeminiServer, FakeOpenAIServer, Hang, HttpError, hashed_embedding

pytest.importorskip("openai")
pytest.importorskip("google.genai")
pytestmark = pytest.mark.timeout(10)

TEXTS = ["milvus stores vectors", "ragloom answers questions", "bread needs yeast", "", "x y z"]
KEY_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY")


@pytest.fixture(autouse=True)
def no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*KEY_VARS, "GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def oai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(embedding_dim=1536, api_key="sk-right") as fake:
        yield fake


@pytest.fixture
def gem() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer(api_key="g-right") as fake:
        yield fake


def expected(text: str, dim: int) -> list[float]:
    return hashed_embedding(text if text.strip() else " ", dim)


def assert_unit(vectors: list[list[float]]) -> None:
    for v in vectors:
        assert math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-6)


# -- OpenAI ----------------------------------------------------------------------------


def test_openai_vectors_dim_order_and_model(oai: FakeOpenAIServer) -> None:
    emb = OpenAIEmbedder(base_url=oai.base_url, api_key="sk-right")
    assert isinstance(emb, Embedder)
    assert emb.name == "openai:text-embedding-3-small"
    assert emb.dim == 1536 and oai.requests == []  # known dim: no probe request
    vectors = emb.embed(TEXTS)
    assert [v for v in vectors] == [pytest.approx(expected(t, 1536), abs=1e-6) for t in TEXTS]
    assert_unit(vectors)
    body = oai.last_request.body
    assert body["model"] == "text-embedding-3-small"
    assert body["input"][3] == " "  # empty strings are not sent (OpenAI rejects them)
    assert "dimensions" not in body


def test_openai_batches_and_shortened_dim(oai: FakeOpenAIServer) -> None:
    emb = OpenAIEmbedder(base_url=oai.base_url, api_key="sk-right", dim=64, batch_size=2)
    vectors = emb.embed(TEXTS, input_type="query")
    assert len(vectors) == 5 and {len(v) for v in vectors} == {64}
    assert vectors[4] == pytest.approx(expected("x y z", 64), abs=1e-6)
    sizes = [len(r.body["input"]) for r in oai.requests_to("embeddings")]
    assert sizes == [2, 2, 1]
    assert {r.body["dimensions"] for r in oai.requests_to("embeddings")} == {64}
    assert emb.embed([]) == [] and len(oai.requests) == 3


def test_the_embedding_cache_keeps_servers_and_dimensions_apart(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    with FakeOpenAIServer(embedding_dim=1536) as one, FakeOpenAIServer(embedding_dim=1536) as two:
        first = CachingEmbedder(OpenAIEmbedder(base_url=one.base_url, api_key="k"), cache)
        assert first.embed(["milvus"]) == [pytest.approx(expected("milvus", 1536), abs=1e-6)]
        again = CachingEmbedder(OpenAIEmbedder(base_url=one.base_url + "/", api_key="k"), cache)
        again.embed(["milvus"])
        assert again.hits == 1 and len(one.requests) == 1  # same server: from the cache
        other = CachingEmbedder(OpenAIEmbedder(base_url=two.base_url, api_key="k"), cache)
        other.embed(["milvus"])
        assert other.hits == 0 and len(two.requests) == 1  # another server: embedded there
        shorter = OpenAIEmbedder(base_url=one.base_url, api_key="k", dim=16)
        assert {len(v) for v in CachingEmbedder(shorter, cache).embed(["milvus"])} == {16}
    cache.close()


def test_openai_dim_probed_for_unknown_model() -> None:
    with FakeOpenAIServer(embedding_dim=48) as fake:  # an Ollama-like local server, no key
        emb = OpenAIEmbedder("nomic-embed-text", base_url=fake.base_url)
        assert emb.dim == 48
        assert len(fake.requests) == 1
        assert fake.last_request.headers["authorization"].startswith("Bearer ragloom-local")
        assert len(emb.embed(["a"])[0]) == 48


def test_openai_base_url_from_env(oai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", oai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-right")
    assert len(OpenAIEmbedder().embed(["hello"])) == 1
    assert oai.last_request.headers["authorization"] == "Bearer sk-right"


def test_openai_rejected_key_names_the_variable(oai: FakeOpenAIServer) -> None:
    emb = OpenAIEmbedder(base_url=oai.base_url, api_key="sk-wrong")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        emb.embed(["hello"])


def test_openai_missing_key_names_the_variable() -> None:
    emb = OpenAIEmbedder(base_url="https://api.example.com/v1")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        emb.embed(["hello"])


def test_openai_remote_failures_are_provider_errors(oai: FakeOpenAIServer) -> None:
    emb = OpenAIEmbedder(base_url=oai.base_url, api_key="sk-right", max_retries=0, timeout=0.3)
    oai.enqueue(HttpError(429, retry_after=1))
    with pytest.raises(ProviderError, match="rate limited"):
        emb.embed(["a"])
    oai.enqueue(Hang())
    with pytest.raises(ProviderError, match=r"did not answer within 0\.3s"):
        emb.embed(["a"])
    oai.enqueue(HttpError(404))
    with pytest.raises(ConfigError, match="not found"):
        emb.embed(["a"])


def test_openai_retries_then_succeeds(oai: FakeOpenAIServer) -> None:
    oai.enqueue(HttpError(503, retry_after=0.01), endpoint="embeddings")
    emb = OpenAIEmbedder(base_url=oai.base_url, api_key="sk-right")
    assert len(emb.embed(["a", "b"])) == 2
    assert len(oai.requests) == 2


def test_openai_dim_mismatch_is_explained() -> None:
    with FakeOpenAIServer(embedding_dim=8) as fake:
        emb = OpenAIEmbedder(base_url=fake.base_url)  # expects 1536 for this model
        with pytest.raises(EmbedderError, match="8-dimensional"):
            emb.embed(["a"])


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(MissingDependencyError, match=r"ragloom\[openai\]"):
        OpenAIEmbedder(api_key="k").embed(["a"])
    monkeypatch.setitem(sys.modules, "google.genai", None)
    with pytest.raises(MissingDependencyError, match=r"ragloom\[gemini\]"):
        GeminiEmbedder(api_key="k").embed(["a"])


# -- Gemini ----------------------------------------------------------------------------


def test_gemini_vectors_task_types_and_model(gem: FakeGeminiServer) -> None:
    emb = GeminiEmbedder(base_url=gem.base_url, api_key="g-right")
    assert isinstance(emb, Embedder)
    assert (emb.name, emb.dim) == ("gemini:text-embedding-004", 768)
    docs = emb.embed(TEXTS)
    assert docs == [pytest.approx(expected(t, 768), abs=1e-6) for t in TEXTS]
    assert_unit(docs)
    req = gem.last_request
    assert req.path.endswith("/models/text-embedding-004:batchEmbedContents")
    assert req.headers["x-goog-api-key"] == "g-right"
    assert {r["taskType"] for r in req.body["requests"]} == {"RETRIEVAL_DOCUMENT"}
    assert {r["model"] for r in req.body["requests"]} == {"models/text-embedding-004"}
    emb.embed(["what stores vectors?"], input_type="query")
    assert gem.last_request.body["requests"][0]["taskType"] == "RETRIEVAL_QUERY"


def test_gemini_batches_of_at_most_100(gem: FakeGeminiServer) -> None:
    texts = [f"text number {i}" for i in range(250)]
    emb = GeminiEmbedder(base_url=gem.base_url, api_key="g-right", batch_size=256)
    vectors = emb.embed(texts)  # the fake, like the API, refuses more than 100 per request
    assert vectors[249] == pytest.approx(expected("text number 249", 768), abs=1e-6)
    assert [len(r.body["requests"]) for r in gem.requests] == [100, 100, 50]
    with pytest.raises(ConfigError, match="batch_size"):
        GeminiEmbedder(batch_size=0)


def test_gemini_output_dimensionality_and_probe(gem: FakeGeminiServer) -> None:
    emb = GeminiEmbedder(base_url=gem.base_url, api_key="g-right", dim=256)
    assert len(emb.embed(["a"])[0]) == 256
    assert gem.last_request.body["requests"][0]["outputDimensionality"] == 256
    probe = GeminiEmbedder("my-tuned-embedder", base_url=gem.base_url, api_key="g-right")
    assert probe.dim == 768 and probe.name == "gemini:my-tuned-embedder"


def test_gemini_rejected_key_names_the_variable(
    gem: FakeGeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "g-wrong")
    monkeypatch.setenv("GEMINI_BASE_URL", gem.base_url)
    with pytest.raises(ConfigError, match="GEMINI_API_KEY") as info:
        GeminiEmbedder().embed(["a"])
    assert "API key not valid" in str(info.value)
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("GOOGLE_API_KEY", "g-wrong")  # the variable that was used is named
    with pytest.raises(ConfigError, match="check GOOGLE_API_KEY"):
        GeminiEmbedder().embed(["a"])


def test_gemini_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="GEMINI_API_KEY is not set"):
        GeminiEmbedder().embed(["a"])


def test_gemini_retries_then_fails_clearly(gem: FakeGeminiServer) -> None:
    emb = GeminiEmbedder(base_url=gem.base_url, api_key="g-right", max_retries=1, retry_delay=0.01)
    gem.enqueue(HttpError(429))
    assert len(emb.embed(["a"])) == 1
    assert len(gem.requests) == 2
    gem.enqueue(HttpError(503), HttpError(503))
    with pytest.raises(ProviderError, match="HTTP 503"):
        emb.embed(["a"])
    gem.enqueue(HttpError(429), HttpError(429))
    with pytest.raises(ProviderError, match="rate limited"):
        emb.embed(["a"])


def test_gemini_timeout_is_a_provider_error(gem: FakeGeminiServer) -> None:
    emb = GeminiEmbedder(base_url=gem.base_url, api_key="g-right", max_retries=0, timeout=0.3)
    gem.enqueue(Hang())
    with pytest.raises(ProviderError, match="did not answer"):
        emb.embed(["a"])


def test_a_collection_built_with_openai_asks_for_its_key_not_another_model(
    oai: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QA: searching such a collection with a wrong or missing key said "or use --embedder
    # local", which the collection then refused (built with another embedder).
    from ragloom import RAG

    doc = tmp_path / "a.md"
    doc.write_text("# A\n\nLooms hold warp threads.\n")
    monkeypatch.setenv("OPENAI_BASE_URL", oai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-right")
    db = str(tmp_path / "o.db")
    with RAG(uri=db, embedder="openai", cache_dir="") as rag:
        rag.ingest([str(doc)])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with RAG(uri=db, cache_dir="") as rag, pytest.raises(ConfigError) as refused:
        rag.search("looms")
    message = str(refused.value)
    assert "check OPENAI_API_KEY, as the collection 'ragloom' was built with openai:" in message
