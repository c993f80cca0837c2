"""The support desk at seed 003's sizes: message queries in a 10,000-message support room
and participant lookups, through HTTP and, in the same run, straight in PostgreSQL.

    make bench-support            # = .venv/bin/python -m bench.support_room
    .venv/bin/python -m bench.support_room --clients 1 16 --duration 10
    .venv/bin/python -m bench.support_room --messages 500 --rooms 10 --duration 2 --clients 1   # a quick run

Seed 003 asks for message queries under 100 ms in a room of 10k messages, participant
lookups under 50 ms, and 1,000+ concurrent connections. The first two are measured here,
each row against its budget at p99 (met or missed). The third is measured by
bench/realtime_stream.py: `python -m bench.realtime_stream --sockets N` holds N idle
WebSockets (each a signed-in client's live connection) on one server and reports what
they cost; nothing here repeats it.

The benchmark makes a throw-away data folder (or keeps it at `--keep DIR`), starts the
embedded PostgreSQL in it, provisions and migrates, and starts `rapport serve` on a free
port of 127.0.0.1 with `RAPPORT_WORKERS` server processes (`--workers`, default 2). Then
it makes the desk, through the API wherever that is quick:

- accounts, copied into auth.users as the superuser, one password: a platform
  administrator, customers, three T1 agents, a T2 agent, a supervisor and a bot
  developer, each signed in through the API (POST /v1/auth/login); the administrator
  grants their roles (POST /v1/admin/grants); the developer makes a bot (POST /v1/bots,
  its webhook hearing only mentions, so nothing is delivered);
- the room: a customer opens it (POST /v1/support/rooms), two T1 agents join it, and the
  bot is brought in the way the desk brings people into its rooms (system work,
  messaging's `do_admit`: a room's members invite nobody); around it `--rooms` rooms of
  other customers, three in four joined and answered by a T1 agent, the rest waiting in
  the T1 queue;
- the messages, copied in as the superuser with triggers off (the numbering trigger's
  counters, the rooms' opening, joining and first response written to match):
  `--messages` in the room over `--days` days, from the customer, the two agents and the
  bot (one in eight, a fifth of them `graph` messages with their chart in
  content_metadata), and 12 to 60 in each other room; words from bench.messaging_data's
  list and a support vocabulary;
- then through the API again: a few live messages in the room (the bot's with its API
  key, a `graph` among them); 2% of the room's messages edited by their senders (PATCH, so
  messaging.message_history holds their earlier versions); three escalations to T2, one
  `new_room` (an escalated room), one assigned to and started by the T2 agent; one room
  in ten closed by its customer.

Scenarios, each at every concurrency of `--clients` (default 1 and 16) for `--duration`
seconds (default 10), one keep-alive connection per client (bench/_load.py):

  message queries (budget 100 ms)
- history newest: GET /v1/conversations/{room}/messages, the newest page of 50, each
  client as the customer or one of the two agents;
- history deep: the same with `before` the room's middle message;
- supervisor read: GET /v1/support/rooms/{room}/messages, the supervisor's newest page;
- search in room: GET /v1/messages/search?q=refund&conversation_id={room} (about one
  message in 25 has the word), as the customer or an agent;

  participant lookups (budget 50 ms)
- participants: GET /v1/conversations/{room}/participants, as the customer or an agent;
- my permissions: GET /v1/permissions/me, as a T1 agent;
- T1 queue: GET /v1/support/queues/T1, as a T1 agent.

After each HTTP row, a `sql` row does the same work straight in PostgreSQL, one asyncpg
connection per client as rapport_app, with row-level security on (the superuser is used
for loading only): the statements the route sends, compiled from the same statements of
Rapport's code. History and search are one call each of the function the hot routes call
(messaging.read_history, messaging.search_page), which sets who acts and checks the
session itself; the other routes' statements run in a transaction that sets
`rapport.user_id` first, as the server's request transaction does: the session check,
then the room, the supervisor's permission and support.observe_messages; the
conversation with the caller's part, then its participants; the caller's grants and
access.is_platform_admin(); support.works_at, then the queue. What the HTTP row costs
beyond the sql row is Rapport's: HTTP, authentication, Python and its pools. Before the
rows, each scenario is asked once each way and the numbers of items are compared.

The table goes to stdout, the figures (CPU split per request, the dataset, the machine)
to bench/results/support_room.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID

import asyncpg
import httpx
import orjson
import uvloop
from rich.console import Console
from rich.table import Table

from bench import messaging_data as data
from bench._load import (
    Meter,
    Tally,
    closed_loop,
    free_port,
    latency_summary,
    server_env_argument,
)
from bench._report import machine
from bench.messaging_send import Sender, Server, bench_password_hash, processes_serving, sign_in
from rapport.benchmark._http import http_request
from rapport.benchmark.rows import word_weights
from rapport.kernel.outbox import ORDINAL_BITS

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "support_room.json"
BUDGET_MS = {"message query": 100.0, "participant lookup": 50.0}
PAGE = 50  # the routes' default page
SEARCH_WORD = "refund"
T1_AGENTS = 3
CUSTOMERS = 20  # the other rooms' customers, each with several rooms
EDITED = 0.02
SUPPORT_WORDS = [
    "order", "refund", "invoice", "account", "password", "delivery", "tracking", "payment",
    "subscription", "error", "screenshot", "receipt", "warranty", "shipping", "replacement",
    "login", "charge", "parcel", "address", "voucher", "update", "settings", "app", "email",
]  # fmt: skip
BOT_LINES = [
    "Suggested article: how to reset your password",
    "Suggested article: where is my parcel",
    "Suggested article: refunds and returns",
    "I have attached the customer's recent orders for the agent",
    "Reminder: this conversation is recorded for quality purposes",
]
_CONSUMER_POSITION = "SELECT position FROM notifications.consumer WHERE name = 'notifications'"
_SET_USER = "SELECT set_config('rapport.user_id', $1, true)"

out = Console(width=None if sys.stdout.isatty() else 170)
err = Console(stderr=True)


def say(text: str) -> None:
    err.print(f"[dim]{datetime.now():%H:%M:%S}[/dim] {text}")


# --------------------------------------------------------------------------- the people


@dataclass
class Desk:
    """Who is who, signed in, and what the setup made."""

    admin: Sender
    developer: Sender
    supervisor: Sender
    t1: list[Sender]
    t2: Sender
    customer: Sender  # the room's
    customers: list[Sender]  # the other rooms'
    bot_id: UUID | None = None
    bot_key: str = ""
    room: UUID | None = None
    rooms: list[Room] = field(default_factory=list)  # the others
    middle_id: UUID | None = None  # the room's middle message: the deep page's `before`

    @property
    def room_id(self) -> UUID:
        assert self.room is not None, "the room is opened first"
        return self.room

    @property
    def in_room(self) -> list[Sender]:
        """The people who read the room: its customer and the two agents who joined it."""
        return [self.customer, self.t1[0], self.t1[1]]


@dataclass
class Room:
    conversation_id: UUID
    customer: Sender
    agent: Sender | None  # the T1 agent who joined and answered, or None: waiting in the queue
    start_ms: int = 0
    end_ms: int = 0
    size: int = 0


ACCOUNTS = {"admin": 1, "developer": 1, "supervisor": 1, "t1": T1_AGENTS, "t2": 1, "customer": 1}


def email_of(kind: str, n: int) -> str:
    return f"{kind}-{n}@support.bench.example"


async def make_accounts(admin: asyncpg.Connection, customers: int, password_hash: str) -> None:
    """The desk's accounts in auth.users (its triggers on: each gets its profile and
    settings, as a real one does)."""
    emails = [(email_of(kind, n), kind == "admin") for kind, count in ACCOUNTS.items() for n in range(count)]
    emails += [(email_of("client", n), False) for n in range(customers)]
    await admin.copy_records_to_table(
        "users",
        schema_name="auth",
        columns=["id", "email", "password_hash", "status", "email_verified_at", "is_admin"],
        records=[(uuid7_at(), e, password_hash, "active", datetime.now(UTC), a) for e, a in emails],
    )


def uuid7_at(ms: int | None = None, rng: random.Random | None = None) -> UUID:
    """A UUIDv7 made at millisecond `ms` (now by default)."""
    return UUID(data.uuid7_text(ms if ms is not None else int(time.time() * 1000), rng or random.Random()))


async def sign_in_desk(url: str, customers: int) -> Desk:
    kinds = [(kind, n) for kind, count in ACCOUNTS.items() for n in range(count)]
    kinds += [("client", n) for n in range(customers)]
    signed = dict(zip(kinds, await sign_in(url, [email_of(k, n) for k, n in kinds]), strict=True))
    return Desk(
        admin=signed["admin", 0],
        developer=signed["developer", 0],
        supervisor=signed["supervisor", 0],
        t1=[signed["t1", n] for n in range(T1_AGENTS)],
        t2=signed["t2", 0],
        customer=signed["customer", 0],
        customers=[signed["client", n] for n in range(customers)],
    )


# --------------------------------------------------------------------------- the API


class Api:
    """The setup's requests, each checked."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.requests = 0

    async def call(self, method: str, path: str, token: str, body: Any = None, expect: int = 200) -> Any:
        response = await self.client.request(method, path, json=body, headers={"authorization": f"Bearer {token}"})
        self.requests += 1
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code}: {response.text[:400]}")
        return response.json() if response.content else None


