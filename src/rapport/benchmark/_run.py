"""Measuring the data set through the real servers, each measure beside the same work done
straight in PostgreSQL in the same run.

The straight side sends the statement the service sends for the request (one SQL function
per request on the hot paths: `messaging.send_message`, `read_history`,
`list_conversations`, `search_page`), with the same arguments, as `rapport_app` over one
connection per client, in the session the service side signed in with; it leaves out
HTTP, JSON parsing, the server's pools and Python. Login's straight side is the account's
lookup as `rapport_worker` and the password's verification at the same argon2id cost,
where nearly all of a sign-in's time goes. Fan-out's is `send_message` and a NOTIFY heard
by one LISTENing connection per member, against a message sent over HTTP and received on
every member's WebSocket.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import websockets

from rapport.benchmark._http import Client
from rapport.benchmark._plan import PASSWORD
from rapport.benchmark._server import Account, sign_in
from rapport.benchmark.report import percentile

SEND = (
    "SELECT created, message FROM messaging.send_message($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
)
HISTORY = "SELECT items, next FROM messaging.read_history($1, $2, $3, $4, $5, $6, $7, $8)"
LIST = "SELECT items, next_pinned, next_activity, next_id FROM messaging.list_conversations($1, $2, $3, $4, $5, $6, $7)"
SEARCH = (
    "SELECT searchable, searched_from, older_until, items, more, last_rank, last_id"
    " FROM messaging.search_page($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)
LOGIN_LOOKUP = "SELECT id, password_hash, status FROM auth.users WHERE email = $1 AND deleted_at IS NULL"
# What the service passes search_page besides the query (rapport.messaging's search: a
# page of 20 from the newest 300 candidates, a first page's 30 ms budget).
SEARCH_LIMIT, SEARCH_CANDIDATES, SEARCH_BUDGET = 20, 300, timedelta(milliseconds=30)
_LAST_WORD = re.compile(r'(?:^|\s)"?([^\W_]+)$')
SEARCHES = ["meeting", "coffee tomorrow", "deadline", "zanzibar", "project review", "flight", "invoice", "quokka"]
HISTORY_PAGE = 50
LIST_PAGE = 50
FANOUT_MEMBERS = 25
CHANNEL = "rapport_bench_fanout"
_MESSAGE_ID = re.compile(r'"message_id":\s*"([0-9a-f-]{36})"')
MEASURES = ("send", "history", "search", "unread", "fanout", "login")


@dataclass
class World:
    """Who the clients are and what they read and write."""

    clients: list[Account]
    history: list[list[str]]  # per client, conversations to read: its largest and some others
    send_to: list[list[str]]  # per client, conversations it writes to
    group: str  # the conversation fan-out sends to
    members: list[Account]  # the group's members with a socket
    probe: tuple[str, str, str]  # (user, conversation, message) for the simple select


@dataclass
class Sides:
    nodes: list[str]
    app_dsn: str
    worker_dsn: str
    # The measured requests: one lean keep-alive connection per client (rapport.benchmark._http).
    http: list[Client] = field(default_factory=list)
    sql: list[asyncpg.Connection] = field(default_factory=list)


def summary(latencies_ms: list[float], *, elapsed: float, errors: int, sample: str | None) -> dict[str, Any]:
    ordered = sorted(latencies_ms)

    def at(q: float) -> float | None:
        value = percentile(ordered, q)
        return None if value is None else round(value, 3)

    return {
        "requests": len(ordered),
        "errors": errors,
        "sample_error": sample,
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(len(ordered) / elapsed, 1) if elapsed > 0 else None,
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "mean": round(sum(ordered) / len(ordered), 3) if ordered else None,
    }


async def closed_loop(
    clients: int, *, duration: float, max_requests: int | None, op: Callable[[int, int], Awaitable[None]]
) -> dict[str, Any]:
    """`clients` loops, each starting its next request when the last one is answered, for
    `duration` seconds or `max_requests` in all, after one unmeasured request each."""
    await asyncio.gather(*(op(i, 0) for i in range(clients)))
    latencies: list[float] = []
    failures: list[str] = []
    started = [0]
    deadline = time.perf_counter() + duration

    async def loop(i: int) -> None:
        for n in itertools.count(1):
            if time.perf_counter() >= deadline or (max_requests is not None and started[0] >= max_requests):
                return
            started[0] += 1
            began = time.perf_counter()
            try:
                await op(i, n)
            except Exception as error:
                failures.append(f"{type(error).__name__}: {str(error)[:300]}")
                continue
            latencies.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    cpu_began = time.process_time()
    await asyncio.gather(*(loop(i) for i in range(clients)))
    elapsed = time.perf_counter() - began
    figures = summary(latencies, elapsed=elapsed, errors=len(failures), sample=failures[0] if failures else None)
    # The load generator's own CPU (this process, one event loop): near 1.0 it is what limits the figure.
    figures["generator_busy"] = round((time.process_time() - cpu_began) / elapsed, 2) if elapsed > 0 else None
    return figures


def _ok(answer: tuple[int, bytes]) -> bytes:
    status, body = answer
    if status >= 300:
        raise RuntimeError(f"HTTP {status}: {body[:200].decode(errors='replace')}")
    return body


def _last_word(query: str) -> str | None:
    found = _LAST_WORD.search(query)
    return found.group(1) if found else None


class Measures:
    """Each measure's two sides, as operations (client index, request number)."""

    def __init__(self, world: World, sides: Sides, worker_pool: asyncpg.Pool | None = None) -> None:
        self.world = world
        self.sides = sides
        self.worker_pool = worker_pool

    def _http(self, i: int) -> Client:
        return self.sides.http[i % len(self.sides.http)]

    def _client(self, i: int) -> Account:
        return self.world.clients[i % len(self.world.clients)]

    @staticmethod
    def _text(n: int) -> str:
        return f"bench message {n}: see you at the meeting tomorrow"

    # -- send
    async def send_service(self, i: int, n: int) -> None:
        account = self._client(i)
        conversation = self.world.send_to[i % len(self.world.send_to)][n % len(self.world.send_to[0])]
        body = {"content": self._text(n), "client_message_id": f"b-{uuid.uuid4()}"}
        _ok(
            await self._http(i).request(
                "POST", f"/v1/conversations/{conversation}/messages", token=account.token, payload=body
            )
        )

    async def send_straight(self, i: int, n: int) -> None:
        account = self._client(i)
        conversation = self.world.send_to[i % len(self.world.send_to)][n % len(self.world.send_to[0])]
        await self.sides.sql[i].fetchrow(
            SEND, account.user_id, account.session_id, None, conversation, f"b-{uuid.uuid4()}", "text",
            self._text(n), "{}", None, None, None, [], [], False,
        )  # fmt: skip

    # -- history
    def _history_target(self, i: int, n: int) -> str:
        targets = self.world.history[i % len(self.world.history)]
        return targets[n % len(targets)]

    async def history_service(self, i: int, n: int) -> None:
        conversation = self._history_target(i, n)
        path = f"/v1/conversations/{conversation}/messages?limit={HISTORY_PAGE}"
        _ok(await self._http(i).request("GET", path, token=self._client(i).token))

    async def history_straight(self, i: int, n: int) -> None:
        account = self._client(i)
        await self.sides.sql[i].fetchrow(
            HISTORY, account.user_id, account.session_id, None, self._history_target(i, n), None, None, None,
            HISTORY_PAGE,
        )  # fmt: skip

    # -- search
    async def search_service(self, i: int, n: int) -> None:
        query = SEARCHES[(i + n) % len(SEARCHES)]
        path = f"/v1/messages/search?q={quote(query)}&limit={SEARCH_LIMIT}"
        _ok(await self._http(i).request("GET", path, token=self._client(i).token))

    async def search_straight(self, i: int, n: int) -> None:
        account = self._client(i)
        query = SEARCHES[(i + n) % len(SEARCHES)]
        await self.sides.sql[i].fetchrow(
            SEARCH, account.user_id, account.session_id, None, query, _last_word(query), None, None, None,
            datetime.now(UTC), None, SEARCH_LIMIT, None, None, SEARCH_CANDIDATES, SEARCH_BUDGET,
        )  # fmt: skip

    # -- unread: the conversation list, each with its unread count
    async def unread_service(self, i: int, n: int) -> None:
        _ok(await self._http(i).request("GET", f"/v1/conversations?limit={LIST_PAGE}", token=self._client(i).token))

    async def unread_straight(self, i: int, n: int) -> None:
        account = self._client(i)
        await self.sides.sql[i].fetchrow(LIST, account.user_id, account.session_id, None, None, None, None, LIST_PAGE)

    # -- login
    async def login_service(self, i: int, n: int) -> None:
        account = self._client(i)
        credentials = {"email": account.email, "password": PASSWORD}
        _ok(await self._http(i).request("POST", "/v1/auth/login", payload=credentials))

    async def login_straight(self, i: int, n: int) -> None:
        from argon2 import PasswordHasher

        account = self._client(i)
        assert self.worker_pool is not None, "the straight side's pool is opened with it"
        async with self.worker_pool.acquire() as connection, connection.transaction():
            # System work, as the service's sign-in is: the worker role with the flag on.
            await connection.execute("SELECT set_config('rapport.system', 'on', true)")
            row = await connection.fetchrow(LOGIN_LOOKUP, account.email)
        if row is None:
            raise RuntimeError("the account is not there")
        await asyncio.to_thread(PasswordHasher().verify, row["password_hash"], PASSWORD)


