"""Several Rapport nodes on one machine, as an operator runs them on many (docs/SCALING.md):
the PostgreSQL primary, its streaming replica and PgBouncer of tests/scale/cluster.py, a
NATS server for fan-out, and three `rapport serve` nodes of one worker process each.

Each node is configured as a node of a real deployment would be:

- its request and system pools go through PgBouncer (transaction pooling);
- its realtime listener connects straight to the primary (`RAPPORT_DATABASE_LISTEN_URL`):
  LISTEN holds a session, which transaction pooling cannot give;
- reads that tolerate lag go to the replica (`RAPPORT_DATABASE_REPLICA_URL`);
- commits are announced to the other nodes over NATS (`RAPPORT_NATS_URL`).

NATS is Debian's `nats-server` package, installed with apt-get when missing; the
environment starts its own on a free port (JetStream off: Rapport's bus is plain
publish/subscribe), whatever else runs on the machine.

As a script (the processes outlive the command that started them):

    python -m tests.scale.environment up <dir>     # starts everything, prints the URLs (JSON)
    python -m tests.scale.environment down <dir>   # stops everything, removes <dir>
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.realtime.support import Server
from tests.scale.cluster import Cluster, ClusterUrls, start_cluster
from tests.scale.cluster import ensure_packages as ensure_cluster_packages

NODES = 3
DATABASE = "rapport"
STATE_FILE = "environment.json"
HOST = "127.0.0.1"
_NATS_CANDIDATES = ("/usr/sbin/nats-server", "/usr/bin/nats-server")


def nats_binary() -> str | None:
    return shutil.which("nats-server") or next((p for p in _NATS_CANDIDATES if Path(p).exists()), None)


def ensure_packages() -> None:
    """What the cluster needs, and Debian's `nats-server` when it is missing."""
    ensure_cluster_packages()
    if nats_binary() is not None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    install = ["apt-get", *lock, "install", "-y", "--no-install-recommends", "nats-server"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", *lock, "update"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    # Debian enables a system-wide server on install; the environment runs its own.
    subprocess.run(["service", "nats-server", "stop"], capture_output=True, check=False)
    if nats_binary() is None:
        raise RuntimeError("nats-server is still missing after installing Debian's package.")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process on port {port} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def start_nats(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A NATS server of its own on a free loopback port; the process and its URL."""
    binary = nats_binary()
    assert binary is not None, "nats-server is missing: call ensure_packages() first"
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = (folder / "nats.log").open("ab")
    # No -js: JetStream stays off, and no monitoring port is opened.
    process = subprocess.Popen([binary, "-a", HOST, "-p", str(port)], stdout=log, stderr=log)
    log.close()
    _wait_for_port(port, process)
    return process, f"nats://{HOST}:{port}"


def node_settings(urls: ClusterUrls, nats_url: str) -> dict[str, str]:
    """A node's settings beyond tests.support.rapport_env's (which sets the database URL
    and name itself: through PgBouncer, from `urls.pooled`)."""
    settings = {k: v for k, v in urls.env().items() if k not in ("RAPPORT_DATABASE_URL", "RAPPORT_DATABASE_NAME")}
    settings["RAPPORT_NATS_URL"] = nats_url
    # One worker process per node: three nodes already share two cores, and a node of
    # several processes is tests/realtime's subject, not this environment's.
    return settings


def make_node(urls: ClusterUrls, nats_url: str, folder: Path) -> Server:
    folder.mkdir(parents=True, exist_ok=True)
    return Server(urls.pooled.admin, urls.pooled, folder, workers=1, **node_settings(urls, nats_url))


@dataclass
class Environment:
    base: Path
    cluster: Cluster
    urls: ClusterUrls
    nats_url: str
    nats: subprocess.Popen[bytes] | None
    nodes: list[Server] = field(default_factory=list)

    def describe(self) -> dict[str, object]:
        return {
            "nodes": [node.url for node in self.nodes],
            "streams": [node.stream_url for node in self.nodes],
            "nats": self.nats_url,
            "primary": self.cluster.primary_dsn(DATABASE),
            "replica": self.cluster.replica_dsn(DATABASE),
            "pgbouncer": self.cluster.pgbouncer_dsn(DATABASE),
            "base": str(self.base),
        }

    def save(self) -> None:
        """What `down` needs from another process: the pids to stop."""
        state = {
            "nats_pid": self.nats.pid if self.nats else None,
            "node_pids": [node.process.pid for node in self.nodes if node.process is not None],
            "cluster": str(self.cluster.base),
            **self.describe(),
        }
        (self.base / STATE_FILE).write_text(json.dumps(state, indent=2))

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(psutil.NoSuchProcess):
                node.stop()
        if self.nats is not None and self.nats.poll() is None:
            self.nats.terminate()
            self.nats.wait(timeout=10)
        self.cluster.stop()


_PGBOUNCER_TARGET = re.compile(r"^\* = host=(\S+) port=\d+$", re.MULTILINE)


def repoint_pgbouncer(cluster: Cluster, port: int) -> None:
    """PgBouncer's databases now on the server at `port`: its ini rewritten, then RELOAD
    on its admin console. Clients stay connected to PgBouncer; the server connections to
    the old target are closed as they come back to the pool."""
    ini = cluster.pgbouncer_dir / "pgbouncer.ini"
    text, count = _PGBOUNCER_TARGET.subn(rf"* = host=\1 port={port}", ini.read_text())
    assert count == 1, f"no `* = host=… port=…` line in {ini}"
    ini.write_text(text)
    cluster.sql(cluster.pgbouncer_port, "RELOAD", database="pgbouncer")


def fail_over(environment: Environment) -> None:
    """docs/OPERATIONS.md, "Failover", as a planned switch: PgBouncer paused (transactions
    in flight finish, new ones wait in PgBouncer), the replica has replayed everything, the
    primary stops, the replica is promoted, PgBouncer is sent to it and resumed. The nodes
    are not touched: their pools talk to PgBouncer."""
    cluster = environment.cluster
    # Paused, no request reaches the stopped primary: one that did would leave PgBouncer
    # refusing or holding that pool for `server_login_retry` (15 s) after the switch.
    cluster.sql(cluster.pgbouncer_port, "PAUSE", database="pgbouncer")
    try:
        cluster.wait_for_replay()
        cluster.stop_primary()
        cluster.promote_replica()
        repoint_pgbouncer(cluster, cluster.replica_port)
    finally:
        cluster.sql(cluster.pgbouncer_port, "RESUME", database="pgbouncer")


def start_environment(base: Path, *, nodes: int = NODES) -> Environment:
    """The cluster, NATS and `nodes` Rapport nodes, started under `base` (made if missing)."""
    ensure_packages()
    base = base.resolve()
    base.mkdir(parents=True, exist_ok=True)
    cluster = start_cluster(base / "cluster")
    environment: Environment | None = None
    try:
        urls = asyncio.run(cluster.provision(DATABASE))
        nats, nats_url = start_nats(base / "nats")
        environment = Environment(base, cluster, urls, nats_url, nats)
        environment.nodes = [make_node(urls, nats_url, base / f"node-{i}") for i in range(nodes)]
        # Started together: each prepares the database (already migrated) and then serves.
        for node in environment.nodes:
            node.launch()
        for node in environment.nodes:
            node.wait_started()
    except BaseException:
        if environment is not None:
            environment.stop()
        else:
            cluster.stop()
        raise
    environment.save()
    return environment


def _stop_recorded(base: Path) -> None:
    """Stop what `up` started, from the pids it recorded."""
    state = json.loads((base / STATE_FILE).read_text())
    processes = []
    for pid in [*state["node_pids"], state["nats_pid"]]:
        if pid is None:
            continue
        with contextlib.suppress(psutil.NoSuchProcess):
            parent = psutil.Process(pid)
            processes += [parent, *parent.children(recursive=True)]
            parent.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=30)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    Cluster.load(Path(state["cluster"])).stop()
    shutil.rmtree(base, ignore_errors=True)


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print("usage: python -m tests.scale.environment up|down <dir>", file=sys.stderr)
        return 2
    command, base = argv[0], Path(argv[1])
    if command == "up":
        print(json.dumps(start_environment(base).describe(), indent=2))
    else:
        _stop_recorded(base.resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
