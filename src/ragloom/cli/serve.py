"""``ragloom serve``: the HTTP API, the OpenAI-compatible endpoint and the web page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ragloom.cli.common import CollectionOpt, TokenOpt, UriOpt, app, err
from ragloom.cli.forward import API_KEY_ENV
from ragloom.errors import RagloomError, keyword_names


@app.command()
def serve(
    host: Annotated[
        str, typer.Option("--host", help="address to listen on; loopback keeps it on this machine")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0: any free port")] = 8000,
    llm: Annotated[
        str | None,
        typer.Option("--llm", help="deepseek, lepton, gemini, openai or none (env RAGLOOM_LLM)"),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="the provider's model (env RAGLOOM_LLM_MODEL)")
    ] = None,
    embedder: Annotated[
        str | None, typer.Option("--embedder", help="local[:MODEL], milvus-default, gemini, openai")
    ] = None,
    uploads_dir: Annotated[
        Path | None,
        typer.Option(
            "--uploads-dir", help="where uploaded files are kept (default: beside the db)"
        ),
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", min=0.001, help="largest upload request, in MiB")
    ] = 100.0,
    allow_no_key: Annotated[
        bool,
        typer.Option("--allow-no-key", help=f"listen beyond loopback without {API_KEY_ENV}"),
    ] = False,
    uri: UriOpt = None,
    token: TokenOpt = None,
    collection: CollectionOpt = None,
) -> None:
    """Serve the collection over HTTP: an API, an OpenAI-compatible chat endpoint, a web page.

    With RAGLOOM_API_KEY set, every request but /healthz (and the page's files) needs
    'Authorization: Bearer <key>'.  The server owns a Milvus Lite file while it runs.
    """
    from ragloom.llms import llm_names

    if llm is not None and llm.strip().lower() not in llm_names():
        raise typer.BadParameter(f"use one of {', '.join(llm_names())}", param_hint="--llm")
    try:
        from ragloom.rag import RAG
        from ragloom.server import ServerOptions, UploadLimits, serve

        with RAG(uri=uri, token=token, collection=collection, embedder=embedder) as rag:
            limits = UploadLimits(
                max_request_bytes=int(max_upload_mb * 1024**2), load=rag.load_limits()
            )
            options = ServerOptions(
                api_key=os.environ.get(API_KEY_ENV, "").strip() or None,
                llm=llm, model=model, uploads_dir=uploads_dir, limits=limits,
            )  # fmt: skip
            # Requests name options as their JSON fields do; the server's own, its flags.
            with keyword_names(server_flags=SERVER_FLAGS):
                serve(rag, options, host=host, port=port, allow_no_key=allow_no_key, say=err)
        err("stopped")
        _exit_now_if_threads_remain()
    except RagloomError as exc:
        err(str(exc))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


#: What only whoever starts the server sets (a client's request cannot).
SERVER_FLAGS = frozenset({"llm", "model", "uri", "token", "collection", "embedder"})


def _exit_now_if_threads_remain() -> None:
    """End the process once the server has stopped and the store is closed, even when
    answer threads are still waiting on a model: Python would wait for them at exit, up
    to the model's deadline (two minutes by default), after "stopped" was printed."""
    import sys
    import threading

    waiting = [t for t in threading.enumerate() if t.is_alive() and not t.daemon]
    if any(t is not threading.main_thread() for t in waiting):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
