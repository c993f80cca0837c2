"""Support and escalated rooms, as the support desk's system work opens and staffs them
through messaging.service (do_open_room, do_admit, do_dismiss), and the `escalated` type
people cannot open themselves.

Carol is a customer, alice and bob agents, gus a guest; mallory a stranger."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rapport.access import service as access_service
from rapport.kernel.db import system_transaction, user_transaction
from rapport.messaging import service as messaging_service
from rapport.messaging.errors import ConversationFull, ConversationNotFound, PersonNotFound
from tests.messaging.messages_support import history, types_of
from tests.messaging.support import send
from tests.support import problem_type

pytestmark = pytest.mark.module_database


async def open_room(runtime, **options) -> UUID:
    async with system_transaction(runtime.system_engine) as db:
        return await messaging_service.do_open_room(db, **options)


async def test_the_desk_opens_a_support_room_with_its_people(client, runtime, alice, carol):
    room = await open_room(
        runtime,
        type="support",
        creator_id=UUID(carol.user_id),
        name="Printer on fire",
        members=[(UUID(carol.user_id), "member"), (UUID(alice.user_id), "moderator")],
    )
    shown = await client.get(f"/v1/conversations/{room}", headers=carol.headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["type"] == "support" and shown.json()["member_count"] == 2
    assert shown.json()["membership"]["role"] == "member"
    # An agent posts in a support room with chat:message:send (a support role holds it).
    async with system_transaction(runtime.system_engine) as db:
        await access_service.grant_role_system(db, UUID(alice.user_id), "support-t1")
    await send(client, alice, room, "How can I help?")
    assert [m["content"] for m in await history(client, carol, room)] == ["How can I help?"]
    assert await types_of(runtime, room) == [
        "conversation.created",
        "participant.joined",
        "participant.joined",
        "message.created",
    ]


async def test_an_escalated_room_sits_below_its_source(client, runtime, alice, bob, carol):
    source = await open_room(
        runtime, type="support", creator_id=UUID(carol.user_id), members=[(UUID(carol.user_id), "member")]
    )
    escalated = await open_room(
        runtime,
        type="escalated",
        creator_id=UUID(carol.user_id),
        parent_id=source,
        members=[(UUID(carol.user_id), "member"), (UUID(bob.user_id), "member")],
    )
    shown = await client.get(f"/v1/conversations/{escalated}", headers=bob.headers)
    assert shown.json()["type"] == "escalated" and shown.json()["parent_id"] == str(source)
    with pytest.raises(ValueError):
        await open_room(runtime, type="escalated", creator_id=UUID(carol.user_id), members=[])
    with pytest.raises(ConversationNotFound):
        await open_room(runtime, type="escalated", creator_id=UUID(carol.user_id), parent_id=UUID(int=1), members=[])


async def test_people_cannot_open_an_escalated_room(client, alice, bob):
    refused = await client.post(
        "/v1/conversations",
        json={"type": "escalated", "name": "Mine", "participant_ids": [bob.user_id]},
        headers=alice.headers,
    )
    assert refused.status_code == 422, refused.text
    assert "escalated" in refused.text


async def test_admitting_adds_changes_and_rejoins(client, runtime, alice, carol, make_persona):
    gus = await make_persona("gus")
    room = await open_room(
        runtime, type="support", creator_id=UUID(carol.user_id), members=[(UUID(carol.user_id), "member")]
    )
    async with system_transaction(runtime.system_engine) as db:
        assert (
            await messaging_service.do_admit(db, conversation_id=room, user_id=UUID(gus.user_id), role="guest")
            == "added"
        )
        assert (
            await messaging_service.do_admit(db, conversation_id=room, user_id=UUID(gus.user_id), role="guest")
            == "already"
        )
        assert (
            await messaging_service.do_admit(db, conversation_id=room, user_id=UUID(alice.user_id), role="member")
            == "added"
        )
        assert (
            await messaging_service.do_admit(db, conversation_id=room, user_id=UUID(alice.user_id), role="moderator")
            == "changed"
        )
        assert await messaging_service.do_dismiss(db, conversation_id=room, user_id=UUID(alice.user_id))
        assert not await messaging_service.do_dismiss(db, conversation_id=room, user_id=UUID(alice.user_id))
        assert (
            await messaging_service.do_admit(db, conversation_id=room, user_id=UUID(alice.user_id), role="member")
            == "rejoined"
        )
    participants = await client.get(f"/v1/conversations/{room}/participants", headers=carol.headers)
    roles = {p["user_id"]: p["role"] for p in participants.json()["items"] if p["status"] == "active"}
    assert roles == {carol.user_id: "member", gus.user_id: "guest", alice.user_id: "member"}
    types = await types_of(runtime, room)
    assert types.count("participant.joined") == 4 and "participant.changed" in types and "participant.left" in types


async def test_a_dismissed_participant_reads_no_further(client, runtime, alice, carol):
    room = await open_room(
        runtime,
        type="support",
        creator_id=UUID(carol.user_id),
        members=[(UUID(carol.user_id), "member"), (UUID(alice.user_id), "member")],
    )
    await send(client, carol, room, "before")
    async with system_transaction(runtime.system_engine) as db:
        await messaging_service.do_dismiss(db, conversation_id=room, user_id=UUID(alice.user_id))
    await send(client, carol, room, "after")
    assert [m["content"] for m in await history(client, alice, room)] == ["before"]
    refused = await client.post(f"/v1/conversations/{room}/messages", json={"content": "hi"}, headers=alice.headers)
    assert refused.status_code == 404 and problem_type(refused) == "conversation-not-found"


async def test_admitting_refuses_what_cannot_be(runtime, carol, alice, bob):
    room = await open_room(
        runtime,
        type="support",
        creator_id=UUID(carol.user_id),
        members=[(UUID(carol.user_id), "member"), (UUID(alice.user_id), "member")],
        max_participants=2,
    )
    refusals = [
        (PersonNotFound, room, UUID(int=3)),
        (ConversationNotFound, UUID(int=4), UUID(bob.user_id)),
        (ConversationFull, room, UUID(bob.user_id)),
    ]
    for error, conversation_id, user_id in refusals:
        async with system_transaction(runtime.system_engine) as db:
            with pytest.raises(error):
                await messaging_service.do_admit(db, conversation_id=conversation_id, user_id=user_id, role="member")


async def test_admitting_and_dismissing_are_system_work(app_engine, alice):
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        with pytest.raises(DBAPIError, match="permission denied"):
            await db.execute(
                text("SELECT messaging.admit_participant(:c, :u, 'member')"),
                {"c": UUID(int=5), "u": UUID(alice.user_id)},
            )
