"""Realtime: how many idle sockets one node holds, and how long a message takes to reach
every device, on a real `rapport serve`.

    make bench-realtime        # = .venv/bin/python -m bench.realtime_stream
    .venv/bin/python -m bench.realtime_stream --quick                 # small sizes, a smoke run
    .venv/bin/python -m bench.realtime_stream --sockets 20000 --receivers 3
    .venv/bin/python -m bench.realtime_stream --rate 200 500 --duration 20

The benchmark makes a throw-away data folder, starts the embedded PostgreSQL in it,
provisions and migrates, creates the people and conversations (below) straight in the
database, starts `rapport serve` on a free port of 127.0.0.1 with `RAPPORT_WORKERS` server
processes (default 2, one per core) and signs every person in through the API. Then:

1. Idle sockets: it opens `--sockets` WebSockets to /v1/stream (socket i holds the token of
   person i mod the crowd's size), in steps (10%, 25%, 50%, 75%, 100%), each socket counted
   once the server said `caught_up` (it is live in the hub); at each step it reads the
   resident memory (RSS) of the server's worker processes, so the memory per socket is the
   growth over the baseline taken before the first socket. It keeps them idle for `--idle`
   seconds (the server's pings answered), checks that every one is still open, sends one
   message into the conversation every socket's person is in, and waits for it at every
   socket.
2. Delivery latency: for conversations of 2 (`--pairs` of them), 50 (`--groups`) and the
   crowd (one of `--crowd` people), each participant holding one socket, it sends
   messages with POST /v1/conversations/{id}/messages at a fixed rate for `--duration`
   seconds (open loop: a send leaves on its schedule whether or not the last is answered),
   to the conversations in turn, each from one of its participants at random, and records
   for every message the time from the send's HTTP answer (its acknowledgement) to its
   arrival at every socket of the conversation (the sender's own device included).

The load comes from this machine. The HTTP sends leave from this process (bench._load's
keep-alive connections, at most 64 in flight); the sockets live in `--receivers`
subprocesses, each one event loop (uvloop) with a minimal WebSocket client written on an
asyncio protocol (the handshake, unmasked server frames, masked pongs; its CPU per frame
received is in every row, `receivers_us_per_delivery`), which stamps each arrival with
CLOCK_MONOTONIC, the clock the sender stamps acknowledgements with. Every row reports the
CPU of the server, of PostgreSQL, and of the generator (this process and the receivers),
so that what limits a figure shows. Memory is read from the server's worker processes
only (psutil), never from the generator.

The table goes to stdout, everything (steps, per-row CPU, the file-descriptor limits, the
machine) to bench/results/realtime_stream.json. The exit status is 2 when a socket failed
to open, closed, or missed a delivery, or a send failed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import httpx
import orjson
import psutil
import uvloop
from rich.console import Console
from rich.table import Table

from bench import messaging_data as data
from bench._load import Meter, free_port, latency_summary
from bench._report import machine
from bench.messaging_send import Server, md5_uuid, processes_serving
from rapport.benchmark._http import Connection, http_request

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "realtime_stream.json"
PASSWORD = "bench-realtime-password-1"
GROUP_SIZE = 50
CONTENT = "the quick brown fox jumps over the lazy dog"
# The bench accounts' argon2id cost, and the server's (so that a login does not rehash):
# signing in 1,000 people at the production cost would take minutes of CPU, and no
# figure here involves a password.
ARGON2_TIME_COST, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM = 1, 1024, 1
IDLE_STEPS = (0.1, 0.25, 0.5, 0.75, 1.0)
SENDS_IN_FLIGHT = 64
DRAIN_S = 15.0  # after the last acknowledgement, how long deliveries may still come

out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)


def say(text: str) -> None:
    err.print(f"[dim]{datetime.now():%H:%M:%S}[/dim] {text}")


# --------------------------------------------------------------------------- the people


@dataclass(frozen=True)
class Room:
    id: UUID
    members: list[int]  # person numbers


@dataclass(frozen=True)
class Shape:
    pairs: int  # conversations of 2
    groups: int  # conversations of GROUP_SIZE
    crowd: int  # people in the one large conversation

    @property
    def people(self) -> int:
        return max(2 * self.pairs, GROUP_SIZE * self.groups, self.crowd)

    def rooms(self) -> dict[int, list[Room]]:
        """Conversations by size; person k is in one pair, one group and the crowd at most."""
        sizes = {
            2: [list(range(2 * n, 2 * n + 2)) for n in range(self.pairs)],
            GROUP_SIZE: [list(range(GROUP_SIZE * n, GROUP_SIZE * (n + 1))) for n in range(self.groups)],
            self.crowd: [list(range(self.crowd))],
        }
        if len(sizes) != 3:
            raise SystemExit(f"--crowd must differ from 2 and {GROUP_SIZE}")
        return {
            size: [Room(md5_uuid(f"room-{size}-{n}"), members) for n, members in enumerate(groups)]
            for size, groups in sizes.items()
        }


def person_id(k: int) -> UUID:
    return md5_uuid(f"person-{k}")


def email(k: int) -> str:
    return f"person-{k}@bench.example"


async def make_fixtures(urls: Any, shape: Shape) -> None:
    """The people and the conversations, as the superuser (auth.users admits no other
    role's inserts), with the triggers on, as the API would leave them."""
    from argon2 import PasswordHasher

    password_hash = PasswordHasher(
        time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM
    ).hash(PASSWORD)
    admin = await data.connect(urls.admin.set(database=data.DATABASE))
    try:
        await admin.copy_records_to_table(
            "users",
            schema_name="auth",
            columns=["id", "email", "password_hash", "status", "email_verified_at"],
            records=[(person_id(k), email(k), password_hash, "active", datetime.now(UTC)) for k in range(shape.people)],
        )
        for rooms in shape.rooms().values():
            for room in rooms:
                creator = person_id(room.members[0])
                await admin.execute(
                    "INSERT INTO messaging.conversations (id, type, name, creator_id) VALUES ($1, 'group', $2, $3)",
                    room.id,
                    f"Realtime bench {len(room.members)}",
                    creator,
                )
                await admin.executemany(
                    "INSERT INTO messaging.participants (conversation_id, user_id, role, can_invite)"
                    " VALUES ($1, $2, $3, $4)",
                    [
                        (room.id, person_id(m), "owner" if i == 0 else "member", i == 0)
                        for i, m in enumerate(room.members)
                    ],
                )
    finally:
        await admin.close()


async def sign_in(url: str, people: int) -> list[str]:
    """Every person's access token, through POST /v1/auth/login, 8 at a time."""
    gate = asyncio.Semaphore(8)

    async def one(client: httpx.AsyncClient, k: int) -> str:
        async with gate:
            response = await client.post(
                "/v1/auth/login", json={"email": email(k), "password": PASSWORD, "device_name": "bench"}
            )
        if response.status_code != 200:
            raise RuntimeError(f"login {email(k)}: HTTP {response.status_code}: {response.text[:300]}")
        token: str = response.json()["access_token"]
        return token

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        with err.status(f"Signing in {people:,} people…"):
            return list(await asyncio.gather(*(one(client, k) for k in range(people))))


# --------------------------------------------------------------------------- the server


class StreamServer(Server):
    """bench.messaging_send's server, with the bench accounts' argon2id cost."""

    def __init__(self, data_dir: Path, port: int, workers: int) -> None:
        # Started from this process, it inherits the file-descriptor limit raised in main().
        super().__init__(
            data_dir,
            port,
            workers,
            extra_env={
                "RAPPORT_PASSWORD_TIME_COST": str(ARGON2_TIME_COST),
                "RAPPORT_PASSWORD_MEMORY_COST_KIB": str(ARGON2_MEMORY_KIB),
                "RAPPORT_PASSWORD_PARALLELISM": str(ARGON2_PARALLELISM),
            },
        )

    def workers(self) -> list[psutil.Process]:
        """The processes of the server's tree that listen on its port."""
        found = []
        for process in psutil.Process(self.process.pid).children(recursive=True):
            try:
                if any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in process.net_connections()):
                    found.append(process)
            except psutil.Error:
                continue
        return found


