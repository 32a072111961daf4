"""Milvus Lite specifics: which URIs are local files, and whether one is in use.

Milvus Lite keeps a database in a folder named ``*.db`` and holds an exclusive lock on
``<folder>/LOCK`` while a process has it open.  Another process that opens it gets only
"Open local milvus failed"; we look first, and say who to ask.

A ``ragloom serve`` that owns a file records its URL beside it (``.NAME.db.server.json``)
while it runs, so a command that finds the file locked can name the server to use.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragloom.errors import ConfigError, StoreLockedError, option

_REMOTE_SCHEMES = ("http://", "https://", "tcp://", "grpc://", "unix:")


def is_lite_uri(uri: str) -> bool:
    """True for a local path (Milvus Lite), false for a server URI."""
    return not uri.lower().startswith(_REMOTE_SCHEMES)


def lite_path(uri: str) -> Path:
    """The absolute database path of a Milvus Lite URI (it must end in ``.db``)."""
    path = Path(os.path.expanduser(uri.removeprefix("file://"))).absolute()
    if path.suffix != ".db":
        raise ConfigError(
            f"{option('uri', uri)}: a Milvus Lite database must end in '.db' (e.g. ./ragloom.db);"
            " for a Milvus server use http://HOST:19530"
        )
    if not path.parent.is_dir():
        raise ConfigError(f"{option('uri', uri)}: the folder {path.parent} does not exist")
    return path


def _open_in_this_process(path: Path) -> bool:
    """Milvus Lite shares one in-process server per file; its lock is then ours."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return False
    servers = getattr(server_manager_instance, "_servers", {})
    return str(path) in servers


def raise_if_locked(uri: str) -> None:
    """Raise ``StoreLockedError`` when another process has the database open."""
    path = lite_path(uri)
    lock = path / "LOCK"
    if not lock.is_file() or _open_in_this_process(path):
        return
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        url = server_url(uri)
        if url is not None:
            raise StoreLockedError(
                f"the Milvus Lite database {uri} is owned by a ragloom server at {url}"
                " (Milvus Lite allows one process per file): use it (the page at"
                f" {url}/, the API at {url}/v1/...), stop it, or point {option('uri')} at a Milvus"
                " server (http://HOST:19530), which any number of processes can share."
            ) from None
        raise StoreLockedError(
            f"the Milvus Lite database {uri} is in use by another process (Milvus Lite allows"
            " one process per file; a running `ragloom serve` owns its file). Stop that"
            " process, send the request to the running server, or point"
            f" {option('uri')} at a Milvus"
            " server (http://HOST:19530), which any number of processes can share."
        ) from None
    finally:
        os.close(fd)


def _server_record(uri: str) -> Path:
    path = lite_path(uri)
    return path.with_name(f".{path.name}.server.json")


def announce_server(uri: str, url: str, collection: str | None = None) -> Path:
    """Record, beside the database, that a ragloom server at ``url`` (this process) owns
    it and serves ``collection``."""
    record = _server_record(uri)
    record.write_text(json.dumps({"url": url, "pid": os.getpid(), "collection": collection}))
    return record


def withdraw_server(uri: str) -> None:
    """Remove this process's record (a record left by another process is kept)."""
    record = _server_record(uri)
    try:
        if json.loads(record.read_text()).get("pid") == os.getpid():
            record.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def server_url(uri: str) -> str | None:
    """The URL of the ragloom server that owns the database, if one is running."""
    found = serving(uri)
    return found[0] if found else None


def serving(uri: str) -> tuple[str, str | None] | None:
    """``(url, collection)`` of the ragloom server that owns the database, if one is
    running (collection None: recorded by an older ragloom)."""
    try:
        data = json.loads(_server_record(uri).read_text())
        url, pid = str(data["url"]), int(data["pid"])
        collection = data.get("collection")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ConfigError):
        return None
    try:
        os.kill(pid, 0)  # a record left by a killed server names a dead process
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return url, (str(collection) if collection is not None else None)


_users: dict[str, int] = {}