async def in_batches(calls: Sequence[Callable[[], Awaitable[Any]]], at_once: int = 8) -> list[Any]:
    """Run the calls a few at a time, as a few clients would."""
    results: list[Any] = []
    for start in range(0, len(calls), at_once):
        results += await asyncio.gather(*(call() for call in calls[start : start + at_once]))
    return results


async def grant_and_make_bot(api: Api, desk: Desk) -> None:
    grants = [(desk.supervisor, "supervisor"), (desk.developer, "bot-developer"), (desk.t2, "support-t2")]
    grants += [(agent, "support-t1") for agent in desk.t1]
    for person, role in grants:
        body = {"user_id": str(person.user_id), "role": role, "reason": "support desk bench"}
        await api.call("POST", "/v1/admin/grants", desk.admin.token, body, 201)
    bot = await api.call(
        "POST",
        "/v1/bots",
        desk.developer.token,
        {
            "name": "Helper",
            "webhook_url": f"http://127.0.0.1:{free_port()}/hook",
            "receives": "mentions",
            "description": "Suggests articles and charts a customer's orders.",
            "is_visible_to_guests": True,
        },
        201,
    )
    desk.bot_id, desk.bot_key = UUID(bot["id"]), bot["api_key"]["key"]


async def open_rooms(api: Api, desk: Desk, count: int, rng: random.Random) -> None:
    """The room, and `count` others of other customers; agents join the room and three in
    four of the others."""
    opened = await api.call(
        "POST",
        "/v1/support/rooms",
        desk.customer.token,
        {"issue_description": "Several orders charged twice, refunds missing", "issue_id": "ACME-1", "priority": 2},
        201,
    )
    desk.room = UUID(opened["room"]["conversation_id"])

    async def one(n: int) -> Room:
        customer = desk.customers[n % len(desk.customers)]
        body = {
            "issue_description": f"{rng.choice(SUPPORT_WORDS).capitalize()} problem number {n}",
            "priority": rng.choice((1, 2, 3, 3, 3, 4, 5)),
        }
        made = await api.call("POST", "/v1/support/rooms", customer.token, body, 201)
        agent = desk.t1[n % len(desk.t1)] if n % 4 != 3 else None
        return Room(UUID(made["room"]["conversation_id"]), customer, agent)

    desk.rooms = await in_batches([partial(one, n) for n in range(count)])
    joins = [(agent, desk.room_id) for agent in desk.t1[:2]]
    joins += [(room.agent, room.conversation_id) for room in desk.rooms if room.agent is not None]
    await in_batches([partial(api.call, "POST", f"/v1/support/rooms/{r}/join", a.token) for a, r in joins])


