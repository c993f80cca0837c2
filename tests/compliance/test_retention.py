"""Retention: with the clock moved forward (every run is given its `now`), each policy
removes exactly the rows past its horizon and nothing else; messages go a whole monthly
partition at a time, or within one conversation by its own horizon, and what remains of the
history reads, counts and searches as before; the audit's chains still verify; runs are
recorded and scheduled once a day; the command says what would go."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from rapport.compliance import _retention, service_db, service_retention
from rapport.compliance import service as compliance_service
from rapport.compliance.service_retention import RetentionSettingRefused
from rapport.kernel.db import SystemEngine, create_system_engine, system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from tests.support import Persona, make_settings, rapport_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.module_database

# Every monthly partition of the registered tables (messages' among them).
_PARTITIONS = """
SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_inherits h JOIN kernel.monthly_partitions mp ON h.inhparent = mp.parent
  JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
"""


@pytest.fixture(autouse=True)
async def _partitions_as_they_were(database: DatabaseUrls) -> AsyncIterator[None]:
    """Tests here make a past month's partition of messages and drop months whole: the
    module's next test finds the partitions as migrated (emptying the database between
    tests makes and drops no table)."""
    conn = await asyncpg.connect(asyncpg_dsn(database.owner))
    try:
        before = {row[0] for row in await conn.fetch(_PARTITIONS)}
        yield
        for name in {row[0] for row in await conn.fetch(_PARTITIONS)} - before:
            await conn.execute(f"DROP TABLE {name}")
        await conn.execute("SELECT kernel.ensure_partitions()")
    finally:
        await conn.close()


def uuid7_at(moment: datetime) -> UUID:
    """A UUIDv7 made at `moment` (messages' ids name their partition by their time)."""
    ms = int(moment.timestamp() * 1000)
    random = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (random >> 68 & 0xFFF) << 64 | 0b10 << 62
    return UUID(int=value | random & ((1 << 62) - 1))


def month_start(moment: datetime, months: int = 0) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


@pytest.fixture
async def su(admin_url: URL, database: DatabaseUrls) -> AsyncIterator[asyncpg.Connection]:
    """The server's superuser in the test's database: plants rows past every policy and
    counts what is left, row-level security aside."""
    conn = await asyncpg.connect(asyncpg_dsn(admin_url.set(database=database.owner.database)))
    yield conn
    await conn.close()


@pytest.fixture
async def system(database: DatabaseUrls) -> AsyncIterator[SystemEngine]:
    engine = create_system_engine(database.worker, pool_size=2)
    yield engine
    await engine.dispose()


async def new_account(su: asyncpg.Connection, name: str) -> UUID:
    user_id = uuid7()
    await su.execute(
        "INSERT INTO auth.users (id, email, status, email_verified_at) VALUES ($1, $2, 'active', now())",
        user_id,
        f"{name}-{user_id.hex[:6]}@example.com",
    )
    return user_id


# --- the policies that delete rows --------------------------------------------------------

# Per policy: rows planted at the edge of its horizon, each (table, INSERT, gone?). In the
# SQL, {id} is the row's id, {user} an account, {now} the run's `now`, {keep} the policy's
# default horizon, and {at} the moment a row is dated: PAST an hour beyond the horizon,
# INSIDE an hour short of it, LONG_AGO far beyond it (for rows another condition keeps).
PAST = "{now} - {keep} - interval '1 hour'"
INSIDE = "{now} - {keep} + interval '1 hour'"
LONG_AGO = "{now} - {keep} - interval '100 days'"
AHEAD = "{now} + interval '20 days'"

_SESSION = (
    "INSERT INTO auth.sessions (id, user_id, expires_at, revoked_at, revoked_reason)"
    " VALUES ({id}, {user}, {at}, {revoked})"
)
_TOKEN = (
    "WITH s AS (INSERT INTO auth.sessions (id, user_id, expires_at)"
    " VALUES (gen_random_uuid(), {user}, {now} + interval '30 days') RETURNING id)"
    " INSERT INTO auth.refresh_tokens (id, session_id, user_id, token_hash, expires_at, used_at)"
    " SELECT {id}, s.id, {user}, sha256(convert_to({id}::text, 'UTF8')), {at}, {used} FROM s"
)
_CODE = (
    "INSERT INTO auth.otp_verifications (id, user_id, purpose, identifier, code_hash, max_attempts, expires_at)"
    " VALUES ({id}, {user}, 'password_reset', 'someone@example.com', sha256(convert_to({id}::text, 'UTF8')), 5, {at})"
)
_SIGN_IN = (
    "INSERT INTO auth.login_history (id, user_id, method, succeeded, created_at)"
    " VALUES ({id}, {user}, 'password', true, {at})"
)
_SECURITY = (
    "INSERT INTO auth.security_events (id, user_id, event_type, created_at)"
    " VALUES ({id}, {user}, 'password_changed', {at})"
)
_JOB = (
    "INSERT INTO kernel.jobs (id, queue, task, status, attempts, max_attempts, run_at, updated_at, last_error)"
    " VALUES ({id}, 'trial', 'trial.nothing', {status}, 1, 1, {at}, {at}, 'it failed')"
)
# A file's processing steps; the file is beside the point (written with foreign keys off).
_STEP = "INSERT INTO media.processing (file_id, step, status, completed_at) VALUES ({id}, 'scan', {status}, {at})"
_NOTIFICATION = (
    "WITH n AS (INSERT INTO notifications.notifications (id, user_id, type, category, title)"
    " VALUES (gen_random_uuid(), {user}, 'system', 'system', 'Hello') RETURNING id) "
)
_PUSH = (
    _NOTIFICATION + "INSERT INTO notifications.push_delivery_log (id, notification_id, user_id, provider, status,"
    " created_at) SELECT {id}, n.id, {user}, 'webpush', {status}, {at} FROM n"
)
_EMAIL = (
    "INSERT INTO notifications.email_notifications (id, user_id, kind, status, created_at)"
    " VALUES ({id}, {user}, 'notification', {status}, {at})"
)
_SMS = (
    _NOTIFICATION + "INSERT INTO notifications.sms_notifications (id, user_id, notification_id, phone, body, status,"
    " created_at) SELECT {id}, {user}, n.id, '+447700900123', 'Hello', {status}, {at} FROM n"
)
# A delivery to a bot (the account planted, made a bot once) in a conversation of its own.
_BOT_INTERACTION = (
    "WITH b AS (INSERT INTO bots.bots (id, name, webhook_url, webhook_secret)"
    " VALUES ({user}, 'helper', 'https://bots.example/hook', '\\x00'::bytea)"
    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name RETURNING id),"
    " c AS (INSERT INTO messaging.conversations (id, type) VALUES (gen_random_uuid(), 'group') RETURNING id)"
    " INSERT INTO bots.robot_interactions (id, bot_id, conversation_id, message_id, event_type, event_position,"
    " request_data, status, created_at) SELECT {id}, b.id, c.id, gen_random_uuid(), 'message.created', 1,"
    " '{{}}'::jsonb, {status}, {at} FROM b, c"
)
_LOG = "INSERT INTO compliance.compliance_logs (id, event_type, created_at) VALUES ({id}, 'breach_detected', {at})"
_RUN = "INSERT INTO compliance.retention_runs (id, started_at) VALUES ({id}, {at})"


