"""Compliance as mallory: nobody but the person and platform administrators reads consents
or compliance logs, through the API or straight through SQL as `rapport_app`; nobody writes
another's consent, forges a compliance event or an administrator action, or reads the
breaches, the administrators' record, the chain heads or the redactions; an administrator's
reads of someone's data are recorded where that person sees them. The definer functions of
compliance and of the audit chain, called out of their context, do nothing for her."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.compliance.admin_support import make_admin
from tests.module_scope import build_once
from tests.security.messaging_sql import DENIED, POLICY, changed
from tests.security.messaging_sql import attempt as attempt_sql
from tests.support import Persona, problem_type, sign_in

pytestmark = pytest.mark.module_database

REFUSED = "refused"  # a definer function ran and raised insufficient_privilege


async def attempt(engine: AsyncEngine, who: Persona | None, statement: str, **params: Any) -> Any:
    """As tests.security.messaging_sql.attempt, telling a function's own refusal (REFUSED)
    from a missing privilege (DENIED)."""
    outcome = await attempt_sql(engine, who, statement, **params)
    if outcome != DENIED:
        return outcome
    try:
        if who is None:
            async with engine.begin() as db:
                await db.execute(text(statement), params)
        else:
            async with user_transaction(engine, UUID(who.user_id)) as db:
                await db.execute(text(statement), params)
    except DBAPIError as error:
        cause = error.orig.__cause__ if error.orig is not None else None
        if isinstance(cause, asyncpg.exceptions.InsufficientPrivilegeError) and "permission denied" not in str(cause):
            return REFUSED
    return DENIED


@dataclass(frozen=True)
class World:
    alice: Persona
    mallory: Persona
    admin: Persona
    consent_id: str
    breach_id: str


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls) -> World:
    """Alice's consent and a breach ada (an administrator) notified her of; zed erased.
    Built once: each test's reset puts it back as it was (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        alice, mallory, ada, zed = await built.personas("alice", "mallory", "ada", "zed")
        alice = await sign_in(built.client, alice)  # a sign-in of hers, for the audit of sign-ins
        admin = await make_admin(built.runtime, ada)
        return await _build(built.client, built.runtime, alice, mallory, admin, zed)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


async def _build(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, mallory: Persona, admin: Persona, zed: Persona
) -> World:
    # Zed signed in once and was erased: the audit holds a redaction.
    given = await client.post(
        "/v1/me/consents", json={"consent_type": "marketing_emails", "granted": True}, headers=alice.headers
    )
    assert given.status_code == 201, given.text
    breach = await client.post(
        "/v1/admin/breaches",
        json={
            "title": "Lost laptop",
            "description": "Unencrypted",
            "severity": "low",
            "detected_at": "2026-11-30T00:00:00Z",
        },
        headers=admin.headers,
    )
    assert breach.status_code == 201, breach.text
    notified = await client.post(
        f"/v1/admin/breaches/{breach.json()['id']}/notifications",
        json={"audience": "affected_users", "channel": "email", "user_ids": [alice.user_id]},
        headers=admin.headers,
    )
    assert notified.status_code == 201, notified.text
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("SELECT audit.record_data_export(:export, :user, 'requested')"),
            {"export": uuid7(), "user": UUID(alice.user_id)},
        )
        redacted = (await db.execute(text("SELECT audit.erase_person(:id)"), {"id": UUID(zed.user_id)})).scalar()
        assert redacted >= 1
    return World(alice, mallory, admin, given.json()["id"], breach.json()["id"])


# Through the API


async def test_the_api_shows_mallory_none_of_alices_consents_or_log(client: httpx.AsyncClient, world: World) -> None:
    consents = await client.get("/v1/me/consents", headers=world.mallory.headers)
    history = await client.get("/v1/me/consents/history", headers=world.mallory.headers)
    log = await client.get("/v1/me/compliance-log", headers=world.mallory.headers)

    assert consents.json()["user_id"] == world.mallory.user_id
    assert all(item["granted"] is False for item in consents.json()["consents"])
    assert history.json()["items"] == [] and log.json()["items"] == []
    for path in (
        f"/v1/admin/users/{world.alice.user_id}/consents?reason=curious",
        f"/v1/admin/compliance-logs?reason=curious&user_id={world.alice.user_id}",
        "/v1/admin/audit/auth_events?reason=curious",
        "/v1/admin/breaches?reason=curious",
    ):
        refused = await client.get(path, headers=world.mallory.headers)
        assert (refused.status_code, problem_type(refused)) == (403, "platform-admin-required"), path


async def test_an_administrators_read_is_recorded_where_alice_sees_it(client: httpx.AsyncClient, world: World) -> None:
    read = await client.get(
        f"/v1/admin/users/{world.alice.user_id}/consents",
        params={"reason": "Her complaint"},
        headers=world.admin.headers,
    )
    assert read.status_code == 200, read.text

    seen = await client.get("/v1/profile/sensitive-access", headers=world.alice.headers)

    assert [(item["accessed_by"], item["table_name"]) for item in seen.json()["items"]] == [
        (world.admin.user_id, "compliance.consent_logs")
    ]