@dataclass
class Memory:
    rss: int
    fds: list[int]

    @classmethod
    def of(cls, workers: list[psutil.Process]) -> Memory:
        return cls(sum(w.memory_info().rss for w in workers), [w.num_fds() for w in workers])


def mib(value: float) -> float:
    return round(value / 1024 / 1024, 1)


def raise_fd_limit() -> tuple[int, int]:
    """Soft file-descriptor limit up to the hard one; returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------- a minimal WebSocket client

MESSAGE_CREATED = b'"type":"message.created"'
MESSAGE_ID = b'"message_id":"'
Receipt = tuple[str, int]  # (message id, CLOCK_MONOTONIC ns at arrival)


def handshake(port: int, token: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: rapport.v1, rapport.bearer.{token}\r\n\r\n"
    ).encode()


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked frame (RFC 6455 requires clients to mask): only pongs and closes, short."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i & 3] for i, byte in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked


class StreamSocket(asyncio.Protocol):
    """One /v1/stream socket: live once the server says `caught_up`; notes the arrival of
    every message.created event; answers the server's pings (protocol and JSON)."""

    def __init__(self, request: bytes, receipts: list[Receipt]) -> None:
        self.request = request
        self.receipts = receipts
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.open = False
        self.close_code: int | None = None
        self.fragments: list[bytes] = []
        self.live: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.open = True
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self.live.done():
            self.live.set_exception(ConnectionError(f"closed before caught_up (code {self.close_code}): {exc}"))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
            del self.buffer[: end + 4]
            if not status.startswith(b"HTTP/1.1 101"):
                self.live.set_exception(ConnectionError(status.decode(errors="replace")))
                self.close()
                return
            self.upgraded = True
        self._frames(now)

    def _frames(self, now: int) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            length, offset = buffer[1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(buffer[2:4]), 4
            elif length == 127:
                length, offset = int.from_bytes(buffer[2:10]), 10
            if len(buffer) < offset + length:
                return
            opcode, fin = buffer[0] & 0x0F, bool(buffer[0] & 0x80)
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            self._frame(opcode, fin, payload, now)

    def _frame(self, opcode: int, fin: bool, payload: bytes, now: int) -> None:
        if opcode in (0x0, 0x1):
            self.fragments.append(payload)
            if fin:
                self._message(b"".join(self.fragments), now)
                self.fragments = []
        elif opcode == 0x9:
            self._write(client_frame(0xA, payload))
        elif opcode == 0x8:
            self.close_code = int.from_bytes(payload[:2]) if len(payload) >= 2 else 1005
            self._write(client_frame(0x8, payload[:2]))
            self.close()

    def _message(self, text: bytes, now: int) -> None:
        if MESSAGE_CREATED in text:
            at = text.find(MESSAGE_ID) + len(MESSAGE_ID)
            self.receipts.append((text[at : at + 36].decode(), now))
        elif text.startswith(b'{"type":"ping"'):
            self._write(client_frame(0x1, b'{"type":"pong"}'))
        elif text.startswith(b'{"type":"caught_up"') and not self.live.done():
            self.live.set_result(None)

    def _write(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_sockets(
    port: int, tokens: list[str], receipts: list[Receipt], concurrency: int
) -> tuple[list[StreamSocket], list[str]]:
    """Sockets for these tokens, `concurrency` handshakes at a time, each live."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)

    async def one(token: str) -> StreamSocket:
        async with gate:
            _, sock = await loop.create_connection(
                lambda: StreamSocket(handshake(port, token), receipts), "127.0.0.1", port
            )
            try:
                await asyncio.wait_for(sock.live, 180)
            except BaseException:
                sock.close()
                raise
            return sock

    outcomes = await asyncio.gather(*(one(token) for token in tokens), return_exceptions=True)
    sockets = [o for o in outcomes if isinstance(o, StreamSocket)]
    errors = [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]
    return sockets, errors


# --------------------------------------------------------------------------- receiver processes


def _receiver_main(pipe: Pipe, port: int) -> None:
    raise_fd_limit()
    uvloop.run(_receive(pipe, port))


async def _receive(pipe: Pipe, port: int) -> None:
    """Answer the bench's commands, one at a time, while the sockets live on this loop."""
    loop = asyncio.get_running_loop()
    receipts: list[Receipt] = []
    groups: dict[str, list[StreamSocket]] = defaultdict(list)
    while True:
        command, argument = await loop.run_in_executor(None, pipe.recv)
        reply: Any = None
        if command == "open":
            label, tokens, concurrency = argument
            sockets, errors = await open_sockets(port, tokens, receipts, concurrency)
            groups[label] += sockets
            reply = {"opened": len(sockets), "failed": len(errors), "errors": errors[:3]}
        elif command == "count":
            reply = len(receipts)
        elif command == "collect":
            reply = receipts[:]
            receipts.clear()
        elif command == "status":
            sockets = groups[argument]
            reply = {
                "open": sum(s.open for s in sockets),
                "codes": Counter(s.close_code for s in sockets if not s.open),
            }
        elif command == "close":
            for sock in groups.pop(argument, []):
                sock.close()
            await asyncio.sleep(0.5)
        elif command == "stop":
            pipe.send(None)
            return
        pipe.send(reply)


class Receivers:
    """The processes that hold the sockets; sockets are dealt to them in turn."""

    def __init__(self, count: int, port: int) -> None:
        context = get_context("spawn")
        self.pipes: list[Pipe] = []
        self.processes = []
        for _ in range(count):
            mine, theirs = context.Pipe()
            process = context.Process(target=_receiver_main, args=(theirs, port), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)
        self.meters = [psutil.Process(p.pid) for p in self.processes if p.pid is not None]

    async def ask(self, command: str, arguments: list[Any]) -> list[Any]:
        def one(pipe: Pipe, argument: Any) -> Any:
            pipe.send((command, argument))
            return pipe.recv()

        return list(
            await asyncio.gather(*(asyncio.to_thread(one, p, a) for p, a in zip(self.pipes, arguments, strict=True)))
        )

    async def open(self, label: str, tokens: list[str], concurrency: int) -> dict[str, Any]:
        share = max(1, concurrency // len(self.pipes))
        dealt = [(label, tokens[i :: len(self.pipes)], share) for i in range(len(self.pipes))]
        replies = await self.ask("open", dealt)
        return {
            "opened": sum(r["opened"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "errors": [e for r in replies for e in r["errors"]][:3],
        }

    async def status(self, label: str) -> dict[str, Any]:
        replies = await self.ask("status", [label] * len(self.pipes))
        codes: Counter[int | None] = sum((r["codes"] for r in replies), Counter())
        return {"open": sum(r["open"] for r in replies), "close_codes": {str(k): v for k, v in codes.items()}}

    async def count(self) -> int:
        return sum(await self.ask("count", [None] * len(self.pipes)))

    async def collect(self) -> list[Receipt]:
        return [r for replies in await self.ask("collect", [None] * len(self.pipes)) for r in replies]

    async def close(self, label: str) -> None:
        await self.ask("close", [label] * len(self.pipes))

    def cpu(self) -> float:
        total = 0.0
        for meter in self.meters:
            times = meter.cpu_times()
            total += times.user + times.system
        return total

    async def stop(self) -> None:
        await self.ask("stop", [None] * len(self.pipes))
        for process in self.processes:
            process.join(10)


# --------------------------------------------------------------------------- sending at a fixed rate


@dataclass
class Sends:
    acks: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # id -> (room, request ns, ack ns)
    http_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    began: float = 0.0
    ended: float = 0.0


@dataclass
class Sender:
    port: int
    tokens: list[str]
    rooms: list[Room]
    tag: str
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def request(self, n: int) -> tuple[int, bytes]:
        room_index = n % len(self.rooms)
        room = self.rooms[room_index]
        person = room.members[self.rng.randrange(len(room.members))]
        body = orjson.dumps({"content": f"Realtime bench {n}: {CONTENT}", "client_message_id": f"{self.tag}-{n}"})
        path = f"/v1/conversations/{room.id}/messages"
        return room_index, http_request(
            "POST", path, host=f"127.0.0.1:{self.port}", token=self.tokens[person], body=body
        )

    async def run(self, rate: float, duration: float) -> Sends:
        """Sends on a fixed schedule (n / rate), at most SENDS_IN_FLIGHT at once; none
        begins after `duration`."""
        # Last in, first out: at low rates the same few connections stay in use (and warm).
        idle: asyncio.Queue[Connection] = asyncio.LifoQueue()
        for _ in range(SENDS_IN_FLIGHT):
            idle.put_nowait(await self._connect())
        sends = Sends(began=time.monotonic())
        deadline = sends.began + duration
        tasks: set[asyncio.Task[None]] = set()
        n = 0
        while (due := sends.began + n / rate) < deadline:
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            connection = await idle.get()
            if time.monotonic() >= deadline:
                idle.put_nowait(connection)
                break
            task = asyncio.create_task(self._send(connection, n, due, sends, idle))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.gather(*tasks)
        sends.ended = time.monotonic()
        while not idle.empty():
            idle.get_nowait().close()
        return sends

    async def _send(
        self, connection: Connection, n: int, due: float, sends: Sends, idle: asyncio.Queue[Connection]
    ) -> None:
        room, request = self.request(n)
        started = time.monotonic_ns()
        sends.late_ms.append(max(0.0, started / 1e6 - due * 1000))
        # A connection the server closed while it waited (uvicorn's keep-alive timeout is
        # 5 s) is opened again; a send it loses on the way is sent once more, on a new
        # connection, with the same client_message_id (the server keeps one message).
        for attempt in (1, 2):
            if connection.lost is not None:
                connection = await self._connect()
            try:
                status, body = await connection.send(request)
            except OSError as error:
                if attempt == 2:
                    sends.errors[type(error).__name__] += 1
                connection = await self._connect()
                continue
            acked = time.monotonic_ns()
            if status in (200, 201):
                sends.acks[orjson.loads(body)["id"]] = (room, started, acked)
                sends.http_ms.append((acked - started) / 1e6)
            else:
                sends.errors[f"HTTP {status}"] += 1
            break
        idle.put_nowait(connection)

    async def _connect(self) -> Connection:
        _, connection = await asyncio.get_running_loop().create_connection(Connection, "127.0.0.1", self.port)
        return connection


def deliveries(sends: Sends, receipts: list[Receipt], expected: list[int]) -> dict[str, Any]:
    """Per acknowledged message, its arrival at every socket of its conversation."""
    arrivals: dict[str, list[int]] = defaultdict(list)
    for message_id, at in receipts:
        arrivals[message_id].append(at)
    from_ack: list[float] = []
    from_request: list[float] = []
    last: list[float] = []
    missing = 0
    for message_id, (room, requested, acked) in sends.acks.items():
        times = arrivals.pop(message_id, [])
        missing += max(0, expected[room] - len(times))
        from_ack += [(t - acked) / 1e6 for t in times]
        from_request += [(t - requested) / 1e6 for t in times]
        if times:
            last.append((max(times) - acked) / 1e6)
    return {
        "delivered": len(from_ack),
        "expected": sum(expected[room] for room, _, _ in sends.acks.values()),
        "missing": missing,
        "unexpected": sum(len(v) for v in arrivals.values()),
        "from_ack_ms": latency_summary(from_ack),
        "from_ack_min_ms": round(min(from_ack), 2) if from_ack else None,
        "from_request_ms": latency_summary(from_request),
        "last_recipient_from_ack_ms": latency_summary(last),
    }


# --------------------------------------------------------------------------- the scenarios


@dataclass
class Bench:
    server: StreamServer
    workers: list[psutil.Process]
    receivers: Receivers
    tokens: list[str]
    shape: Shape
    meter: Meter
    args: argparse.Namespace

    def cpu_before(self) -> tuple[dict[str, float], float]:
        return self.meter.snapshot(), self.receivers.cpu()

    def cpu_since(self, before: tuple[dict[str, float], float], count: int, wall: float) -> dict[str, Any]:
        snap, receivers_before = before
        usage: dict[str, Any] = Meter.usage(snap, self.meter.snapshot(), count)
        receivers = self.receivers.cpu() - receivers_before
        usage["receivers_cpu_s"] = round(receivers, 2)
        usage["other_processes_core_s"] = round(max(0.0, usage["other_processes_core_s"] - receivers), 2)
        generator = receivers + usage.get("client_cpu_s", 0.0)
        usage["generator_cpu_s"] = round(generator, 2)
        usage["generator_busy_cores"] = round(generator / wall, 3) if wall else None
        return usage

    async def send_one(self, room: Room) -> int:
        """One message into `room`; the time its acknowledgement came (CLOCK_MONOTONIC ns)."""
        sender = Sender(self.server.port, self.tokens, [room], tag=f"one-{time.monotonic_ns()}")
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(Connection, "127.0.0.1", self.server.port)
        try:
            status, body = await connection.send(sender.request(0)[1])
        finally:
            connection.close()
        acked = time.monotonic_ns()
        if status != 201:
            raise RuntimeError(f"the check message was refused: HTTP {status}: {body[:300]!r}")
        return acked

    async def wait_for(self, expected: int, within: float) -> None:
        """Until the receivers hold `expected` arrivals, or `within` seconds have passed."""
        deadline = time.monotonic() + within
        # Polled: the arrivals are counted in other processes.
        while await self.receivers.count() < expected and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.25)


async def idle_sockets(bench: Bench) -> dict[str, Any]:
    """Open the idle sockets in steps, read the workers' memory at each, hold, check."""
    target = bench.args.sockets
    crowd = bench.shape.rooms()[bench.shape.crowd][0]
    await bench.receivers.open("warm-up", bench.tokens[:20], 20)
    await bench.send_one(crowd)
    await bench.receivers.close("warm-up")
    await bench.receivers.collect()
    await asyncio.sleep(2)
    baseline = Memory.of(bench.workers)
    report: dict[str, Any] = {"baseline_rss_mib": mib(baseline.rss), "baseline_fds": baseline.fds, "steps": []}
    opened = 0
    for step in sorted({max(1, round(target * share)) for share in IDLE_STEPS}):
        tokens = [bench.tokens[i % bench.shape.crowd] for i in range(opened, step)]
        say(f"idle sockets: opening {opened:,} → {step:,}")
        before, began = bench.cpu_before(), time.monotonic()
        result = await bench.receivers.open("idle", tokens, bench.args.batch)
        took = time.monotonic() - began
        cpu = bench.cpu_since(before, len(tokens), took)
        opened = step
        await asyncio.sleep(2)
        memory = Memory.of(bench.workers)
        report["steps"].append(
            {
                "sockets": step,
                **(await bench.receivers.status("idle")),
                "failed": result["failed"],
                "errors": result["errors"],
                "open_s": round(took, 2),
                "opened_per_s": round(len(tokens) / took, 1) if took else None,
                "rss_mib": mib(memory.rss),
                "growth_mib": mib(memory.rss - baseline.rss),
                "kib_per_socket": round((memory.rss - baseline.rss) / step / 1024, 2),
                "fds": memory.fds,
                "cpu": cpu,
            }
        )
    say(f"idle sockets: holding {opened:,} for {bench.args.idle:g} s")
    await asyncio.sleep(bench.args.idle)
    held = Memory.of(bench.workers)
    report["held"] = {
        "idle_s": bench.args.idle,
        **(await bench.receivers.status("idle")),
        "rss_mib": mib(held.rss),
        "kib_per_socket": round((held.rss - baseline.rss) / opened / 1024, 2),
        "fds": held.fds,
    }
    report["check"] = await idle_check(bench, crowd, opened)
    await bench.receivers.close("idle")
    await asyncio.sleep(3)
    report["after_close_rss_mib"] = mib(Memory.of(bench.workers).rss)
    return report


async def idle_check(bench: Bench, crowd: Room, sockets: int) -> dict[str, Any]:
    """One message into the conversation every idle socket's person is in: at every socket."""
    say("idle sockets: one message to all of them")
    acked = await bench.send_one(crowd)
    await bench.wait_for(sockets, 60)
    receipts = await bench.receivers.collect()
    latencies = [(at - acked) / 1e6 for _, at in receipts]
    return {"expected": sockets, "received": len(receipts), "from_ack_ms": latency_summary(latencies)}


async def latency(bench: Bench) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for size, rooms in bench.shape.rooms().items():
        label = f"size-{size}"
        members = [m for room in rooms for m in room.members]
        say(f"delivery: {len(rooms)} conversation(s) of {size}, opening {len(members):,} sockets")
        opened = await bench.receivers.open(label, [bench.tokens[m] for m in members], bench.args.batch)
        if opened["failed"]:
            err.print(f"[red]{opened['failed']} sockets failed to open: {opened['errors']}[/red]")
        rates = bench.args.crowd_rate if size == bench.shape.crowd else bench.args.rate
        for rate in rates:
            say(f"delivery: {size} participants, {rate:g} sends/s for {bench.args.duration:g} s")
            rows.append(await latency_row(bench, label, size, rooms, rate, opened["failed"]))
        await bench.receivers.close(label)
    return rows


async def latency_row(
    bench: Bench, label: str, size: int, rooms: list[Room], rate: float, failed: int
) -> dict[str, Any]:
    await bench.receivers.collect()
    sender = Sender(bench.server.port, bench.tokens, rooms, tag=f"{label}-{rate:g}-{time.monotonic_ns()}")
    before = bench.cpu_before()
    sends = await sender.run(rate, bench.args.duration)
    expected = [len(room.members) for room in rooms]
    await bench.wait_for(sum(expected[room] for room, _, _ in sends.acks.values()), DRAIN_S)
    wall = time.monotonic() - sends.began
    cpu = bench.cpu_since(before, len(sends.acks), wall)
    delivered = deliveries(sends, await bench.receivers.collect(), expected)
    achieved = len(sends.acks) / max(bench.args.duration, sends.ended - sends.began)
    status = await bench.receivers.status(label)
    sockets = sum(expected)
    return {
        "participants": size,
        "conversations": len(rooms),
        "sockets": sockets,
        "sockets_failed": failed,
        "sockets_open_after": status["open"],
        "close_codes": status["close_codes"],
        "offered_per_s": rate,
        "sent": len(sends.acks),
        "send_errors": dict(sends.errors),
        "achieved_per_s": round(achieved, 1),
        "sending_s": round(sends.ended - sends.began, 2),
        "late_ms": latency_summary(sends.late_ms),
        "http_ms": latency_summary(sends.http_ms),
        "deliveries_per_s": round(delivered["delivered"] / max(bench.args.duration, sends.ended - sends.began), 1),
        **delivered,
        "server_us_per_delivery": per_delivery(cpu.get("server_cpu_s"), delivered["delivered"]),
        "receivers_us_per_delivery": per_delivery(cpu.get("receivers_cpu_s"), delivered["delivered"]),
        "sustained": achieved >= 0.97 * rate and delivered["missing"] == 0 and not sends.errors and not failed,
        "cpu": cpu,
    }


# --------------------------------------------------------------------------- the report


def per_delivery(cpu_s: float | None, count: int) -> float | None:
    return round(cpu_s * 1e6 / count, 1) if cpu_s is not None and count else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_report(report: dict[str, Any]) -> None:
    info = report["machine"]
    out.print(
        f"Machine: {info.get('cpu_model')}, nproc {info.get('nproc')}, {info.get('mem_total_gib')} GiB, "
        f"Python {info.get('python')}, {info.get('embedded_postgres')}, load {info.get('loadavg')}"
    )
    limits = report["file_descriptors"]
    out.print(
        f"File descriptors: bench soft limit {limits['bench_soft_before']} → {limits['bench_soft']}, "
        f"server workers {limits['server_workers']}"
    )
    idle = report.get("idle")
    if idle:
        print_idle(idle)
    if report.get("latency"):
        print_latency(report["latency"])
    for line in report.get("summary", []):
        out.print(line)


def print_idle(idle: dict[str, Any]) -> None:
    table = Table(title=f"Idle sockets (server worker RSS; baseline {idle['baseline_rss_mib']} MiB)")
    for column in ("sockets", "open", "failed", "open s", "opened/s", "server CPU ms/open", "RSS MiB", "growth MiB"):
        table.add_column(column, justify="right")
    table.add_column("KiB/socket", justify="right")
    table.add_column("fds per worker", justify="right")
    for step in idle["steps"]:
        table.add_row(
            f"{step['sockets']:,}",
            f"{step['open']:,}",
            str(step["failed"]),
            fmt(step["open_s"]),
            fmt(step["opened_per_s"]),
            fmt(step["cpu"].get("server_cpu_ms_per_request"), 2),
            fmt(step["rss_mib"]),
            fmt(step["growth_mib"]),
            fmt(step["kib_per_socket"], 2),
            " / ".join(f"{n:,}" for n in step["fds"]),
        )
    held = idle["held"]
    table.add_row(
        f"held {held['idle_s']:g} s",
        f"{held['open']:,}",
        "",
        "",
        "",
        "",
        fmt(held["rss_mib"]),
        "",
        fmt(held["kib_per_socket"], 2),
        " / ".join(f"{n:,}" for n in held["fds"]),
    )
    out.print(table)
    check = idle["check"]
    out.print(
        f"One message to all: {check['received']:,} of {check['expected']:,} sockets received it; "
        f"from its acknowledgement p50 {fmt(check['from_ack_ms']['p50'], 1)} ms, "
        f"p99 {fmt(check['from_ack_ms']['p99'], 1)} ms, last {fmt(check['from_ack_ms']['max'], 1)} ms. "
        f"Worker RSS after closing them: {idle['after_close_rss_mib']} MiB."
    )


def print_latency(rows: list[dict[str, Any]]) -> None:
    table = Table(title="Delivery: from the send's HTTP answer to its arrival at every participant's socket")
    columns = (
        "people",
        "convs",
        "offered/s",
        "sent/s",
        "deliveries/s",
        "HTTP p50",
        "HTTP p99",
        "p50 ms",
        "p99 ms",
        "max ms",
        "last p99",
        "p99 from request",
        "missing",
        "closed",
        "server ms/send",
        "PG ms/send",
        "server µs/deliv",
        "receivers µs/deliv",
        "generator cores",
        "other core-s",
        "sustained",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        cpu = row["cpu"]
        table.add_row(
            f"{row['participants']:,}",
            str(row["conversations"]),
            fmt(row["offered_per_s"], 0),
            fmt(row["achieved_per_s"]),
            fmt(row["deliveries_per_s"], 0),
            fmt(row["http_ms"]["p50"], 1),
            fmt(row["http_ms"]["p99"], 1),
            fmt(row["from_ack_ms"]["p50"], 1),
            fmt(row["from_ack_ms"]["p99"], 1),
            fmt(row["from_ack_ms"]["max"], 1),
            fmt(row["last_recipient_from_ack_ms"]["p99"], 1),
            fmt(row["from_request_ms"]["p99"], 1),
            f"{row['missing']:,}",
            str(row["sockets"] - row["sockets_open_after"]),
            fmt(cpu.get("server_cpu_ms_per_request"), 2),
            fmt(cpu.get("postgres_cpu_ms_per_request"), 2),
            fmt(row["server_us_per_delivery"], 0),
            fmt(row["receivers_us_per_delivery"], 0),
            fmt(cpu.get("generator_busy_cores"), 2),
            fmt(cpu.get("other_processes_core_s"), 1),
            "yes" if row["sustained"] else "no",
        )
    out.print(table)


def budget_verdict(rows: list[dict[str, Any]]) -> str:
    at_budget = [r for r in rows if r["offered_per_s"] >= 500]
    if not at_budget:
        return "not tried"
    row = at_budget[0]
    return "met" if row["sustained"] and (row["from_ack_ms"]["p99"] or 1e9) < 100 else "missed"


def summarise(report: dict[str, Any]) -> list[str]:
    lines = []
    idle = report.get("idle")
    if idle:
        held = idle["held"]
        top = idle["steps"][-1]
        verdict = "met" if held["kib_per_socket"] < 64 and held["open"] == top["sockets"] else "missed"
        lines.append(
            f"Idle sockets: {held['open']:,} of {top['sockets']:,} open after {held['idle_s']:g} s idle, "
            f"{held['kib_per_socket']:.1f} KiB of worker RSS each (budget < 64 KiB: {verdict}); "
            f"message to all: {idle['check']['received']:,} of {idle['check']['expected']:,}"
        )
    by_size: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in report.get("latency", []):
        by_size[row["participants"]].append(row)
    for size, rows in by_size.items():
        kept = [r for r in rows if r["sustained"]]
        if not kept:
            lines.append(f"{size} participants: no rate sustained (lowest tried {rows[0]['offered_per_s']:g}/s)")
            continue
        best = max(kept, key=lambda r: r["offered_per_s"])
        line = (
            f"{size} participants: highest rate sustained {best['offered_per_s']:g} sends/s "
            f"({best['achieved_per_s']:g} achieved), delivery p50 {fmt(best['from_ack_ms']['p50'], 1)} ms, "
            f"p99 {fmt(best['from_ack_ms']['p99'], 1)} ms"
        )
        if size == GROUP_SIZE:
            line += f"; budget p99 < 100 ms at 500 sends/s: {budget_verdict(rows)}"
        lines.append(line)
    return lines


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, data_dir: Path, report: dict[str, Any]) -> None:
    shape = Shape(pairs=args.pairs, groups=args.groups, crowd=args.crowd)
    urls = await data.prepare(data_dir)
    with err.status("Creating the people and conversations…"):
        await make_fixtures(urls, shape)
    server = StreamServer(data_dir, free_port(), args.workers)
    receivers: Receivers | None = None
    try:
        server.wait_healthy()
        serving = processes_serving(server, args.workers)
        workers = server.workers()
        report["server"] = {"workers_asked": args.workers, "processes_listening": serving, "url": server.url}
        report["file_descriptors"]["server_workers"] = [w.rlimit(psutil.RLIMIT_NOFILE)[0] for w in workers]
        tokens = await sign_in(server.url, shape.people)
        receivers = Receivers(args.receivers, server.port)
        bench = Bench(server, workers, receivers, tokens, shape, Meter(server.process.pid, data_dir / "pgdata"), args)
        if args.sockets:
            report["idle"] = await idle_sockets(bench)
        report["latency"] = await latency(bench)
    finally:
        if receivers is not None:
            await receivers.stop()
        with err.status("Stopping the server…"):
            server.stop()


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.realtime_stream",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sockets", type=int, help="idle sockets to reach (default 10000; 0: skip)")
    parser.add_argument("--rate", type=float, nargs="+", help="sends/s for 2 and 50 people (default 100 … 500)")
    parser.add_argument("--crowd-rate", type=float, nargs="+", help="sends/s for the crowd (default 5 10 25)")
    parser.add_argument("--duration", type=float, help="seconds of sending per rate (default 10)")
    parser.add_argument("--idle", type=float, help="seconds the idle sockets are held (default 30)")
    parser.add_argument("--workers", type=int, default=2, help="RAPPORT_WORKERS for the server (default 2)")
    parser.add_argument("--receivers", type=int, default=2, help="processes holding the sockets (default 2)")
    parser.add_argument("--batch", type=int, default=200, help="handshakes in flight at once (default 200)")
    parser.add_argument("--pairs", type=int, help="conversations of 2 (default 100)")
    parser.add_argument("--groups", type=int, help=f"conversations of {GROUP_SIZE} (default 20)")
    parser.add_argument("--crowd", type=int, help="people in the large conversation (default 1000)")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    defaults: dict[str, Any] = {
        "sockets": 10_000,
        "rate": [100, 200, 300, 400, 500],
        "crowd_rate": [5, 10, 25],
        "duration": 10.0,
        "idle": 30.0,
        "pairs": 100,
        "groups": 20,
        "crowd": 1000,
    }
    if args.quick:
        defaults |= {"sockets": 400, "rate": [50, 100], "crowd_rate": [5], "duration": 3.0, "idle": 3.0}
        defaults |= {"pairs": 10, "groups": 4, "crowd": 200}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    soft_before, soft = raise_fd_limit()
    per_receiver = -(-args.sockets // args.receivers) + args.crowd
    if per_receiver + 100 > soft:
        raise SystemExit(f"{per_receiver:,} sockets per receiver need more than the limit of {soft:,} descriptors")
    data_dir = Path(tempfile.mkdtemp(prefix="rapport-realtime-"))
    report: dict[str, Any] = {
        "benchmark": "realtime_stream",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.realtime_stream", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "parameters": {k: v for k, v in vars(args).items() if k != "output"},
        "file_descriptors": {"bench_soft_before": soft_before, "bench_soft": soft},
        "load_generator": (
            "sends: bench/_load.py keep-alive HTTP/1.1 connections in this process, open loop; sockets: a raw "
            "asyncio WebSocket client in --receivers subprocesses (uvloop)"
        ),
    }
    try:
        uvloop.run(run(args, data_dir, report))
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/yellow]")
        return 130
    finally:
        data.stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    report["summary"] = summarise(report)
    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    err.print(f"Results in {args.output}")
    return 0 if healthy(report) else 2


def healthy(report: dict[str, Any]) -> bool:
    idle = report.get("idle")
    if idle and (
        idle["held"]["open"] != idle["steps"][-1]["sockets"] or idle["check"]["received"] != idle["check"]["expected"]
    ):
        return False
    return all(
        not r["missing"]
        and not r["send_errors"]
        and not r["sockets_failed"]
        and r["sockets_open_after"] == r["sockets"]
        for r in report.get("latency", [])
    )


if __name__ == "__main__":
    sys.exit(main())