def sub(template: str, **parts: str) -> str:
    """The template with its {at}-like parts filled in, its {id}-like values left for `plant`."""
    for name, part in parts.items():
        template = template.replace("{" + name + "}", part)
    return template


Plant = tuple[str, str, bool]
PLANTS: dict[str, list[Plant]] = {
    "sessions": [
        ("auth.sessions", sub(_SESSION, at=PAST, revoked="NULL, NULL"), True),
        ("auth.sessions", sub(_SESSION, at=INSIDE, revoked="NULL, NULL"), False),
        ("auth.sessions", sub(_SESSION, at=AHEAD, revoked=f"{PAST}, 'logout'"), True),
        ("auth.sessions", sub(_SESSION, at=AHEAD, revoked=f"{INSIDE}, 'logout'"), False),
    ],
    "refresh_tokens": [
        ("auth.refresh_tokens", sub(_TOKEN, at=PAST, used="NULL"), True),
        ("auth.refresh_tokens", sub(_TOKEN, at=INSIDE, used="NULL"), False),
        # Used long ago but still valid: kept, its return would reveal a theft.
        ("auth.refresh_tokens", sub(_TOKEN, at=AHEAD, used=LONG_AGO), False),
    ],
    "one_time_codes": [
        ("auth.otp_verifications", sub(_CODE, at=PAST), True),
        ("auth.otp_verifications", sub(_CODE, at=INSIDE), False),
    ],
    "sign_in_history": [
        ("auth.login_history", sub(_SIGN_IN, at=PAST), True),
        ("auth.login_history", sub(_SIGN_IN, at=INSIDE), False),
    ],
    "security_events": [
        ("auth.security_events", sub(_SECURITY, at=PAST), True),
        ("auth.security_events", sub(_SECURITY, at=INSIDE), False),
    ],
    "dead_jobs": [
        ("kernel.jobs", sub(_JOB, status="'dead'", at=PAST), True),
        ("kernel.jobs", sub(_JOB, status="'dead'", at=INSIDE), False),
        # Waiting to run, however old: not the policy's.
        ("kernel.jobs", sub(_JOB, status="'queued'", at=LONG_AGO), False),
    ],
    "media_processing": [
        ("media.processing", sub(_STEP, status="'completed'", at=PAST), True),
        ("media.processing", sub(_STEP, status="'completed'", at=INSIDE), False),
        ("media.processing", sub(_STEP, status="'failed'", at=LONG_AGO), False),
    ],
    "delivery_records": [
        ("notifications.push_delivery_log", sub(_PUSH, status="'delivered'", at=PAST), True),
        ("notifications.push_delivery_log", sub(_PUSH, status="'gone'", at=PAST), True),
        ("notifications.push_delivery_log", sub(_PUSH, status="'sent'", at=INSIDE), False),
        ("notifications.push_delivery_log", sub(_PUSH, status="'pending'", at=LONG_AGO), False),
        ("notifications.email_notifications", sub(_EMAIL, status="'sent'", at=PAST), True),
        ("notifications.email_notifications", sub(_EMAIL, status="'failed'", at=INSIDE), False),
        ("notifications.email_notifications", sub(_EMAIL, status="'pending'", at=LONG_AGO), False),
        ("notifications.sms_notifications", sub(_SMS, status="'failed'", at=PAST), True),
        ("notifications.sms_notifications", sub(_SMS, status="'sent'", at=INSIDE), False),
        ("notifications.sms_notifications", sub(_SMS, status="'sending'", at=LONG_AGO), False),
    ],
    "bot_interactions": [
        ("bots.robot_interactions", sub(_BOT_INTERACTION, status="'completed'", at=PAST), True),
        ("bots.robot_interactions", sub(_BOT_INTERACTION, status="'failed'", at=INSIDE), False),
        # Never delivered, and long past: its job is long dead, the copy goes all the same.
        ("bots.robot_interactions", sub(_BOT_INTERACTION, status="'pending'", at=LONG_AGO), True),
    ],
    "compliance_logs": [
        ("compliance.compliance_logs", sub(_LOG, at=PAST), True),
        ("compliance.compliance_logs", sub(_LOG, at=INSIDE), False),
    ],
    "retention_runs": [
        ("compliance.retention_runs", sub(_RUN, at=PAST), True),
        ("compliance.retention_runs", sub(_RUN, at=INSIDE), False),
    ],
}
# The key of each table, to find a planted row again.
KEYS = {"media.processing": "file_id"}


