"""Room for a bench's clients and its data on the embedded PostgreSQL.

At 64 clients the straight side holds 64 connections of its own while the server it
measures keeps its pools (about 25 connections a process), which passes PostgreSQL's
default `max_connections` of 100: the run would fail on a refused connection. And the
default `shared_buffers` (128 MB) holds little of a 10M-message data set, whose reads then
depend on what the machine's page cache keeps, which a virtual machine may reclaim at
will. A bench's own embedded server gets the settings of a database server sized for its
machine (a quarter of the memory for shared buffers, PostgreSQL's usual advice), once:
ALTER SYSTEM, then a restart, which takes effect at once and stays. An external server
(`--database`) is the operator's and is left as it is."""

from __future__ import annotations

import asyncio
import os
import pwd
import subprocess
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL

from rapport.kernel.provisioning import asyncpg_dsn

MAX_CONNECTIONS = 300


def wanted() -> dict[str, str]:
    """The settings, as `pg_settings` shows them (shared_buffers in 8 kB pages)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"max_connections": str(MAX_CONNECTIONS), "shared_buffers": str(memory // 4 // 8192)}


async def _set_missing(admin: URL) -> bool:
    """ALTER SYSTEM for each setting the server does not have yet; whether there was one."""
    connection = await asyncpg.connect(asyncpg_dsn(admin))
    try:
        rows = await connection.fetch("SELECT name, setting FROM pg_settings WHERE name = ANY($1)", list(wanted()))
        now = {row["name"]: int(row["setting"]) for row in rows}
        missing = {name: int(value) for name, value in wanted().items() if now.get(name, 0) < int(value)}
        for name, value in missing.items():
            await connection.execute(f"ALTER SYSTEM SET {name} = {value}")
    finally:
        await connection.close()
    return bool(missing)


def _restart(pgdata: Path) -> None:
    """`pg_ctl restart` as the data folder's owner: the server comes back with the options
    it was started with (postmaster.opts) and the new setting."""
    from pgserver._commands import POSTGRES_BIN_PATH

    owner = pwd.getpwuid(pgdata.stat().st_uid).pw_name
    as_owner = {"user": owner} if os.geteuid() == 0 and owner != "root" else {}
    # The log where the embedded server keeps it; and no pipes: the server inherits them,
    # and a pipe held open by the server would keep this call waiting.
    log = pgdata / "log"
    command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-l", str(log), "-w", "-m", "fast", "restart"]
    subprocess.run(  # type: ignore[call-overload]
        command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=120, **as_owner,
    )  # fmt: skip


def make_room(admin: URL, data_dir: Path) -> bool:
    """Give the embedded server under `data_dir` the bench's settings; whether it restarted."""
    if not asyncio.run(_set_missing(admin)):
        return False
    _restart(data_dir.expanduser().resolve() / "pgdata")
    return True