class FanOut:
    """A message to a group's sockets: sent by one member, timed until every member's
    socket has it."""

    def __init__(self, world: World, sides: Sides) -> None:
        self.world = world
        self.sides = sides
        self.waiting: dict[str, tuple[int, asyncio.Event]] = {}
        self.arrivals: dict[str, int] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.sockets: list[Any] = []
        self.listeners: list[asyncpg.Connection] = []

    def _arrived(self, key: str) -> None:
        # An arrival may come before the sender has the id it waits for (the event can
        # outrun the HTTP answer): arrivals are counted by key whether or not one waits.
        self.arrivals[key] = self.arrivals.get(key, 0) + 1
        entry = self.waiting.get(key)
        if entry is not None and self.arrivals[key] >= entry[0]:
            entry[1].set()

    def _frame(self, text: str) -> None:
        for key in _MESSAGE_ID.findall(text):
            self._arrived(key)

    async def open_sockets(self) -> None:
        """One socket per member, each live (the server said `caught_up`) before any send."""

        async def open_one(k: int, member: Account) -> Any:
            node = self.sides.nodes[k % len(self.sides.nodes)].replace("http", "ws", 1)
            protocols = [websockets.Subprotocol("rapport.v1"), websockets.Subprotocol(f"rapport.bearer.{member.token}")]
            socket = await websockets.connect(f"{node}/v1/stream", subprotocols=protocols, max_size=None)
            while '"caught_up"' not in str(await asyncio.wait_for(socket.recv(), 30)):
                pass
            return socket

        self.sockets = list(await asyncio.gather(*(open_one(k, m) for k, m in enumerate(self.world.members))))
        self.tasks = [asyncio.create_task(self._read(socket)) for socket in self.sockets]

    async def _read(self, socket: Any) -> None:
        try:
            async for frame in socket:
                text = frame if isinstance(frame, str) else frame.decode(errors="replace")
                if '"ping"' in text[:40]:
                    await socket.send('{"type":"pong"}')
                    continue
                self._frame(text)
        except websockets.ConnectionClosed:
            return

    async def open_listeners(self) -> None:
        async def open_one() -> asyncpg.Connection:
            connection = await asyncpg.connect(self.sides.app_dsn)
            await connection.add_listener(CHANNEL, lambda *args: self._arrived(str(args[3])))
            return connection

        self.listeners = list(await asyncio.gather(*(open_one() for _ in self.world.members)))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for socket in self.sockets:
            await socket.close()
        for connection in self.listeners:
            await connection.close()
        self.tasks, self.sockets, self.listeners = [], [], []

    async def _delivered(self, key: str) -> None:
        """Until every member has `key`, counting arrivals that came first."""
        done = asyncio.Event()
        self.waiting[key] = (len(self.world.members), done)
        if self.arrivals.get(key, 0) >= len(self.world.members):
            done.set()
        try:
            await asyncio.wait_for(done.wait(), 15)
        except TimeoutError:
            raise RuntimeError("a member did not receive the message in 15 s") from None
        finally:
            self.waiting.pop(key, None)
            self.arrivals.pop(key, None)

    async def service(self, i: int, n: int) -> None:
        sender = self.world.members[i % len(self.world.members)]
        http = self.sides.http[i % len(self.sides.http)]
        answer = await http.request(
            "POST",
            f"/v1/conversations/{self.world.group}/messages",
            token=sender.token,
            payload={"content": f"fan-out {n}: on its way", "client_message_id": f"f-{uuid.uuid4()}"},
        )
        await self._delivered(str(json.loads(_ok(answer))["id"]))

    async def straight(self, i: int, n: int) -> None:
        sender = self.world.members[i % len(self.world.members)]
        connection = self.sides.sql[i]
        token = f"f-{uuid.uuid4()}"
        await connection.fetchrow(
            SEND, sender.user_id, sender.session_id, None, self.world.group, token, "text", f"fan-out {n}: on its way",
            "{}", None, None, None, [], [], False,
        )  # fmt: skip
        await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, token)
        await self._delivered(token)