async def plant(
    su: asyncpg.Connection, sql: str, *, row: UUID, user: UUID, now: datetime, keep: str = "0 days"
) -> None:
    """Run a planting INSERT with its values written in (they are ids, times and intervals made here)."""
    await su.execute(
        sql.format(
            id=f"'{row}'::uuid",
            user=f"'{user}'::uuid",
            now=f"'{now.isoformat()}'::timestamptz",
            keep=f"'{keep}'::interval",
        )
    )


async def _count(su: asyncpg.Connection, table: str) -> int:
    return int(await su.fetchval(f"SELECT count(*) FROM {table}"))


async def _present(su: asyncpg.Connection, table: str, row_id: UUID) -> bool:
    return bool(await su.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {KEYS.get(table, 'id')} = $1)", row_id))


def test_every_policy_that_deletes_rows_is_planted_here() -> None:
    rows = {policy.name for policy in service_retention.POLICIES if policy.kind == "rows"}
    assert rows == set(PLANTS)


@pytest.mark.parametrize("name", sorted(PLANTS))
async def test_a_policy_removes_exactly_the_rows_past_its_horizon(
    name: str, su: asyncpg.Connection, system: SystemEngine
) -> None:
    policy = next(p for p in service_retention.POLICIES if p.name == name)
    assert policy.default is not None
    now = datetime.now(UTC) + timedelta(days=30)
    user = await new_account(su, "someone")
    other = await new_account(su, "another")
    planted: list[tuple[str, UUID, bool]] = []
    for table, sql, gone in PLANTS[name]:
        row_id = uuid7()
        if table == "media.processing":
            await su.execute("SET session_replication_role = replica")
        await plant(su, sql, row=row_id, user=user, now=now, keep=policy.default)
        await su.execute("SET session_replication_role = DEFAULT")
        planted.append((table, row_id, gone))
    tables = {table for table, _, _ in planted}
    before = {table: await _count(su, table) for table in tables}

    dry = await service_retention.apply_policies(system, settings=make_settings(), now=now, dry_run=True, only=[name])
    unchanged = {table: await _count(su, table) for table in tables}
    report = await service_retention.apply_policies(system, settings=make_settings(), now=now, only=[name])

    expected = sum(gone for _, _, gone in planted)
    [would], [did] = dry.outcomes, report.outcomes
    assert (would.count, did.count, would.keep, did.error) == (expected, expected, policy.default, None)
    assert unchanged == before
    assert [(table, gone) for table, row_id, gone in planted if await _present(su, table, row_id)] == [
        (table, False) for table, _, gone in planted if not gone
    ]
    # Nothing else went: each table lost exactly the planted rows past the horizon.
    after = {table: await _count(su, table) for table in tables}
    assert after == {table: before[table] - sum(g for t, _, g in planted if t == table) for table in tables}
    # The other account's rows were never in question; the account itself stays.
    assert await su.fetchval("SELECT count(*) FROM auth.users WHERE id = ANY($1)", [user, other]) == 2


async def test_ended_sessions_take_their_refresh_tokens(su: asyncpg.Connection, system: SystemEngine) -> None:
    now = datetime.now(UTC) + timedelta(days=30)
    user = await new_account(su, "someone")
    session = uuid7()
    await plant(su, sub(_SESSION, at=PAST, revoked="NULL, NULL"), row=session, user=user, now=now, keep="7 days")
    await su.execute(
        "INSERT INTO auth.refresh_tokens (id, session_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
        uuid7(),
        session,
        user,
        os.urandom(32),
        now + timedelta(days=1),
    )

    await service_retention.apply_policies(system, settings=make_settings(), now=now, only=["sessions"])

    assert await su.fetchval("SELECT count(*) FROM auth.refresh_tokens WHERE session_id = $1", session) == 0


# --- horizons ---------------------------------------------------------------------------------


async def test_a_deployment_sets_and_resets_a_horizon(su: asyncpg.Connection, system: SystemEngine) -> None:
    settings = make_settings()
    now = datetime.now(UTC)
    user = await new_account(su, "someone")
    row = uuid7()
    await plant(su, sub(_SECURITY, at="{now} - interval '40 days'"), row=row, user=user, now=now)

    async with system_transaction(system) as db:
        forever = await service_retention.do_set_policy(db, name="security_events", keep=None, settings=settings)
    kept = await service_retention.apply_policies(system, settings=settings, now=now, only=["security_events"])
    present = await _present(su, "auth.security_events", row)
    async with system_transaction(system) as db:
        shorter = await service_retention.do_set_policy(db, name="security_events", keep="30 days", settings=settings)
    removed = await service_retention.apply_policies(system, settings=settings, now=now, only=["security_events"])
    async with system_transaction(system) as db:
        default = await service_retention.do_reset_policy(db, name="security_events", settings=settings)

    assert (forever.keep, forever.configured) == (None, True)
    assert (kept.outcomes[0].keep, kept.outcomes[0].count, present) == (None, 0, True)
    assert (shorter.keep, shorter.configured) == ("30 days", True)
    assert (removed.outcomes[0].keep, removed.outcomes[0].count) == ("30 days", 1)
    assert await _present(su, "auth.security_events", row) is False
    assert (default.keep, default.configured) == ("2 years", False)


