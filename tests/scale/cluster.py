"""A PostgreSQL primary, a streaming replica made with `pg_basebackup`, and PgBouncer
(transaction pooling) in front of the primary, all on this machine under one folder.

The PostgreSQL binaries are the embedded server's (pgserver's PG16); PgBouncer is
Debian's package, installed when missing. Every server listens on 127.0.0.1 only, on a
free port, with no Unix socket (a test folder's path is too long for one), and trusts
local connections: the roles Rapport provisions have no passwords in the tests.

As a script:

    python -m tests.scale.cluster up <dir>     # starts everything, prints the ports (JSON)
    python -m tests.scale.cluster down <dir>   # stops everything, removes <dir>

Which URL is which (see `ClusterUrls`): `direct` connects straight to the primary (the
admin, migrations, the realtime listener), `pooled` goes through PgBouncer (what the nodes'
pools use), `replica` reads from the replica.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from rapport.config import Settings
from rapport.kernel import migrate, provisioning
from rapport.kernel.provisioning import APP_ROLE, OWNER_ROLE, WORKER_ROLE, DatabaseUrls

SUPERUSER = "postgres"
HOST = "127.0.0.1"
# The system user the servers run as when this runs as root: PostgreSQL refuses root, and
# the embedded server already made this one (pgserver runs as it too).
SERVICE_USER = "pgserver"
STATE_FILE = "cluster.json"
START_TIMEOUT_S = 60


def _pg_bin() -> Path:
    # Imported here: only the cluster needs the embedded install, not what imports this
    # module. pgserver warns when XDG_RUNTIME_DIR is unset; its fallback is fine.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from pgserver._commands import POSTGRES_BIN_PATH

    path: Path = POSTGRES_BIN_PATH
    return path


def _pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)


def ensure_packages() -> None:
    """PgBouncer from Debian's packages when it is missing (the PostgreSQL binaries come
    with the embedded server)."""
    if not (_pg_bin() / "pg_basebackup").exists():
        raise RuntimeError(f"No pg_basebackup in {_pg_bin()}: the embedded PostgreSQL install is incomplete.")
    if _pgbouncer() is not None:
        return
    install = [
        "apt-get",
        "-o",
        "DPkg::Lock::Timeout=300",
        "install",
        "-y",
        "--no-install-recommends",
        "pgbouncer",
    ]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    # Debian starts a system-wide PgBouncer on install; the cluster runs its own.
    subprocess.run(["service", "pgbouncer", "stop"], capture_output=True, check=False)
    if _pgbouncer() is None:
        raise RuntimeError("pgbouncer is still missing after installing Debian's package.")


def _as_service_user() -> dict[str, Any]:
    return {"user": SERVICE_USER, "group": SERVICE_USER} if os.geteuid() == 0 else {}


def _give_to_service_user(path: Path) -> None:
    if os.geteuid() != 0:
        return
    import pwd

    from pgserver.utils import ensure_prefix_permissions

    entry = pwd.getpwnam(SERVICE_USER)
    ensure_prefix_permissions(path)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def _run(args: Sequence[str | Path], *, as_service: bool = True) -> str:
    kwargs = _as_service_user() if as_service else {}
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({done.returncode}): {done.stderr or done.stdout}")
    output: str = done.stdout
    return output


def _free_port() -> int:
    # tests.support has the same; not imported, so that the script runs without pytest's world.
    import socket

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class ClusterUrls:
    """Rapport's URLs (asyncpg driver) for one database on the cluster.

    `direct`: every role straight to the primary: provisioning and migrations (they take
    session-level advisory locks, which PgBouncer's transaction pooling would strand on a
    server connection) and the realtime listener (`RAPPORT_DATABASE_LISTEN_URL`).
    `pooled`: the same roles through PgBouncer: the nodes' request and system pools.
    `replica`: `rapport_app` on the replica (`RAPPORT_DATABASE_REPLICA_URL`).
    """

    direct: DatabaseUrls
    pooled: DatabaseUrls
    replica: URL

    def env(self) -> dict[str, str]:
        """The settings of a `rapport serve` node using PgBouncer, the direct listener and
        the replica. Provisioning and migrations at its start go to the listen URL's
        server (PostgreSQL itself), with the admin's role from RAPPORT_DATABASE_URL."""
        return {
            "RAPPORT_DATABASE_URL": _render(self.pooled.admin),
            "RAPPORT_DATABASE_NAME": str(self.pooled.app.database),
            "RAPPORT_DATABASE_PGBOUNCER": "true",
            "RAPPORT_DATABASE_LISTEN_URL": _render(self.direct.app),
            "RAPPORT_DATABASE_REPLICA_URL": _render(self.replica),
        }


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@dataclass
class Cluster:
    base: Path
    primary_port: int
    replica_port: int
    pgbouncer_port: int
    # Where the servers keep their files: a folder of its own under the system's temporary
    # folder, which the servers' system user can always reach (pytest makes its own
    # folders private to the user running it); `base/servers` links to it.
    data: Path | None = None

    @property
    def home(self) -> Path:
        return self.data or self.base

    @property
    def primary_dir(self) -> Path:
        return self.home / "primary"

    @property
    def replica_dir(self) -> Path:
        return self.home / "replica"

    @property
    def pgbouncer_dir(self) -> Path:
        return self.home / "pgbouncer"

    def admin_url(self, port: int | None = None) -> URL:
        """The superuser on the primary (or on the server at `port`)."""
        return URL.create(
            "postgresql+asyncpg", username=SUPERUSER, host=HOST, port=port or self.primary_port, database="postgres"
        )

    def _dsn(self, port: int, database: str) -> str:
        return f"postgresql://{HOST}:{port}/{database}"

    def primary_dsn(self, database: str) -> str:
        return self._dsn(self.primary_port, database)

    def replica_dsn(self, database: str) -> str:
        return self._dsn(self.replica_port, database)

    def pgbouncer_dsn(self, database: str) -> str:
        return self._dsn(self.pgbouncer_port, database)

    def sql(self, port: int, query: str, database: str = "postgres") -> str:
        """One statement's result as psql prints it unaligned (no driver or event loop
        needed, so sync and async tests alike can call it)."""
        return _run(
            [_pg_bin() / "psql", "-XAtq", "-h", HOST, "-p", str(port), "-U", SUPERUSER, "-d", database, "-c", query],
            as_service=False,
        ).strip()

    def pgbouncer_server_pids(self) -> set[int]:
        """The primary's backends PgBouncer holds as server connections (`SHOW SERVERS`)."""
        shown = _run(
            [
                _pg_bin() / "psql",
                "-XAq",
                "-h",
                HOST,
                "-p",
                str(self.pgbouncer_port),
                "-U",
                SUPERUSER,
                "-d",
                "pgbouncer",
                "-c",
                "SHOW SERVERS",
            ],
            as_service=False,
        ).splitlines()
        header = shown[0].split("|")
        column = header.index("remote_pid")
        rows = [line.split("|") for line in shown[1:] if "|" in line]
        return {int(row[column]) for row in rows if len(row) == len(header)}

    async def provision(self, database: str, settings: Settings | None = None) -> ClusterUrls:
        """Rapport's roles and `database`, migrated to head, on the primary; the replica
        has them once it has replayed (call `wait_for_replay` before reading there)."""
        settings = settings or Settings(_env_file=None, environment="test")
        direct = provisioning.urls_for(self.admin_url(), database=database, settings=settings)
        await provisioning.provision(direct, settings)
        await migrate.upgrade(direct.owner)
        pooled = provisioning.urls_for(self.admin_url(self.pgbouncer_port), database=database, settings=settings)
        replica = provisioning.urls_for(self.admin_url(self.replica_port), database=database, settings=settings).app
        return ClusterUrls(direct=direct, pooled=pooled, replica=replica)

    def stop_primary(self) -> None:
        _run([_pg_bin() / "pg_ctl", "-D", self.primary_dir, "-m", "fast", "-w", "stop"])

    def stop_replica(self) -> None:
        _run([_pg_bin() / "pg_ctl", "-D", self.replica_dir, "-m", "fast", "-w", "stop"])

    def start_replica(self) -> None:
        _start_server(self.replica_dir)

    def promote_replica(self) -> None:
        _run([_pg_bin() / "pg_ctl", "-D", self.replica_dir, "-w", "promote"])
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.sql(self.replica_port, "SELECT pg_is_in_recovery()") != "f":
            if time.monotonic() > deadline:
                raise TimeoutError("The promoted replica still reports being in recovery.")
            time.sleep(0.1)

    def wait_for_replay(self, timeout: float = 10.0) -> None:
        target = self.sql(self.primary_port, "SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + timeout
        query = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        while self.sql(self.replica_port, query) != "t":
            if time.monotonic() > deadline:
                raise TimeoutError(f"The replica has not replayed up to {target} in {timeout} s.")
            time.sleep(0.05)

    def stop(self) -> None:
        _stop_pgbouncer(self.pgbouncer_dir)
        for data in (self.replica_dir, self.primary_dir):
            if (data / "postmaster.pid").exists():
                subprocess.run(
                    [str(_pg_bin() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                    capture_output=True,
                    check=False,
                    **_as_service_user(),
                )
        if self.data is not None:
            shutil.rmtree(self.data, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def save(self) -> None:
        state = {key: str(value) if isinstance(value, Path) else value for key, value in asdict(self).items()}
        (self.base / STATE_FILE).write_text(json.dumps(state))

    @classmethod
    def load(cls, base: Path) -> Cluster:
        state = json.loads((base / STATE_FILE).read_text())
        return cls(
            base=Path(state["base"]),
            primary_port=state["primary_port"],
            replica_port=state["replica_port"],
            pgbouncer_port=state["pgbouncer_port"],
            data=Path(state["data"]) if state.get("data") else None,
        )


_PRIMARY_CONF = """
listen_addresses = '{host}'
port = {port}
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
hot_standby = on
hot_standby_feedback = on
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
{preload}
"""


def _preload_line() -> str:
    # pg_stat_statements is preloaded where the install has it; the embedded PG16 build
    # ships without it, so statement text then comes from the server log instead.
    lib = _pg_bin().parent / "lib" / "postgresql" / "pg_stat_statements.so"
    if lib.exists():
        return "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all"
    return "log_statement = 'all'\nlog_destination = 'stderr'"


def _start_server(data: Path) -> None:
    _run([_pg_bin() / "pg_ctl", "-D", data, "-l", data / "server.log", "-w", "-t", str(START_TIMEOUT_S), "start"])


def _stop_pgbouncer(folder: Path) -> None:
    pidfile = folder / "pgbouncer.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (ValueError, ProcessLookupError):
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


_PGBOUNCER_INI = """
[databases]
* = host={host} port={primary_port}

[pgbouncer]
listen_addr = {host}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/userlist.txt
admin_users = {superuser}
pool_mode = transaction
max_client_conn = 2000
default_pool_size = {pool_size}
reserve_pool_size = 0
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""


def _start_pgbouncer(folder: Path, *, port: int, primary_port: int, pool_size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # Trust still needs the names listed: Rapport's roles and the superuser.
    roles = (SUPERUSER, OWNER_ROLE, APP_ROLE, WORKER_ROLE)
    (folder / "userlist.txt").write_text("".join(f'"{role}" ""\n' for role in roles))
    (folder / "pgbouncer.ini").write_text(
        _PGBOUNCER_INI.format(
            host=HOST, port=port, primary_port=primary_port, folder=folder, superuser=SUPERUSER, pool_size=pool_size
        )
    )
    _give_to_service_user(folder)
    pgbouncer = _pgbouncer()
    assert pgbouncer is not None
    _run([pgbouncer, "-d", "-q", folder / "pgbouncer.ini"])
    _wait_for_port(port)


def _wait_for_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start_cluster(base: Path, *, pgbouncer_pool_size: int = 40) -> Cluster:
    """Primary, replica and PgBouncer, started under `base` (made if missing).

    `pgbouncer_pool_size`: PgBouncer's server connections per database and role. A small
    one makes many clients share each server connection, as in production, so that
    anything kept in a session across transactions shows."""
    ensure_packages()
    base = base.resolve()
    base.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="rapport-cluster-"))
    (base / "servers").symlink_to(data, target_is_directory=True)
    cluster = Cluster(
        base=base, primary_port=_free_port(), replica_port=_free_port(), pgbouncer_port=_free_port(), data=data
    )
    _give_to_service_user(data)
    try:
        _run(
            [
                _pg_bin() / "initdb",
                "-D",
                cluster.primary_dir,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=utf8",
                "--no-instructions",
            ]
        )
        with (cluster.primary_dir / "postgresql.conf").open("a") as conf:
            conf.write(_PRIMARY_CONF.format(host=HOST, port=cluster.primary_port, preload=_preload_line()))
        _start_server(cluster.primary_dir)
        _run(
            [
                _pg_bin() / "pg_basebackup",
                "-h",
                HOST,
                "-p",
                str(cluster.primary_port),
                "-U",
                SUPERUSER,
                "-D",
                cluster.replica_dir,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ]
        )
        with (cluster.replica_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {cluster.replica_port}\n")
        _start_server(cluster.replica_dir)
        _start_pgbouncer(
            cluster.pgbouncer_dir,
            port=cluster.pgbouncer_port,
            primary_port=cluster.primary_port,
            pool_size=pgbouncer_pool_size,
        )
    except BaseException:
        cluster.stop()
        raise
    cluster.save()
    return cluster


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print("usage: python -m tests.scale.cluster up|down <dir>", file=sys.stderr)
        return 2
    command, base = argv[0], Path(argv[1])
    if command == "up":
        cluster = start_cluster(base)
        print(
            json.dumps(
                {
                    "primary_port": cluster.primary_port,
                    "replica_port": cluster.replica_port,
                    "pgbouncer_port": cluster.pgbouncer_port,
                    "base": str(cluster.base),
                }
            )
        )
    else:
        Cluster.load(base).stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
