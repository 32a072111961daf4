"""Commands over the collection's documents: ingest, search, status, sources, delete."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, cast

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

if TYPE_CHECKING:
    from ragloom.rag import RAG
    from ragloom.store import SearchMode


def _progress_bar(enabled: bool) -> tuple[Callable[[str, int, int], None] | None, Any]:
    """A rich progress display on a terminal (stderr), else nothing."""
    if not enabled:
        return None, None
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.fields[files]} files, {task.fields[chunks]} chunks embedded"),
        TextColumn("[dim]{task.description}"),
        TimeElapsedColumn(),
        console=_stderr_console(),
        transient=True,
    )
    task = progress.add_task("", files=0, chunks=0)

    def update(source: str, files: int, chunks: int) -> None:
        progress.update(task, description=_short(source), files=files, chunks=chunks)

    return update, progress


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _short(source: str, width: int = 60) -> str:
    shown = display(source)
    return shown if len(shown) <= width else "…" + shown[-width + 1 :]


@app.command()
def ingest(
    sources: Annotated[
        list[str], typer.Argument(help="files, folders, .zip archives or URLs", metavar="SOURCE")
    ],
    glob: Annotated[
        str | None, typer.Option("--glob", help="only paths matching, e.g. 'en/faq/*.md'")
    ] = None,
    splitter: Annotated[
        str | None, typer.Option("--splitter", help="markdown (default) or seed")
    ] = None,
    embedder: Annotated[
        str | None, typer.Option("--embedder", help="local[:MODEL], milvus-default, gemini, openai")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="drop and re-create the collection")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune/--no-prune", help="delete documents gone from a folder/zip")
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the plan, write nothing")
    ] = False,
    as_json: JsonOpt = False,
    uri: UriOpt = None,
    token: TokenOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Add or update documents in the collection."""
    if splitter is not None and splitter not in ("markdown", "seed"):
        raise typer.BadParameter("use markdown or seed", param_hint="--splitter")
    _refuse_empty(sources, "a file, folder, .zip archive or URL")
    show_bar = not as_json and sys.stderr.isatty()
    update, bar = _progress_bar(show_bar)
    with open_rag(uri=uri, token=token, collection=collection, embedder=embedder) as rag:
        if bar is not None:
            bar.start()
        try:
            report = rag.ingest(
                sources, glob=glob, splitter=splitter, rebuild=rebuild, prune=prune,
                dry_run=dry_run, progress=update,
            )  # fmt: skip
        finally:
            if bar is not None:
                bar.stop()
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        for line in _skip_lines(report.skipped, display):
            err(line)
        for item in report.errors:
            err(f"failed {display(item['source'])}: {item['error']}")
        if dry_run:
            for status, listed in report.plan.items():
                for source in listed:
                    typer.echo(f"{status:>8}  {display(source)}")
        verb = "would embed" if dry_run else "embedded"
        typer.echo(
            f"{_count(report.files, 'document')} ({report.added} added, {report.changed} changed,"
            f" {report.unchanged} unchanged, {report.removed} removed),"
            f" {_count(report.chunks, 'chunk')},"
            f" {verb} {report.embedded}, {len(report.errors)} failed, in {report.seconds:.1f}s"
            + (" (dry run: nothing written)" if dry_run else "")
        )
    if report.interrupted:
        err(
            "interrupted: what was written is consistent; run the same command again to"
            " resume (finished documents are skipped)"
        )
        raise typer.Exit(130)
    if report.errors:
        raise typer.Exit(1)


#: More files than this that are not documents (a folder of images) make one line.
_LISTED_SKIPS = 5


def _skip_lines(skipped: Sequence[dict[str, str]], display: Callable[[str], str]) -> list[str]:
    """A line per skipped input, but files that are not documents, when there are many,
    in one line by extension (``--json`` still lists each)."""
    from ragloom.formats import skipped_kind

    kinds = Counter(k for item in skipped if (k := skipped_kind(item["error"])))
    many = sum(kinds.values()) > _LISTED_SKIPS
    lines = [
        f"{display(item['source'])}: {item['error']}"
        for item in skipped
        if not (many and skipped_kind(item["error"]))
    ]
    if many:
        counts = ", ".join(f"{kind} {n}" for kind, n in kinds.most_common())
        lines.append(
            f"skipped {sum(kinds.values())} files that are not documents ({counts});"
            " --json lists them"
        )
    return lines


ModeOpt = Annotated[
    str | None,
    typer.Option("--mode", help="dense, bm25 or hybrid [default: hybrid where Milvus has BM25]"),
]
WhereOpt = Annotated[
    str | None,
    typer.Option(
        "--where", help="Milvus filter on the chunks' fields, e.g. 'source like \"%faq%\"'"
    ),
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option("--source", help="only sources matching this glob (repeatable), e.g. '*.md'"),
]
RerankOpt = Annotated[
    str | None,
    typer.Option("--rerank", help="rerank with this sentence-transformers CrossEncoder"),
]


def check_mode(mode: str | None) -> None:
    """Refuse an unknown ``--mode`` as a usage error (exit 2)."""
    if mode is not None and mode not in ("dense", "bm25", "hybrid"):
        raise typer.BadParameter("use dense, bm25 or hybrid", param_hint="--mode")


