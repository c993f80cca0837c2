"""Streamed messages, messages hidden from guests, and room history
(messaging.conversation_history, messaging.participant_history), attacked through the API
and through SQL as `rapport_app`, the role the server connects as.

Alice owns a room with bob (member), gus (guest) and robo (a bot speaking with its API
key); sam supervises it; mallory is a stranger. Whatever a query might get wrong, a guest
reads no bot message hidden from guests, nobody but a message's sender streams into it or
sets its status or audience, and nobody but supervisors reads a room's history, which
nobody writes by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from rapport.access import service as access_service
from rapport.kernel.actor import Actor
from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Event
from rapport.kernel.provisioning import DatabaseUrls
from rapport.messaging._sync import Memberships, Window
from rapport.realtime._connection import Connection, Delivery
from rapport.realtime._hub import Hub
from tests.messaging.streams_support import make_bot, step
from tests.messaging.support import make_conversation, send
from tests.module_scope import build_once
from tests.security.messaging_sql import DENIED, attempt, changed
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


@dataclass
class Room:
    id: UUID
    alice: Persona
    bob: Persona
    gus: Persona
    robo: Persona
    sam: Persona
    mallory: Persona
    said: str  # alice's message
    hidden: str  # robo's, hidden from guests, still streaming


@pytest.fixture(scope="module")
async def module_room(module_app: FastAPI, module_database: DatabaseUrls) -> Room:
    """The room, built once: each test's reset puts it back as it was
    (module_scope.build_once)."""
    async with build_once(module_app, module_database) as built:
        people = await built.personas("alice", "mallory", "bob", "gus", "robo", "sam")
        return await _build(built.client, built.app_engine, built.runtime, module_database, *people)


@pytest.fixture
def room(module_room: Room, database: DatabaseUrls) -> Room:
    """The module's room, as built: the test's database was reset to it."""
    return module_room


async def _build(client, app_engine, runtime, database, alice, mallory, bob, gus, robo, sam) -> Room:
    room_id = await make_conversation(app_engine, alice, bob, gus, robo, roles={"gus": "guest"})
    robo = await make_bot(client, database, robo)
    said = await send(client, alice, room_id, "Welcome")
    hidden = await send(client, robo, room_id, "Internal: ", streaming=True)
    async with system_transaction(runtime.system_engine) as db:
        await access_service.grant_role_system(db, UUID(sam.user_id), "supervisor", room_id)
    renamed = await client.patch(f"/v1/conversations/{room_id}", json={"name": "Renamed"}, headers=alice.headers)
    assert renamed.status_code == 200, renamed.text
    return Room(room_id, alice, bob, gus, robo, sam, mallory, said["id"], hidden["id"])


_STREAM = "SELECT messaging.stream_message(:u, :s, NULL, :c, :m, 'injected', NULL)"
_CONTENT = "SELECT content FROM messaging.messages WHERE conversation_id = :c AND id = :m"


async def test_nobody_but_the_sender_streams_into_a_message(client, app_engine, room):
    for who in (room.mallory, room.bob, room.alice):
        response = await step(client, who, room.id, room.hidden, append="injected")
        assert response.status_code in (403, 404), response.text
    strangers = await attempt(
        app_engine, None, _STREAM, u=room.mallory.user_id, s=room.mallory.session_id, c=room.id, m=room.hidden
    )
    assert strangers == "RM404 conversation-not-found"
    # Naming the sender without the sender's session or key is no way in.
    posing = await attempt(
        app_engine, None, _STREAM, u=room.robo.user_id, s=room.mallory.session_id, c=room.id, m=room.hidden
    )
    assert posing == "UnknownPostgresError"  # RA401: the session is not the sender's
    content = await attempt(app_engine, room.bob, _CONTENT, c=room.id, m=room.hidden)
    assert content == "Internal:"


async def test_nobody_sets_a_status_or_an_audience_by_hand(app_engine, room):
    for column, value in (("delivery_status", "'delivered'"), ("hidden_from_guests", "false")):
        statement = (
            f"UPDATE messaging.messages SET {column} = {value} WHERE conversation_id = :c AND id = :m RETURNING 1"
        )
        for who in (room.robo, room.alice, room.gus):
            assert await changed(app_engine, who, statement, c=room.id, m=room.hidden) == DENIED
    smuggled = (
        "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at, delivery_status)"
        " VALUES (:id, :c, :u, 'x', messaging.id_time(:id), 'streaming')"
    )
    assert await attempt(app_engine, room.bob, smuggled, id=uuid7(), c=room.id, u=room.bob.user_id) == DENIED


async def test_a_guest_reads_no_hidden_message_in_sql(app_engine, room):
    count = "SELECT count(*) FROM messaging.messages WHERE conversation_id = :c"
    assert await attempt(app_engine, room.gus, count, c=room.id) == 1
    assert await attempt(app_engine, room.bob, count, c=room.id) == 2
    assert await attempt(app_engine, room.gus, _CONTENT, c=room.id, m=room.hidden) is None
    rendered = "SELECT count(*) FROM messaging.messages m WHERE m.conversation_id = :c AND m.hidden_from_guests"
    assert await attempt(app_engine, room.gus, rendered, c=room.id) == 0


async def test_a_guest_sees_no_reaction_to_a_hidden_message(client, app_engine, room):
    reacted = await client.put(
        f"/v1/conversations/{room.id}/messages/{room.hidden}/reactions/👍", headers=room.bob.headers
    )
    assert reacted.status_code == 204, reacted.text
    refused = await client.put(
        f"/v1/conversations/{room.id}/messages/{room.hidden}/reactions/👍", headers=room.gus.headers
    )
    assert refused.status_code == 404 and problem_type(refused) == "message-not-found"
    seen = "SELECT count(*) FROM messaging.reactions WHERE conversation_id = :c"
    assert await attempt(app_engine, room.bob, seen, c=room.id) == 1
    assert await attempt(app_engine, room.gus, seen, c=room.id) == 0


async def test_a_guest_reads_no_hidden_message_through_the_api(client, room):
    single = await client.get(f"/v1/conversations/{room.id}/messages/{room.hidden}", headers=room.gus.headers)
    assert single.status_code == 404 and problem_type(single) == "message-not-found"
    page = await client.get(f"/v1/conversations/{room.id}/messages", headers=room.gus.headers)
    assert [m["id"] for m in page.json()["items"]] == [room.said]
    around = await client.get(
        f"/v1/conversations/{room.id}/messages", headers=room.gus.headers, params={"around": room.hidden}
    )
    assert around.status_code == 404
    edits = await client.get(f"/v1/conversations/{room.id}/messages/{room.hidden}/edits", headers=room.gus.headers)
    assert edits.status_code == 404


_READ_HISTORY = (
    "SELECT count(*) FROM (SELECT id FROM messaging.conversation_history WHERE conversation_id = :c"
    " UNION ALL SELECT id FROM messaging.participant_history WHERE conversation_id = :c) h"
)


async def test_only_supervisors_read_a_rooms_history(client, app_engine, room):
    for who in (room.alice, room.bob, room.gus, room.robo, room.mallory):
        assert await attempt(app_engine, who, _READ_HISTORY, c=room.id) == 0
    assert await attempt(app_engine, None, _READ_HISTORY, c=room.id) == 0
    assert await attempt(app_engine, room.sam, _READ_HISTORY, c=room.id) == 1
    stranger = await client.get(f"/v1/conversations/{room.id}/history", headers=room.mallory.headers)
    assert stranger.status_code == 404
    member = await client.get(f"/v1/conversations/{room.id}/history", headers=room.bob.headers)
    assert member.status_code == 403 and problem_type(member) == "permission-required"


@pytest.mark.parametrize("table", ["messaging.conversation_history", "messaging.participant_history"])
async def test_nobody_writes_a_rooms_history(app_engine, room, table):
    for who in (room.sam, room.alice, room.mallory):
        assert await changed(app_engine, who, f"UPDATE {table} SET operation = 'edit' RETURNING 1") == DENIED
        assert await changed(app_engine, who, f"DELETE FROM {table} RETURNING 1") == DENIED
    forged = (
        f"INSERT INTO {table} (id, conversation_id, operation, old_row{', user_id' if 'participant' in table else ''})"
        f" VALUES (:id, :c, 'edit', '{{}}'{', :u' if 'participant' in table else ''})"
    )
    assert await attempt(app_engine, room.sam, forged, id=uuid7(), c=room.id, u=room.sam.user_id) == DENIED


async def test_observes_answers_for_the_caller_only(app_engine, room):
    observes = "SELECT messaging.observes(:c)"
    assert await attempt(app_engine, room.sam, observes, c=room.id) is True
    for who in (room.alice, room.mallory, None):
        assert await attempt(app_engine, who, observes, c=room.id) is False
    other = await make_conversation(app_engine, room.alice)
    assert await attempt(app_engine, room.sam, observes, c=other) is False


async def test_admitting_and_dismissing_are_for_system_work_alone(app_engine, runtime, room):
    admit = "SELECT messaging.admit_participant(:c, :u, 'owner')"
    dismiss = "SELECT messaging.dismiss_participant(:c, :u)"
    for statement in (admit, dismiss):
        assert await attempt(app_engine, room.mallory, statement, c=room.id, u=room.mallory.user_id) == DENIED
    # The worker's role without system work set: refused by the function itself.
    async with runtime.system_engine.engine.connect() as db:
        with pytest.raises(Exception, match="system work"):
            await db.execute(text(admit), {"c": room.id, "u": UUID(room.mallory.user_id)})
    assert (
        await attempt(
            app_engine, room.mallory, "SELECT count(*) FROM messaging.messages WHERE conversation_id = :c", c=room.id
        )
        == 0
    )


def _event(position: int, conversation: UUID, type: str, **payload: object) -> Event:
    return Event(
        position=position,
        scope_kind="conversation",
        scope_id=conversation,
        type=type,
        payload=payload,
        actor_id=None,
        created_at=datetime.now(UTC),
    )


def test_a_guests_stream_carries_no_event_of_a_hidden_message() -> None:
    hub, member, guest, room = Hub(), uuid7(), uuid7(), uuid7()
    followers = {}
    for user, is_guest in ((member, False), (guest, True)):
        connection = Connection(Actor(user_id=user))
        hub.begin(connection)
        windows = {room: Window(joined=1 << 16, left=None, guest=is_guest)}
        assert hub.go_live(connection, memberships=Memberships(user, 10 << 16, windows), caught_up_to=(10 << 16) - 1)
        followers[user] = connection
    hub.dispatch(
        [
            _event(11 << 16, room, "message.streamed", message_id="m", append="secret", hidden_from_guests=True),
            _event(12 << 16, room, "message.created", message_id="n"),
            _event(13 << 16, room, "participant.changed", user_id=str(guest), changes={"role": "member"}),
            _event(14 << 16, room, "message.streamed", message_id="m", append="now yours", hidden_from_guests=True),
        ],
        15 << 16,
    )

    def received(user: UUID) -> list[int]:
        return [item.position >> 16 for item in followers[user]._items if isinstance(item, Delivery)]

    assert received(member) == [11, 12, 13, 14]
    assert received(guest) == [12, 13, 14]
