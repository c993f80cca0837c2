"""A real `rapport serve` for the realtime tests, and a WebSocket follower to read it with.

The server runs as a subprocess on the test's database, with two worker processes unless
told otherwise (a node of several, tests/realtime/test_nodes.py, runs one each); which
worker holds a connection is read from the operating system (psutil), as in
tests/kernel/test_serving.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
import psutil
from sqlalchemy.engine import URL
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from rapport.kernel.provisioning import DatabaseUrls
from tests.support import Persona, free_port, rapport_env

SUBPROTOCOL = "rapport.v1"


class Streaming(Protocol):
    """A server the followers connect to: a `Server`, or an app served in the test's process."""

    @property
    def stream_url(self) -> str: ...


class Server:
    """`rapport serve` with `workers` processes on one port; `env` adds settings (a bus)."""

    def __init__(
        self, admin_url: URL, database: DatabaseUrls, directory: Path, *, workers: int = 2, **env: str
    ) -> None:
        self.port = free_port()
        self.count = workers
        self.env = rapport_env(
            admin_url,
            database,
            RAPPORT_WORKERS=str(workers),
            RAPPORT_HOST="127.0.0.1",
            RAPPORT_PORT=str(self.port),
            RAPPORT_DATA_DIR=str(directory),
            # The tests' accounts are hashed at this cost (tests.support.make_settings):
            # at the default cost, each first sign-in would hash its password again.
            RAPPORT_PASSWORD_TIME_COST="1",
            RAPPORT_PASSWORD_MEMORY_COST_KIB="1024",
            RAPPORT_PASSWORD_PARALLELISM="1",
            **env,
        )
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    def start(self) -> None:
        self.launch()
        self.wait_started()

    def launch(self) -> None:
        """Start the process (several servers may start at once: launch each, then wait)."""
        log = (self.directory / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rapport", "serve", "--no-demo"],
            env=self.env,
            cwd=self.directory,
            stdout=log,
            stderr=log,
        )
        log.close()

    def wait_started(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"rapport serve exited with {self.process.returncode}: {self.log_tail()}")
            if len(self.workers()) == self.count and self._healthy():
                return
            time.sleep(0.05)
        raise AssertionError(f"rapport serve did not start: {self.log_tail()}")

    def log_tail(self) -> str:
        return (self.directory / "serve.log").read_text(errors="replace")[-3000:]

    def _healthy(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def workers(self) -> set[int]:
        """The pids of the worker processes listening on the port (with one worker, the
        server's own process serves)."""
        assert self.process is not None
        try:
            parent = psutil.Process(self.process.pid)
            return {
                process.pid
                for process in [parent, *parent.children()]
                if any(
                    c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in process.net_connections("tcp")
                )
            }
        except psutil.NoSuchProcess:
            return set()

    def worker_holding(self, client_port: int) -> int:
        """The worker holding the server side of the client connection from this port."""
        for pid in self.workers():
            for held in psutil.Process(pid).net_connections("tcp"):
                if held.laddr.port == self.port and held.raddr and held.raddr.port == client_port:
                    return pid
        raise AssertionError(f"no worker holds the connection from port {client_port}")

    def kill(self) -> None:
        """SIGKILL to the parent and every worker at once: nothing is shut down cleanly."""
        assert self.process is not None
        everyone = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        for process in everyone:
            with_suppressed(lambda p=process: os.kill(p.pid, signal.SIGKILL))
        self.process.wait()
        psutil.wait_procs(everyone, timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        children = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for child in children:
            with_suppressed(child.kill)


def with_suppressed(call: Any) -> None:
    with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
        call()


class Follower:
    """A WebSocket on /v1/stream, reading frames as they come."""

    def __init__(self, socket: ClientConnection, ready: dict[str, Any]) -> None:
        self.socket = socket
        self.ready = ready

    @classmethod
    async def open(cls, server: Streaming, persona: Persona | str, *, since: int | None = None) -> Follower:
        """Authenticated through the bearer subprotocol; returns once `ready` came."""
        token = persona if isinstance(persona, str) else persona.access_token
        socket = await open_socket(server, since=since, subprotocols=[SUBPROTOCOL, f"rapport.bearer.{token}"])
        ready = await next_frame(socket)
        assert ready["type"] == "ready", ready
        return cls(socket, ready)

    @property
    def local_port(self) -> int:
        port: int = self.socket.local_address[1]
        return port

    async def frame(self, within: float = 5.0) -> dict[str, Any]:
        return await next_frame(self.socket, within)

    async def until(self, wanted: str, within: float = 5.0) -> list[dict[str, Any]]:
        """Frames up to and including the first of type `wanted` (pings skipped)."""
        frames: list[dict[str, Any]] = []
        while True:
            frame = await self.frame(within)
            if frame["type"] == "ping":
                continue
            frames.append(frame)
            if frame["type"] == wanted:
                return frames

    async def event(self, within: float = 5.0) -> dict[str, Any]:
        """The next event frame (other frames skipped)."""
        while True:
            frame = await self.frame(within)
            if frame["type"] == "event":
                return frame

    async def events_until(self, predicate: Any, within: float = 5.0) -> list[dict[str, Any]]:
        """Event frames up to and including the first that `predicate` accepts."""
        found: list[dict[str, Any]] = []
        while True:
            frame = await self.event(within)
            found.append(frame)
            if predicate(frame):
                return found

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.socket.send(frame if isinstance(frame, str) else orjson.dumps(frame).decode())

    async def closed_with(self, within: float = 5.0) -> int | None:
        """The close code, reading (and dropping) frames until the server closes."""
        try:
            async with asyncio.timeout(within):
                async for _ in self.socket:
                    pass
        except ConnectionClosed:
            pass
        return self.socket.close_code

    async def close(self) -> None:
        await self.socket.close()


async def open_socket(
    server: Streaming, *, since: int | None = None, subprotocols: list[str] | None = None
) -> ClientConnection:
    url = server.stream_url + (f"?since={since}" if since is not None else "")
    return await connect(url, subprotocols=subprotocols or [SUBPROTOCOL], open_timeout=10)  # type: ignore[arg-type]


async def next_frame(socket: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        data = await socket.recv()
    frame: dict[str, Any] = orjson.loads(data)
    return frame


async def send_message(
    http: httpx.AsyncClient, persona: Persona, conversation_id: str, content: str, **extra: Any
) -> dict[str, Any]:
    response = await http.post(
        f"/v1/conversations/{conversation_id}/messages",
        headers=persona.headers,
        json={"content": content, **extra},
    )
    assert response.status_code in (200, 201), response.text
    message: dict[str, Any] = response.json()
    return message


async def create_group(http: httpx.AsyncClient, owner: Persona, *members: Persona, name: str = "Garden club") -> str:
    response = await http.post(
        "/v1/conversations",
        headers=owner.headers,
        json={"type": "group", "name": name, "participant_ids": [member.user_id for member in members]},
    )
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id