# Through SQL as rapport_app


@pytest.mark.parametrize(
    "table",
    ["compliance.consent_logs", "compliance.compliance_logs"],
)
async def test_alices_rows_are_hers_and_the_administrators_alone(
    app_engine: AsyncEngine, world: World, table: str
) -> None:
    count = f"SELECT count(*) FROM {table} WHERE user_id = :id"

    by_alice = await attempt(app_engine, world.alice, count, id=UUID(world.alice.user_id))
    by_mallory = await attempt(app_engine, world.mallory, count, id=UUID(world.alice.user_id))
    by_nobody = await attempt(app_engine, None, count, id=UUID(world.alice.user_id))
    by_admin = await attempt(app_engine, world.admin, count, id=UUID(world.alice.user_id))

    assert by_alice >= 1 and by_admin == by_alice
    assert (by_mallory, by_nobody) == (0, 0)


@pytest.mark.parametrize(
    "table",
    [
        "compliance.breaches",
        "compliance.breach_notifications",
        "audit.admin_actions",
        "audit.chain_heads",
        "audit.redactions",
        "audit.data_exports",
        "audit.auth_events",
        "audit.record_changes",
    ],
)
async def test_mallory_and_nobody_read_none_of_the_administrators_tables(
    app_engine: AsyncEngine, world: World, table: str
) -> None:
    # Mallory's own sign-ins and exports aside (she reads those, as alice reads hers).
    mine = " WHERE user_id IS DISTINCT FROM :me" if table in ("audit.auth_events", "audit.data_exports") else ""
    count = f"SELECT count(*) FROM {table}{mine}"
    me = UUID(world.mallory.user_id)

    assert await attempt(app_engine, world.admin, count, me=me) >= 1
    assert await attempt(app_engine, world.mallory, count, me=me) == 0
    assert await attempt(app_engine, None, count, me=me) == 0


async def test_alice_reads_her_own_sign_ins_and_exports_in_the_audit(app_engine: AsyncEngine, world: World) -> None:
    for table in ("audit.auth_events", "audit.data_exports"):
        mine = await attempt(
            app_engine, world.alice, f"SELECT count(*) FROM {table} WHERE user_id = :id", id=UUID(world.alice.user_id)
        )
        everyone = await attempt(app_engine, world.alice, f"SELECT count(*) FROM {table}")
        assert mine >= 1 and everyone == mine, table


async def test_mallory_writes_nothing_of_alices(app_engine: AsyncEngine, world: World) -> None:
    alice_id = UUID(world.alice.user_id)

    forged_consent = await attempt(
        app_engine,
        world.mallory,
        "INSERT INTO compliance.consent_logs (id, user_id, consent_type, granted)"
        " VALUES (:id, :user, 'ai_features', true)",
        id=uuid7(),
        user=alice_id,
    )
    withdrawn = await changed(
        app_engine,
        world.mallory,
        "UPDATE compliance.consent_logs SET granted = false WHERE id = :id RETURNING 1",
        id=UUID(world.consent_id),
    )
    deleted = await changed(
        app_engine,
        world.mallory,
        "DELETE FROM compliance.consent_logs WHERE id = :id RETURNING 1",
        id=UUID(world.consent_id),
    )
    log_row = await attempt(
        app_engine,
        world.mallory,
        "INSERT INTO compliance.compliance_logs (id, user_id, event_type) VALUES (:id, :user, 'consent_given')",
        id=uuid7(),
        user=alice_id,
    )
    breach = await attempt(
        app_engine,
        world.mallory,
        "INSERT INTO compliance.breaches (id, title, description, severity, detected_at)"
        " VALUES (:id, 'x', 'x', 'low', now())",
        id=uuid7(),
    )
    notice = await attempt(
        app_engine,
        world.mallory,
        "INSERT INTO compliance.breach_notifications (id, breach_id, audience, channel, sent_at)"
        " VALUES (:id, :breach, 'public', 'web', now())",
        id=uuid7(),
        breach=UUID(world.breach_id),
    )
    heads = await changed(app_engine, world.mallory, "UPDATE audit.chain_heads SET chain_hash = NULL RETURNING 1")
    redactions = await attempt(
        app_engine,
        world.mallory,
        "INSERT INTO audit.redactions (table_name, row_id, redacted_hash) VALUES ('audit.auth_events', 1, sha256('x'))",
    )
    actions = await attempt(
        app_engine, world.mallory, "INSERT INTO audit.admin_actions (action, reason) VALUES ('audit_read', 'x')"
    )

    assert (forged_consent, log_row, breach, notice) == (POLICY, DENIED, POLICY, POLICY)
    assert (withdrawn, deleted, heads, redactions, actions) == (DENIED, DENIED, DENIED, DENIED, DENIED)