async def test_a_run_of_a_policy_that_does_not_exist_is_refused(system: SystemEngine) -> None:
    with pytest.raises(RetentionSettingRefused):
        await service_retention.run_retention(system, settings=make_settings(), now=datetime.now(UTC), only=["nothing"])


@pytest.mark.parametrize(
    ("name", "keep", "says"),
    [
        ("sessions", "soon", "is not a duration"),
        ("sign_in_history", "30 days", "at least 90 days"),
        ("messages", "2 weeks", "at least 1 month"),
        ("audit", "6 months", "at least 1 year"),
        ("sessions", "-3 days", "at least 1 day"),
        ("everything", "1 day", "No retention policy is named 'everything'"),
    ],
)
async def test_a_horizon_that_cannot_be_applied_is_refused(
    name: str, keep: str, says: str, system: SystemEngine
) -> None:
    with pytest.raises(RetentionSettingRefused) as refused:
        async with system_transaction(system) as db:
            await service_retention.do_set_policy(db, name=name, keep=keep, settings=make_settings())

    assert says in str(refused.value)
    async with system_transaction(system) as db:
        assert (await db.execute(text("SELECT count(*) FROM compliance.retention_policies"))).scalar_one() == 0


async def test_a_horizon_below_a_minimum_that_grew_applies_the_minimum(
    su: asyncpg.Connection, system: SystemEngine
) -> None:
    """Sign-in history must reach as far back as sign-in looks for known clients; a
    horizon set before that window grew gives way to it."""
    now = datetime.now(UTC)
    async with system_transaction(system) as db:
        await service_retention.do_set_policy(db, name="sign_in_history", keep="100 days", settings=make_settings())
    user = await new_account(su, "someone")
    row = uuid7()
    await plant(su, sub(_SIGN_IN, at="{now} - interval '150 days'"), row=row, user=user, now=now)

    report = await service_retention.apply_policies(
        system, settings=make_settings(login_known_client_days=200), now=now, only=["sign_in_history"]
    )

    [outcome] = report.outcomes
    assert (outcome.keep, outcome.count) == ("200 days", 0)
    assert outcome.details[0] == "the 100 days configured is below the minimum: 200 days applied"
    assert await _present(su, "auth.login_history", row)


# --- the audit ----------------------------------------------------------------------------------


async def test_the_audit_loses_its_oldest_rows_and_its_chains_still_verify(
    su: asyncpg.Connection, system: SystemEngine
) -> None:
    """Rows go from the start of each chain, up to the first row inside the horizon: an
    old row after a newer one stays, so that what remains is one unbroken chain."""
    now = datetime.now(UTC)
    start = int(await su.fetchval("SELECT count(*) FROM audit.admin_actions"))
    ages = ["11 years", "10 years 1 day", "9 years", "12 years", "1 day"]
    for age in ages:
        await su.execute(
            "INSERT INTO audit.admin_actions (action, target, reason, created_at)"
            " VALUES ('breaches_listed', 'breaches', 'a look',"
            " CAST($1 AS timestamptz) - CAST(CAST($2 AS text) AS interval))",
            now,
            age,
        )

    dry = await service_retention.apply_policies(
        system, settings=make_settings(), now=now, dry_run=True, only=["audit"]
    )
    report = await service_retention.apply_policies(system, settings=make_settings(), now=now, only=["audit"])

    assert start == 0
    assert (dry.outcomes[0].count, report.outcomes[0].count) == (2, 2)
    assert report.outcomes[0].details == ("audit.admin_actions: 2",)
    left = await su.fetch("SELECT reason, now() - created_at > interval '11 years' AS ancient FROM audit.admin_actions")
    assert sorted(row["ancient"] for row in left) == [False, False, True]
    async with system_transaction(system) as db:
        chains = await compliance_service.verify_all(db)
    assert [chain.table for chain in chains if not chain.intact] == []


# --- messages ---------------------------------------------------------------------------------


async def _send(client: httpx.AsyncClient, persona: Persona, room: str, **body: Any) -> dict[str, Any]:
    sent = await client.post(f"{room}/messages", headers=persona.headers, json=body)
    assert sent.status_code == 201, sent.text
    result: dict[str, Any] = sent.json()
    return result


async def _post_as_system(
    runtime: Runtime,
    conversation: str,
    sender: str,
    content: str,
    at: datetime,
    *,
    thread: str | None = None,
    mentions: list[str] | None = None,
) -> UUID:
    """A message made at `at` (its id names its month), as a send writes it."""
    message = uuid7_at(at)
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "INSERT INTO messaging.messages"
                " (id, conversation_id, sender_id, content, thread_id, mentions, created_at)"
                " VALUES (:id, :conversation, :sender, :content, :thread, CAST(:mentions AS uuid[]),"
                " messaging.id_time(:id))"
            ),
            {
                "id": message,
                "conversation": conversation,
                "sender": sender,
                "content": content,
                "thread": thread,
                "mentions": mentions or [],
            },
        )
    return message


