"""A loopback fake of the OpenAI HTTP API (and of OpenAI-compatible hosts such as DeepSeek).

Serves ``POST …/chat/completions`` (JSON, or SSE with ``"stream": true``), ``POST …/embeddings``
and ``GET …/models`` under any path prefix, so ``OpenAI(base_url=fake.base_url)`` works, and so
does a Lepton-style ``…/api/v1/`` base URL.  Streams interleave ``: keep-alive`` comments and
blank lines between events as DeepSeek's do; the SDK must skip them.
"""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from typing import Any

from ragloom.embedders.base import approx_tokens
from ragloom.testing._server import DEFAULT_ANSWER, Answer, FakeServer
from ragloom.testing.embedder import hashed_embedding
from ragloom.testing.scripts import HttpError, RecordedRequest, Reply

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_ERROR_MESSAGES = {
    400: "Invalid request.",
    401: "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys.",
    403: "You are not allowed to use this model.",
    404: "The model does not exist or you do not have access to it.",
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The engine is currently overloaded, please try again later.",
}


class FakeOpenAIServer(FakeServer):
    """OpenAI's chat, embeddings and models endpoints on loopback.

    ``base_url`` ends in ``/v1``.  ``embedding_dim`` sizes the hashed bag-of-words vectors
    (a request's ``dimensions`` overrides it); ``api_key``, when set, is checked like OpenAI
    does (401 ``invalid_api_key`` otherwise); ``models`` is what ``GET /models`` lists.
    Script items: ``enqueue(...)`` on the ``chat`` (default for replies) or ``embeddings`` kind.
    """

    generation_kind = "chat"
    scriptable_kinds = frozenset({"chat", "embeddings"})

    def __init__(
        self,
        *,
        answer: Answer = DEFAULT_ANSWER,
        embedding_dim: int = 1536,
        api_key: str | None = None,
        models: tuple[str, ...] = ("gpt-4o-mini", "text-embedding-3-small"),
        max_embedding_inputs: int = 2048,
        keep_alive: bool = True,
    ) -> None:
        super().__init__(answer=answer)
        self.embedding_dim = embedding_dim
        self.api_key = api_key
        self.models = models
        self.max_embedding_inputs = max_embedding_inputs
        self.keep_alive = keep_alive

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``, as the openai SDK expects."""
        return f"{self.url}/v1"

    def chat_texts(self) -> list[str]:
        """The last user message of each chat request received (handy in assertions)."""
        out = []
        for r in self.requests_to("chat"):
            users = [m for m in (r.body or {}).get("messages", []) if m.get("role") == "user"]
            out.append(_content_text(users[-1].get("content")) if users else "")
        return out

    # -- routing and shapes ------------------------------------------------------------

    def _route(self, method: str, path: str, body: Any) -> tuple[str, bool, str | None]:
        data = body if isinstance(body, dict) else {}
        model = data.get("model") if isinstance(data.get("model"), str) else None
        path = path.rstrip("/")
        if method == "POST" and path.endswith("/chat/completions"):
            return "chat", bool(data.get("stream")), model
        if method == "POST" and path.endswith("/embeddings"):
            return "embeddings", False, model
        if method == "GET" and path.endswith("/models"):
            return "models", False, None
        return "unknown", False, model

    def _auth_error(self, request: RecordedRequest) -> HttpError | None:
        if self.api_key is None:
            return None
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return HttpError(401)

    def _error_body(self, status: int, message: str | None) -> Any:
        err_type, code = _ERROR_TYPES.get(status, ("server_error", None))
        text = message or _ERROR_MESSAGES.get(status, f"HTTP {status}")
        return {"error": {"message": text, "type": err_type, "param": None, "code": code}}

    def _json_answer(self, request: RecordedRequest, reply: Reply) -> tuple[int, Any]:
        if request.kind == "models":
            data = [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "ragloom-fake"}
                for m in self.models
            ]
            return 200, {"object": "list", "data": data}
        if request.kind == "embeddings":
            return self._embeddings(request)
        prompt, completion = _prompt_tokens(request), approx_tokens(reply.text)
        return 200, {
            "id": _completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model or "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": reply.finish_reason or "stop",
                }
            ],
            "usage": _usage(prompt, completion),
            "system_fingerprint": "fp_ragloom_fake",
        }

    def _stream_frames(self, request: RecordedRequest, reply: Reply) -> list[bytes]:
        body = request.body or {}
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        cid, created = _completion_id(), int(time.time())
        model = request.model or "gpt-4o-mini"

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            payload: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_ragloom_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                payload["usage"] = None
            return self._stream_frame(_dumps(payload))

        frames = [b": keep-alive\n\n"] if self.keep_alive else []
        frames.append(chunk({"role": "assistant", "content": ""}, None))
        for piece in reply.pieces():
            frames.append(chunk({"content": piece}, None))
            if self.keep_alive:
                frames.append(b"\n")  # DeepSeek sends stray blank lines between events
        frames.append(chunk({}, reply.finish_reason or "stop"))
        if include_usage:
            usage = _usage(_prompt_tokens(request), approx_tokens(reply.text))
            frames.append(
                self._stream_frame(
                    _dumps(
                        {
                            "id": cid,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": model,
                            "choices": [],
                            "usage": usage,
                        }
                    )
                )
            )
        frames.append(self._stream_frame("[DONE]"))
        return frames

    def _embeddings(self, request: RecordedRequest) -> tuple[int, Any]:
        body = request.body or {}
        inputs = _embedding_inputs(body.get("input"))
        if inputs is None:
            return 400, self._error_body(400, "'input' must be a string or an array of strings")
        if len(inputs) > self.max_embedding_inputs:
            msg = f"'input' must have at most {self.max_embedding_inputs} items"
            return 400, self._error_body(400, msg)
        if any(not t for t in inputs):
            return 400, self._error_body(400, "'input' cannot contain an empty string")
        dim = body.get("dimensions") or self.embedding_dim
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(inputs):
            vec = hashed_embedding(text, dim)
            embedding: Any = _b64_floats(vec) if as_base64 else vec
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(approx_tokens(t) for t in inputs)
        return 200, {
            "object": "list",
            "data": data,
            "model": request.model or "text-embedding-3-small",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _content_text(content: Any) -> str:
    """A message's text, whether ``content`` is a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _prompt_tokens(request: RecordedRequest) -> int:
    messages = (request.body or {}).get("messages", [])
    return sum(approx_tokens(_content_text(m.get("content"))) for m in messages)


def _embedding_inputs(raw: Any) -> list[str] | None:
    """The texts of an embeddings ``input``: a string, strings, or token-id arrays."""
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not raw:
        return None
    if all(isinstance(x, int) for x in raw):
        return [" ".join(map(str, raw))]
    out = []
    for item in raw:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, list) and all(isinstance(x, int) for x in item):
            out.append(" ".join(map(str, item)))
        else:
            return None
    return out


def _b64_floats(vec: list[float]) -> str:
    """Little-endian float32 bytes in base64: what ``encoding_format="base64"`` returns."""
    return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
