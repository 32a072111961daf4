"""The OpenAI-compatible face: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Any OpenAI client or chat front end can talk to ragloom as if it were a model named
``ragloom``: the last user message is the question, earlier turns make follow-ups
understood (they are rewritten into standalone questions), and the answer comes from
the knowledge base.  Citations travel with it twice: in the text (``[n]`` and a
"Sources:" list at the end) and as extra fields (``citations``, ``ragloom``) on the
completion, or on the last chunk of a stream.  Client system prompts and sampling
parameters are ignored: ragloom's own grounded prompt is used.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ragloom.errors import RagloomError
from ragloom.server.api import MAX_QUESTION_CHARS, pair_turns, service_of
from ragloom.server.errors import stream_error
from ragloom.server.service import Rewritten, Service
from ragloom.server.sse import event, in_threads, prefetch, sse_response, until_stopping
from ragloom.types import Answer

router = APIRouter(tags=["openai-compatible"])
MODEL_ID = "ragloom"
_CREATED = 1_700_000_000  # models need a creation time; ragloom's is not meaningful


class ChatMessage(BaseModel):
    """A message as OpenAI clients send it (content a string or a list of parts)."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    """OpenAI's ``stream_options``."""

    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields of a chat completion request ragloom reads; others are accepted."""

    model_config = ConfigDict(extra="allow")
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="one answer per request")


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return content or ""


def _without_sources(text: str) -> str:
    """An earlier answer without the sources list this endpoint appended to it."""
    return text.split("\n\nSources:\n", 1)[0]


def sources_block(answer: Answer, service: Service) -> str:
    """The cited passages' files and headings, as appended to the answer's text."""
    if not answer.citations:
        return ""
    lines = [
        f"[{c.n}] {service.display(c.source)}" + (f" › {c.heading}" if c.heading else "")
        for c in answer.citations
    ]
    return "\n\nSources:\n" + "\n".join(lines)


def citations_json(answer: Answer, service: Service) -> list[dict[str, Any]]:
    """The ``citations`` extra field: each cited passage with its text."""
    return [
        {**c.to_dict(), "name": service.display(c.source), "text": answer.hits[c.n - 1].text}
        for c in answer.citations
    ]


def extras(answer: Answer, searched_for: str, service: Service) -> dict[str, Any]:
    """The fields an OpenAI completion does not have: citations, and ragloom's details."""
    return {
        "citations": citations_json(answer, service),
        "ragloom": {
            "searched_for": searched_for,
            "abstained": answer.abstained,
            "abstain_reason": answer.abstain_reason,
            "provider": answer.provider,
            "model": answer.model,
            "hits": [service.hit_json(h) for h in answer.hits],
            "notes": list(answer.notes),
        },
    }


def usage(answer: Answer) -> dict[str, int]:
    """Token usage in OpenAI's shape (zeros for an extractive answer)."""
    prompt = answer.usage.get("prompt_tokens", 0)
    completion = answer.usage.get("completion_tokens", 0)
    total = answer.usage.get("total_tokens", prompt + completion)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def _model_card() -> dict[str, Any]:
    return {"id": MODEL_ID, "object": "model", "created": _CREATED, "owned_by": "ragloom"}


@router.get("/v1/models")
async def list_models() -> dict[str, Any]:
    """The one model this server offers: ``ragloom`` (answers from the documents)."""
    return {"object": "list", "data": [_model_card()]}


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str) -> dict[str, Any]:
    """The model ``ragloom``; any other id is 404."""
    _check_model(model_id)
    return _model_card()


def _check_model(model: str) -> None:
    if model != MODEL_ID:
        raise HTTPException(
            404, f"model '{model}' does not exist here: use '{MODEL_ID}' (see GET /v1/models)"
        )


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request, body: ChatRequest) -> Response | dict[str, Any]:
    """Answer the last user message from the knowledge base, OpenAI style."""
    service = service_of(request)
    _check_model(body.model)
    messages = [(m.role, _text(m.content)) for m in body.messages if m.role != "system"]
    if not messages or messages[-1][0] != "user":
        raise HTTPException(400, "the last message must be the user's question")
    question = messages[-1][1]
    if len(question) > MAX_QUESTION_CHARS:
        raise HTTPException(
            400,
            f"the question (the last user message) is {len(question)} characters long, over"
            f" the limit of {MAX_QUESTION_CHARS}: ask a shorter question",
        )
    history = [(q, _without_sources(a)) for q, a in pair_turns(messages[:-1])]
    answers = service.answer(question, history, k=5, stream=body.stream)
    # Raced with the server stopping, from the start: an answer still waiting for the
    # model's first word ends at once (503) instead of being cancelled with a traceback.
    items = until_stopping(in_threads(answers, service.answer_threads), service.stopping)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        searched_for, answer = question, None
        async for item in items:
            if isinstance(item, Rewritten):
                searched_for = item.question
            elif isinstance(item, Answer):
                answer = item
        if answer is None:  # pragma: no cover - every stream ends with an Answer
            raise RagloomError("the answer stream ended without an answer")
        message = {"role": "assistant", "content": answer.text + sources_block(answer, service),
                   "refusal": None}  # fmt: skip
        return {
            "id": completion_id, "object": "chat.completion", "created": created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": usage(answer),
            **extras(answer, searched_for, service),
        }  # fmt: skip

    started = await prefetch(items, lambda item: not isinstance(item, Rewritten))
    include_usage = body.stream_options is not None and body.stream_options.include_usage

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
        return event({
            "id": completion_id, "object": "chat.completion.chunk", "created": created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **({"usage": None} if include_usage else {}),  # OpenAI: null until the last
            **more,
        })  # fmt: skip

    async def events() -> AsyncIterator[str]:
        searched_for = question
        yield chunk({"role": "assistant", "content": ""})
        try:
            async for item in started:
                if isinstance(item, Rewritten):
                    searched_for = item.question
                elif isinstance(item, Answer):
                    tail = sources_block(item, service)
                    if tail:
                        yield chunk({"content": tail})
                    yield chunk({}, "stop", **extras(item, searched_for, service))
                    if include_usage:
                        yield event({
                            "id": completion_id, "object": "chat.completion.chunk",
                            "created": created, "model": MODEL_ID, "choices": [],
                            "usage": usage(item),
                        })  # fmt: skip
                elif item:
                    yield chunk({"content": item})
        except Exception as exc:
            yield event(stream_error(exc))
        yield event("[DONE]")

    return sse_response(events())