async def _history(client: httpx.AsyncClient, persona: Persona, room: str) -> list[str]:
    page = await client.get(f"{room}/messages", headers=persona.headers, params={"limit": 100})
    assert page.status_code == 200, page.text
    return [item["content"] for item in reversed(page.json()["items"])]


async def _listed(client: httpx.AsyncClient, persona: Persona, conversation: str) -> dict[str, Any]:
    listing = await client.get("/v1/conversations", headers=persona.headers)
    assert listing.status_code == 200, listing.text
    [item] = [item for item in listing.json()["items"] if item["id"] == conversation]
    found: dict[str, Any] = item
    return found


async def _found(client: httpx.AsyncClient, persona: Persona, words: str) -> list[str]:
    """Every message the search finds, following its pages and its `older_until` (a search
    stops after a time budget, saying where the older matches are)."""
    found: list[str] = []
    params: dict[str, str] = {"q": words}
    while True:
        search = await client.get("/v1/messages/search", headers=persona.headers, params=params)
        assert search.status_code == 200, search.text
        page = search.json()
        found += [item["content"] for item in page["items"]]
        if page["next"] is not None:
            params = {"q": words, "cursor": page["next"], **({"until": params["until"]} if "until" in params else {})}
        elif page["older_until"] is not None:
            params = {"q": words, "until": page["older_until"]}
        else:
            return sorted(found)


async def _rows_of(su: asyncpg.Connection, conversation: str) -> dict[str, int]:
    counts = {}
    for table in (*service_db.MESSAGE_ROWS, "messaging.threads"):
        counts[table] = int(
            await su.fetchval(f"SELECT count(*) FROM {table} WHERE conversation_id = $1", UUID(conversation))
        )
    return counts


async def _group(client: httpx.AsyncClient, owner: Persona, *others: Persona, **settings: Any) -> str:
    made = await client.post(
        "/v1/conversations",
        headers=owner.headers,
        json={"type": "group", "name": "Weekend", "participant_ids": [p.user_id for p in others], "settings": settings},
    )
    assert made.status_code == 201, made.text
    conversation: str = made.json()["id"]
    return conversation


async def _everything_on(client: httpx.AsyncClient, room: str, alice: Persona, bob: Persona) -> dict[str, Any]:
    """Old messages with everything that can hang on one: a mention, a reaction, a pin, an
    edit, a hidden one, one deleted for everyone, an idempotency key, a report, a reply
    thread, a file."""
    photo = await client.post("/v1/media", headers=alice.headers, files={"file": ("photo.png", _png(), "image/png")})
    assert photo.status_code == 201, photo.text
    first = await _send(client, alice, room, content="old needle first", mentions=[bob.user_id], client_message_id="k1")
    second = await _send(client, alice, room, content="old needle second", attachments=[photo.json()["id"]])
    third = await _send(client, bob, room, content="old third")
    fourth = await _send(client, alice, room, content="old fourth")
    message = f"{room}/messages/{first['id']}"
    thread = await client.post(f"{room}/threads", headers=alice.headers, json={"root_message_id": first["id"]})
    assert thread.status_code == 201, thread.text
    reply = await _send(client, bob, room, content="old reply", thread_id=thread.json()["id"])
    steps: list[tuple[Persona, str, str, Any]] = [
        (bob, "PUT", f"{message}/reactions/👍", None),
        (alice, "PUT", f"{room}/pins/{first['id']}", None),
        (alice, "PATCH", f"{room}/messages/{second['id']}", {"content": "old needle second, edited"}),
        (alice, "POST", f"{room}/messages/{third['id']}/hide", None),
        (alice, "DELETE", f"{room}/messages/{fourth['id']}", None),
        (alice, "POST", f"{room}/messages/{third['id']}/report", {"reason": "spam"}),
    ]
    for persona, method, path, body in steps:
        response = await client.request(method, path, headers=persona.headers, json=body)
        assert response.status_code < 300, (method, path, response.text)
    return {"first": first, "reply": reply, "thread": thread.json()["id"]}


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 12), (20, 80, 200)).save(out, "PNG")
    return out.getvalue()


async def make_past_partition(su: asyncpg.Connection, month: datetime) -> str:
    """Last month's partition of messages, made as kernel.ensure_partitions() makes one (it
    makes them from the current month on): a database that has run for a while has it."""
    name = f"messages_p{month:%Y%m}"
    following = month_start(month, 1)
    await su.execute(
        f"""
        CREATE TABLE messaging.{name} PARTITION OF messaging.messages
            FOR VALUES FROM ('{month:%Y-%m-%d} 00:00+00') TO ('{following:%Y-%m-%d} 00:00+00');
        ALTER TABLE messaging.{name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
        REVOKE ALL ON TABLE messaging.{name} FROM PUBLIC, rapport_app, rapport_worker;
        ALTER TABLE messaging.{name} OWNER TO rapport_owner;
        """
    )
    return f"messaging.{name}"