def search_mode(rag: RAG, mode: str | None) -> SearchMode | None:
    """The mode to search in; says once, on stderr, when the store lacks BM25 and the
    search falls back to dense."""
    from ragloom.retrieval import resolve_mode

    wanted = mode or rag.settings.search_mode
    chosen, notice = resolve_mode(rag.store.info(), wanted, rag.store.uri)
    if notice:
        err(notice)
        return chosen
    return cast("SearchMode | None", mode)


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="what to look for", metavar="QUESTION")],
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="passages to return")] = 3,
    mode: ModeOpt = None,
    where: WhereOpt = None,
    source: SourceOpt = None,
    rerank: RerankOpt = None,
    embedder: Annotated[str | None, typer.Option("--embedder", help="query embedder")] = None,
    as_json: JsonOpt = False,
    uri: UriOpt = None,
    token: TokenOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Print the passages that best match a question, with their sources.

    On a Milvus Lite file that a running `ragloom serve` owns, the server is asked."""
    check_mode(mode)
    if not question.strip():  # a usage error, as in `ragloom ask`
        raise typer.BadParameter("the question is empty: ask something", param_hint="QUESTION")
    hits = None
    searched = "the collection"
    if rerank is None and embedder is None:
        hits = _search_via_server(uri, collection, question, k, mode, where, source or ())
    if hits is None:
        with open_rag(
            existing=True, uri=uri, token=token, collection=collection, embedder=embedder
        ) as rag:
            found = rag.search(
                question, k=k, mode=search_mode(rag, mode), where=where, sources=source or (),
                rerank=rerank,
            )  # fmt: skip
        hits = [h.to_dict() for h in found]
        from ragloom.config import redact_uri

        searched = f"the collection '{rag.settings.collection}' at {redact_uri(rag.settings.uri)}"
    if as_json:
        typer.echo(json.dumps({"query": question, "hits": hits}, ensure_ascii=False))
        return
    if not hits and (where or source):
        typer.echo("no passages match --where/--source: loosen the filter, or drop it")
        return
    if not hits:
        typer.echo(f"no passages found in {searched}: ingest documents first (ragloom ingest PATH)")
        return
    for hit in hits:
        heading = hit["heading"]
        where_from = display(hit["source"]) + (f" › {heading}" if heading else "")
        typer.secho(f"[{hit['rank']}] {where_from}  (score {hit['score']:.3f})", bold=True)
        text = hit["text"].strip()
        typer.echo(
            "    " + (text[:700] + " …" if len(text) > 700 else text).replace("\n", "\n    ")
        )
        typer.echo()


def _search_via_server(
    uri: str | None, collection: str | None, question: str, k: int, mode: str | None,
    where: str | None, sources: list[str] | tuple[str, ...],
) -> list[dict[str, Any]] | None:  # fmt: skip
    """The hits from the ragloom server owning the file, or None to search here."""
    from ragloom.cli import forward

    with reported():
        located = forward.locate(uri, collection)
        if located is None:
            return None
        settings, url = located
        hits = forward.search_via_server(
            url, settings.uri, question, k, mode, where, sources,
            timeout=max(settings.timeout, 30.0),
        )  # fmt: skip
    if hits is None:
        return None
    err(f"searched through the ragloom server at {url}, which has {settings.uri} open")
    return [{k: v for k, v in hit.items() if k != "name"} for hit in hits]  # as printed here


@app.command()
def status(
    as_json: JsonOpt = False,
    uri: UriOpt = None,
    token: TokenOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Show where the collection is, what it holds, and how it was built."""
    with open_rag(existing=True, uri=uri, token=token, collection=collection) as rag:
        info = rag.status()
    if as_json:
        typer.echo(json.dumps(info))
        return
    for key, value in info.items():
        typer.echo(f"{key:>13}: {value}")


@app.command()
def sources(
    as_json: JsonOpt = False,
    uri: UriOpt = None,
    token: TokenOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """List the documents in the collection."""
    with open_rag(existing=True, uri=uri, token=token, collection=collection) as rag:
        docs = rag.sources()
    if as_json:
        typer.echo(json.dumps([d.__dict__ for d in docs], ensure_ascii=False))
        return
    if not docs:
        from ragloom.config import redact_uri

        where = f"the collection '{rag.settings.collection}' at {redact_uri(rag.settings.uri)}"
        err(f"no documents in {where}: add some with `ragloom ingest PATH`")
    for doc in docs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(doc.ingested_at))
        typer.echo(f"{doc.chunks:6d}  {doc.doc_hash[:12]}  {when}  {display(doc.source)}")


@app.command()
def delete(
    sources: Annotated[
        list[str],
        typer.Argument(help="sources as `ragloom sources` lists them", metavar="SOURCE"),
    ],
    uri: UriOpt = None,
    token: TokenOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Remove documents from the collection (a folder or archive: every document in it)."""
    _refuse_empty(sources, "a document as `ragloom sources` lists it")
    with open_rag(existing=True, uri=uri, token=token, collection=collection) as rag:
        named = rag.documents_named(sources)
        found = sorted({s for group in named.values() for s in group})
        deleted = rag.delete(found) if found else 0
    missing = [name for name, group in named.items() if not group]
    for name in missing:
        err(f"{display(name)}: no such document in the collection")
    if missing:
        err("`ragloom sources` lists the documents as `ragloom delete` takes them")
    typer.echo(f"deleted {_count(deleted, 'chunk')} of {_count(len(found), 'document')}")
    if missing:
        raise typer.Exit(1)


def _refuse_empty(sources: list[str], wanted: str) -> None:
    """An empty SOURCE (an unset "$DOCS") is a usage error: as a path it would be the
    working directory."""
    if any(not source.strip() for source in sources):
        raise typer.BadParameter(f"an empty source: name {wanted}", param_hint="SOURCE")


def _count(n: int, noun: str) -> str:
    """``1 document``, ``2 documents``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