def opened(uri: str) -> None:
    """Count one more store in this process using the database."""
    key = str(lite_path(uri))
    _users[key] = _users.get(key, 0) + 1


def closed(uri: str) -> None:
    """Count one store less; the last one stops the in-process server and frees the file."""
    key = str(lite_path(uri))
    _users[key] = _users.get(key, 1) - 1
    if _users[key] > 0:
        return
    del _users[key]
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return
    server_manager_instance.release_server(key)


def engine_collection(uri: str, collection: str) -> Any | None:
    """The Milvus Lite collection object serving ``uri`` in this process, or None.

    pymilvus runs Milvus Lite 3.x in this process behind a loopback gRPC server; asking
    its engine directly gives the same results without the round trip through gRPC
    (about 3 ms of a 10 ms search).  None when the engine is not reachable that way (an
    older or newer Milvus Lite, the file not open here): callers then use pymilvus.
    """
    try:
        from milvus_lite.server_manager import server_manager_instance

        entry = getattr(server_manager_instance, "_servers", {}).get(str(lite_path(uri)))
        if entry is None:
            return None
        db = entry[1]
        found = db.get_collection(collection)
        return found if callable(getattr(found, "search", None)) else None
    except Exception:  # any change in Milvus Lite's internals: use the public path
        return None


# -- segments ----------------------------------------------------------------------------

# Milvus Lite 3.x scores BM25 with each segment's own statistics (document count, average
# length, document frequencies), and compacts only when four files of one size class pile
# up.  An incremental ingest writes its documents into a new, small segment, where every
# word of them looks common: after editing the pages that answer the development
# questions, hybrid hit@3 fell from 0.82 to 0.78 until the segments were merged.  So after
# an ingest ragloom merges a partition's segments into one, with Milvus Lite's own
# (crash-safe) compaction, while that is cheap: the merged segment's vector index is
# rebuilt, about 3 s for the 4,921-chunk archive and ~45 s at 100k chunks.
MERGE_MAX_ROWS = 20_000


@dataclass(frozen=True)
class SegmentMerge:
    """What ``merge_segments`` did: files merged, and partitions left split because
    their rows exceed the limit (``rows``: the largest such total)."""

    merged: int = 0
    left_split: int = 0
    rows: int = 0


def merge_segments(uri: str, collection: str, max_rows: int = MERGE_MAX_ROWS) -> SegmentMerge:
    """Merge each partition's data segments into one where they hold at most ``max_rows``
    rows together, so BM25 statistics cover the whole partition; then build the merged
    segment's vector index.  Does nothing where Milvus Lite's internals are not the ones
    this was written for (another version), or where the file is not open here."""
    engine = engine_collection(uri, collection)
    manager: Any = getattr(engine, "_compaction_mgr", None)
    parts = ("_manifest", "_delta_index", "_maintenance_lock", "_refresh_segment_cache")
    if engine is None or not all(hasattr(engine, p) for p in parts):
        return SegmentMerge()
    if not all(hasattr(manager, p) for p in ("_compact_files", "_gc_tombstones", "_data_dir")):
        return SegmentMerge()
    import pyarrow.parquet as pq

    merged = left = largest = 0
    with engine._maintenance_lock:
        manifest = engine._manifest
        for partition in manifest.list_partitions():
            files = manifest.get_data_files(partition)
            if len(files) < 2:
                continue
            folder = os.path.join(manager._data_dir, "partitions", partition)
            rows = sum(pq.ParquetFile(os.path.join(folder, f)).metadata.num_rows for f in files)
            if rows > max_rows:
                left, largest = left + 1, max(largest, rows)
                continue
            manager._compact_files(partition, folder, files, manifest, engine._delta_index)
            merged += len(files)
        if merged:
            manager._gc_tombstones(manifest, engine._delta_index)
            engine._refresh_segment_cache()
            cleanup = getattr(engine, "_cleanup_orphan_index_files", None)
            if callable(cleanup):
                cleanup()
    build = getattr(engine, "_ensure_loaded_segments_indexed", None)
    if merged and callable(build):
        build()
    return SegmentMerge(merged, left, largest)
