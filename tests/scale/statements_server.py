"""A PostgreSQL server of its own that records every statement run in it, nested ones
included: Debian's PostgreSQL (its `pg_stat_statements` with `track = all` sees the
statements inside functions and triggers too, where most of Rapport's messaging SQL lives).

The embedded server's build has no contrib modules, hence Debian's package here
(`postgresql`, installed with apt-get when missing). It listens on a free loopback port,
trusts local connections, and runs as the `postgres` system user when this runs as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

HOST = "127.0.0.1"
SERVICE_USER = "postgres"
_DEBIAN = Path("/usr/lib/postgresql")

_CONF = """
listen_addresses = '{host}'
port = {port}
unix_socket_directories = ''
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.track_utility = on
pg_stat_statements.max = 10000
fsync = off
synchronous_commit = off
full_page_writes = off
"""


def debian_bin() -> Path | None:
    """The newest Debian PostgreSQL whose install has pg_stat_statements."""
    if not _DEBIAN.exists():
        return None
    versions = sorted(
        (p for p in _DEBIAN.iterdir() if (p / "lib" / "pg_stat_statements.so").exists()),
        key=lambda p: int(p.name) if p.name.isdigit() else 0,
    )
    return versions[-1] / "bin" if versions else None


def ensure_package() -> Path:
    found = debian_bin()
    if found is not None:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    install = ["apt-get", *lock, "install", "-y", "--no-install-recommends", "postgresql"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", *lock, "update"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    # Debian starts a cluster of its own on install; this module runs its own.
    subprocess.run(["service", "postgresql", "stop"], capture_output=True, check=False)
    found = debian_bin()
    if found is None:
        raise RuntimeError("No PostgreSQL with pg_stat_statements after installing Debian's package.")
    return found


def _as_service_user() -> dict[str, Any]:
    return {"user": SERVICE_USER, "group": SERVICE_USER} if os.geteuid() == 0 else {}


def _run(args: list[str | Path]) -> None:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False, **_as_service_user())
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({done.returncode}): {done.stderr or done.stdout}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def statements_server() -> Iterator[URL]:
    """The server running; its superuser's URL (asyncpg driver)."""
    binaries = ensure_package()
    # Outside pytest's folders, which the service user could not enter.
    folder = Path(tempfile.mkdtemp(prefix="rapport-statements-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, SERVICE_USER, SERVICE_USER)
    port = _free_port()
    try:
        _run(
            [binaries / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=utf8", "--no-instructions"]
        )
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(_CONF.format(host=HOST, port=port))
        _run([binaries / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "-t", "60", "start"])
        try:
            yield URL.create("postgresql+asyncpg", username="postgres", host=HOST, port=port, database="postgres")
        finally:
            _run([binaries / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
