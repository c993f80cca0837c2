"""A room's history (GET /v1/conversations/{id}/history): the previous state of the room
and of its people's places at each change, written by trigger, read by supervisors.

Alice owns a group with bob and carol. Sam is a supervisor (the built-in role
`supervisor`: supervisor:chat:observe) for the room a test reads (a platform-wide grant
reaches support rooms alone); mallory is a stranger."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.access import service as access_service
from rapport.kernel.db import system_transaction, user_transaction
from tests.compliance.admin_support import make_admin
from tests.messaging.support import make_conversation, send
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


def history_path(conversation_id: UUID) -> str:
    return f"/v1/conversations/{conversation_id}/history"


async def supervise(runtime, persona: Persona, conversation_id: UUID | None = None) -> None:
    async with system_transaction(runtime.system_engine) as db:
        await access_service.grant_role_system(db, UUID(persona.user_id), "supervisor", conversation_id)


async def changes(client, persona: Persona, conversation_id: UUID, **params: Any) -> dict[str, Any]:
    response = await client.get(history_path(conversation_id), headers=persona.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def sam(make_persona) -> Persona:
    return await make_persona("sam")


async def test_room_changes_keep_the_room_as_it_was(client, app_engine, runtime, alice, bob, sam):
    room = await make_conversation(app_engine, alice, bob, name="Help desk")
    await supervise(runtime, sam, room)
    renamed = await client.patch(f"/v1/conversations/{room}", json={"name": "Billing"}, headers=alice.headers)
    assert renamed.status_code == 200, renamed.text
    [change] = (await changes(client, sam, room))["items"]
    assert change["subject"] == "conversation" and change["operation"] == "edit"
    assert change["previous"]["name"] == "Help desk" and change["changed_by"] == alice.user_id
    assert change["user_id"] is None and change["conversation_id"] == str(room)


async def test_participant_changes_keep_their_place_as_it_was(client, app_engine, runtime, alice, bob, carol, sam):
    room = await make_conversation(app_engine, alice, bob, carol)
    await supervise(runtime, sam, room)
    made = await client.patch(
        f"/v1/conversations/{room}/participants/{bob.user_id}", json={"role": "moderator"}, headers=alice.headers
    )
    assert made.status_code == 200, made.text
    left = await client.post(f"/v1/conversations/{room}/leave", headers=carol.headers)
    assert left.status_code == 204, left.text
    gone, promoted = (await changes(client, sam, room))["items"]
    assert (gone["subject"], gone["user_id"], gone["operation"]) == ("participant", carol.user_id, "delete")
    assert gone["previous"]["status"] == "active" and gone["changed_by"] == carol.user_id
    assert (promoted["user_id"], promoted["operation"]) == (bob.user_id, "edit")
    assert promoted["previous"]["role"] == "member" and promoted["changed_by"] == alice.user_id


async def test_deleting_a_room_is_its_last_change_and_its_history_outlives_it(client, app_engine, runtime, alice, sam):
    room = await make_conversation(app_engine, alice)
    await supervise(runtime, sam, room)
    deleted = await client.delete(f"/v1/conversations/{room}", headers=alice.headers)
    assert deleted.status_code == 204, deleted.text
    items = (await changes(client, sam, room))["items"]
    room_changes = [c for c in items if c["subject"] == "conversation"]
    assert [c["operation"] for c in room_changes] == ["delete"]
    assert room_changes[0]["previous"]["deleted_at"] is None
    # Everyone's participation ended with it.
    assert [(c["user_id"], c["operation"]) for c in items if c["subject"] == "participant"] == [
        (alice.user_id, "delete")
    ]


async def test_sending_and_reading_write_no_history(client, app_engine, runtime, alice, bob, sam):
    room = await make_conversation(app_engine, alice, bob)
    await supervise(runtime, sam, room)
    sent = await send(client, alice, room, "hello")
    read = await client.post(f"/v1/conversations/{room}/read", json={"message_id": sent["id"]}, headers=bob.headers)
    assert read.status_code == 200
    muted = await client.patch(f"/v1/conversations/{room}/me", json={"is_muted": True}, headers=bob.headers)
    assert muted.status_code == 200
    assert (await changes(client, sam, room))["items"] == []


async def test_pages_go_back_in_time_across_room_and_participant_changes(client, app_engine, runtime, alice, bob, sam):
    room = await make_conversation(app_engine, alice, bob)
    await supervise(runtime, sam, room)
    for name in ("One", "Two"):
        await client.patch(f"/v1/conversations/{room}", json={"name": name}, headers=alice.headers)
    for role in ("moderator", "member"):
        await client.patch(
            f"/v1/conversations/{room}/participants/{bob.user_id}", json={"role": role}, headers=alice.headers
        )
    first = await changes(client, sam, room, limit=3)
    second = await changes(client, sam, room, limit=3, cursor=first["next"])
    assert first["next"] is not None and second["next"] is None
    got = [(c["subject"], c["previous"].get("name") or c["previous"].get("role")) for c in first["items"]]
    got += [(c["subject"], c["previous"].get("name") or c["previous"].get("role")) for c in second["items"]]
    assert got == [
        ("participant", "moderator"),
        ("participant", "member"),
        ("conversation", "One"),
        ("conversation", "Test room"),
    ]


async def test_a_grant_for_one_room_shows_that_room_only(client, app_engine, runtime, alice, sam):
    watched = await make_conversation(app_engine, alice)
    other = await make_conversation(app_engine, alice)
    await supervise(runtime, sam, watched)
    assert (await changes(client, sam, watched))["items"] == []
    refused = await client.get(history_path(other), headers=sam.headers)
    assert refused.status_code == 404 and problem_type(refused) == "conversation-not-found"


async def test_participants_see_the_room_but_not_its_history(client, app_engine, alice, bob, mallory):
    room = await make_conversation(app_engine, alice, bob)
    for persona in (alice, bob):
        refused = await client.get(history_path(room), headers=persona.headers)
        assert refused.status_code == 403 and problem_type(refused) == "permission-required"
        assert refused.json()["permission"] == "supervisor:chat:observe"
    stranger = await client.get(history_path(room), headers=mallory.headers)
    assert stranger.status_code == 404 and problem_type(stranger) == "conversation-not-found"


async def test_a_platform_admin_reads_any_rooms_history(client, app_engine, runtime, alice, mallory):
    room = await make_conversation(app_engine, alice, name="Before")
    await client.patch(f"/v1/conversations/{room}", json={"name": "After"}, headers=alice.headers)
    admin = await make_admin(runtime, mallory)
    [change] = (await changes(client, admin, room))["items"]
    assert change["previous"]["name"] == "Before"


async def test_a_revoked_supervisor_reads_nothing_more(client, app_engine, runtime, alice, sam):
    room = await make_conversation(app_engine, alice)
    await supervise(runtime, sam, room)
    assert (await client.get(history_path(room), headers=sam.headers)).status_code == 200
    async with system_transaction(runtime.system_engine) as db:
        await access_service.revoke_role_system(db, UUID(sam.user_id), "supervisor", room)
    assert (await client.get(history_path(room), headers=sam.headers)).status_code == 404


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"cursor": "not a cursor!"}])
async def test_bad_paging_is_refused(client, app_engine, runtime, alice, sam, params):
    room = await make_conversation(app_engine, alice)
    await supervise(runtime, sam)
    response = await client.get(history_path(room), headers=sam.headers, params=params)
    assert response.status_code in (400, 422), response.text


async def test_a_supervisor_asking_of_no_room_finds_none(client, runtime, sam):
    await supervise(runtime, sam)
    missing = await client.get(history_path(UUID(int=7)), headers=sam.headers)
    assert missing.status_code == 404 and problem_type(missing) == "conversation-not-found"
    malformed = await client.get("/v1/conversations/not-a-uuid/history", headers=sam.headers)
    assert malformed.status_code == 422


async def test_system_work_is_recorded_without_an_actor(client, app_engine, runtime, alice, bob, sam):
    room = await make_conversation(app_engine, alice, bob)
    await supervise(runtime, sam, room)
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("SELECT messaging.dismiss_participant(:c, :u)"), {"c": room, "u": UUID(bob.user_id)})
    [change] = (await changes(client, sam, room))["items"]
    assert (change["user_id"], change["operation"], change["changed_by"]) == (bob.user_id, "delete", None)


async def test_the_history_is_readable_in_sql_by_supervisors_only(app_engine, runtime, alice, sam):
    room = await make_conversation(app_engine, alice, name="Before")
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await db.execute(text("UPDATE messaging.conversations SET name = 'After' WHERE id = :c"), {"c": room})
    await supervise(runtime, sam, room)
    counts = {}
    for persona in (alice, sam):
        async with user_transaction(app_engine, UUID(persona.user_id)) as db:
            counts[persona.name] = (
                await db.execute(
                    text("SELECT count(*) FROM messaging.conversation_history WHERE conversation_id = :c"), {"c": room}
                )
            ).scalar_one()
    assert counts == {"alice": 0, "sam": 1}
