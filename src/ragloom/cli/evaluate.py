"""``ragloom eval``: retrieval quality and latency over a question set."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ragloom.cli.common import CollectionOpt, JsonOpt, TokenOpt, UriOpt, app, err, open_rag
from ragloom.cli.documents import (
    ModeOpt,
    RerankOpt,
    SourceOpt,
    WhereOpt,
    check_mode,
    search_mode,
)

if TYPE_CHECKING:
    from ragloom.eval import AbstainFn, ItemResult
    from ragloom.rag import RAG
    from ragloom.store import SearchMode
    from ragloom.types import Hit


@app.command("eval")
def evaluate(
    file: Annotated[
        Path,
        typer.Argument(
            help="question set, JSON lines: question, answer_keys, kind, lang", metavar="FILE"
        ),
    ],
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="passages retrieved")] = 10,
    mode: ModeOpt = None,
    where: WhereOpt = None,
    source: SourceOpt = None,
    rerank: RerankOpt = None,
    embedder: Annotated[str | None, typer.Option("--embedder", help="query embedder")] = None,
    misses: Annotated[
        bool, typer.Option("--misses", help="list the questions not answered in the top 3")
    ] = False,
    as_json: JsonOpt = False,
    uri: UriOpt = None,
    token: TokenOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Measure retrieval: hit@1/3/10, MRR@10 by kind and language, abstention, latency.

    A passage answers a question when it contains one of the question's answer keys
    verbatim; questions without keys should be abstained from.  Latency is per query
    (question embedding plus search, in this process, after one warm-up query).
    """
    from ragloom import eval as metrics
    from ragloom.asking import ASK_K
    from ragloom.config import redact_uri

    check_mode(mode)
    with open_rag(
        existing=True, uri=uri, token=token, collection=collection, embedder=embedder
    ) as rag:
        items = metrics.load_items(file)
        if rag.store.info() is None or not rag.store.count():
            err(f"nothing to evaluate: collection '{rag.settings.collection}' at"
                f" {redact_uri(rag.settings.uri)} is empty or does not exist"
                " (ragloom ingest PATH first)")  # fmt: skip
            raise typer.Exit(1)
        chosen = search_mode(rag, mode)
        sources = tuple(source or ())
        depth = max(k, ASK_K)  # abstention judges the passages `ask` would send

        def search(question: str) -> list[Hit]:
            return rag.search(
                question, depth, mode=chosen, where=where, sources=sources, rerank=rerank
            )

        abstains = _abstain_rule(rag, chosen, where, sources)
        results = metrics.run(items, search, abstains, k=k)
    summary = {**metrics.report(results), "k": k}
    if as_json:
        if misses:
            summary["misses"] = [
                {"id": r.item.id, "question": r.item.question, "rank": r.rank}
                for r in metrics.misses(results)
            ]
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    used = chosen or rag.settings.search_mode or ("hybrid" if _has_bm25(rag) else "dense")
    _print_summary(file, results, summary, used, k, misses)


def _has_bm25(rag: RAG) -> bool:
    info = rag.store.info()
    return info is not None and info.bm25


def _abstain_rule(
    rag: RAG, mode: SearchMode | None, where: str | None, sources: Sequence[str]
) -> AbstainFn:
    """The answers' abstention rule (``RAG.coverage``): no passage relevant enough, or
    a name the documents never mention; judged, as ``ragloom ask`` does, on the
    ``ASK_K`` best passages."""

    from ragloom.asking import ASK_K

    def abstains(question: str, hits: Sequence[Hit]) -> bool:
        sent = hits[:ASK_K]
        return rag.coverage(question, sent, mode=mode, where=where, sources=sources).abstain

    return abstains


def _row(name: str, q: dict[str, Any]) -> str:
    cells = [f"{q[key]:.3f}" if q[key] is not None else "  -  " for key in
             ("hit@1", "hit@3", "hit@10", "mrr@10")]  # fmt: skip
    return f"{name:<14}{q['n']:>5}  " + "  ".join(f"{c:>6}" for c in cells)


def _print_summary(
    file: Path,
    results: Sequence[ItemResult],
    summary: dict[str, Any],
    mode: str,
    k: int,
    show_misses: bool,
) -> None:
    from ragloom.eval import misses

    questions = f"{len(results)} question{'s' if len(results) != 1 else ''}"
    shallow = f" (hit@10 and MRR@10 count these {k})" if k < 10 else ""
    typer.echo(
        f"{file.name}: {questions}, {summary['n']} with answers; mode {mode}, top {k}{shallow}"
    )
    typer.echo(f"{'':<14}{'n':>5}  " + "  ".join(f"{h:>6}" for h in
               ("hit@1", "hit@3", "hit@10", "MRR@10")))  # fmt: skip
    if summary["n"]:
        typer.echo(_row("all", summary))
        for name, group in summary["by_kind"].items():
            typer.echo(_row(f"kind {name}", group))
        for name, group in summary["by_lang"].items():
            typer.echo(_row(f"lang {name}", group))
    abstain = summary["abstain"]
    if abstain is None:
        typer.echo("abstain: not measured (no abstention threshold for this embedder)")
    elif abstain["n"]:
        typer.echo(
            f"abstain: {abstain['rate']:.0%} of {abstain['n']} unanswerable questions"
            + (f", {abstain['false_rate']:.0%} of the answerable ones" if summary["n"] else "")
        )
    else:
        typer.echo(f"abstain: no unanswerable questions; {abstain['false_rate']:.0%} of the"
                   " answerable ones abstained from")  # fmt: skip
    latency = summary["latency_ms"]
    typer.echo(
        f"latency: p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms"
        " (question embedding + search, in process, warm)"
    )
    if show_misses:
        for result in misses(results):
            where = f"rank {result.rank}" if result.rank else "not in the top"
            typer.echo(f"  miss {result.item.id:<12} {where:<14} {result.item.question}")
