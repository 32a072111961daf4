"""An idle Milvus Lite connection must not be dropped by the server for "too_many_pings".

pymilvus gives its gRPC channel a 10 s keepalive that pings even with no call under way
(``keepalive_permit_without_calls``); Milvus Lite's in-process gRPC server keeps gRPC's
server defaults, under which a ping on an idle connection sooner than 2 h after the last is
a strike, and a third strike is answered with GOAWAY ENHANCE_YOUR_CALM "too_many_pings",
which gRPC prints on stderr.  A long-running ``ragloom serve`` or ``ragloom chat`` idle for
about a minute saw those lines.

Waiting for that takes minutes: gRPC sends at most two pings without data and then only one
a minute.  The child process below runs the real store against the real server with the
client's keepalive clock compressed instead: every keepalive time the channel is given is
cut 20-fold (pymilvus's 10 s becomes 0.5 s) and the two-pings cap is lifted.  The server's
rules are untouched, so without the fix the GOAWAY comes about 3 s into the idle time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ragloom.store import MilvusStore

ROOT = Path(__file__).resolve().parents[1]
IDLE_SECONDS = 6  # the unfixed client was refused 3.2 s into the idle time (5 runs of 5)

CHILD = textwrap.dedent("""
    import sys, time
    import grpc

    real_channel = grpc.insecure_channel

    def compressed_keepalive(target, options=None, *args, **kwargs):
        opts = dict(options or ())
        if "grpc.keepalive_time_ms" in opts:
            opts["grpc.keepalive_time_ms"] = max(1, int(opts["grpc.keepalive_time_ms"]) // 20)
            opts["grpc.http2.max_pings_without_data"] = 0
        return real_channel(target, list(opts.items()), *args, **kwargs)

    grpc.insecure_channel = compressed_keepalive  # pymilvus looks it up at each connect

    from ragloom.store import CollectionInfo, MilvusStore

    store = MilvusStore(sys.argv[1], "idle")
    store.create(CollectionInfo(embedder="e", dim=2, splitter="s", chunk_tokens=8))
    time.sleep(float(sys.argv[2]))
    assert store.info() is not None  # a call through gRPC after the idle time
    store.close()
    print("ok", flush=True)
""")


def test_an_idle_lite_connection_is_not_refused_for_too_many_pings(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "GRPC_VERBOSITY": "ERROR",  # the level the GOAWAY line is printed at, and gRPC's default
    }
    env.pop("GRPC_TRACE", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "idle.db"), str(IDLE_SECONDS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert "too_many_pings" not in done.stderr, done.stderr
    assert "GOAWAY" not in done.stderr, done.stderr
    assert time.monotonic() - started < 60


def test_a_server_uri_keeps_pymilvus_keepalive(monkeypatch: pytest.MonkeyPatch) -> None:
    """The change is for Milvus Lite only: a remote server behind load balancers and NATs
    needs pymilvus's keepalive pings, so no gRPC options are passed for it."""
    import pymilvus

    seen: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, **kwargs: Any) -> None:
            seen.append(kwargs)

    monkeypatch.setattr(pymilvus, "MilvusClient", Recorder)
    MilvusStore("http://127.0.0.1:9", "c").client  # noqa: B018 (connects)
    assert len(seen) == 1 and "grpc_options" not in seen[0]
