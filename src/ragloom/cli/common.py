"""What every command shares: the app, common options, opening a RAG, printing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ragloom.errors import RagloomError
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
def open_rag(**kwargs: Any) -> Iterator[RAG]:
    """Open a RAG, turning ragloom's expected failures into a message and exit 1."""
    with reported():
        from ragloom.rag import RAG

        with RAG(**kwargs) as rag:
            yield rag


def display(source: str) -> str:
    """A source path relative to the working directory when it is under it."""
    return display_name(source)
