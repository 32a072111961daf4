"""Milvus Lite specifics: which URIs are local files, and whether one is in use.

Milvus Lite keeps a database in a folder named ``*.db`` and holds an exclusive lock on
``<folder>/LOCK`` while a process has it open.  Another process that opens it gets only
"Open local milvus failed"; we look first, and say who to ask.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from ragloom.errors import ConfigError, StoreLockedError

_REMOTE_SCHEMES = ("http://", "https://", "tcp://", "grpc://", "unix:")


def is_lite_uri(uri: str) -> bool:
    """True for a local path (Milvus Lite), false for a server URI."""
    return not uri.lower().startswith(_REMOTE_SCHEMES)


def lite_path(uri: str) -> Path:
    """The absolute database path of a Milvus Lite URI (it must end in ``.db``)."""
    path = Path(os.path.expanduser(uri.removeprefix("file://"))).absolute()
    if path.suffix != ".db":
        raise ConfigError(
            f"--uri {uri}: a Milvus Lite database must end in '.db' (e.g. ./ragloom.db);"
            " for a Milvus server use http://HOST:19530"
        )
    if not path.parent.is_dir():
        raise ConfigError(f"--uri {uri}: the folder {path.parent} does not exist")
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
        raise StoreLockedError(
            f"the Milvus Lite database {uri} is in use by another process (Milvus Lite allows"
            " one process per file; a running `ragloom serve` owns its file). Stop that"
            " process, send the request to the running server, or point --uri at a Milvus"
            " server (http://HOST:19530), which any number of processes can share."
        ) from None
    finally:
        os.close(fd)


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
