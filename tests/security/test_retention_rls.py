"""Retention and repairs are system work alone (migration 2026_11_30_0025): the server's
role, acting for anyone, neither reads nor writes compliance.retention_policies or
compliance.retention_runs, calls none of the definer functions that remove messages or
repair counters, and still cannot delete sign-in history; the worker's role outside a
system transaction sees nothing and each function refuses it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import SystemEngine, create_engine, create_system_engine, system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls

pytestmark = pytest.mark.module_database

DENIED = "permission denied"
REFUSED = "refused"

# Each definer function of the migration, called with arguments that would do its work.
FUNCTIONS = {
    "compliance.expire_message_partitions(timestamp with time zone,boolean)": (
        "SELECT count(*) FROM compliance.expire_message_partitions(now() + interval '10 years', false)"
    ),
    "compliance.expire_conversation_messages(uuid,timestamp with time zone,boolean,integer)": (
        "SELECT compliance.expire_conversation_messages(:id, now(), false, 10)"
    ),
    "compliance.repair_conversation_counters(uuid)": "SELECT compliance.repair_conversation_counters(:id)",
    "compliance.repair_attachment_count(uuid,uuid)": "SELECT compliance.repair_attachment_count(:id, :id)",
    "compliance.repair_thread_count(uuid)": "SELECT compliance.repair_thread_count(:id)",
    "compliance.remove_message_remains(uuid,uuid)": "SELECT compliance.remove_message_remains(:id, :id)",
    "compliance.remove_orphan_thread(uuid)": "SELECT compliance.remove_orphan_thread(:id)",
}


@pytest.fixture
async def worker_engine(database: DatabaseUrls) -> AsyncIterator[AsyncEngine]:
    """rapport_worker's role without a system transaction: what an injected statement on
    a worker connection would have."""
    engine = create_engine(database.worker, pool_size=1)
    yield engine
    await engine.dispose()


@pytest.fixture
async def system(database: DatabaseUrls) -> AsyncIterator[SystemEngine]:
    engine = create_system_engine(database.worker, pool_size=1)
    yield engine
    await engine.dispose()


def _outcome(error: DBAPIError) -> str:
    cause = error.orig.__cause__ if error.orig is not None else None
    if isinstance(cause, asyncpg.exceptions.InsufficientPrivilegeError):
        return DENIED if "permission denied" in str(cause) else REFUSED
    return f"{type(cause).__name__}: {cause}"


async def as_someone(engine: AsyncEngine, statement: str, **params: Any) -> Any:
    """The statement's first value, run as a user (mallory, whoever she is), or why not."""
    try:
        async with user_transaction(engine, uuid7()) as db:
            return (await db.execute(text(statement), params)).scalar()
    except DBAPIError as error:
        return _outcome(error)


async def as_worker(engine: AsyncEngine, statement: str, **params: Any) -> Any:
    try:
        async with engine.begin() as db:
            return (await db.execute(text(statement), params)).scalar()
    except DBAPIError as error:
        return _outcome(error)


@pytest.fixture
async def recorded(system: SystemEngine) -> None:
    """A horizon set and a run recorded, as system work writes them."""
    async with system_transaction(system) as db:
        await db.execute(text("INSERT INTO compliance.retention_policies (name, keep) VALUES ('messages', '2 years')"))
        await db.execute(
            text("INSERT INTO compliance.retention_runs (id, started_at) VALUES (:id, :now)"),
            {"id": uuid7(), "now": datetime.now(UTC)},
        )


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM compliance.retention_policies",
        "SELECT count(*) FROM compliance.retention_runs",
        "INSERT INTO compliance.retention_policies (name, keep) VALUES ('messages', NULL)",
        "UPDATE compliance.retention_policies SET keep = NULL",
        "DELETE FROM compliance.retention_runs",
        "DELETE FROM auth.login_history",
        "DELETE FROM auth.security_events",
        "DELETE FROM messaging.messages",
        "DELETE FROM messaging.threads",
        "DELETE FROM media.attachments",
    ],
)
async def test_the_server_role_reaches_none_of_it(app_engine: AsyncEngine, recorded: None, statement: str) -> None:
    assert await as_someone(app_engine, statement) == DENIED


async def test_the_worker_role_outside_system_work_sees_and_changes_nothing(
    worker_engine: AsyncEngine, system: SystemEngine, recorded: None
) -> None:
    outcomes = {
        "policies": await as_worker(worker_engine, "SELECT count(*) FROM compliance.retention_policies"),
        "runs": await as_worker(worker_engine, "SELECT count(*) FROM compliance.retention_runs"),
        "forget a horizon": await as_worker(
            worker_engine, "WITH d AS (DELETE FROM compliance.retention_policies RETURNING 1) SELECT count(*) FROM d"
        ),
        "set one": await as_worker(
            worker_engine, "INSERT INTO compliance.retention_policies (name, keep) VALUES ('audit', NULL) RETURNING 1"
        ),
    }
    assert outcomes == {
        "policies": 0,
        "runs": 0,
        "forget a horizon": 0,
        "set one": REFUSED,  # the row-level security policy turns the row away
    }
    async with system_transaction(system) as db:
        kept = (await db.execute(text("SELECT keep::text FROM compliance.retention_policies"))).scalars().all()
    assert kept == ["2 years"]


async def test_sign_in_history_is_removed_by_system_work_only(
    app_engine: AsyncEngine, worker_engine: AsyncEngine, system: SystemEngine, database: DatabaseUrls
) -> None:
    user = uuid7()
    async with system_transaction(system) as db:
        await db.execute(
            text("INSERT INTO auth.users (id, email, status) VALUES (:id, :email, 'active')"),
            {"id": user, "email": f"{user.hex[:8]}@example.com"},
        )
        await db.execute(
            text(
                "INSERT INTO auth.login_history (id, user_id, method, succeeded) VALUES (:id, :user, 'password', true)"
            ),
            {"id": uuid7(), "user": user},
        )
    deleted_by_owner_context = None
    try:
        async with user_transaction(app_engine, user) as db:
            await db.execute(text("DELETE FROM auth.login_history"))
    except DBAPIError as error:
        deleted_by_owner_context = _outcome(error)
    by_worker = await as_worker(
        worker_engine, "WITH d AS (DELETE FROM auth.login_history RETURNING 1) SELECT count(*) FROM d"
    )
    async with system_transaction(system) as db:
        by_system = (
            await db.execute(text("WITH d AS (DELETE FROM auth.login_history RETURNING 1) SELECT count(*) FROM d"))
        ).scalar()

    # The person's own history is append-only for the server; retention removes it.
    assert (deleted_by_owner_context, by_worker, by_system) == (DENIED, 0, 1)


@pytest.mark.parametrize("signature", sorted(FUNCTIONS))
async def test_no_one_but_system_work_calls_a_retention_or_repair_function(
    app_engine: AsyncEngine, worker_engine: AsyncEngine, signature: str
) -> None:
    statement = FUNCTIONS[signature]
    ids = {"id": UUID(int=0)} if ":id" in statement else {}

    assert await as_someone(app_engine, statement, **ids) == DENIED
    assert await as_worker(worker_engine, statement, **ids) == REFUSED


async def test_every_function_of_the_migration_has_a_case(app_engine: AsyncEngine) -> None:
    async with app_engine.connect() as db:
        found = (
            await db.execute(
                text(
                    "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                    " WHERE n.nspname = 'compliance' AND p.prosecdef AND p.proname ~ '^(expire|repair|remove)_'"
                )
            )
        ).scalars()
        names = {name.replace(", ", ",") for name in found}

    assert names == set(FUNCTIONS)