# The definer functions, out of their context


async def test_log_event_logs_only_what_the_caller_may(app_engine: AsyncEngine, world: World) -> None:
    alice_id = UUID(world.alice.user_id)
    log = "SELECT compliance.log_event(:user, :event, '{}'::jsonb)"

    for_alice = await attempt(app_engine, world.mallory, log, user=alice_id, event="consent_given")
    for_herself = await attempt(
        app_engine, world.mallory, log, user=UUID(world.mallory.user_id), event="data_deletion_completed"
    )
    for_nobody = await attempt(app_engine, None, log, user=None, event="breach_detected")
    own_consent = await attempt(app_engine, world.mallory, log, user=UUID(world.mallory.user_id), event="consent_given")
    admins_breach = await attempt(app_engine, world.admin, log, user=None, event="breach_detected")

    assert (for_alice, for_herself, for_nobody) == (REFUSED, REFUSED, REFUSED)
    assert isinstance(own_consent, UUID) and isinstance(admins_breach, UUID)


async def test_record_admin_action_records_only_an_administrators_own(app_engine: AsyncEngine, world: World) -> None:
    record = "SELECT audit.record_admin_action('account_suspended', 'why', :target, NULL, '{}'::jsonb, :admin)"
    target = UUID(world.alice.user_id)

    as_mallory = await attempt(app_engine, world.mallory, record, target=target, admin=None)
    in_admins_name = await attempt(app_engine, world.mallory, record, target=target, admin=UUID(world.admin.user_id))
    by_nobody = await attempt(app_engine, None, record, target=target, admin=UUID(world.admin.user_id))
    by_admin_for_another = await attempt(
        app_engine, world.admin, record, target=target, admin=UUID(world.mallory.user_id)
    )
    without_reason = await attempt(app_engine, world.admin, "SELECT audit.record_admin_action('audit_read', '  ')")

    assert (as_mallory, in_admins_name, by_nobody, by_admin_for_another) == (REFUSED,) * 4
    assert without_reason == "CheckViolationError"


async def test_record_admin_access_needs_an_administrator(app_engine: AsyncEngine, world: World) -> None:
    record = "SELECT audit.record_admin_access(:subject, 'compliance.consent_logs', '{}')"
    subject = UUID(world.alice.user_id)

    assert await attempt(app_engine, world.mallory, record, subject=subject) == REFUSED
    assert await attempt(app_engine, None, record, subject=subject) == REFUSED
    seen = await attempt(
        app_engine,
        world.alice,
        "SELECT count(*) FROM audit.sensitive_data_access WHERE accessed_by = :m",
        m=UUID(world.mallory.user_id),
    )
    assert seen == 0


async def test_record_data_export_records_only_for_the_caller(app_engine: AsyncEngine, world: World) -> None:
    record = "SELECT audit.record_data_export(:export, :user, 'downloaded')"
    mallory_id = UUID(world.mallory.user_id)

    for_alice = await attempt(app_engine, world.mallory, record, export=uuid7(), user=UUID(world.alice.user_id))
    for_herself = await attempt(app_engine, world.mallory, record, export=uuid7(), user=mallory_id)

    assert for_alice == REFUSED
    assert for_herself not in (REFUSED, DENIED)
    mine = "SELECT count(*) FROM audit.data_exports WHERE user_id = :id"
    assert await attempt(app_engine, world.mallory, mine, id=mallory_id) == 1


async def test_erasing_and_pruning_the_audit_are_system_work_alone(
    app_engine: AsyncEngine, world: World, runtime: Runtime
) -> None:
    statements = ("SELECT audit.erase_person(:id)", "SELECT audit.prune_chain('audit.auth_events', now())")
    for statement in statements:
        assert await attempt(app_engine, world.admin, statement, id=UUID(world.alice.user_id)) == DENIED
        assert await attempt(app_engine, world.mallory, statement, id=UUID(world.alice.user_id)) == DENIED
        # The worker's role may run them, but only in system work.
        with pytest.raises(DBAPIError, match="system work"):
            async with runtime.system_engine.engine.begin() as db:
                await db.execute(text(statement), {"id": UUID(world.alice.user_id)})


async def test_the_auth_event_trigger_cannot_be_called(app_engine: AsyncEngine, world: World) -> None:
    outcome = await attempt(
        app_engine, world.mallory, "SELECT count(*) FROM (SELECT audit.record_auth_event()) AS called"
    )

    assert outcome == DENIED


async def test_has_consent_says_nothing_about_someone_else(app_engine: AsyncEngine, world: World) -> None:
    asked = "SELECT compliance.has_consent(:id, 'marketing_emails')"

    assert await attempt(app_engine, world.alice, asked, id=UUID(world.alice.user_id)) is True
    assert await attempt(app_engine, world.mallory, asked, id=UUID(world.alice.user_id)) is False
    assert await attempt(app_engine, None, asked, id=UUID(world.alice.user_id)) is False