async def admit_bot(urls: Any, desk: Desk) -> None:
    """The bot into the room, as the desk brings people into its rooms (system work)."""
    from rapport.kernel.db import create_system_engine, system_transaction
    from rapport.messaging import service as messaging_service

    assert desk.bot_id is not None
    engine = create_system_engine(urls.worker, pool_size=1)
    try:
        async with system_transaction(engine) as db:
            await messaging_service.do_admit(db, conversation_id=desk.room_id, user_id=desk.bot_id, role="member")
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- the messages


@dataclass
class Written:
    """The messages copied into a room, for the counters and the edits."""

    ids: list[UUID] = field(default_factory=list)
    senders: list[UUID] = field(default_factory=list)
    contents: list[str] = field(default_factory=list)
    times: list[int] = field(default_factory=list)


def ms_time(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


class Writer:
    """Message rows for COPY, with the words of bench.messaging_data and a support vocabulary."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cumulative = list(word_weights(len(data.WORDS)))
        self.records: list[tuple[Any, ...]] = []

    def text(self) -> str:
        words = self.rng.choices(data.WORDS, cum_weights=self.cumulative, k=3 + int(self.rng.expovariate(1 / 8)))
        for _ in range(self.rng.choice((0, 1, 1, 2))):
            words.insert(self.rng.randrange(len(words) + 1), self.rng.choice(SUPPORT_WORDS))
        return " ".join(words)

    def bot(self) -> tuple[str, str, dict[str, Any]]:
        if self.rng.random() < 0.2:
            days = [f"day {d}" for d in range(1, 8)]
            chart: dict[str, Any] = {"kind": "bar", "title": "Orders this week", "labels": days}
            chart["series"] = [{"name": "orders", "values": [self.rng.randrange(12) for _ in days]}]
            return "graph", "Orders this week", {"chart": chart}
        return "bot", self.rng.choice(BOT_LINES), {}

    def room(
        self, conversation_id: UUID, first_seq: int, times: list[int], senders: list[UUID], bot: UUID | None
    ) -> Written:
        written = Written()
        for n, (ms, sender) in enumerate(zip(times, senders, strict=True)):
            kind, content, metadata = self.bot() if sender == bot else ("text", self.text(), {})
            message_id = uuid7_at(ms, self.rng)
            self.records.append(
                (
                    message_id,
                    conversation_id,
                    first_seq + n,
                    sender,
                    kind,
                    content,
                    orjson.dumps(metadata).decode(),
                    ms_time(ms),
                )
            )
            written.ids.append(message_id)
            written.senders.append(sender)
            written.contents.append(content)
            written.times.append(ms)
        return written


def spread(rng: random.Random, start_ms: int, end_ms: int, count: int) -> list[int]:
    """`count` moments from start to end in order, each at random within its share."""
    width = (end_ms - start_ms) / max(1, count)
    return [int(start_ms + width * (n + rng.random())) for n in range(count)]


def room_senders(rng: random.Random, desk: Desk, count: int) -> list[UUID]:
    """The room's talk: the customer most, the first agent, the second, the bot now and then."""
    assert desk.bot_id is not None
    people = [desk.customer.user_id, desk.t1[0].user_id, desk.t1[1].user_id, desk.bot_id]
    return rng.choices(people, weights=(45, 28, 15, 12), k=count)


def plan_rooms(rng: random.Random, desk: Desk, now_ms: int, days: float) -> None:
    """Each other room's span and size: opened within the last `days`, talked in for half an
    hour to two days."""
    earliest = now_ms - int(days * 86_400_000)
    for room in desk.rooms:
        room.start_ms = rng.randrange(earliest, now_ms - 3_600_000)
        room.end_ms = min(now_ms - 60_000, room.start_ms + rng.randrange(1_800_000, 2 * 86_400_000))
        room.size = rng.randrange(12, 61)


async def ensure_months(owner: asyncpg.Connection, start_ms: int, end_ms: int) -> None:
    """The monthly partitions of messaging.messages before the current month, which
    kernel.ensure_partitions() does not make, made as bench.messaging_data makes them."""
    for month, following in data._months(start_ms, end_ms):
        name = f"messages_p{month:%Y%m}"
        if await owner.fetchval("SELECT to_regclass($1)", f"messaging.{name}") is not None:
            continue
        await owner.execute(
            f"""CREATE TABLE messaging.{name} PARTITION OF messaging.messages
                    FOR VALUES FROM ('{month:%Y-%m-%d} 00:00+00') TO ('{following:%Y-%m-%d} 00:00+00');
                ALTER TABLE messaging.{name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
                REVOKE ALL ON TABLE messaging.{name} FROM PUBLIC, rapport_app, rapport_worker;
                COMMENT ON TABLE messaging.{name} IS
                    'The rows of messaging.messages of {month:%Y-%m} (UTC), made by bench.support_room.'"""
        )


@dataclass
class Counters:
    """Per conversation: what the numbering trigger and the desk would have written."""

    ids: list[UUID] = field(default_factory=list)
    last_seq: list[int] = field(default_factory=list)
    last_id: list[UUID] = field(default_factory=list)
    last_at: list[datetime] = field(default_factory=list)
    opened: list[datetime] = field(default_factory=list)
    first_at: list[datetime | None] = field(default_factory=list)
    first_by: list[UUID | None] = field(default_factory=list)

    def add(self, conversation_id: UUID, first_seq: int, written: Written, agents: set[UUID]) -> None:
        first = next((n for n, s in enumerate(written.senders) if s in agents), None)
        self.ids.append(conversation_id)
        self.last_seq.append(first_seq + len(written.ids) - 1)
        self.last_id.append(written.ids[-1])
        self.last_at.append(ms_time(written.times[-1]))
        self.opened.append(ms_time(written.times[0] - 120_000))
        self.first_at.append(ms_time(written.times[first]) if first is not None else None)
        self.first_by.append(written.senders[first] if first is not None else None)


_COUNTERS = """
WITH x AS (SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::timestamptz[], $5::timestamptz[],
                               $6::timestamptz[], $7::uuid[])
                      AS x (id, last_seq, last_id, last_at, opened, first_at, first_by)),
     c AS (UPDATE messaging.conversations c
              SET last_seq = x.last_seq, last_message_id = x.last_id, last_message_at = x.last_at,
                  created_at = x.opened, updated_at = x.opened
             FROM x WHERE c.id = x.id RETURNING c.id),
     p AS (UPDATE messaging.participants p
              SET read_seq = x.last_seq, delivered_seq = x.last_seq, read_at = x.last_at,
                  joined_at = x.opened
                              + CASE WHEN p.user_id = r.customer_id THEN interval '0' ELSE interval '1 minute' END
             FROM x JOIN support.rooms r ON r.conversation_id = x.id
            WHERE p.conversation_id = x.id RETURNING p.user_id),
     a AS (UPDATE support.room_agents a SET joined_at = x.opened + interval '1 minute'
             FROM x WHERE a.conversation_id = x.id RETURNING a.agent_id)
UPDATE support.rooms r
   SET opened_at = x.opened, updated_at = x.last_at, first_response_at = x.first_at, first_responder_id = x.first_by
  FROM x WHERE r.conversation_id = x.id
"""


async def write_messages(
    admin: asyncpg.Connection, owner: asyncpg.Connection, desk: Desk, args: argparse.Namespace
) -> Written:
    """The room's messages and the other rooms', copied in as the superuser with triggers
    off; then the counters and the dates. The room's messages, for the edits."""
    rng = random.Random(args.seed)
    now_ms = int(time.time() * 1000) - 600_000  # ten minutes ago: the live messages come after
    start_ms = now_ms - int(args.days * 86_400_000)
    plan_rooms(rng, desk, now_ms, args.days)
    await ensure_months(owner, start_ms, now_ms)
    firsts: dict[UUID, int] = {
        row[0]: row[1] for row in await admin.fetch("SELECT id, last_seq + 1 FROM messaging.conversations")
    }
    writer, counters = Writer(rng), Counters()
    agents = {agent.user_id for agent in desk.t1}
    room = writer.room(
        desk.room_id,
        firsts[desk.room_id],
        spread(rng, start_ms, now_ms, args.messages),
        room_senders(rng, desk, args.messages),
        desk.bot_id,
    )
    counters.add(desk.room_id, firsts[desk.room_id], room, agents)
    desk.middle_id = room.ids[len(room.ids) // 2]
    for other in desk.rooms:
        people = [other.customer.user_id] + ([other.agent.user_id] if other.agent else [])
        senders = [people[0], *rng.choices(people, k=other.size - 1)]
        written = writer.room(
            other.conversation_id,
            firsts[other.conversation_id],
            spread(rng, other.start_ms, other.end_ms, other.size),
            senders,
            None,
        )
        counters.add(other.conversation_id, firsts[other.conversation_id], written, agents)
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        await admin.copy_records_to_table(
            "messages",
            schema_name="messaging",
            columns=["id", "conversation_id", "seq", "sender_id", "type", "content", "content_metadata", "created_at"],
            records=writer.records,
        )
        await admin.execute(
            _COUNTERS,
            counters.ids,
            counters.last_seq,
            counters.last_id,
            counters.last_at,
            counters.opened,
            counters.first_at,
            counters.first_by,
        )
    return room


# --------------------------------------------------------------------------- after the load


async def live_messages(api: Api, desk: Desk) -> None:
    """The room's latest messages, sent through the API: the customer, the agents, the bot."""
    path = f"/v1/conversations/{desk.room_id}/messages"
    chart = {
        "kind": "line",
        "title": "Refunds issued",
        "labels": ["Mon", "Tue", "Wed"],
        "series": [{"name": "refunds", "values": [0, 1, 2]}],
    }
    sends = [
        (desk.customer.token, {"content": "Any news on the refund for the second order?"}),
        (desk.bot_key, {"type": "bot", "content": "Suggested article: refunds and returns"}),
        (desk.t1[0].token, {"content": "Checking with billing now, one moment please"}),
        (desk.bot_key, {"type": "graph", "content": "Refunds issued", "content_metadata": {"chart": chart}}),
        (desk.t1[1].token, {"content": "The refund went out this morning, it takes 3 to 5 days"}),
        (desk.customer.token, {"content": "Thank you, that helps"}),
    ]
    for token, body in sends:
        await api.call("POST", path, token, body, 201)


async def edit_messages(api: Api, desk: Desk, room: Written, rng: random.Random) -> int:
    """Edit 2% of the room's messages, each by its sender (the bot with its key); a few twice."""
    tokens = {person.user_id: person.token for person in desk.in_room}
    if desk.bot_id is not None:
        tokens[desk.bot_id] = desk.bot_key
    chosen = rng.sample(range(len(room.ids)), max(1, int(len(room.ids) * EDITED)))
    chosen += chosen[: max(1, len(chosen) // 10)]  # edited again
    calls, times = [], Counter[int]()
    for n in chosen:
        times[n] += 1
        path = f"/v1/conversations/{desk.room_id}/messages/{room.ids[n]}"
        body = {"content": f"{room.contents[n]} (corrected{' again' * (times[n] - 1)})"}
        calls.append(partial(api.call, "PATCH", path, tokens[room.senders[n]], body))
    await in_batches(calls)
    return len(calls)


async def escalate(api: Api, desk: Desk) -> list[dict[str, Any]]:
    """Three answered rooms escalated to T2: one raised and worked by the T2 agent, one to
    a new escalated room, one waiting at priority 1."""
    answered = [room for room in desk.rooms if room.agent is not None]
    plans = [("same_room", None), ("new_room", None), ("same_room", 1)]
    made = []
    for room, (mode, priority) in zip(answered, plans, strict=False):
        assert room.agent is not None
        body: dict[str, Any] = {"reason": "A refund above the first level's limit", "to_level": "T2", "mode": mode}
        if priority is not None:
            body["priority"] = priority
        path = f"/v1/support/rooms/{room.conversation_id}/escalations"
        made.append(await api.call("POST", path, room.agent.token, body, 201))
    if made:
        worked = made[0]["id"]
        await api.call("POST", f"/v1/support/escalations/{worked}/assign", desk.t2.token)
        await api.call("POST", f"/v1/support/escalations/{worked}/start", desk.t2.token)
    return made


async def close_some(api: Api, desk: Desk) -> int:
    """One room in ten closed by its customer (none of the escalated ones)."""
    answered = [room for room in desk.rooms if room.agent is not None][3:]
    closing = answered[::8]
    await in_batches(
        [partial(api.call, "POST", f"/v1/support/rooms/{r.conversation_id}/close", r.customer.token) for r in closing]
    )
    return len(closing)


async def drained(admin: asyncpg.Connection, within: float = 120) -> float:
    """Wait for the notifications consumer to have read every event committed so far (what
    the setup's requests left for later), so that none of it falls inside a row."""
    target = await admin.fetchval(
        f"SELECT (pg_snapshot_xmax(pg_current_snapshot())::text::bigint << {ORDINAL_BITS}) - 1"
    )
    began = time.perf_counter()
    while time.perf_counter() - began < within:
        reached = await admin.fetchval(_CONSUMER_POSITION)
        if reached is not None and reached >= target:
            break
        await asyncio.sleep(0.1)
    return round(time.perf_counter() - began, 1)


_FACTS = """
SELECT (SELECT count(*) FROM messaging.messages WHERE conversation_id = $1) AS room_messages,
       (SELECT count(*) FROM messaging.messages WHERE conversation_id = $1 AND type = 'bot') AS room_bot_messages,
       (SELECT count(*) FROM messaging.messages WHERE conversation_id = $1 AND type = 'graph') AS room_graph_messages,
       (SELECT count(*) FROM messaging.messages WHERE conversation_id = $1 AND edited_at IS NOT NULL) AS room_edited,
       (SELECT count(*) FROM messaging.message_history WHERE conversation_id = $1) AS room_history_rows,
       (SELECT count(*) FROM messaging.participants WHERE conversation_id = $1) AS room_participants,
       (SELECT count(*) FROM messaging.messages WHERE conversation_id = $1 AND content ~ $2) AS room_search_word,
       (SELECT count(*) FROM messaging.messages) AS messages,
       (SELECT count(*) FROM support.rooms) AS rooms,
       (SELECT count(*) FROM support.rooms WHERE status = 'closed') AS rooms_closed,
       (SELECT count(*) FROM messaging.conversations WHERE type = 'escalated') AS escalated_rooms,
       (SELECT count(*) FROM support.escalations) AS escalations,
       (SELECT count(*) FROM support.rooms WHERE level = 'T1' AND status = 'open' AND first_response_at IS NULL)
           AS t1_unanswered,
       (SELECT min(created_at) FROM messaging.messages WHERE conversation_id = $1) AS room_first_message_at
"""


async def build(
    urls: Any, server: Server, admin: asyncpg.Connection, args: argparse.Namespace
) -> tuple[Desk, dict[str, Any]]:
    rng = random.Random(args.seed + 1)
    desk = await sign_in_desk(server.url, min(CUSTOMERS, max(1, args.rooms)))
    began = time.perf_counter()
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        api = Api(client)
        say("grants, the bot, the rooms")
        await grant_and_make_bot(api, desk)
        await open_rooms(api, desk, args.rooms, rng)
        await admit_bot(urls, desk)
        say(f"copying {args.messages:,} messages into the room and the others'")
        owner = await data.connect(urls.owner)
        try:
            room = await write_messages(admin, owner, desk, args)
        finally:
            await owner.close()
        say("live messages, edits, escalations, closed rooms")
        await live_messages(api, desk)
        edits = await edit_messages(api, desk, room, rng)
        escalations = await escalate(api, desk)
        closed = await close_some(api, desk)
        api_requests = api.requests
    drain_s = await drained(admin)
    with err.status("VACUUM ANALYZE…"):
        for table in ("messaging.messages", "messaging.conversations", "messaging.participants",
                      "messaging.message_history", "support.rooms", "support.room_agents", "support.escalations",
                      "auth.sessions", "access.grants", "auth.users"):  # fmt: skip
            await admin.execute(f"VACUUM (ANALYZE) {table}")
    found = await admin.fetchrow(_FACTS, desk.room, rf"\m{SEARCH_WORD}\M")
    assert found is not None  # aggregates always make a row
    facts = dict(found)
    facts["room_first_message_at"] = str(facts["room_first_message_at"])
    facts |= {
        "edits": edits,
        "escalations_made": [e["mode"] for e in escalations],
        "closed_by_customers": closed,
        "setup_api_requests": api_requests,
        "setup_s": round(time.perf_counter() - began, 1),
        "notifications_drained_after_s": drain_s,
        "relation_mib": await data.relation_mib(admin),
    }
    return desk, facts


# --------------------------------------------------------------------------- the SQL side


def compiled(statement: Any, **values: Any) -> tuple[str, list[Any]]:
    """A SQLAlchemy statement as the server sends it through asyncpg: its SQL and its
    positional arguments."""
    from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

    dialect = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialects are untyped
    made = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = made.construct_params(values)
    return str(made), [params[name] for name in made.positiontup]


Statement = tuple[str, list[Any]]
Work = Callable[[asyncpg.Connection, int, int], Awaitable[int]]


def session_check(person: Sender) -> Statement:
    """The check every request transaction makes first (identity's session_is_live)."""
    from sqlalchemy import func, select

    from rapport.identity.models import sessions

    return compiled(
        select(sessions.c.id).where(
            sessions.c.id == person.session_id, sessions.c.revoked_at.is_(None), sessions.c.expires_at > func.now()
        )
    )


def in_transaction(
    per_person: list[tuple[Sender, list[Statement]]], count: Callable[[list[Any]], int], counted: int = -1
) -> Work:
    """Client i runs person i's statements (in turn) in one transaction acting as them;
    the number of items the rows of statement `counted` (the last by default) make."""

    async def work(conn: asyncpg.Connection, client: int, n: int) -> int:
        person, statements = per_person[client % len(per_person)]
        async with conn.transaction():
            await conn.execute(_SET_USER, str(person.user_id))
            results = [await conn.fetch(sql, *args) for sql, args in statements]
        return count(results[counted])

    return work


def page_count(rows: list[Any]) -> int:
    return min(len(rows), PAGE)


def history_work(readers: list[Sender], room: UUID, before: UUID | None) -> Work:
    from rapport.messaging._hot import _HISTORY

    async def work(conn: asyncpg.Connection, client: int, n: int) -> int:
        reader = readers[client % len(readers)]
        row = await conn.fetchrow(_HISTORY, reader.user_id, reader.session_id, None, room, before, None, None, PAGE)
        assert row is not None
        return len(orjson.loads(row["items"]))

    return work


def search_work(readers: list[Sender], room: UUID) -> Work:
    from rapport.kernel.actor import Actor
    from rapport.messaging import _search

    filters = _search.normalise(SEARCH_WORD, _search.SearchFilters(conversation_id=room))

    async def work(conn: asyncpg.Connection, client: int, n: int) -> int:
        reader = readers[client % len(readers)]
        actor = Actor(user_id=reader.user_id, session_id=reader.session_id)
        horizon = datetime.now(UTC)
        arguments = _search.page_arguments(
            actor=actor, query=SEARCH_WORD, filters=filters, limit=_search.DEFAULT_LIMIT, cursor=None, horizon=horizon
        )
        row = await conn.fetchrow(_search.PAGE_STATEMENT, *arguments)
        assert row is not None
        page = _search.page_json(row, query=SEARCH_WORD, filters=filters, resumed=None, horizon=horizon)
        return len(orjson.loads(page)["items"])

    return work


def observe_work(supervisor: Sender, room: UUID) -> Work:
    from rapport.access._check import _HAS_PERMISSION
    from rapport.modules.support._levels import OBSERVE
    from rapport.modules.support._observe import _OBSERVE
    from rapport.modules.support._rooms import room_query
    from rapport.modules.support.models import rooms

    statements = [
        session_check(supervisor),
        compiled(room_query().where(rooms.c.conversation_id == room)),
        compiled(_HAS_PERMISSION, actor=supervisor.user_id, permission=OBSERVE, conversation=room),
        compiled(_OBSERVE, room=room, before=None, size=PAGE),
    ]
    return in_transaction([(supervisor, statements)], page_count)


def participants_work(readers: list[Sender], room: UUID) -> Work:
    from sqlalchemy import select

    from rapport.kernel.actor import Actor
    from rapport.kernel.pagination import PageRequest, keyset
    from rapport.messaging._conversations import TAKING_PART, _with_membership
    from rapport.messaging.models import conversations, participants

    listing = keyset(
        select(participants).where(participants.c.conversation_id == room, participants.c.status.in_(TAKING_PART)),
        participants.c.user_id,
        PageRequest(limit=PAGE, after_id=None),
    )
    per_person = [
        (
            reader,
            [
                session_check(reader),
                compiled(_with_membership(Actor(user_id=reader.user_id)).where(conversations.c.id == room)),
                compiled(listing),
            ],
        )
        for reader in readers
    ]
    return in_transaction(per_person, page_count)


def permissions_work(agents: list[Sender]) -> Work:
    from sqlalchemy import select

    from rapport.access import models as m
    from rapport.access._check import _IS_PLATFORM_ADMIN

    g, r, rp = m.grants, m.roles, m.role_permissions

    def held(agent: Sender) -> Any:
        return (
            select(rp.c.permission, g.c.conversation_id, r.c.name.label("via_role"))
            .select_from(g.join(r, r.c.id == g.c.role_id).join(rp, rp.c.role_id == g.c.role_id))
            .where(g.c.user_id == agent.user_id)
            .order_by(rp.c.permission, g.c.conversation_id.asc().nulls_first(), r.c.name)
        )

    per_person = [(a, [session_check(a), compiled(held(a)), compiled(_IS_PLATFORM_ADMIN)]) for a in agents]
    return in_transaction(per_person, len, counted=1)


def queue_work(agents: list[Sender]) -> Work:
    from rapport.modules.support._levels import _WORKS_AT
    from rapport.modules.support._queues import _QUEUE

    queue = compiled(
        _QUEUE, level="T1", breached_only=False, after_priority=None, after_since=None, after_id=None, limit=PAGE + 1
    )
    per_person = [
        (agent, [session_check(agent), compiled(_WORKS_AT, level="T1", conversation=None), queue]) for agent in agents
    ]
    return in_transaction(per_person, page_count)


async def sql_closed_loop(dsn: str, *, clients: int, work: Work, duration: float, warmup: int = 2) -> dict[str, Any]:
    """As bench._load.closed_loop, straight in PostgreSQL: `clients` asyncpg connections,
    each running its next piece of work when the last is done, for `duration` seconds
    after a few unmeasured ones each."""
    connections = [await asyncpg.connect(dsn) for _ in range(clients)]
    tally = Tally()
    counter = [0] * clients
    try:
        for index, conn in enumerate(connections):
            for _ in range(warmup):
                counter[index] += 1
                await work(conn, index, counter[index])
        deadline = time.perf_counter() + duration

        async def client(index: int) -> None:
            while (started := time.perf_counter()) < deadline:
                counter[index] += 1
                try:
                    await work(connections[index], index, counter[index])
                except (asyncpg.PostgresError, AssertionError) as error:
                    tally.error(type(error).__name__, str(error))
                    continue
                finished = time.perf_counter()
                tally.latencies_ms.append((finished - started) * 1000)
                tally.finished_at.append(finished)

        began = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        ended = time.perf_counter()
    finally:
        for conn in connections:
            await conn.close()
    in_window = sum(1 for t in tally.finished_at if t <= deadline)
    return {
        "clients": clients,
        "window_s": round(duration, 3),
        "elapsed_s": round(ended - began, 3),
        "requests_ok": len(tally.latencies_ms),
        "errors": sum(tally.errors.values()),
        "error_kinds": tally.errors,
        "sample_error": tally.sample_error,
        "requests_per_s": round(in_window / duration, 1),
        "latency_ms": latency_summary(tally.latencies_ms),
    }


# --------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    name: str
    kind: str  # "message query" or "participant lookup"
    route: str  # the path, as the report shows it
    people: list[Sender]  # client i as people[i % len(people)]
    path: str  # the request's path and query string
    items: Callable[[Any], int]  # the number of items in its answer
    work: Work  # the same, straight in PostgreSQL
    sql: str  # what the SQL side runs, for the report


def scenarios(desk: Desk) -> list[Scenario]:
    room = desk.room_id
    readers = desk.in_room
    agents = desk.t1[:2]
    messages = f"/v1/conversations/{room}/messages"
    search = f"/v1/messages/search?q={quote(SEARCH_WORD)}&conversation_id={room}"

    def items(body: Any) -> int:
        return len(body["items"])

    return [
        Scenario(
            "history newest", "message query", "GET /v1/conversations/{id}/messages", readers, messages, items,
            history_work(readers, room, None), "messaging.read_history(...): one statement, no transaction",
        ),
        Scenario(
            "history deep", "message query", "GET /v1/conversations/{id}/messages?before=", readers,
            f"{messages}?before={desk.middle_id}", items, history_work(readers, room, desk.middle_id),
            "messaging.read_history(..., before): one statement",
        ),
        Scenario(
            "supervisor read", "message query", "GET /v1/support/rooms/{id}/messages", [desk.supervisor],
            f"/v1/support/rooms/{room}/messages", items, observe_work(desk.supervisor, room),
            "session, room, has_permission, support.observe_messages: a transaction as the supervisor",
        ),
        Scenario(
            "search in room", "message query", "GET /v1/messages/search?q=&conversation_id=", readers, search, items,
            search_work(readers, room), "messaging.search_page(...): one statement",
        ),
        Scenario(
            "participants", "participant lookup", "GET /v1/conversations/{id}/participants", readers,
            f"/v1/conversations/{room}/participants", items, participants_work(readers, room),
            "session, conversation and caller's part, participants: a transaction as the caller",
        ),
        Scenario(
            "my permissions", "participant lookup", "GET /v1/permissions/me", agents, "/v1/permissions/me",
            lambda body: len(body["permissions"]), permissions_work(agents),
            "session, grants, access.is_platform_admin(): a transaction as the agent",
        ),
        Scenario(
            "T1 queue", "participant lookup", "GET /v1/support/queues/T1", agents, "/v1/support/queues/T1", items,
            queue_work(agents), "session, support.works_at, the queue: a transaction as the agent",
        ),
    ]  # fmt: skip


def http_maker(port: int, scenario: Scenario) -> Callable[[int, int], bytes]:
    host = f"127.0.0.1:{port}"
    requests = [http_request("GET", scenario.path, host=host, token=person.token) for person in scenario.people]

    def make(client: int, n: int) -> bytes:
        return requests[client % len(requests)]

    return make


async def probe(url: str, dsn: str, scenario: Scenario) -> dict[str, Any]:
    """The scenario asked once each way by its first person: both must answer the same
    number of items."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        response = await client.get(scenario.path, headers={"authorization": f"Bearer {scenario.people[0].token}"})
    if response.status_code != 200:
        raise RuntimeError(f"{scenario.name}: HTTP {response.status_code}: {response.text[:400]}")
    conn = await asyncpg.connect(dsn)
    try:
        by_sql = await scenario.work(conn, 0, 0)
    finally:
        await conn.close()
    by_http = scenario.items(response.json())
    if by_http != by_sql:
        err.print(f"[yellow]{scenario.name}: {by_http} items through HTTP, {by_sql} straight in SQL[/yellow]")
    return {"items_http": by_http, "items_sql": by_sql, "same": by_http == by_sql}


async def measure(
    server: Server, dsn: str, meter: Meter, scenario: Scenario, clients: int, duration: float
) -> dict[str, dict[str, Any]]:
    """The HTTP row, then the SQL row."""
    base = {"scenario": scenario.name, "kind": scenario.kind, "route": scenario.route}
    before = meter.snapshot()
    http = await closed_loop(
        "127.0.0.1", server.port, clients=clients, make_request=http_maker(server.port, scenario), duration=duration
    )
    http["cpu"] = Meter.usage(before, meter.snapshot(), http["requests_ok"])
    before = meter.snapshot()
    sql = await sql_closed_loop(dsn, clients=clients, work=scenario.work, duration=duration)
    sql["cpu"] = Meter.usage(before, meter.snapshot(), sql["requests_ok"])
    sql["statements"] = scenario.sql
    rows: dict[str, dict[str, Any]] = {}
    for path, row in (("http", http), ("sql", sql)):
        budget = BUDGET_MS[scenario.kind]
        p99 = row["latency_ms"]["p99"]
        verdict = None if p99 is None else ("met" if p99 <= budget else "missed")
        rows[f"{scenario.name} {path} c{clients}"] = (
            base | {"path": path, "budget_ms": budget, "p99_budget": verdict} | row
        )
    return rows


# --------------------------------------------------------------------------- the report


def print_table(report: dict[str, Any]) -> None:
    facts = report.get("dataset", {})
    title = f"Rapport: a support room of {facts.get('room_messages', 0):,} messages (HTTP and SQL, same run)"
    table = Table(title=title)
    for column in (
        "scenario", "path", "clients", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms",
        "budget ms", "p99 in budget", "server CPU ms/req", "PG CPU ms/req",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column in ("scenario", "path") else "right")

    def fmt(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    for row in report["scenarios"].values():
        cpu, latency = row.get("cpu", {}), row["latency_ms"]
        verdict = row["p99_budget"] or "-"
        table.add_row(
            row["scenario"],
            row["path"],
            str(row["clients"]),
            f"{row['requests_ok']:,}",
            str(row["errors"]),
            fmt(row["requests_per_s"]),
            fmt(latency["p50"], 2),
            fmt(latency["p95"], 2),
            fmt(latency["p99"], 2),
            fmt(latency["max"], 1),
            fmt(row["budget_ms"], 0),
            f"[green]{verdict}[/green]" if verdict == "met" else f"[red]{verdict}[/red]",
            fmt(cpu.get("server_cpu_ms_per_request"), 3),
            fmt(cpu.get("postgres_cpu_ms_per_request"), 3),
        )
    out.print(table)
    for line in report.get("summary", []):
        out.print(line)


def summarise(report: dict[str, Any]) -> list[str]:
    """Per scenario and concurrency, what HTTP adds to the same work in SQL."""
    rows = report["scenarios"]
    lines, overhead = [], {}
    for key, http in rows.items():
        if http["path"] != "http":
            continue
        sql = rows.get(key.replace(" http ", " sql "))
        if not sql or http["latency_ms"]["p50"] is None or sql["latency_ms"]["p50"] is None:
            continue
        added = http["latency_ms"]["p50"] - sql["latency_ms"]["p50"]
        share = http["requests_per_s"] / sql["requests_per_s"] if sql["requests_per_s"] else None
        overhead[f"{http['scenario']} c{http['clients']}"] = {
            "p50_added_ms": round(added, 2),
            "http_rate_share_of_sql": round(share, 3) if share is not None else None,
        }
        rate = f", {share:.0%} of the SQL rate" if share is not None else ""
        lines.append(
            f"{http['scenario']}, {http['clients']} clients: HTTP p50 {http['latency_ms']['p50']:.2f} ms ="
            f" SQL {sql['latency_ms']['p50']:.2f} ms + {added:.2f} ms of Rapport{rate}"
        )
    report["overhead"] = overhead
    missed = [
        f"{r['scenario']} c{r['clients']}" for r in rows.values() if r["path"] == "http" and r["p99_budget"] != "met"
    ]
    lines.append(
        "Every HTTP row within its budget at p99." if not missed else f"Over budget at p99: {', '.join(missed)}"
    )
    return lines


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, data_dir: Path, report: dict[str, Any]) -> None:
    urls = await data.prepare(data_dir)
    admin = await data.connect(urls.admin.set(database=data.DATABASE))
    try:
        with err.status("Creating the desk's accounts…"):
            await make_accounts(admin, min(CUSTOMERS, max(1, args.rooms)), bench_password_hash())
        server = Server(data_dir, free_port(), args.workers, extra_env=dict(args.server_env))
        try:
            server.wait_healthy()
            serving = processes_serving(server, args.workers)
            report["server"] = {"workers_asked": args.workers, "processes_listening": serving, "url": server.url}
            desk, report["dataset"] = await build(urls, server, admin, args)
            await measure_all(args, urls, server, desk, data_dir, report)
        finally:
            with err.status("Stopping the server…"):
                server.stop()
    finally:
        await admin.close()


async def measure_all(
    args: argparse.Namespace, urls: Any, server: Server, desk: Desk, data_dir: Path, report: dict[str, Any]
) -> None:
    from rapport.kernel.provisioning import asyncpg_dsn

    dsn = asyncpg_dsn(urls.app)
    meter = Meter(server.process.pid, data_dir / "pgdata")
    plan = scenarios(desk)
    report["probes"] = {s.name: await probe(server.url, dsn, s) for s in plan}
    report["sql_side"] = {s.name: s.sql for s in plan}
    rows: dict[str, Any] = {}
    for clients in args.clients:
        for scenario in plan:
            say(f"{scenario.name}, {clients} clients")
            rows |= await measure(server, dsn, meter, scenario, clients, args.duration)
    report["scenarios"] = rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.support_room",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=10_000, help="messages in the room (default 10,000)")
    parser.add_argument("--rooms", type=int, default=200, help="other rooms around it (default 200)")
    parser.add_argument("--days", type=float, default=14.0, help="days the room's messages span (default 14)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16], help="concurrencies (default 1 16)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per row (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="RAPPORT_WORKERS for the server (default 2)")
    server_env_argument(parser)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--keep", type=Path, help="keep the data folder here (must not exist yet)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    if args.messages < 10 or args.rooms < 4 or args.days <= 0.1:
        parser.error("--messages must be at least 10, --rooms at least 4 and --days more than 0.1")
    if args.keep and args.keep.exists():
        parser.error(f"{args.keep} exists: the support benchmark starts from an empty folder")
    data_dir = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="rapport-support-"))
    report: dict[str, Any] = {
        "benchmark": "support_room",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.support_room", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "parameters": {
            "messages": args.messages,
            "rooms": args.rooms,
            "days": args.days,
            "clients": args.clients,
            "duration_s": args.duration,
            "workers": args.workers,
            "seed": args.seed,
        },
        "budgets_ms": BUDGET_MS,
        "load_generator": "bench/_load.py: one keep-alive HTTP/1.1 connection per client, closed loop, uvloop",
        "connections_criterion": "python -m bench.realtime_stream --sockets N (idle WebSockets per server)",
    }
    began = time.perf_counter()
    try:
        uvloop.run(run(args, data_dir, report))
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/yellow]")
        return 130
    finally:
        data.stop_embedded(data_dir)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    report["elapsed_s"] = round(time.perf_counter() - began, 1)
    report["summary"] = summarise(report)
    print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    err.print(f"Results in {args.output}")
    return 0 if all(row["errors"] == 0 for row in report["scenarios"].values()) else 2


if __name__ == "__main__":
    sys.exit(main())
