"""`rapport access`: an operator grants and revokes roles from the command line, as the
system, each change recorded in the audit as an administrator's is (with no
administrator) and told to the person; lists roles and grants; refuses what it cannot do
with a clear message.

Tess is to become a T1 agent; Sam a supervisor of one room of Alice's."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.security.messaging_sql import attempt
from tests.support import Persona, rapport_env
from tests.support_desk.support import ROOMS, as_system, events, ok, open_room

pytestmark = pytest.mark.module_database

ROOT = Path(__file__).resolve().parents[2]
# Who runs the commands, as the machine names them (getpass reads LOGNAME first).
OPERATOR = "olga"


def _command(admin_url: URL, database: DatabaseUrls, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rapport", "access", *args],
        env=rapport_env(admin_url, database, COLUMNS="250", LOGNAME=OPERATOR, USER=OPERATOR),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def rapport_access(admin_url: URL, database: DatabaseUrls, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_command, admin_url, database, *args)


async def audit_of(runtime: Runtime, user_id: str) -> list[Any]:
    return await as_system(
        runtime,
        "SELECT admin_id, action, target, reason, details FROM audit.admin_actions WHERE target_user_id = :u"
        " ORDER BY id",
        u=UUID(user_id),
    )


async def permissions(client: httpx.AsyncClient, persona: Persona) -> set[tuple[str, str | None]]:
    mine = ok(await client.get("/v1/permissions/me", headers=persona.headers))["permissions"]
    return {(held["permission"], held["conversation_id"]) for held in mine}


async def test_an_operator_grants_a_role_everywhere(
    admin_url: URL, database: DatabaseUrls, client: httpx.AsyncClient, runtime: Runtime, make_persona: Any
) -> None:
    tess = await make_persona("tess")

    done = await rapport_access(
        admin_url, database, "grant", tess.email.upper(), "support-t1", "--reason", "New first-level agent"
    )
    again = await rapport_access(admin_url, database, "grant", tess.email, "support-t1")

    assert done.returncode == 0, done.stderr
    assert f"granted support-t1 to {tess.email} everywhere" in done.stdout
    assert again.returncode == 0, again.stderr
    assert "already holds support-t1 everywhere" in again.stdout and "nothing changed" in again.stdout
    assert ("support:queue:t1", None) in await permissions(client, tess)
    ok(await client.get("/v1/support/queues/T1", headers=tess.headers))
    [recorded] = await audit_of(runtime, tess.user_id)
    assert (recorded.admin_id, recorded.action, recorded.reason) == (None, "grant_created", "New first-level agent")
    assert recorded.details["role"] == "support-t1" and recorded.details["via"] == "command line"
    assert (recorded.details["conversation_id"], recorded.details["operator"]) == (None, OPERATOR)
    told = [p for kind, scope, p in await events(runtime, "access.grant.") if scope == tess.user_id]
    assert [(p["role"], p["conversation_id"]) for p in told] == [("support-t1", None)]


async def test_an_operator_grants_and_revokes_within_one_conversation(
    admin_url: URL,
    database: DatabaseUrls,
    client: httpx.AsyncClient,
    runtime: Runtime,
    alice: Persona,
    make_persona: Any,
) -> None:
    sam = await make_persona("sam")
    room = (await open_room(client, alice))["conversation_id"]

    granted = await rapport_access(admin_url, database, "grant", sam.email, "supervisor", "--conversation", room)

    assert granted.returncode == 0, granted.stderr
    assert f"in conversation {room}" in granted.stdout
    assert ("supervisor:chat:observe", room) in await permissions(client, sam)
    ok(await client.get(f"{ROOMS}/{room}/messages", headers=sam.headers))

    everywhere = await rapport_access(admin_url, database, "revoke", sam.email, "supervisor")
    revoked = await rapport_access(
        admin_url, database, "revoke", sam.email, "supervisor", "--conversation", room, "--reason", "Case closed"
    )

    assert everywhere.returncode == 1 and "holds no supervisor everywhere" in everywhere.stderr
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked supervisor from {sam.email} in conversation {room}" in revoked.stdout
    assert await permissions(client, sam) == set()
    assert (await client.get(f"{ROOMS}/{room}/messages", headers=sam.headers)).status_code == 404
    recorded = await audit_of(runtime, sam.user_id)
    assert [(r.admin_id, r.action, r.details["conversation_id"]) for r in recorded] == [
        (None, "grant_created", room),
        (None, "grant_revoked", room),
    ]
    assert recorded[1].reason == "Case closed"
    told = [
        (kind, p["conversation_id"])
        for kind, scope, p in await events(runtime, "access.grant.")
        if scope == sam.user_id
    ]
    assert told == [("access.grant.created", room), ("access.grant.revoked", room)]


async def test_an_operator_lists_roles_and_grants(
    admin_url: URL, database: DatabaseUrls, runtime: Runtime, make_persona: Any
) -> None:
    theo, max_ = await make_persona("theo"), await make_persona("max")
    for who, role in ((theo, "support-t2"), (max_, "support-manager")):
        assert (await rapport_access(admin_url, database, "grant", who.email, role)).returncode == 0

    roles = await rapport_access(admin_url, database, "roles")
    everyone = await rapport_access(admin_url, database, "grants")
    theos = await rapport_access(admin_url, database, "grants", theo.email)

    assert roles.returncode == 0, roles.stderr
    assert all(name in roles.stdout for name in ("support-t1", "support-manager", "supervisor", "bot-developer"))
    assert "support:queue:manager" in roles.stdout
    assert everyone.returncode == 0, everyone.stderr
    assert theo.email in everyone.stdout and max_.email in everyone.stdout
    assert "the system" in everyone.stdout
    assert theos.returncode == 0, theos.stderr
    assert theo.email in theos.stdout and "support-t2" in theos.stdout
    assert max_.email not in theos.stdout and "support-manager" not in theos.stdout


async def test_what_the_command_cannot_do_is_refused_clearly(
    admin_url: URL, database: DatabaseUrls, runtime: Runtime, make_persona: Any
) -> None:
    tara = await make_persona("tara")

    nobody = await rapport_access(admin_url, database, "grant", "nobody@example.com", "support-t1")
    no_role = await rapport_access(admin_url, database, "grant", tara.email, "support-t9")
    no_room = await rapport_access(
        admin_url, database, "grant", tara.email, "supervisor", "--conversation", "01a00000-0000-7000-8000-000000000000"
    )
    not_an_address = await rapport_access(admin_url, database, "grant", "not an address", "support-t1")
    not_a_room = await rapport_access(admin_url, database, "grant", tara.email, "supervisor", "--conversation", "x")

    assert nobody.returncode == 1 and "No account has the address nobody@example.com" in nobody.stderr
    assert no_role.returncode == 1 and "No role is named support-t9" in no_role.stderr
    assert no_room.returncode == 1 and "No conversation has the id" in no_room.stderr
    assert not_an_address.returncode == 2 and "not a valid e-mail address" in not_an_address.stderr
    assert not_a_room.returncode == 2 and "--conversation" in not_a_room.stderr
    assert await audit_of(runtime, tara.user_id) == []


async def test_only_system_work_records_an_access_change_without_an_administrator(
    app_engine: AsyncEngine, alice: Persona
) -> None:
    record = "SELECT audit.record_admin_action('grant_created', 'why', :target)"
    for who in (alice, None):
        refused = await attempt(app_engine, who, record, target=UUID(alice.user_id))
        assert refused == "permission denied"
