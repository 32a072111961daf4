"""Fakes shipped with ragloom so its users (and its own tests) can run offline.

- ``FakeEmbedder``: an in-process ``Embedder`` with hashed bag-of-words vectors.
- ``FakeLLM``: an in-process ``LLM`` answering from a queue, recording its prompts.
- ``FakeOpenAIServer`` / ``FakeGeminiServer``: loopback HTTP servers speaking the providers'
  wire formats, for driving the real ``openai`` / ``google-genai`` SDKs.  Each records its
  requests and serves scripted items (``Reply``, ``HttpError``, ``Hang``, ``Cut``,
  ``Malformed``) queued with ``enqueue``, falling back to a default answer.

Example::

    with FakeOpenAIServer() as fake:
        fake.enqueue(HttpError(429, retry_after=0.01), "Paris.")
        client = openai.OpenAI(base_url=fake.base_url, api_key="x")
        ...
        assert fake.requests_to("chat")[-1].body["model"] == "gpt-4o-mini"
"""

from ragloom.testing._server import DEFAULT_ANSWER, FakeServer
from ragloom.testing.embedder import FakeEmbedder, hashed_embedding
from ragloom.testing.gemini_fake import FakeGeminiServer
from ragloom.testing.llm import FakeLLM
from ragloom.testing.openai_fake import FakeOpenAIServer
from ragloom.testing.scripts import (
    Cut,
    Hang,
    HttpError,
    Malformed,
    RecordedRequest,
    Reply,
    ScriptItem,
)

__all__ = [
    "DEFAULT_ANSWER",
    "Cut",
    "FakeEmbedder",
    "FakeGeminiServer",
    "FakeLLM",
    "FakeOpenAIServer",
    "FakeServer",
    "Hang",
    "HttpError",
    "Malformed",
    "RecordedRequest",
    "Reply",
    "ScriptItem",
    "hashed_embedding",
]