async def test_the_deployments_horizon_drops_whole_months_and_the_rest_of_the_history_stays_intact(
    client: httpx.AsyncClient,
    runtime: Runtime,
    su: asyncpg.Connection,
    alice: Persona,
    bob: Persona,
    carol: Persona,
    jobs_done: Any,
) -> None:
    conversation = await _group(client, alice, bob, carol)
    room = f"/v1/conversations/{conversation}"
    this_month = month_start(datetime.now(UTC))
    last_month = month_start(this_month, -1)
    old_partition = await make_past_partition(su, last_month)
    # Last month's messages, with everything that can hang on one.
    day = last_month + timedelta(days=3)
    first = await _post_as_system(runtime, conversation, alice.user_id, "old needle first", day, mentions=[bob.user_id])
    second = await _post_as_system(runtime, conversation, alice.user_id, "old needle second", day)
    third = await _post_as_system(runtime, conversation, bob.user_id, "old third", day)
    fourth = await _post_as_system(runtime, conversation, alice.user_id, "old fourth", day)
    fifth = await _post_as_system(runtime, conversation, bob.user_id, "old fifth", day)
    photo = await client.post("/v1/media", headers=alice.headers, files={"file": ("photo.png", _png(), "image/png")})
    assert photo.status_code == 201, photo.text
    # The second carries a file and was sent with an idempotency key, as a send would record.
    await su.execute(
        "INSERT INTO media.attachments (message_id, message_created_at, conversation_id, seq, file_id)"
        " SELECT m.id, m.created_at, m.conversation_id, m.seq, $2 FROM messaging.messages m WHERE m.id = $1",
        second,
        UUID(photo.json()["id"]),
    )
    await su.execute("UPDATE messaging.messages SET attachment_count = 1 WHERE id = $1", second)
    await su.execute(
        "INSERT INTO messaging.client_messages (conversation_id, sender_id, client_message_id, message_id)"
        " SELECT m.conversation_id, m.sender_id, 'k1', m.id FROM messaging.messages m WHERE m.id = $1",
        second,
    )
    old_thread = await client.post(f"{room}/threads", headers=alice.headers, json={"root_message_id": str(first)})
    kept_thread = await client.post(f"{room}/threads", headers=bob.headers, json={"root_message_id": str(fifth)})
    assert (old_thread.status_code, kept_thread.status_code) == (201, 201), (old_thread.text, kept_thread.text)
    steps: list[tuple[Persona, str, str, Any]] = [
        (bob, "PUT", f"{room}/messages/{first}/reactions/👍", None),
        (alice, "PUT", f"{room}/pins/{first}", None),
        (alice, "PATCH", f"{room}/messages/{second}", {"content": "old needle second, edited"}),
        (alice, "POST", f"{room}/messages/{third}/hide", None),
        (carol, "POST", f"{room}/messages/{third}/report", {"reason": "spam"}),
        (alice, "DELETE", f"{room}/messages/{fourth}", None),
    ]
    for persona, method, path, body in steps:
        response = await client.request(method, path, headers=persona.headers, json=body)
        assert response.status_code < 300, (method, path, response.text)
    # This month's messages, sent now: a reply in the old message's thread, and two more.
    await _send(client, alice, room, content="new reply", thread_id=kept_thread.json()["id"])
    await _send(client, alice, room, content="new needle one")
    await _send(client, alice, room, content="new two")
    await jobs_done()
    old_rows = await _rows_of(su, conversation)
    found_before = await _found(client, carol, "needle")
    before = await _listed(client, carol, conversation)
    async with system_transaction(runtime.system_engine) as db:
        await service_retention.do_set_policy(db, name="messages", keep="2 years", settings=runtime.settings)
    # Two years and a day after this month began: last month is wholly past the horizon,
    # this month is not.
    now = this_month.replace(year=this_month.year + 2) + timedelta(days=1)

    history = await _history(client, alice, room)
    dry = await service_retention.apply_policies(
        runtime.system_engine, settings=runtime.settings, now=now, dry_run=True, only=["messages"]
    )
    still = await _history(client, alice, room)
    report = await service_retention.apply_policies(
        runtime.system_engine, settings=runtime.settings, now=now, only=["messages"]
    )

    [would], [did] = dry.outcomes, report.outcomes
    assert (would.count, did.count, did.error) == (5, 5, None)
    assert would.details == did.details == (f"{old_partition} ({last_month:%Y-%m}): 5 messages",)
    assert still == history  # the dry run changed nothing
    assert await su.fetchval("SELECT to_regclass($1)", old_partition) is None
    # History, counts and search hold exactly what is left.
    assert await _history(client, alice, room) == ["new reply", "new needle one", "new two"]
    assert await _history(client, carol, room) == ["new reply", "new needle one", "new two"]
    after = await _listed(client, carol, conversation)
    # carol read nothing: eight messages, one deleted for everyone; then the three left.
    assert (before["unread_count"], after["unread_count"], after["unread_mentions"]) == (7, 3, 0)
    assert (after["last_seq"], after["last_message"]["content"]) == (before["last_seq"], "new two")
    assert (await _listed(client, bob, conversation))["unread_count"] == 3
    assert found_before == ["new needle one", "old needle first", "old needle second, edited"]
    assert await _found(client, carol, "needle") == ["new needle one"]
    # Nothing hangs on the messages that went; the reply threads they rooted went with them
    # (a reply thread is seen with its root), the replies sent since stay in the history.
    # (Messaging's own rows: these rooms are not organised into co-parenting topics.)
    messaging_rows = [table for table in service_db.MESSAGE_ROWS if table.startswith("messaging.")]
    assert all(old_rows[table] > 0 for table in (*messaging_rows, "messaging.threads")), old_rows
    assert await _rows_of(su, conversation) == dict.fromkeys(old_rows, 0)
    # The database agrees with itself, and sending goes on from the last sequence.
    results = await service_db.run_checks(runtime.system_engine)
    assert {r.name: len(r.faults) for r in results if r.faults} == {}
    sent = await _send(client, alice, room, content="and now")
    assert sent["seq"] == before["last_seq"] + 1
    assert (await _listed(client, carol, conversation))["unread_count"] == 4


