"""`rapport serve` with RAPPORT_WORKERS=2, started for real as a subprocess against the
test's database: each worker process listens on a socket of its own on the same port, the
kernel spreads keep-alive connections over both, a worker that dies is replaced, only one
runs the job worker, and SIGTERM to the parent stops everything.

Which process answered a connection is read from the operating system (psutil: the worker
that holds the server side of the connection), not from anything the server says.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import asyncpg
import psutil
import pytest
from sqlalchemy.engine import URL

from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.support import free_port, rapport_env

T = TypeVar("T")
# How many keep-alive connections the test opens: with two workers and the kernel's hash
# over each connection's ports, all of them landing on one worker has odds of 2 in 2^16.
CONNECTIONS = 16


def eventually(probe: Callable[[], T | None], *, within: float, what: str, server: subprocess.Popen[bytes]) -> T:
    """The first true value `probe` returns, polling until `within` seconds have passed."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"rapport serve exited with {server.returncode} while waiting for {what}")
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def listening_workers(server: subprocess.Popen[bytes], port: int) -> set[int] | None:
    """The pids of the server's worker processes, once each listens on the port."""
    try:
        workers = [
            child
            for child in psutil.Process(server.pid).children()
            if "multiprocessing.spawn" in " ".join(child.cmdline())
        ]
        listening = {
            child.pid
            for child in workers
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in child.net_connections("tcp"))
        }
    except psutil.NoSuchProcess:
        return None
    return listening if listening and len(listening) == len(workers) else None


def answering_process(connection: http.client.HTTPConnection, workers: set[int], port: int) -> int:
    """The worker holding the server side of this client connection."""
    assert connection.sock is not None
    client_port = connection.sock.getsockname()[1]
    for pid in workers:
        for held in psutil.Process(pid).net_connections("tcp"):
            if held.laddr.port == port and held.raddr and held.raddr.port == client_port:
                return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def healthz(connection: http.client.HTTPConnection) -> int:
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    return response.status


def job_listeners(database: DatabaseUrls) -> int:
    """Connections LISTENing for jobs on the test's database: one per running job worker."""

    async def count() -> int:
        conn = await asyncpg.connect(asyncpg_dsn(database.admin))
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query = 'LISTEN \"kernel_jobs\"'",
                    database.owner.database,
                )
            )
        finally:
            await conn.close()

    # In a thread of its own: asyncio.run would otherwise replace this thread's event loop,
    # which the session's async fixtures use.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, count()).result()


@pytest.fixture
def served(admin_url: URL, database: DatabaseUrls, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`rapport serve` with two workers on a free port, and that port."""
    port = free_port()
    env = rapport_env(
        admin_url,
        database,
        RAPPORT_WORKERS="2",
        RAPPORT_HOST="127.0.0.1",
        RAPPORT_PORT=str(port),
        RAPPORT_DATA_DIR=str(tmp_path),
    )
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "rapport", "serve", "--no-demo"], env=env, cwd=tmp_path, stdout=log, stderr=log
    )
    try:
        yield server, port
    finally:
        # After a failure, what this test started and is still running.
        if server.poll() is None:
            started = psutil.Process(server.pid).children(recursive=True)
            server.kill()
            server.wait()
            for child in started:
                child.kill()
        log.close()


def test_two_workers_share_the_port_restart_and_stop(
    served: tuple[subprocess.Popen[bytes], int], database: DatabaseUrls
) -> None:
    server, port = served
    workers = eventually(
        lambda: listening_workers(server, port), within=30, what="two listening workers", server=server
    )
    assert len(workers) == 2

    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(CONNECTIONS)]
    assert {healthz(connection) for connection in connections} == {200}
    answered_by = {answering_process(connection, workers, port) for connection in connections}
    # Kept alive: a second request on each connection goes to the same process.
    assert {healthz(connection) for connection in connections} == {200}
    assert {answering_process(connection, workers, port) for connection in connections} == answered_by
    assert answered_by == workers

    # Of the two, exactly one runs the in-process job worker.
    eventually(lambda: job_listeners(database) == 1, within=10, what="a job worker", server=server)
    time.sleep(0.5)
    assert job_listeners(database) == 1

    killed = min(workers)
    os.kill(killed, signal.SIGKILL)

    def replacement() -> set[int] | None:
        found = listening_workers(server, port)
        return found if found and len(found) == 2 and killed not in found else None

    replaced = eventually(replacement, within=30, what="a worker in place of the killed one", server=server)
    assert replaced - workers and (workers - {killed}) <= replaced
    fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    assert healthz(fresh) == 200
    eventually(lambda: job_listeners(database) == 1, within=10, what="one job worker again", server=server)

    for connection in [*connections, fresh]:
        connection.close()
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=40) == 0
    # The parent waited for its workers before it exited: none is left behind.
    assert [pid for pid in replaced if psutil.pid_exists(pid)] == []
