"""PostgreSQL's own client tools for backups: finding a pg_dump and pg_restore that fit the
server, connecting them without putting the password on a command line, and running them
with their progress read from `--verbose`.

pg_dump reads servers of its own major version and older, never newer ones, and
pg_restore reads archives of its own version and older: for the embedded server the
pgserver wheel's own binaries match exactly; for another server the PATH's are used when
recent enough, else another installed version (Debian and Ubuntu keep each in
/usr/lib/postgresql/N/bin), else the refusal says which version to install.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

# What a long step reports as it goes: the step's description, how far it got and how far
# it goes (None when unknown).
Progress = Callable[[str, int, int | None], None]


class BackupError(RuntimeError):
    """A backup or restore that cannot be made, or did not come out identical; the message
    says what to do."""


def no_progress(step: str, done: int, total: int | None) -> None:
    return None


@dataclass(frozen=True)
class Tools:
    """pg_dump and pg_restore from one installation, and their major version."""

    bin_dir: Path
    version: str
    major: int

    @property
    def pg_dump(self) -> str:
        return str(self.bin_dir / "pg_dump")

    @property
    def pg_restore(self) -> str:
        return str(self.bin_dir / "pg_restore")


_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def tools_in(bin_dir: Path) -> Tools | None:
    """The tools in this folder, or None when pg_dump or pg_restore is missing there."""
    dump, restore = bin_dir / "pg_dump", bin_dir / "pg_restore"
    if not (os.access(dump, os.X_OK) and os.access(restore, os.X_OK)):
        return None
    try:
        out = subprocess.run([str(dump), "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    if match is None:
        return None
    version = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
    return Tools(bin_dir=bin_dir.resolve(), version=version, major=int(match.group(1)))


def bundled_bin_dir() -> Path | None:
    """Where the embedded server's own binaries are (the pgserver wheel ships them).
    Found without importing pgserver, which warns about the environment on import."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - a dependency of Rapport
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if path.is_dir() else None


def candidate_bin_dirs() -> list[Path]:
    """Where client tools may be, in order of preference: the PATH's, the versioned
    folders of Debian and Ubuntu's packages (/usr/lib/postgresql/N/bin), and the embedded
    server's own."""
    found: list[Path] = []
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    found.extend(Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin")))
    bundled = bundled_bin_dir()
    if bundled is not None:
        found.append(bundled)
    unique: list[Path] = []
    for path in found:
        if path.resolve() not in unique:
            unique.append(path.resolve())
    return unique


def choose_tools(available: Iterable[Tools], *, server_major: int, at_least: int | None = None) -> Tools:
    """The tools to use with a server of this major version: the same major version when
    there is one, else the oldest newer one (pg_dump reads older servers, never newer ones;
    pg_restore reads archives of its own version and older).

    Raises:
        BackupError: every one found is older than needed.
    """
    needed = max(server_major, at_least or 0)
    tools = list(available)
    fitting = [t for t in tools if t.major >= needed]
    if fitting:
        exact = [t for t in fitting if t.major == server_major]
        return exact[0] if exact else min(fitting, key=lambda t: t.major)
    found = ", ".join(f"{t.version} in {t.bin_dir}" for t in tools) or "none"
    what = f"PostgreSQL {server_major}" + (f" and an archive written by pg_dump {at_least}" if at_least else "")
    raise BackupError(
        f"pg_dump and pg_restore {needed} or newer are needed for {what}; found: {found}. "
        f"Install the PostgreSQL {needed} client tools, or name their folder with --pg-bin."
    )


def find_tools(*, server_major: int, bin_dir: Path | None = None, at_least: int | None = None) -> Tools:
    """The client tools for this server, from `bin_dir` when given, else the best found.

    Raises:
        BackupError: none fits, or `bin_dir` holds no pg_dump and pg_restore.
    """
    if bin_dir is not None:
        tools = tools_in(bin_dir)
        if tools is None:
            raise BackupError(f"{bin_dir} holds no pg_dump and pg_restore that run.")
        return choose_tools([tools], server_major=server_major, at_least=at_least)
    available = [t for t in (tools_in(d) for d in candidate_bin_dirs()) if t is not None]
    return choose_tools(available, server_major=server_major, at_least=at_least)


def _conninfo_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def libpq_connection(url: URL, database: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for the tools, and the environment that carries the
    password (never on the command line, where `ps` shows it)."""
    params: dict[str, str] = {}
    query = {key: value if isinstance(value, str) else value[-1] for key, value in url.query.items()}
    host = url.host or query.pop("host", None)
    if host:
        params["host"] = host
    if url.port:
        params["port"] = str(url.port)
    if url.username:
        params["user"] = url.username
    params["dbname"] = database
    # libpq's own keywords pass through (sslmode, sslrootcert, connect_timeout, …); the
    # driver's own options (prepared_statement_cache_size, …) mean nothing to it.
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "connect_timeout", "options", "port"):
        if key in query and key not in params:
            params[key] = query[key]
    params["application_name"] = "rapport-backup"
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    return " ".join(f"{key}={_conninfo_value(value)}" for key, value in params.items()), env


async def run_tool(
    argv: list[str], env: dict[str, str], *, counts: Callable[[str], bool], on_line: Callable[[int], None]
) -> None:
    """Run one of the tools, counting the lines of its `--verbose` output that `counts`
    picks (its progress).

    Raises:
        BackupError: it failed; with the last lines it wrote.
    """
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    tail: list[str] = []
    done = 0
    try:
        async for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if counts(line):
                done += 1
                on_line(done)
            elif any(word in line.lower() for word in ("error", "warning", "detail", "hint")):
                tail = [*tail[-9:], line]
        status = await process.wait()
    except BaseException:
        # Cancelled (the other half of a backup failed, or Ctrl-C): the tool goes too.
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if status != 0:
        said = "\n".join(tail) or "(it said nothing)"
        raise BackupError(f"{Path(argv[0]).name} failed:\n{said}")


def sha256_of(path: Path, progress: Progress, step: str) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            done += len(chunk)
            progress(step, done, total)
    return digest.hexdigest()