async def test_a_conversations_own_horizon_deletes_within_it_and_keeps_its_counters(
    client: httpx.AsyncClient,
    runtime: Runtime,
    su: asyncpg.Connection,
    alice: Persona,
    bob: Persona,
    carol: Persona,
    jobs_done: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = await _group(client, alice, bob, carol, message_retention_days=30)
    other = await _group(client, alice, bob)
    ignored = await _group(client, alice, bob, message_retention_days="30")
    room = f"/v1/conversations/{short}"
    old = await _everything_on(client, room, alice, bob)
    for conversation in (other, ignored):
        await _send(client, alice, f"/v1/conversations/{conversation}", content="old elsewhere")
    await jobs_done()
    # Ten days on, two messages, one of them in the old message's thread.
    later = datetime.now(UTC) + timedelta(days=10)
    await _post_as_system(runtime, short, alice.user_id, "new one", later)
    await _post_as_system(runtime, short, carol.user_id, "new reply", later, thread=old["thread"])
    before = await _listed(client, bob, short)
    # Calls of two messages at a time: the run goes on until the conversation is done.
    monkeypatch.setattr(_retention, "CONVERSATION_BATCH", 2)
    now = datetime.now(UTC) + timedelta(days=35)

    dry = await service_retention.apply_policies(
        runtime.system_engine, settings=runtime.settings, now=now, dry_run=True, only=["messages"]
    )
    report = await service_retention.apply_policies(
        runtime.system_engine, settings=runtime.settings, now=now, only=["messages"]
    )

    [would], [did] = dry.outcomes, report.outcomes
    assert (would.keep, would.count, did.count) == (None, 5, 5)
    assert did.details == (f"conversation {short} (30 days): 5 messages",)
    assert await _history(client, alice, room) == ["new one", "new reply"]
    assert await _history(client, bob, room) == ["new one", "new reply"]
    # The other conversations set no horizon (or one that is not a number of days).
    assert await _history(client, alice, f"/v1/conversations/{other}") == ["old elsewhere"]
    assert await _found(client, bob, "needle") == []
    assert await _history(client, alice, f"/v1/conversations/{ignored}") == ["old elsewhere"]
    after = await _listed(client, bob, short)
    assert (after["last_seq"], after["unread_count"], after["unread_mentions"]) == (before["last_seq"], 2, 0)
    # Nothing hangs on the messages that went, the reply thread of the first among it.
    assert await _rows_of(su, short) == dict.fromkeys((*service_db.MESSAGE_ROWS, "messaging.threads"), 0)
    results = await service_db.run_checks(runtime.system_engine)
    assert {r.name: len(r.faults) for r in results if r.faults} == {}


async def test_a_conversation_cannot_keep_what_the_deployment_removes(
    client: httpx.AsyncClient, runtime: Runtime, su: asyncpg.Connection, alice: Persona, bob: Persona
) -> None:
    long = await _group(client, alice, bob, message_retention_days=3650)
    await _send(client, alice, f"/v1/conversations/{long}", content="old")
    async with system_transaction(runtime.system_engine) as db:
        await service_retention.do_set_policy(db, name="messages", keep="1 year", settings=runtime.settings)
    next_month = month_start(datetime.now(UTC), 1)
    now = next_month.replace(year=next_month.year + 1) + timedelta(days=40)

    report = await service_retention.apply_policies(
        runtime.system_engine, settings=runtime.settings, now=now, only=["messages"]
    )

    # This month's and next month's partitions, one drop (and transaction) each.
    assert [detail.split(" ")[0] for detail in report.outcomes[0].details] == [
        f"messaging.messages_p{month:%Y%m}" for month in (month_start(next_month, -1), next_month)
    ]
    assert report.outcomes[0].count == 1
    assert await _history(client, alice, f"/v1/conversations/{long}") == []


# --- runs and the schedule ------------------------------------------------------------------------


async def test_a_run_is_recorded_and_the_schedule_runs_once_a_day(su: asyncpg.Connection, system: SystemEngine) -> None:
    settings = make_settings()
    now = datetime.now(UTC)
    user = await new_account(su, "someone")
    await plant(su, sub(_CODE, at="{now} - interval '2 days'"), row=uuid7(), user=user, now=now)

    first = await service_retention.run_scheduled(system, settings=settings, now=now)
    again = await service_retention.run_scheduled(system, settings=settings, now=now + timedelta(hours=22))
    next_day = await service_retention.run_scheduled(system, settings=settings, now=now + timedelta(hours=23))

    assert first is not None and first.removed()["one_time_codes"] == 1 and first.failed == []
    assert again is None
    assert next_day is not None and next_day.removed()["one_time_codes"] == 0
    async with system_transaction(system) as db:
        last = await service_retention.get_last_run(db)
    assert last is not None
    assert (last.started_at, last.error, last.removed["one_time_codes"]) == (now + timedelta(hours=23), None, 0)
    assert last.finished_at is not None
    runs = await su.fetch("SELECT removed FROM compliance.retention_runs ORDER BY started_at")
    assert [orjson.loads(row["removed"])["one_time_codes"] for row in runs] == [1, 0]


async def test_a_dry_run_is_not_recorded(su: asyncpg.Connection, system: SystemEngine) -> None:
    report = await service_retention.run_retention(
        system, settings=make_settings(), now=datetime.now(UTC), dry_run=True
    )

    assert [outcome.policy for outcome in report.outcomes] == [policy.name for policy in service_retention.POLICIES]
    assert await su.fetchval("SELECT count(*) FROM compliance.retention_runs") == 0


async def test_the_queued_job_runs_the_policies_on_the_compliance_queue(
    runtime: Runtime, su: asyncpg.Connection, jobs_done: Any
) -> None:
    user = await new_account(su, "someone")
    await plant(su, sub(_CODE, at="{now} - interval '2 days'"), row=uuid7(), user=user, now=datetime.now(UTC))
    async with system_transaction(runtime.system_engine) as db:
        assert await service_retention.enqueue_if_due(db, now=datetime.now(UTC))

    await jobs_done()

    assert service_retention.retention_task.queue == service_retention.QUEUE == "compliance"
    runs = await su.fetch("SELECT removed, error, finished_at FROM compliance.retention_runs")
    assert [(orjson.loads(row["removed"])["one_time_codes"], row["error"]) for row in runs] == [(1, None)]
    assert runs[0]["finished_at"] is not None
    assert await su.fetchval("SELECT count(*) FROM kernel.jobs") == 0


class TestQueuedRunsNoWorkerTakes:
    """In a database of its own, which no running worker reads: the module's app, once a
    test has started it, would run a queued retention job (and remove it) before it could
    be counted."""

    @pytest.fixture
    def database(self, fresh_database: DatabaseUrls) -> DatabaseUrls:
        return fresh_database

    async def test_the_schedule_queues_a_run_when_one_is_due_and_none_waits(
        self, su: asyncpg.Connection, system: SystemEngine
    ) -> None:
        now = datetime.now(UTC)
        async with system_transaction(system) as db:
            first = await service_retention.enqueue_if_due(db, now=now)
        async with system_transaction(system) as db:
            while_queued = await service_retention.enqueue_if_due(db, now=now)
        await su.execute("DELETE FROM kernel.jobs")
        await service_retention.run_retention(system, settings=make_settings(), now=now, only=["sessions"])
        async with system_transaction(system) as db:
            after_a_run = await service_retention.enqueue_if_due(db, now=now + timedelta(hours=1))
        async with system_transaction(system) as db:
            a_day_later = await service_retention.enqueue_if_due(db, now=now + timedelta(hours=23))

        assert (first, while_queued, after_a_run, a_day_later) == (True, False, False, True)
        jobs = await su.fetch("SELECT queue, task FROM kernel.jobs")
        assert [(row["queue"], row["task"]) for row in jobs] == [("compliance", "compliance.retention")]

    async def test_the_schedule_loop_queues_the_job(self, su: asyncpg.Connection, database: DatabaseUrls) -> None:
        from rapport.identity import service as identity_service
        from rapport.kernel.runtime import one_off_runtime

        async with one_off_runtime(make_settings(), database, authenticate=identity_service.authenticate) as runtime:
            schedule = service_retention.RetentionSchedule(runtime, first_check_seconds=0.01, check_every_seconds=0.05)
            schedule.start()
            try:
                queued = 0
                async with asyncio.timeout(10):
                    while queued == 0:  # the database says when; nothing here could be awaited instead
                        await asyncio.sleep(0.05)
                        queued = await su.fetchval(
                            "SELECT count(*) FROM kernel.jobs WHERE task = 'compliance.retention'"
                        )
                await asyncio.sleep(0.2)
            finally:
                await schedule.stop()

        assert await su.fetchval("SELECT count(*) FROM kernel.jobs WHERE task = 'compliance.retention'") == 1


# --- the command --------------------------------------------------------------------------------


def _retention_command(admin_url: URL, database: DatabaseUrls, *args: str) -> subprocess.CompletedProcess[str]:
    script = "from rapport.compliance.cli_retention import retention_app; retention_app(prog_name='rapport retention')"
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env=rapport_env(admin_url, database, COLUMNS="200"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_command_says_what_would_go_sets_horizons_and_shows_them(
    admin_url: URL, database: DatabaseUrls, su: asyncpg.Connection
) -> None:
    user = await new_account(su, "someone")
    await plant(su, sub(_CODE, at="{now} - interval '3 days'"), row=uuid7(), user=user, now=datetime.now(UTC))
    commands = (
        ("run", "--dry-run", "--policy", "one_time_codes"),
        ("set", "sessions", "soon"),
        ("set", "messages", "2 years"),
        ("show",),
        ("run", "--policy", "one_time_codes"),
    )
    # One after the other, each in a thread: the command runs its own event loop.
    dry, refused, set_, show, real = [
        await asyncio.to_thread(_retention_command, admin_url, database, *args) for args in commands
    ]

    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout and "would remove" in dry.stdout
    assert re.search(r"one_time_codes\s*│\s*1 day\s*│[^│]*│\s*1\s*│", dry.stdout), dry.stdout
    assert (refused.returncode, "is not a duration" in refused.stderr) == (2, True)
    assert (set_.returncode, set_.stdout.strip()) == (0, "messages keeps 2 years")
    assert show.returncode == 0, show.stderr
    assert "2 years (set here)" in show.stdout and "No run yet." in show.stdout
    assert real.returncode == 0, real.stderr
    assert re.search(r"one_time_codes\s*│\s*1 day\s*│[^│]*│\s*1\s*│", real.stdout), real.stdout
    assert await su.fetchval("SELECT count(*) FROM auth.otp_verifications") == 0
    assert await su.fetchval("SELECT count(*) FROM compliance.retention_runs") == 1