async def choose_world(admin: asyncpg.Connection, http: httpx.AsyncClient, clients: int) -> World:
    """The busiest people as clients (they are in the most conversations), their
    conversations, and a group of about FANOUT_MEMBERS for fan-out; everyone signed in."""
    rows = await admin.fetch(
        """SELECT p.user_id::text AS id, u.email, count(*) AS n
             FROM messaging.participants p JOIN auth.users u ON u.id = p.user_id
            WHERE u.email LIKE '%@bench.example'
            GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT $1""",
        clients,
    )
    if not rows:
        raise RuntimeError("the database holds no data set: run `rapport bench generate` first")
    rng = random.Random(11)
    history: list[list[str]] = []
    send_to: list[list[str]] = []
    for row in rows:
        mine = await admin.fetch(
            """SELECT c.id::text AS id, c.last_seq, c.member_count FROM messaging.participants p
                 JOIN messaging.conversations c ON c.id = p.conversation_id
                WHERE p.user_id = $1::uuid ORDER BY c.last_seq DESC, c.id""",
            row["id"],
        )
        ids = [r["id"] for r in mine]
        others = ids[3:]
        history.append(ids[:3] + rng.sample(others, min(7, len(others))))
        small = [r["id"] for r in mine if r["member_count"] <= 60] or ids
        send_to.append(rng.sample(small, min(5, len(small))))
    width = min(len(x) for x in send_to)
    send_to = [x[:width] for x in send_to]
    group = await admin.fetchval(
        """SELECT id::text FROM messaging.conversations WHERE type = 'group'
            ORDER BY abs(member_count - $1), last_seq DESC, id LIMIT 1""",
        FANOUT_MEMBERS,
    )
    member_rows = await admin.fetch(
        """SELECT p.user_id::text AS id, u.email FROM messaging.participants p JOIN auth.users u ON u.id = p.user_id
            WHERE p.conversation_id = $1::uuid ORDER BY p.user_id LIMIT $2""",
        group,
        FANOUT_MEMBERS,
    )
    probe = await admin.fetchrow(
        """SELECT id::text FROM messaging.messages WHERE conversation_id = $1::uuid AND deleted_at IS NULL
            ORDER BY seq DESC LIMIT 1""",
        history[0][0],
    )
    assert probe is not None  # a conversation has at least one message
    accounts = [await sign_in(http, r["id"], r["email"], PASSWORD) for r in rows]
    members = [await sign_in(http, r["id"], r["email"], PASSWORD) for r in member_rows]
    return World(accounts, history, send_to, group, members, (rows[0]["id"], history[0][0], probe["id"]))
