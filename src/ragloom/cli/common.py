"""What every command shares: the app, common options, opening a RAG, printing."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ragloom.errors import ConfigError, RagloomError, command_line_names
from ragloom.names import display_name

if TYPE_CHECKING:
    from ragloom.rag import RAG

app = typer.Typer(
    name="ragloom",
    help="Ask your documents: ingest files, folders, zips and URLs into Milvus; search them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _warnings_say_ragloom(ctx: typer.Context) -> None:
    """ragloom's warnings go to stderr as ``ragloom: ...``, like its errors (without a
    handler, Python printed the bare message); messages name options as flags."""
    ctx.with_resource(command_line_names())
    logger = logging.getLogger("ragloom")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("ragloom: %(message)s"))
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is at each message (as Python's own last-resort
    handler does), not as it was when the handler was made."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


UriOpt = Annotated[
    str | None, typer.Option("--uri", help="Milvus Lite file or server URI (env RAGLOOM_URI)")
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", help="Milvus / Zilliz Cloud token (env RAGLOOM_TOKEN)", show_default=False
    ),
]
CollectionOpt = Annotated[
    str | None, typer.Option("--collection", help="collection name (env RAGLOOM_COLLECTION)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON on stdout")]


def err(message: str) -> None:
    """Print a message for the user on stderr."""
    typer.echo(f"ragloom: {message}", err=True)


@contextmanager
def reported() -> Iterator[None]:
    """ragloom's expected failures as a message and exit 1 (Ctrl-C: exit 130)."""
    try:
        yield
    except RagloomError as exc:
        err(str(exc))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err("interrupted")
        raise typer.Exit(130) from None


@contextmanager
def open_rag(*, existing: bool = False, **kwargs: Any) -> Iterator[RAG]:
    """Open a RAG, turning ragloom's expected failures into a message and exit 1.

    ``existing``: the command reads the collection, so a name the database does not have,
    while it has others, is a mistyped ``--collection`` (exit 1), not an empty one.
    """
    with reported():
        from ragloom.config import redact_uri
        from ragloom.rag import RAG

        with RAG(**kwargs) as rag:
            if existing and rag.store.info() is None and (others := rag.store.others()):
                origin = rag.settings.origin("collection")  # a flag, a variable, a file
                where = origin.named("collection") if origin.rank in (1, 2) else None
                raise ConfigError(
                    f"there is no collection '{rag.settings.collection}' at"
                    f" {redact_uri(rag.settings.uri)}, which holds {', '.join(others)}:"
                    f" check {where or '--collection (RAGLOOM_COLLECTION)'}"
                )
            yield rag


def display(source: str) -> str:
    """A source path relative to the working directory when it is under it."""
    return display_name(source)
