"""Start a real Milvus 2.3 standalone server (PyPI package ``milvus``) for tests.

Every port (gRPC proxy, the internal coordinator/node ports, embedded etcd client
and peer, metrics/health HTTP) is a fresh free loopback port, and the data,
config, logs and unpacked binaries live under ``base_dir``, so several servers
can run side by side on one machine.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

# components whose advertised address is pinned to loopback (Milvus 2.3 still
# binds its gRPC listeners on all interfaces; that is not configurable)
_NODES = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")


def is_available() -> bool:
    """True if the ``milvus`` server package (and pymilvus) can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("milvus", "pymilvus"))


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open together while being picked)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


@dataclass
class MilvusServerHandle:
    """A running server; use as a context manager or call :meth:`stop`."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        self._signal(signal.SIGKILL)  # also reaps anything left in the group
        self.process.wait(timeout=30)

    def _signal(self, sig: signal.Signals) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)  # own session => pgid == pid

    def __enter__(self) -> MilvusServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _wait_ready(handle: MilvusServerHandle, timeout: float, token: str = "") -> None:
    from pymilvus import MilvusClient

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise RuntimeError(
                f"milvus exited with {handle.process.returncode} during startup; "
                f"see logs in {handle.data_dir / 'logs'}"
            )
        try:
            client = MilvusClient(uri=handle.uri, token=token, timeout=5)
            try:
                client.list_collections()
                return
            finally:
                client.close()
        except Exception as exc:  # not up yet: connection refused, unavailable, ...
            last_error = exc
            time.sleep(1.0)
    raise TimeoutError(f"milvus not ready at {handle.uri} after {timeout:.0f}s: {last_error!r}")


#: The token of the root user a server with authentication enabled starts with.
ROOT_TOKEN = "root:Milvus"


def start_milvus_server(
    base_dir: Path, timeout: float = 180.0, *, auth: bool = False
) -> MilvusServerHandle:
    """Start ``milvus run standalone`` with its data under ``base_dir / "milvus"``;
    ``auth`` turns on authentication (every client then needs a token, ``ROOT_TOKEN``)."""
    import milvus  # fails loudly if the dev extra is not installed

    data_dir = (Path(base_dir) / "milvus").resolve()
    config = milvus.MilvusServerConfig(data_dir=str(data_dir))
    # every "<name>_port" template key (etcd client, proxy, coordinators, nodes)
    keys = [key for key in config.configurable_items if key.endswith("_port")]
    free = _free_ports(len(keys) + 2)
    ports = dict(zip(keys, free[:-2], strict=True))
    config.update(**ports)
    ports["etcd_peer_port"], ports["metrics_port"] = free[-2], free[-1]
    for node in _NODES:
        config.set(f"{node}.ip", "127.0.0.1")
    if auth:
        config.set("common.security.authorizationEnabled", "true")
    config.resolve()  # writes data_dir/configs/milvus.yaml
    milvus._initialize_data_files(str(data_dir))  # unpacks data_dir/bin/milvus + libs

    client_url = f"http://127.0.0.1:{ports['etcd_port']}"
    peer_url = f"http://127.0.0.1:{ports['etcd_peer_port']}"
    etcd_yaml = data_dir / "configs" / "embedEtcd.yaml"
    etcd_yaml.write_text(
        f"name: default\nlisten-client-urls: {client_url}\nadvertise-client-urls: {client_url}\n"
        f"listen-peer-urls: {peer_url}\ninitial-advertise-peer-urls: {peer_url}\n"
        f"initial-cluster: default={peer_url}\n",
        encoding="utf-8",
    )
    bin_dir = data_dir / "bin"
    env = dict(os.environ)
    env.update(
        DEPLOY_MODE="STANDALONE",
        METRICS_PORT=str(ports["metrics_port"]),
        MILVUS_RUN_DIR=str(data_dir / "run"),
        ETCD_CONFIG_PATH=str(etcd_yaml),
        LD_LIBRARY_PATH=os.pathsep.join(filter(None, [str(bin_dir), env.get("LD_LIBRARY_PATH")])),
    )
    logs = data_dir / "logs"
    with (
        (logs / "milvus-stdout.log").open("wb") as out,
        (logs / "milvus-stderr.log").open("wb") as err,
    ):
        process = subprocess.Popen(
            [str(bin_dir / "milvus"), "run", "standalone"],
            cwd=data_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    handle = MilvusServerHandle(process, ports["proxy_port"], data_dir, ports)
    try:
        _wait_ready(handle, timeout, ROOT_TOKEN if auth else "")
    except BaseException:
        handle.stop(grace=2.0)
        raise
    return handle
