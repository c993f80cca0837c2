"""One check, access.has_permission, for every path: granted, not granted, revoked,
within one conversation or platform-wide, implied for platform administrators and system
work; and what a person sees of their own permissions (GET /v1/permissions/me).

Carol is a first-level support agent once granted `support-t1`; alice and bob share a
room; mallory holds nothing."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.access import service
from rapport.kernel.actor import Actor
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.errors import NotFound
from rapport.kernel.ids import uuid7
from tests.access.support import admin_persona, grant, grant_events, revoke, superuser_fetch  # noqa: F401 (the admin fixture)
from tests.compliance.admin_support import make_admin
from tests.messaging.support import make_conversation
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


async def holds(engine: AsyncEngine, persona: Persona, permission: str, conversation_id: UUID | None = None) -> bool:
    async with user_transaction(engine, UUID(persona.user_id)) as db:
        return await service.has_permission(db, Actor(UUID(persona.user_id)), permission, conversation_id)


# Granted, not granted, revoked


async def test_nobody_holds_a_permission_without_a_grant(app_engine, mallory):
    assert not await holds(app_engine, mallory, "support:queue:t1")
    assert not await holds(app_engine, mallory, "chat:robot:manage")


async def test_a_platform_wide_grant_gives_what_the_role_holds_and_nothing_more(app_engine, runtime, carol):
    await grant(runtime, carol, "support-t1")

    for permission in ("support:queue:t1", "chat:escalation:create", "chat:room:join", "chat:message:read"):
        assert await holds(app_engine, carol, permission), permission
    assert not await holds(app_engine, carol, "support:queue:t2")
    assert not await holds(app_engine, carol, "supervisor:chat:observe")


async def test_a_revoked_grant_gives_nothing_any_more(app_engine, runtime, carol):
    await grant(runtime, carol, "bot-developer")
    assert await holds(app_engine, carol, "chat:robot:manage")

    assert await revoke(runtime, carol, "bot-developer")

    assert not await holds(app_engine, carol, "chat:robot:manage")
    assert not await revoke(runtime, carol, "bot-developer")


@pytest.mark.parametrize(
    ("role", "queues"),
    [
        ("support-t1", {"t1"}),
        ("support-t2", {"t1", "t2"}),
        ("support-t3", {"t1", "t2", "t3"}),
        ("support-manager", {"t1", "t2", "t3", "manager"}),
    ],
)
async def test_each_support_level_works_its_queue_and_those_below(app_engine, runtime, carol, role, queues):
    await grant(runtime, carol, role)

    held = {
        level for level in ("t1", "t2", "t3", "manager") if await holds(app_engine, carol, f"support:queue:{level}")
    }

    assert held == queues
    assert await holds(app_engine, carol, "chat:escalation:resolve")


async def test_a_supervisor_observes_and_reads_but_does_not_answer(app_engine, runtime, carol):
    await grant(runtime, carol, "supervisor")

    assert await holds(app_engine, carol, "supervisor:chat:observe")
    assert await holds(app_engine, carol, "chat:message:read")
    assert not await holds(app_engine, carol, "chat:message:send")


# Within one conversation, or everywhere


async def test_a_grant_for_one_conversation_gives_nothing_in_another_nor_platform_wide(
    app_engine, runtime, alice, bob, carol
):
    here = await make_conversation(app_engine, alice, bob)
    there = await make_conversation(app_engine, alice, bob)
    await grant(runtime, carol, "supervisor", here)

    assert await holds(app_engine, carol, "supervisor:chat:observe", here)
    assert not await holds(app_engine, carol, "supervisor:chat:observe", there)
    assert not await holds(app_engine, carol, "supervisor:chat:observe")


async def test_a_platform_wide_grant_holds_in_every_conversation(app_engine, runtime, alice, bob, carol):
    room = await make_conversation(app_engine, alice, bob)
    await grant(runtime, carol, "supervisor")

    assert await holds(app_engine, carol, "supervisor:chat:observe", room)
    assert await holds(app_engine, carol, "supervisor:chat:observe", uuid7())


async def test_the_same_role_may_be_granted_in_several_conversations_and_revoked_in_one(
    app_engine, runtime, alice, bob, carol
):
    first = await make_conversation(app_engine, alice, bob)
    second = await make_conversation(app_engine, alice, bob)
    await grant(runtime, carol, "supervisor", first)
    await grant(runtime, carol, "supervisor", second)

    assert await revoke(runtime, carol, "supervisor", first)

    assert not await holds(app_engine, carol, "supervisor:chat:observe", first)
    assert await holds(app_engine, carol, "supervisor:chat:observe", second)


async def test_a_conversations_grants_go_with_it(app_engine, runtime, database, alice, bob, carol):
    room = await make_conversation(app_engine, alice, bob)
    await grant(runtime, carol, "supervisor", room)

    await superuser_fetch(database, "DELETE FROM messaging.conversations WHERE id = $1", room)

    async with system_transaction(runtime.system_engine) as db:
        assert await service.holders_of(db, "supervisor:chat:observe", room) == []


# Administrators, system work, accounts that are not active


async def test_a_platform_administrator_holds_every_permission_everywhere(app_engine, admin, alice, bob):
    room = await make_conversation(app_engine, alice, bob)

    assert await holds(app_engine, admin, "access:admin:manage")
    assert await holds(app_engine, admin, "supervisor:chat:observe", room)
    assert await holds(app_engine, admin, "no:such:permission")


async def test_system_work_holds_every_permission_in_sql_but_the_service_answers_for_actors_only(runtime, carol):
    async with system_transaction(runtime.system_engine) as db:
        in_sql = (await db.execute(text("SELECT access.has_permission('support:queue:manager')"))).scalar_one()
        through_service = await service.has_permission(db, Actor(UUID(carol.user_id)), "support:queue:manager")

    assert in_sql is True
    assert through_service is False


async def test_a_transaction_acting_for_someone_else_answers_no(app_engine, runtime, carol, mallory):
    await grant(runtime, carol, "bot-developer")

    async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
        assert not await service.has_permission(db, Actor(UUID(carol.user_id)), "chat:robot:manage")


@pytest.mark.parametrize("status", ["suspended", "banned"])
async def test_an_account_that_is_not_active_holds_nothing(app_engine, runtime, carol, status):
    await grant(runtime, carol, "bot-developer")
    await make_admin(runtime, carol)

    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("UPDATE auth.users SET status = :s WHERE id = :id"), {"s": status, "id": carol.user_id})

    assert not await holds(app_engine, carol, "chat:robot:manage")
    async with system_transaction(runtime.system_engine) as db:
        assert await service.holders_of(db, "chat:robot:manage") == []


# require_permission


async def test_require_permission_refuses_with_a_problem_naming_the_permission(app_engine, mallory):
    async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
        with pytest.raises(service.PermissionRequired) as refused:
            await service.require_permission(db, Actor(UUID(mallory.user_id)), "chat:robot:manage")

    problem = refused.value.to_problem()
    assert (problem["status"], problem["type"], problem["permission"]) == (
        403,
        "urn:rapport:problem:permission-required",
        "chat:robot:manage",
    )


async def test_require_permission_lets_a_holder_through(app_engine, runtime, carol):
    await grant(runtime, carol, "bot-developer")

    async with user_transaction(app_engine, UUID(carol.user_id)) as db:
        await service.require_permission(db, Actor(UUID(carol.user_id)), "chat:robot:manage")


# Who holds a permission (system work)


async def test_holders_of_lists_the_grantees_of_a_level_and_its_room_but_not_administrators(
    app_engine, runtime, admin, alice, bob, carol, mallory
):
    room = await make_conversation(app_engine, alice, bob)
    await grant(runtime, carol, "support-t2")
    await grant(runtime, bob, "support-t1")
    await grant(runtime, mallory, "supervisor", room)

    async with system_transaction(runtime.system_engine) as db:
        t1 = await service.holders_of(db, "support:queue:t1")
        t2 = await service.holders_of(db, "support:queue:t2")
        observers_here = await service.holders_of(db, "supervisor:chat:observe", room)
        observers_everywhere = await service.holders_of(db, "supervisor:chat:observe")
        carol_holds_t2 = await service.holds_permission(db, UUID(carol.user_id), "support:queue:t2")
        bob_holds_t2 = await service.holds_permission(db, UUID(bob.user_id), "support:queue:t2")

    assert t1 == sorted([UUID(carol.user_id), UUID(bob.user_id)])
    assert t2 == [UUID(carol.user_id)]
    assert observers_here == [UUID(mallory.user_id)]
    assert observers_everywhere == []
    assert (carol_holds_t2, bob_holds_t2) == (True, False)


# Granting as system work


async def test_granting_twice_changes_nothing_and_tells_the_person_once(runtime, database, carol):
    first = await grant(runtime, carol, "support-t1")
    again = await grant(runtime, carol, "support-t1")

    assert first == again
    assert await grant_events(runtime) == [
        (
            "access.grant.created",
            "user",
            carol.user_id,
            {"grant_id": str(first), "role": "support-t1", "conversation_id": None},
        )
    ]


async def test_revoking_tells_the_person(runtime, database, carol):
    made = await grant(runtime, carol, "supervisor")

    await revoke(runtime, carol, "supervisor")

    assert (await grant_events(runtime))[-1] == (
        "access.grant.revoked",
        "user",
        carol.user_id,
        {"grant_id": str(made), "role": "supervisor", "conversation_id": None},
    )


async def test_granting_an_unknown_role_or_to_an_unknown_account_is_refused(runtime, carol):
    with pytest.raises(service.RoleNotFound):
        await grant(runtime, carol, "no-such-role")
    ghost = Persona(name="ghost", email="", password="", user_id=str(uuid7()))
    with pytest.raises(NotFound) as unknown:
        await grant(runtime, ghost, "support-t1")
    assert unknown.value.slug == "user-not-found"


# GET /v1/permissions/me


async def test_my_permissions_list_each_permission_where_and_through_which_role(
    client, app_engine, runtime, alice, bob, carol
):
    room = await make_conversation(app_engine, alice, bob)
    await grant(runtime, carol, "bot-developer")
    await grant(runtime, carol, "supervisor", room)

    mine = await client.get("/v1/permissions/me", headers=carol.headers)

    assert mine.status_code == 200, mine.text
    assert mine.json() == {
        "is_admin": False,
        "permissions": [
            {"permission": "chat:message:read", "conversation_id": str(room), "via_role": "supervisor"},
            {"permission": "chat:robot:manage", "conversation_id": None, "via_role": "bot-developer"},
            {"permission": "supervisor:chat:observe", "conversation_id": str(room), "via_role": "supervisor"},
        ],
    }


async def test_my_permissions_tell_an_administrator_and_nobody_else_anything(client, admin, mallory):
    assert (await client.get("/v1/permissions/me", headers=admin.headers)).json() == {
        "is_admin": True,
        "permissions": [],
    }
    assert (await client.get("/v1/permissions/me", headers=mallory.headers)).json() == {
        "is_admin": False,
        "permissions": [],
    }


async def test_my_permissions_need_a_signed_in_caller(client):
    refused = await client.get("/v1/permissions/me")

    assert refused.status_code == 401
    assert problem_type(refused) == "unauthenticated"
