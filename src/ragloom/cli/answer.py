"""Commands that answer questions: ``ask`` (one question) and ``chat`` (a conversation)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from ragloom.cli.common import (
    CollectionOpt,
    JsonOpt,
    TokenOpt,
    UriOpt,
    app,
    display,
    err,
    open_rag,
    reported,
)
from ragloom.cli.documents import search_mode
from ragloom.errors import RagloomError

if TYPE_CHECKING:
    from ragloom.chat import Conversation
    from ragloom.config import Settings
    from ragloom.types import Answer

LlmOpt = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help="deepseek, lepton, gemini, openai or none (env RAGLOOM_LLM); "
        "default: the first provider whose key is set, else none",
    ),
]
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="the provider's model (env RAGLOOM_LLM_MODEL)")
]
TopKOpt = Annotated[int, typer.Option("-k", "--top-k", min=1, help="passages to retrieve")]
ModeOpt = Annotated[
    str | None, typer.Option("--mode", help="dense, bm25 or hybrid (default: best available)")
]
SourceOpt = Annotated[
    list[str] | None, typer.Option("--source", help="only sources matching this glob")
]
StreamOpt = Annotated[
    bool | None,
    typer.Option(
        "--stream/--no-stream",
        help="print the answer as it is written (default: on a terminal)",
        show_default=False,
    ),
]
EXTRACTIVE_LABEL = "Extractive answer (no language model): sentences quoted from your documents"


def _check_choices(llm: str | None, mode: str | None) -> None:
    """Usage errors (exit 2) for an unknown provider or search mode."""
    from ragloom.llms import llm_names

    if llm is not None and llm.strip().lower() not in llm_names():
        raise typer.BadParameter(f"use one of {', '.join(llm_names())}", param_hint="--llm")
    if mode is not None and mode not in ("dense", "bm25", "hybrid"):
        raise typer.BadParameter("use dense, bm25 or hybrid", param_hint="--mode")


def _print_answer(
    items: Iterator[str | Answer], *, live: bool, extractive: bool, provider_note: bool = True
) -> Answer:
    """Print an answer stream (pieces as they come when ``live``), its sources, its notes
    (on stderr; the first, which provider answered and why, only if ``provider_note``)."""
    from ragloom.types import Answer

    answer = None
    open_line = False  # live text not yet ended by a newline
    try:
        for item in items:
            if isinstance(item, Answer):
                answer = item
            elif live and item and not extractive:  # extractive: whole, with the Answer
                sys.stdout.write(item)
                sys.stdout.flush()
                open_line = not item.endswith("\n")
    except BaseException:  # a cut stream, Ctrl-C: the message goes on a line of its own
        if open_line:
            typer.echo()
        raise
    if answer is None:  # pragma: no cover - every stream ends with an Answer
        raise RagloomError("the answer stream ended without an answer")
    if extractive and not answer.abstained:  # quoted sentences: a declining line is not
        typer.secho(EXTRACTIVE_LABEL, bold=True)
    typer.echo("" if live and not extractive else answer.text)
    _print_sources(answer)
    for note in answer.notes if provider_note else answer.notes[1:]:
        err(note)
    return answer


def _has_sources(answer: Answer) -> bool:
    """Whether an answer has passages to list: cited ones, or those sent when it is not
    an abstention."""
    return bool(answer.citations) or (bool(answer.hits) and not answer.abstained)


def _print_sources(answer: Answer) -> None:
    """The cited passages' files and headings (or the passages sent, when none is cited)."""
    if not _has_sources(answer):
        return
    cited = {c.n for c in answer.citations}
    typer.echo("\nSources:" if cited else "\nPassages sent (none cited):")
    for n, hit in enumerate(answer.hits, start=1):
        if cited and n not in cited:
            continue
        heading = f" › {hit.heading}" if hit.heading else ""
        typer.echo(f"[{n}] {display(hit.source)}{heading}")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="what to ask your documents", metavar="QUESTION")],
    llm: LlmOpt = None,
    model: ModelOpt = None,
    k: TopKOpt = 5,
    mode: ModeOpt = None,
    source: SourceOpt = None,
    stream: StreamOpt = None,
    as_json: JsonOpt = False,
    uri: UriOpt = None,
    token: TokenOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Answer a question from the collection, citing the passages it used.

    On a Milvus Lite file that a running `ragloom serve` owns, the server answers (when
    --llm and --model, if given, are the server's own)."""
    _check_choices(llm, mode)
    if not question.strip():
        raise typer.BadParameter("the question is empty: ask something", param_hint="QUESTION")
    live = not as_json and (stream if stream is not None else sys.stdout.isatty())
    if _ask_via_server(uri, collection, question, llm, model, k, mode, source, live, as_json):
        return
    with open_rag(existing=True, uri=uri, token=token, collection=collection) as rag:
        extractive = rag.get_llm(llm, model).provider == "none"
        items = rag.stream(
            question, k, llm=llm, model=model, mode=search_mode(rag, mode),
            sources=source or (), stream=live,
        )  # fmt: skip
        if as_json:
            from ragloom.answer import final_answer

            typer.echo(json.dumps(final_answer(items).to_dict(), ensure_ascii=False))
        else:
            _print_answer(items, live=live, extractive=extractive)


def _served(
    uri: str | None, collection: str | None, llm: str | None, model: str | None
) -> tuple[Settings, str, str, str] | None:
    """``(settings, url, provider, model)`` of the ragloom server that owns the Milvus
    Lite file and answers with the model asked for (any, when none is), else None."""
    from ragloom.cli import forward

    located = forward.locate(uri, collection)
    served = (
        forward.server_llm(located[1], located[0].uri, timeout=10.0)
        if located is not None
        else None
    )
    if located is None or served is None:
        return None
    provider, served_model = served
    if (llm and llm.strip().lower() != provider) or (model and model != served_model):
        return None  # another model than the server's: the lock message says why not
    return located[0], located[1], provider, served_model


def _ask_via_server(
    uri: str | None, collection: str | None, question: str, llm: str | None,
    model: str | None, k: int, mode: str | None, source: list[str] | None, live: bool,
    as_json: bool,
) -> bool:  # fmt: skip
    """Answer through the ragloom server owning the file; False to answer here."""
    from ragloom.cli import forward

    with reported():
        served = _served(uri, collection, llm, model)
        if served is None:
            return False
        settings, url, provider, _ = served
        err(f"asking the ragloom server at {url}, which has {settings.uri} open")
        items = forward.ask_via_server(
            url, settings.uri, question, k, mode, source or (), stream=live,
            timeout=settings.llm_deadline + 30.0,
        )  # fmt: skip
        if as_json:
            from ragloom.answer import final_answer

            typer.echo(json.dumps(final_answer(items).to_dict(), ensure_ascii=False))
        else:
            _print_answer(items, live=live, extractive=provider == "none")
    return True


def _chat_via_server(
    uri: str | None, collection: str | None, llm: str | None, model: str | None, k: int,
    mode: str | None, source: list[str] | None, live: bool,
) -> bool:  # fmt: skip
    """A conversation through the ragloom server owning the file (it rewrites follow-ups
    with its model); False to chat here."""
    from ragloom.chat import remembered
    from ragloom.cli import forward

    with reported():
        served = _served(uri, collection, llm, model)
    if served is None:
        return False
    settings, url, provider, served_model = served
    err(
        f"chatting with {provider} ({served_model}) through the ragloom server at {url},"
        f" which has {settings.uri} open. Commands: /sources, /reset, /quit"
    )
    turns: list[tuple[str, str]] = []

    def turn(text: str) -> Answer:
        def searching(question: str) -> None:
            if question and question != text:
                err(f"searching for: {question}")

        items = forward.ask_via_server(
            url, settings.uri, text, k, mode, source or (), stream=live,
            timeout=settings.llm_deadline + 30.0, history=turns, searched_for=searching,
        )  # fmt: skip
        answered = remembered(turns, text, items)  # a failed question is still a turn
        try:
            return _print_answer(
                answered, live=live, extractive=provider == "none", provider_note=False
            )
        finally:
            answered.close()  # the turn is added now, not when the stream is collected

    _chat_loop(turn, turns.clear)
    return True


def _chat_loop(turn: Callable[[str], Answer], reset: Callable[[], None]) -> None:
    """Read messages until /quit or the end of input; ``turn`` answers one (a failure is
    reported and the chat goes on), ``reset`` forgets the conversation."""
    last: Answer | None = None
    while True:
        text = _read_line("you> ")
        if text is None or text in ("/quit", "/exit", "/q"):
            return
        if not text:
            continue
        if text == "/reset":
            reset()
            last = None
            typer.echo("(conversation forgotten)")
        elif text == "/sources":
            if last is None:
                typer.echo("(no answer yet)")
            elif not _has_sources(last):
                typer.echo("(the last answer has no sources: the documents do not cover it)")
            else:
                _print_sources(last)
        elif text.startswith("/"):
            typer.echo("commands: /sources, /reset, /quit")
        else:
            try:
                last = turn(text)
            except RagloomError as exc:
                err(str(exc))
            except KeyboardInterrupt:  # Ctrl-C stops this answer, not the conversation
                err("answer interrupted")


@app.command()
def chat(
    llm: LlmOpt = None,
    model: ModelOpt = None,
    k: TopKOpt = 5,
    mode: ModeOpt = None,
    source: SourceOpt = None,
    stream: StreamOpt = None,
    uri: UriOpt = None,
    token: TokenOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Talk with your documents: follow-ups are understood in context.

    Commands: /sources (the last answer's sources), /reset (forget the conversation),
    /quit. On a Milvus Lite file that a running `ragloom serve` owns, the server answers.
    """
    _check_choices(llm, mode)
    live = stream if stream is not None else sys.stdout.isatty()
    if _chat_via_server(uri, collection, llm, model, k, mode, source, live):
        return
    with open_rag(existing=True, uri=uri, token=token, collection=collection) as rag:
        from ragloom.chat import Conversation

        conversation = Conversation(
            rag, llm=llm, model=model, k=k, mode=search_mode(rag, mode), sources=source or (),
        )  # fmt: skip
        chosen, reason = conversation.llm, rag.llm_choice(llm).reason
        with_what = (
            "without a language model (extractive answers)"
            if chosen.provider == "none"
            else f"with {chosen.provider} ({chosen.model})"
        )
        err(f"chatting {with_what}: {reason}. Commands: /sources, /reset, /quit")
        if chosen.provider == "none" and not (llm or rag.settings.llm):
            from ragloom.answer import no_llm_hint  # chosen for want of a key: say how

            err(f"answers are extractive: {no_llm_hint()}")
        _chat_loop(lambda text: _chat_turn(conversation, text, live), conversation.reset)


def _chat_turn(conversation: Conversation, text: str, live: bool) -> Answer:
    """Answer one message (the follow-up rewritten into a standalone question first)."""
    question = conversation.standalone(text)
    if question != text:
        err(f"searching for: {question}")
    answered = conversation.answer(question, stream=live)
    try:
        return _print_answer(
            answered, live=live, extractive=conversation.llm.provider == "none",
            provider_note=False,
        )  # fmt: skip
    finally:
        answered.close()  # a failed or interrupted turn is remembered now


def _read_line(prompt: str) -> str | None:
    """One line from the user (None at end of input); at a terminal with line editing
    and the session's earlier questions (arrow keys), where the platform has readline."""
    if sys.stdin.isatty():
        with contextlib.suppress(ImportError):  # Windows has none
            import readline  # noqa: F401  (importing it is what gives input() editing)
        try:
            return input(prompt).strip()
        except EOFError:
            typer.echo()
            return None
    typer.echo(prompt, nl=False)
    line = sys.stdin.readline()
    if not line:
        typer.echo()
        return None
    return line.strip()
