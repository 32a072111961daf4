"""A loopback fake of the Gemini Developer API as the ``google-genai`` SDK calls it.

Routes ``POST /{version}/models/{model}:{method}`` for any version prefix (the SDK sends
``v1beta`` or ``v1`` depending on its release and ``GOOGLE_GENAI_API_VERSION``):

    :generateContent            one GenerateContentResponse (camelCase JSON)
    :streamGenerateContent      SSE ``data: {GenerateContentResponse}`` events (``?alt=sse``)
    :batchEmbedContents         ``{"requests": [...]}`` -> ``{"embeddings": [{"values": [...]}]}``
    :embedContent               ``{"content": ...}`` -> ``{"embedding": {"values": [...]}}``
    :countTokens                ``{"totalTokens": n}``
    GET /{version}/models       ``{"models": [...]}``

Point the SDK at it with ``genai.Client(api_key=..., http_options=types.HttpOptions(
base_url=fake.base_url))``.  Errors use Google's shape:
``{"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED"}}``.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from ragloom.embedders.base import approx_tokens
from ragloom.testing._server import DEFAULT_ANSWER, Answer, FakeServer
from ragloom.testing.embedder import hashed_embedding
from ragloom.testing.scripts import HttpError, RecordedRequest, Reply

_PATH = re.compile(r"/(?:models|tunedModels)/(?P<model>[^/:]+):(?P<method>\w+)$")
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
_KINDS = {
    "generateContent": ("generate", False),
    "streamGenerateContent": ("generate", True),
    "embedContent": ("embed", False),
    "batchEmbedContents": ("embed", False),
    "countTokens": ("count_tokens", False),
}


class FakeGeminiServer(FakeServer):
    """Gemini's generate, stream, embed and countTokens endpoints on loopback.

    ``embedding_dim`` sizes the vectors (a request's ``outputDimensionality`` overrides it);
    ``api_key``, when set, is checked like Google does: a wrong key gets 400
    ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``, no key 403 ``PERMISSION_DENIED``.
    ``max_batch`` is the real API's limit on ``batchEmbedContents`` requests (100).
    Script items: ``enqueue(...)`` on the ``generate`` (default for replies) or ``embed`` kind.
    """

    generation_kind = "generate"
    scriptable_kinds = frozenset({"generate", "embed"})

    def __init__(
        self,
        *,
        answer: Answer = DEFAULT_ANSWER,
        embedding_dim: int = 768,
        api_key: str | None = None,
        max_batch: int = 100,
        models: tuple[str, ...] = ("gemini-2.0-flash", "text-embedding-004"),
    ) -> None:
        super().__init__(answer=answer)
        self.embedding_dim = embedding_dim
        self.api_key = api_key
        self.max_batch = max_batch
        self.models = models

    def system_instructions(self) -> list[str]:
        """The ``systemInstruction`` text of each generate request (``""`` when absent)."""
        out = []
        for r in self.requests_to("generate"):
            out.append(_parts_text((r.body or {}).get("systemInstruction")))
        return out

    # -- routing and shapes ------------------------------------------------------------

    def _route(self, method: str, path: str, body: Any) -> tuple[str, bool, str | None]:
        match = _PATH.search(path)
        if method == "POST" and match and match["method"] in _KINDS:
            kind, stream = _KINDS[match["method"]]
            return kind, stream, match["model"]
        if method == "GET" and path.rstrip("/").endswith("/models"):
            return "models", False, None
        return "unknown", False, match["model"] if match else None

    def _auth_error(self, request: RecordedRequest) -> HttpError | None:
        if self.api_key is None:
            return None
        given = request.headers.get("x-goog-api-key") or request.query.get("key")
        if given == self.api_key:
            return None
        if not given:
            msg = "Method doesn't allow unregistered callers (callers without established "
            msg += "identity). Please use API Key or other form of API consumer identity."
            return HttpError(403, msg)
        return HttpError(400, body=_api_key_invalid())

    def _error_body(self, status: int, message: str | None) -> Any:
        text = message or _MESSAGES.get(status, f"HTTP {status}")
        return {
            "error": {"code": status, "message": text, "status": _STATUS.get(status, "UNKNOWN")}
        }

    def _stream_frame(self, payload: str) -> bytes:
        return f"data: {payload}\r\n\r\n".encode()  # Google ends SSE events with CRLF

    def _json_answer(self, request: RecordedRequest, reply: Reply) -> tuple[int, Any]:
        body = request.body or {}
        if request.kind == "models":
            return 200, {"models": [{"name": f"models/{m}"} for m in self.models]}
        if request.kind == "count_tokens":
            return 200, {"totalTokens": _prompt_tokens(body)}
        if request.kind == "embed":
            return self._embeddings(request)
        return 200, self._response(request, reply.text, reply, final=True)

    def _stream_frames(self, request: RecordedRequest, reply: Reply) -> list[bytes]:
        pieces = reply.pieces()
        frames = []
        for i, piece in enumerate(pieces):
            payload = self._response(request, piece, reply, final=i == len(pieces) - 1)
            frames.append(self._stream_frame(json.dumps(payload, separators=(",", ":"))))
        return frames

    def _response(
        self, request: RecordedRequest, text: str, reply: Reply, *, final: bool
    ) -> dict[str, Any]:
        prompt = _prompt_tokens(request.body or {})
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        usage: dict[str, int] = {"promptTokenCount": prompt, "totalTokenCount": prompt}
        if final:
            candidate["finishReason"] = reply.finish_reason or "STOP"
            completion = approx_tokens(reply.text)
            usage = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": completion,
                "totalTokenCount": prompt + completion,
            }
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": request.model or "gemini-2.0-flash",
            "responseId": uuid.uuid4().hex[:20],
        }

    def _embeddings(self, request: RecordedRequest) -> tuple[int, Any]:
        body = request.body or {}
        if "requests" not in body:
            content = body.get("content")
            if not isinstance(content, dict):
                return 400, self._error_body(400, "* EmbedContentRequest.content: required")
            vec = self._vector(_parts_text(content), body.get("outputDimensionality"))
            return 200, {"embedding": {"values": vec}}
        items = body["requests"]
        if not isinstance(items, list) or not items:
            return 400, self._error_body(400, "* BatchEmbedContentsRequest.requests: required")
        if len(items) > self.max_batch:
            msg = f"* BatchEmbedContentsRequest.requests: at most {self.max_batch} requests "
            return 400, self._error_body(400, msg + "can be in one batch")
        expected = f"models/{request.model}"
        vectors = []
        for i, item in enumerate(items):
            if item.get("model") != expected:
                msg = f"* BatchEmbedContentsRequest.requests[{i}].model: unexpected model name "
                return 400, self._error_body(400, msg + f"format, expected {expected}")
            text = _parts_text(item.get("content"))
            vectors.append({"values": self._vector(text, item.get("outputDimensionality"))})
        return 200, {"embeddings": vectors}

    def _vector(self, text: str, dim: Any) -> list[float]:
        return hashed_embedding(text, int(dim) if dim else self.embedding_dim)


def _parts_text(content: Any) -> str:
    """The text of a ``Content`` dict (its parts joined)."""
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts") or []
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


def _prompt_tokens(body: dict[str, Any]) -> int:
    contents = body.get("contents") or []
    texts = [_parts_text(c) for c in contents] + [_parts_text(body.get("systemInstruction"))]
    return sum(approx_tokens(t) for t in texts if t)


def _api_key_invalid() -> dict[str, Any]:
    """What Google answers (HTTP 400) for a wrong API key."""
    return {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        }
    }
