"""A conversation's messages and everything hung on them (messaging.messages, threads,
reactions, pins, mentions, retractions, message_history and the view message_receipts),
attacked through the API and through SQL as `rapport_app`, the role the server connects
as: whatever bug a query might have, PostgreSQL itself must refuse.

Alice owns a group with bob and olive (an observer); carol was in it and left, erin was
removed by alice; mallory was never in it. Each attacker is held to what the issue says:
a stranger reads and writes nothing, those who left read up to their leaving and nothing
after, observers, silenced participants and a broadcast's audience do not send, a member
does no moderator's work, and nobody writes as someone else or moves a counter.

The room is built once for the module; the reset before each test puts it back as built,
whatever the test before changed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import create_engine, user_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls
from tests.messaging.support import make_conversation, send
from tests.module_scope import empty_database, module_personas, start_from_here
from tests.security.messaging_sql import DENIED, POLICY, attempt, changed
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


def messages_of(conversation: UUID) -> str:
    return f"/v1/conversations/{conversation}/messages"


@dataclass
class Room:
    alice: Persona
    bob: Persona
    carol: Persona  # left after seq 4
    erin: Persona  # removed by alice after seq 4
    olive: Persona  # an observer
    mallory: Persona  # never in it
    id: UUID
    greeting: UUID  # seq 1, alice's, mentions bob, carol and erin; bob's thread hangs on it
    answer: UUID  # seq 2, bob's, edited
    in_thread: UUID  # seq 3, carol's
    later: UUID  # seq 5, bob's, after carol and erin were gone: edited, reacted to, pinned, a thread
    thread: UUID  # bob's, on the greeting
    left_seq: int = 4


async def _as(engine: AsyncEngine, who: Persona, statement: str, **params: Any) -> None:
    async with user_transaction(engine, UUID(who.user_id)) as db:
        await db.execute(text(statement), params)


REACT = "INSERT INTO messaging.reactions (conversation_id, message_id, user_id, emoji) VALUES (:c, :m, :u, :e)"
PIN = "INSERT INTO messaging.pins (conversation_id, message_id, pinned_by) VALUES (:c, :m, :u)"
ROOTED_THREAD = (
    "INSERT INTO messaging.threads (id, conversation_id, root_message_id, creator_id) VALUES (:t, :c, :m, :u)"
)
EDIT = "UPDATE messaging.messages SET content = :content WHERE conversation_id = :c AND id = :m"
DELETE_FOR_EVERYONE = "UPDATE messaging.messages SET deleted_at = now() WHERE conversation_id = :c AND id = :m"
MOVE = "UPDATE messaging.messages SET thread_id = :t WHERE conversation_id = :c AND id = :m"
LEAVE_OR_REMOVE = "SELECT messaging.change_participant(:c, :u, NULL, :status, NULL, NULL, NULL)"


@pytest.fixture(scope="module")
async def module_room(module_app: FastAPI, module_database: DatabaseUrls) -> Room:
    """The room, built once: each test's reset puts it back as it was
    (module_scope.start_from_here), whatever the test before changed."""
    await empty_database(module_database)
    personas = await module_personas(module_app, "alice", "bob", "carol", "mallory", "erin", "olive")
    transport = httpx.ASGITransport(app=module_app, raise_app_exceptions=False, client=("203.0.113.7", 50000))
    app_engine = create_engine(module_database.app, pool_size=2)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://rapport.test") as client:
            built = await build_room(client, app_engine, *personas)
        async with asyncio.timeout(10):
            await module_app.state.notifications.catch_up()
            await module_app.state.worker.wait_idle()
    finally:
        await app_engine.dispose()
    await start_from_here(module_database)
    return built


@pytest.fixture
def room(module_room: Room, database: DatabaseUrls) -> Room:
    """The module's room, as built: the test's database was reset to it (or the room was
    built after that reset, for the module's first test that asks for it)."""
    return module_room


# The room's people, for the tests that name them.
@pytest.fixture
def alice(room: Room) -> Persona:
    return room.alice


@pytest.fixture
def bob(room: Room) -> Persona:
    return room.bob


@pytest.fixture
def carol(room: Room) -> Persona:
    return room.carol


@pytest.fixture
def mallory(room: Room) -> Persona:
    return room.mallory


async def build_room(client, app_engine, alice, bob, carol, mallory, erin, olive) -> Room:
    c = await make_conversation(app_engine, alice, bob, carol, erin, olive, roles={"olive": "observer"})
    greeting = await send(
        client, alice, c, "hello", mentions=[bob.user_id, carol.user_id, erin.user_id], client_message_id="a-1"
    )
    answer = await send(client, bob, c, "hi", mentions=[alice.user_id])
    await _as(app_engine, bob, REACT, c=c, m=greeting["id"], u=bob.user_id, e="👍")
    await _as(app_engine, alice, REACT, c=c, m=answer["id"], u=alice.user_id, e="❤️")
    await _as(app_engine, alice, PIN, c=c, m=greeting["id"], u=alice.user_id)
    thread = uuid7()
    await _as(app_engine, bob, ROOTED_THREAD, t=thread, c=c, m=greeting["id"], u=bob.user_id)
    in_thread = await send(client, carol, c, "in the thread", thread_id=str(thread))
    await _as(app_engine, bob, EDIT, c=c, m=answer["id"], content="hi all")
    oops = await send(client, alice, c, "oops")
    await _as(app_engine, alice, DELETE_FOR_EVERYONE, c=c, m=oops["id"])
    read = await client.post(f"/v1/conversations/{c}/read", json={"message_id": oops["id"]}, headers=erin.headers)
    assert read.status_code == 200, read.text
    await _as(app_engine, carol, LEAVE_OR_REMOVE, c=c, u=carol.user_id, status="left")
    await _as(app_engine, alice, LEAVE_OR_REMOVE, c=c, u=erin.user_id, status="removed")
    # What happens once carol and erin are gone.
    later = await send(client, bob, c, "later", mentions=[alice.user_id, carol.user_id, erin.user_id])
    await _as(app_engine, alice, REACT, c=c, m=later["id"], u=alice.user_id, e="🎉")
    await _as(app_engine, alice, PIN, c=c, m=later["id"], u=alice.user_id)
    await _as(app_engine, alice, ROOTED_THREAD, t=uuid7(), c=c, m=later["id"], u=alice.user_id)
    await _as(app_engine, bob, EDIT, c=c, m=later["id"], content="later, edited")
    gone = await send(client, alice, c, "gone")
    await _as(app_engine, alice, DELETE_FOR_EVERYONE, c=c, m=gone["id"])
    return Room(
        alice,
        bob,
        carol,
        erin,
        olive,
        mallory,
        c,
        greeting=UUID(greeting["id"]),
        answer=UUID(answer["id"]),
        in_thread=UUID(in_thread["id"]),
        later=UUID(later["id"]),
        thread=thread,
    )


# What of the conversation each table shows.
ALL_OF_IT = {
    "messaging.messages": "SELECT count(*) FROM messaging.messages WHERE conversation_id = :c",
    "messaging.threads": "SELECT count(*) FROM messaging.threads WHERE conversation_id = :c",
    "messaging.reactions": "SELECT count(*) FROM messaging.reactions WHERE conversation_id = :c",
    "messaging.pins": "SELECT count(*) FROM messaging.pins WHERE conversation_id = :c",
    "messaging.mentions": "SELECT count(*) FROM messaging.mentions WHERE conversation_id = :c",
    "messaging.retractions": "SELECT count(*) FROM messaging.retractions WHERE conversation_id = :c",
    "messaging.message_history": "SELECT count(*) FROM messaging.message_history WHERE conversation_id = :c",
    "messaging.message_receipts": "SELECT count(*) FROM messaging.message_receipts WHERE conversation_id = :c",
    "messaging.participants": "SELECT count(*) FROM messaging.participants WHERE conversation_id = :c",
    "messaging.conversations": "SELECT count(*) FROM messaging.conversations WHERE id = :c",
}

# What of it is newer than carol's and erin's leaving (after seq 4, or about `later`),
# and, apart from their own row, who else takes part.
NEWER = {
    "messaging.messages": "SELECT count(*) FROM messaging.messages WHERE conversation_id = :c AND seq > :gone",
    "messaging.threads": (
        "SELECT count(*) FROM messaging.threads WHERE conversation_id = :c AND root_message_id = :later"
    ),
    "messaging.reactions": (
        "SELECT count(*) FROM messaging.reactions WHERE conversation_id = :c AND message_id = :later"
    ),
    "messaging.pins": "SELECT count(*) FROM messaging.pins WHERE conversation_id = :c AND message_id = :later",
    "messaging.mentions": "SELECT count(*) FROM messaging.mentions WHERE conversation_id = :c AND seq > :gone",
    "messaging.retractions": "SELECT count(*) FROM messaging.retractions WHERE conversation_id = :c AND seq > :gone",
    "messaging.message_history": (
        "SELECT count(*) FROM messaging.message_history WHERE conversation_id = :c AND message_id = :later"
    ),
    "messaging.message_receipts": (
        "SELECT count(*) FROM messaging.message_receipts WHERE conversation_id = :c AND seq > :gone"
    ),
    "messaging.participants": (
        "SELECT count(*) FROM messaging.participants WHERE conversation_id = :c AND user_id <> :me"
    ),
    "messaging.conversations": "SELECT count(*) FROM messaging.conversations WHERE id = :c AND last_seq > :gone",
}


async def _counts(engine: AsyncEngine, who: Persona | None, queries: dict[str, str], room: Room) -> dict[str, Any]:
    params = {"c": room.id, "gone": room.left_seq, "later": room.later, "me": who.user_id if who else None}
    return {table: await attempt(engine, who, query, **params) for table, query in queries.items()}


async def test_the_owner_sees_every_kind_of_row_so_the_attacks_below_prove_something(app_engine, room):
    everything = await _counts(app_engine, room.alice, ALL_OF_IT, room)
    newer = await _counts(app_engine, room.alice, NEWER, room)

    assert [table for table, count in everything.items() if count == 0] == []
    assert [table for table, count in newer.items() if count == 0] == []


# A stranger


@pytest.mark.parametrize("attacker", ["mallory", None])
async def test_a_stranger_reads_nothing_of_the_conversation(app_engine, room, attacker):
    who = getattr(room, attacker) if attacker else None

    seen = await _counts(app_engine, who, ALL_OF_IT, room)

    assert seen == dict.fromkeys(ALL_OF_IT, 0)


async def test_a_stranger_learns_nothing_through_the_api(client, room):
    mallory = room.mallory

    def answer(response: httpx.Response) -> tuple[int, str]:
        return response.status_code, problem_type(response)

    history = await client.get(messages_of(room.id), headers=mallory.headers)
    around = await client.get(messages_of(room.id), params={"around": str(room.greeting)}, headers=mallory.headers)
    sent = await client.post(messages_of(room.id), json={"content": "hi"}, headers=mallory.headers)
    read = await client.post(
        f"/v1/conversations/{room.id}/read", json={"message_id": str(room.greeting)}, headers=mallory.headers
    )
    nowhere = uuid7()
    read_nowhere = await client.post(
        f"/v1/conversations/{nowhere}/read", json={"message_id": str(room.greeting)}, headers=mallory.headers
    )
    listed = await client.get("/v1/conversations", headers=mallory.headers)

    assert [answer(history), answer(around), answer(sent)] == [(404, "conversation-not-found")] * 3
    # Marking read answers as it would for a conversation that does not exist.
    assert answer(read) == answer(read_nowhere) and read.status_code == 404
    assert listed.json()["items"] == []


# A body each route of a conversation accepts, by the name of its schema.
BODIES: dict[str, dict[str, Any]] = {
    "SendMessage": {"content": "hi"},
    "EditMessage": {"content": "mallory's words"},
    "DraftIn": {"content": "mine"},
    "CreateThread": {"title": "Mine"},
    "UpdateThread": {"title": "Mine"},
    "ConversationUpdate": {"name": "Mine"},
    "MembershipUpdate": {"is_muted": True},
    "ParticipantChange": {"role": "member"},
    "InviteCreate": {},
    "StartCall": {"type": "audio"},
    "RateCall": {"quality_rating": 5},
    "ReportMessage": {"reason": "spam"},
    "ResolveReport": {"action": "dismiss"},
    "FlagMessage": {"moderation_flagged": True},
    "StreamStep": {"append": "mallory's words"},
}


def _body(schema: str | None, room: Room) -> dict[str, Any] | None:
    """A body the route's schema accepts (an empty one for a schema not listed above: a
    route that answers it 422 shows in the assertion), or None for a route that takes none."""
    if schema is None:
        return None
    if schema in ("MarkRead", "MarkDelivered"):
        return {"message_id": str(room.greeting)}
    if schema == "ParticipantAdd":
        return {"user_id": room.mallory.user_id}
    if schema == "ForwardMessage":
        return {"conversation_ids": [str(room.id)]}
    if schema == "MoveToThread":
        return {"thread_id": str(room.thread)}
    if schema in ("EncryptedSend", "EncryptedEdit"):
        # Well formed, with a device of no one's: the conversation is refused first.
        return {
            "sender_device_id": str(uuid7()),
            "envelopes": [{"device_id": str(uuid7()), "type": "message", "ciphertext": "AAAA"}],
        }
    return BODIES.get(schema, {})


def _conversation_routes(app: FastAPI) -> list[tuple[str, str, str | None]]:
    """Every route of one conversation the API serves, found in its OpenAPI document:
    (method, path, the schema of its body or None)."""
    routes = []
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/v1/conversations/{conversation_id}"):
            continue
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            routes.append((method.upper(), path, body.get("$ref", "").rsplit("/", 1)[-1] or None))
    return routes


async def test_every_route_of_the_conversation_answers_a_stranger_as_if_it_did_not_exist(client, app, app_engine, room):
    mallory, nowhere = room.mallory, uuid7()
    routes = _conversation_routes(app)
    before = await _counts(app_engine, room.alice, ALL_OF_IT, room)

    async def answer(method: str, path: str, body: str | None, conversation: UUID) -> tuple[int, str]:
        ids = {
            "conversation_id": conversation,
            "message_id": room.greeting,
            "user_id": room.bob.user_id,
            "emoji": "👍",
            "thread_id": room.thread,
            "invite_id": uuid7(),
            "call_id": uuid7(),
            "report_id": uuid7(),
        }
        response = await client.request(method, path.format(**ids), json=_body(body, room), headers=mallory.headers)
        return response.status_code, problem_type(response) if response.status_code >= 400 else "answered"

    answers = {
        f"{method} {path}": (await answer(method, path, body, room.id), await answer(method, path, body, nowhere))
        for method, path, body in routes
    }

    assert len(routes) > 20
    assert {route: mine for route, (mine, made_up) in answers.items() if mine != made_up or mine[0] != 404} == {}
    assert await _counts(app_engine, room.alice, ALL_OF_IT, room) == before


async def test_a_stranger_writes_nothing_into_the_conversation(app_engine, room):
    mallory, c, m = room.mallory, room.id, room.greeting

    refused = {
        "messaging.messages": await attempt(
            app_engine,
            mallory,
            "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at) "
            "VALUES (:id, :c, :u, 'hi', messaging.id_time(:id)) RETURNING seq",
            id=uuid7(),
            c=c,
            u=mallory.user_id,
        ),
        "messaging.reactions": await attempt(app_engine, mallory, REACT, c=c, m=m, u=mallory.user_id, e="👎"),
        "messaging.pins": await attempt(
            app_engine, mallory, f"{PIN} ON CONFLICT DO NOTHING", c=c, m=m, u=mallory.user_id
        ),
        "messaging.threads": await attempt(
            app_engine,
            mallory,
            "INSERT INTO messaging.threads (id, conversation_id, title, creator_id) VALUES (:t, :c, 'Mine', :u)",
            t=uuid7(),
            c=c,
            u=mallory.user_id,
        ),
    }
    touched = {
        "edit": await changed(app_engine, mallory, f"{EDIT} RETURNING 1", c=c, m=m, content="mallory was here"),
        "delete for everyone": await changed(app_engine, mallory, f"{DELETE_FOR_EVERYONE} RETURNING 1", c=c, m=m),
        "archive a thread": await changed(
            app_engine,
            mallory,
            "UPDATE messaging.threads SET archived_at = now() WHERE conversation_id = :c RETURNING 1",
            c=c,
        ),
        "unpin": await changed(
            app_engine, mallory, "DELETE FROM messaging.pins WHERE conversation_id = :c RETURNING 1", c=c
        ),
        "unreact": await changed(
            app_engine, mallory, "DELETE FROM messaging.reactions WHERE conversation_id = :c RETURNING 1", c=c
        ),
        "move out of a thread": await changed(
            app_engine, mallory, f"{MOVE} RETURNING 1", c=c, m=room.in_thread, t=None
        ),
    }

    assert refused == dict.fromkeys(refused, POLICY)
    assert touched == dict.fromkeys(touched, 0)


# Those who left, and those removed


@pytest.mark.parametrize("gone", ["carol", "erin"])
async def test_those_gone_see_nothing_newer_than_their_leaving(app_engine, room, gone):
    seen = await _counts(app_engine, getattr(room, gone), NEWER, room)

    assert seen == dict.fromkeys(NEWER, 0)


@pytest.mark.parametrize("gone", ["carol", "erin"])
async def test_those_gone_keep_the_history_up_to_their_leaving(client, app_engine, room, gone):
    who = getattr(room, gone)

    through_sql = await attempt(
        app_engine,
        who,
        "SELECT array_agg(seq ORDER BY seq) FROM messaging.messages WHERE conversation_id = :c",
        c=room.id,
    )
    through_api = await client.get(messages_of(room.id), headers=who.headers)

    assert through_sql == [1, 2, 3, 4]
    assert [message["seq"] for message in through_api.json()["items"]] == [4, 3, 2, 1]


@pytest.mark.parametrize("gone", ["carol", "erin"])
async def test_those_gone_cannot_send_edit_or_react(client, app_engine, room, gone):
    who = getattr(room, gone)
    mine = room.in_thread if gone == "carol" else room.greeting

    through_api = await client.post(messages_of(room.id), json={"content": "still here?"}, headers=who.headers)
    inserted = await attempt(
        app_engine,
        who,
        "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at) "
        "VALUES (:id, :c, :u, 'still here?', messaging.id_time(:id)) RETURNING seq",
        id=uuid7(),
        c=room.id,
        u=who.user_id,
    )
    reacted = await attempt(app_engine, who, REACT, c=room.id, m=room.greeting, u=who.user_id, e="👋")
    edited = await changed(app_engine, who, f"{EDIT} RETURNING 1", c=room.id, m=mine, content="rewritten")
    writes_through_api = [
        await client.request(method, f"/v1/conversations/{room.id}{path}", json=body, headers=who.headers)
        for method, path, body in [
            ("PATCH", f"/messages/{mine}", {"content": "rewritten"}),
            ("PUT", f"/messages/{room.greeting}/reactions/👋", None),
            ("PUT", f"/pins/{room.greeting}", None),
            ("POST", "/threads", {"title": "Still here"}),
            ("PUT", "/draft", {"content": "still typing"}),
        ]
    ]
    listed = await client.get("/v1/conversations", headers=who.headers)

    assert (through_api.status_code, problem_type(through_api)) == (404, "conversation-not-found")
    assert [(response.status_code, problem_type(response)) for response in writes_through_api] == [
        (404, "conversation-not-found")
    ] * 5
    assert (inserted, reacted, edited) == (POLICY, POLICY, 0)
    assert listed.json()["items"] == []


# Someone added without the history from before they joined


# What of the conversation is older than the newcomer's joining (every message is).
OLDER = {
    "messaging.messages": "SELECT count(*) FROM messaging.messages WHERE conversation_id = :c",
    "messaging.message_history": "SELECT count(*) FROM messaging.message_history WHERE conversation_id = :c",
    "messaging.message_receipts": "SELECT count(*) FROM messaging.message_receipts WHERE conversation_id = :c",
    "messaging.mentions": "SELECT count(*) FROM messaging.mentions WHERE conversation_id = :c",
    "messaging.retractions": "SELECT count(*) FROM messaging.retractions WHERE conversation_id = :c",
    "messaging.reactions": "SELECT count(*) FROM messaging.reactions WHERE conversation_id = :c",
    "messaging.pins": "SELECT count(*) FROM messaging.pins WHERE conversation_id = :c",
    "messaging.threads": (
        "SELECT count(*) FROM messaging.threads WHERE conversation_id = :c AND root_message_id IS NOT NULL"
    ),
}


@pytest.mark.parametrize("table", sorted(OLDER))
async def test_a_newcomer_without_history_sees_nothing_of_the_messages_before_joining(
    client, app_engine, make_persona, room, table
):
    """can_see_history = false: every row about an earlier message is withheld, its
    reactions, pins, threads and retractions as much as the message itself."""
    nico = await make_persona("nico")
    await _as(
        app_engine, room.alice, "SELECT messaging.add_participant(:c, :u, 'member', false)", c=room.id, u=nico.user_id
    )
    history = await client.get(messages_of(room.id), headers=nico.headers)

    seen = await attempt(app_engine, nico, OLDER[table], c=room.id)

    assert history.json()["items"] == []
    assert seen == 0


# A blocked person in a direct conversation


@pytest.fixture
async def blocked_direct(client, app_engine, alice, make_persona) -> tuple[UUID, Persona]:
    """A direct conversation between alice and dave, whom alice has since blocked."""
    dave = await make_persona("dave")
    direct = await make_conversation(app_engine, alice, dave, type="direct")
    await send(client, dave, direct, "before the block")
    blocked = await client.put(f"/v1/blocks/{dave.user_id}", headers=alice.headers)
    assert blocked.status_code in (200, 201, 204), blocked.text
    return direct, dave


def _send_statement() -> str:
    return (
        "SELECT created FROM messaging.send_message(:u, :s, NULL, :c, NULL, 'text', 'hi', '{}'::jsonb, "
        "NULL, NULL, NULL, '{}'::uuid[], '{}'::uuid[])"
    )


@pytest.mark.parametrize("sender", ["alice", "dave"])
async def test_neither_side_of_a_block_sends_through_the_api_or_the_send_function(
    client, app_engine, alice, blocked_direct, sender
):
    direct, dave = blocked_direct
    who = alice if sender == "alice" else dave

    response = await client.post(messages_of(direct), json={"content": "hi"}, headers=who.headers)
    sent = await attempt(app_engine, None, _send_statement(), u=who.user_id, s=who.session_id, c=direct)

    assert (response.status_code, problem_type(response)) == (403, "cannot-send")
    assert sent == "RM403 cannot-send"


@pytest.mark.parametrize("sender", ["alice", "dave"])
async def test_neither_side_of_a_block_sends_by_inserting_straight_into_messages(
    app_engine, alice, blocked_direct, sender
):
    """The send function checks the block; the table's own policy must too, or any query
    inserting a message as the server steps around it."""
    direct, dave = blocked_direct
    who = alice if sender == "alice" else dave

    inserted = await attempt(
        app_engine,
        who,
        "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at) "
        "VALUES (:id, :c, :u, 'around the block', messaging.id_time(:id)) RETURNING seq",
        id=uuid7(),
        c=direct,
        u=who.user_id,
    )

    assert inserted == POLICY


# Those who may not send: an observer, a silenced participant, a broadcast's audience


async def _refusals_to_send(client: httpx.AsyncClient, engine: AsyncEngine, who: Persona, c: UUID) -> list[Any]:
    response = await client.post(messages_of(c), json={"content": "may I?"}, headers=who.headers)
    through_function = await attempt(engine, None, _send_statement(), u=who.user_id, s=who.session_id, c=c)
    inserted = await attempt(
        engine,
        who,
        "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at) "
        "VALUES (:id, :c, :u, 'may I?', messaging.id_time(:id)) RETURNING seq",
        id=uuid7(),
        c=c,
        u=who.user_id,
    )
    return [(response.status_code, problem_type(response)), through_function, inserted]


CANNOT_SEND = [(403, "cannot-send"), "RM403 cannot-send", POLICY]


async def test_an_observer_reads_but_cannot_send_react_pin_or_open_a_thread(client, app_engine, room):
    olive, c, m = room.olive, room.id, room.later

    refusals = await _refusals_to_send(client, app_engine, olive, c)
    reacted = await attempt(app_engine, olive, REACT, c=c, m=m, u=olive.user_id, e="👀")
    pinned = await attempt(app_engine, olive, f"{PIN} ON CONFLICT DO NOTHING", c=c, m=room.answer, u=olive.user_id)
    threaded = await attempt(app_engine, olive, ROOTED_THREAD, t=uuid7(), c=c, m=room.answer, u=olive.user_id)
    through_api = [
        await client.request(method, f"/v1/conversations/{c}{path}", json=body, headers=olive.headers)
        for method, path, body in [
            ("PUT", f"/messages/{m}/reactions/👀", None),
            ("PUT", f"/pins/{room.answer}", None),
            ("POST", "/threads", {"title": "Olive's"}),
        ]
    ]
    reads = await client.get(messages_of(c), headers=olive.headers)

    assert refusals == CANNOT_SEND
    assert (reacted, pinned, threaded) == (POLICY, POLICY, POLICY)
    assert [(response.status_code, problem_type(response)) for response in through_api] == [
        (403, "not-allowed-in-conversation")
    ] * 3
    assert reads.status_code == 200 and len(reads.json()["items"]) == 6


async def test_a_silenced_participant_reads_but_cannot_send(client, app_engine, room):
    bob = room.bob
    await _as(app_engine, room.alice, LEAVE_OR_REMOVE, c=room.id, u=bob.user_id, status="muted")

    refusals = await _refusals_to_send(client, app_engine, bob, room.id)
    reads = await client.get(messages_of(room.id), headers=bob.headers)

    assert refusals == CANNOT_SEND
    assert reads.status_code == 200


async def test_a_silenced_participant_cannot_say_new_things_by_editing_old_messages(app_engine, room):
    """Silencing stops someone speaking in the conversation: rewriting what they sent
    before would be speaking still."""
    bob = room.bob
    await _as(app_engine, room.alice, LEAVE_OR_REMOVE, c=room.id, u=bob.user_id, status="muted")

    edited = await attempt(
        app_engine, bob, f"{EDIT} RETURNING content", c=room.id, m=room.answer, content="said while silenced"
    )

    assert edited in (None, "RM403 not-allowed")


@pytest.mark.parametrize("role", ["member", "moderator", "observer"])
async def test_a_broadcasts_audience_cannot_send(client, app_engine, alice, bob, role):
    cast = await make_conversation(app_engine, alice, bob, type="broadcast", roles={"bob": role})

    refusals = await _refusals_to_send(client, app_engine, bob, cast)
    by_the_owner = await client.post(messages_of(cast), json={"content": "news"}, headers=alice.headers)

    assert refusals == CANNOT_SEND
    assert by_the_owner.status_code == 201


# A member trying a moderator's work


async def test_a_member_cannot_delete_edit_or_flag_someone_elses_message(app_engine, room):
    bob, c, m = room.bob, room.id, room.greeting

    deleted = await changed(app_engine, bob, f"{DELETE_FOR_EVERYONE} RETURNING 1", c=c, m=m)
    edited = await changed(app_engine, bob, f"{EDIT} RETURNING 1", c=c, m=m, content="bob's words")
    flagged = await changed(
        app_engine,
        bob,
        "UPDATE messaging.messages SET moderation_flagged = true WHERE conversation_id = :c AND id = :m RETURNING 1",
        c=c,
        m=m,
    )
    content = await attempt(
        app_engine,
        room.alice,
        "SELECT content FROM messaging.messages WHERE conversation_id = :c AND id = :m",
        c=c,
        m=m,
    )

    assert (deleted, edited, flagged) == ("RM403 not-allowed",) * 3
    assert content == "hello"


async def test_a_member_is_refused_a_moderators_or_an_admins_work_through_the_api(client, app_engine, room):
    bob, c = room.bob, room.id
    attempts = [
        ("PATCH", f"/v1/conversations/{c}", {"name": "Bob's now"}),
        ("DELETE", f"/v1/conversations/{c}", None),
        ("PATCH", f"/v1/conversations/{c}/participants/{room.olive.user_id}", {"role": "member"}),
        ("DELETE", f"/v1/conversations/{c}/participants/{room.alice.user_id}", None),
        ("POST", f"/v1/conversations/{c}/participants", {"user_id": room.mallory.user_id}),
        ("DELETE", f"/v1/conversations/{c}/messages/{room.greeting}", None),
        ("PATCH", f"/v1/conversations/{c}/messages/{room.greeting}", {"content": "bob's words"}),
        ("PATCH", f"/v1/conversations/{c}/messages/{room.greeting}/moderation", {"moderation_flagged": True}),
    ]
    before = await _counts(app_engine, room.alice, ALL_OF_IT, room)

    answers = {}
    for method, path, body in attempts:
        response = await client.request(method, path, json=body, headers=bob.headers)
        refused = response.status_code >= 400
        answers[f"{method} {path}"] = (response.status_code, problem_type(response) if refused else "")

    assert answers == dict.fromkeys(answers, (403, "not-allowed-in-conversation"))
    assert await _counts(app_engine, room.alice, ALL_OF_IT, room) == before


async def test_a_member_cannot_archive_or_rename_a_thread_someone_else_opened(app_engine, room):
    touched = await changed(
        app_engine,
        room.bob,
        "UPDATE messaging.threads SET archived_at = now(), title = 'Mine now' "
        "WHERE conversation_id = :c AND creator_id = :alice RETURNING 1",
        c=room.id,
        alice=room.alice.user_id,
    )

    assert touched == 0


async def test_a_message_keeps_its_identity_place_and_sender(app_engine, room):
    """Even its sender cannot move a message to another conversation or sender: the
    columns are not granted (messaging.guard_message_update would refuse them too). Its
    thread changes only between topic threads (the test after next)."""
    bob, c = room.bob, room.id
    attempts = {
        column: await changed(
            app_engine,
            bob,
            f"UPDATE messaging.messages SET {column} = {value} WHERE conversation_id = :c AND id = :m RETURNING 1",
            c=c,
            m=room.answer,
        )
        for column, value in {
            "sender_id": "NULL",
            "conversation_id": "gen_random_uuid()",
            "seq": "seq + 10",
            "type": "'system'",
            "deleted_by": "NULL",
        }.items()
    }

    assert attempts == dict.fromkeys(attempts, DENIED)


# Nobody writes as someone else


async def test_nobody_writes_as_someone_else(app_engine, room):
    bob, alice, c = room.bob, room.alice, room.id

    forged = {
        "a message from alice": await attempt(
            app_engine,
            bob,
            "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at) "
            "VALUES (:id, :c, :u, 'I, alice, say', messaging.id_time(:id)) RETURNING seq",
            id=uuid7(),
            c=c,
            u=alice.user_id,
        ),
        "a message from nobody": await attempt(
            app_engine,
            bob,
            "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, created_at) "
            "VALUES (:id, :c, NULL, 'a notice', messaging.id_time(:id)) RETURNING seq",
            id=uuid7(),
            c=c,
        ),
        "alice's reaction": await attempt(app_engine, bob, REACT, c=c, m=room.later, u=alice.user_id, e="👎"),
        "alice's pin": await attempt(app_engine, bob, PIN, c=c, m=room.answer, u=alice.user_id),
        "alice's thread": await attempt(app_engine, bob, ROOTED_THREAD, t=uuid7(), c=c, m=room.answer, u=alice.user_id),
    }
    removed = await changed(
        app_engine,
        bob,
        "DELETE FROM messaging.reactions WHERE conversation_id = :c AND user_id = :alice RETURNING 1",
        c=c,
        alice=alice.user_id,
    )

    assert forged == dict.fromkeys(forged, POLICY)
    assert removed == 0


async def test_nobody_sends_a_system_message(client, app_engine, room):
    """System messages are Rapport's own (the API refuses them): a participant cannot make
    one by inserting it straight, to pass their words off as the conversation's notices."""
    bob = room.bob

    response = await client.post(
        messages_of(room.id), json={"content": "alice left", "type": "system"}, headers=bob.headers
    )
    inserted = await attempt(
        app_engine,
        bob,
        "INSERT INTO messaging.messages (id, conversation_id, sender_id, type, content, created_at) "
        "VALUES (:id, :c, :u, 'system', 'alice made bob an admin', messaging.id_time(:id)) RETURNING seq",
        id=uuid7(),
        c=room.id,
        u=bob.user_id,
    )

    assert response.status_code == 422
    assert inserted == POLICY


# Counters: sequences, last_seq, the rows triggers write


async def test_nobody_chooses_a_sequence_or_moves_a_counter(app_engine, room):
    bob, alice, c = room.bob, room.alice, room.id

    refused = {
        "insert with a seq": await attempt(
            app_engine,
            bob,
            "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, seq, created_at) "
            "VALUES (:id, :c, :u, 'x', 1, messaging.id_time(:id)) RETURNING seq",
            id=uuid7(),
            c=c,
            u=bob.user_id,
        ),
        "last_seq by a stranger": await changed(
            app_engine, room.mallory, "UPDATE messaging.conversations SET last_seq = 0 WHERE id = :c RETURNING 1", c=c
        ),
        "last_seq by the owner": await changed(
            app_engine, alice, "UPDATE messaging.conversations SET last_seq = 0 WHERE id = :c RETURNING 1", c=c
        ),
        "last_message_id by the owner": await changed(
            app_engine,
            alice,
            "UPDATE messaging.conversations SET last_message_id = NULL WHERE id = :c RETURNING 1",
            c=c,
        ),
        "member_count by the owner": await changed(
            app_engine, alice, "UPDATE messaging.conversations SET member_count = 1 WHERE id = :c RETURNING 1", c=c
        ),
        "a thread's count": await changed(
            app_engine,
            bob,
            "UPDATE messaging.threads SET message_count = 0 WHERE conversation_id = :c RETURNING 1",
            c=c,
        ),
        "a mention": await attempt(
            app_engine,
            bob,
            "INSERT INTO messaging.mentions (user_id, conversation_id, seq, message_id) VALUES (:u, :c, 6, :m)",
            u=alice.user_id,
            c=c,
            m=room.later,
        ),
        "a retraction": await attempt(
            app_engine,
            bob,
            "INSERT INTO messaging.retractions (conversation_id, seq, message_id) VALUES (:c, 5, :m)",
            c=c,
            m=room.later,
        ),
        "an earlier version": await attempt(
            app_engine,
            bob,
            "INSERT INTO messaging.message_history (conversation_id, message_id, operation, content, content_metadata) "
            "VALUES (:c, :m, 'edit', 'what alice never said', '{}')",
            c=c,
            m=room.greeting,
        ),
        "unsaying a retraction": await changed(
            app_engine, alice, "DELETE FROM messaging.retractions WHERE conversation_id = :c RETURNING 1", c=c
        ),
        "forgetting a mention": await changed(
            app_engine, alice, "DELETE FROM messaging.mentions WHERE conversation_id = :c RETURNING 1", c=c
        ),
        "erasing an earlier version": await changed(
            app_engine, bob, "DELETE FROM messaging.message_history WHERE conversation_id = :c RETURNING 1", c=c
        ),
        "deleting a message outright": await changed(
            app_engine,
            bob,
            "DELETE FROM messaging.messages WHERE conversation_id = :c AND id = :m RETURNING 1",
            c=c,
            m=room.answer,
        ),
    }

    assert refused == dict.fromkeys(refused, DENIED)


async def test_a_message_inserted_straight_takes_the_next_sequence_and_mentions_participants_only(app_engine, room):
    """The sequence trigger runs whoever inserts: no gap, no repeat, no mention of an outsider."""
    bob = room.bob
    new = uuid7()

    seq = await attempt(
        app_engine,
        bob,
        "INSERT INTO messaging.messages (id, conversation_id, sender_id, content, mentions, created_at) "
        "VALUES (:id, :c, :u, 'straight', ARRAY[CAST(:mallory AS uuid), CAST(:alice AS uuid)], "
        "messaging.id_time(:id)) RETURNING seq",
        id=new,
        c=room.id,
        u=bob.user_id,
        mallory=room.mallory.user_id,
        alice=room.alice.user_id,
    )
    mentions = await attempt(
        app_engine,
        room.alice,
        "SELECT array_agg(user_id::text) FROM messaging.mentions WHERE conversation_id = :c AND message_id = :m",
        c=room.id,
        m=new,
    )

    assert seq == 7
    assert mentions == [room.alice.user_id]


# Receipts


async def test_a_reader_who_does_not_share_read_receipts_shows_as_delivered_only(client, app_engine, room):
    bob, alice = room.bob, room.alice
    settings = await client.patch("/v1/settings", json={"read_receipts_enabled": False}, headers=bob.headers)
    assert settings.status_code == 200, settings.text
    message = await send(client, alice, room.id, "did you read this?")
    read = await client.post(
        f"/v1/conversations/{room.id}/read", json={"message_id": message["id"]}, headers=bob.headers
    )
    assert read.status_code == 200, read.text

    receipt = await attempt(
        app_engine,
        alice,
        "SELECT status || '/' || coalesce(read_at::text, '-') FROM messaging.message_receipts "
        "WHERE conversation_id = :c AND message_id = :m AND user_id = :bob",
        c=room.id,
        m=message["id"],
        bob=bob.user_id,
    )

    assert receipt == "delivered/-"


async def test_only_topic_threads_take_moved_messages_and_observers_move_none(app_engine, room):
    c = room.id
    # carol's reply sits in bob's reply thread on the greeting.
    out_of_replies = await changed(app_engine, room.bob, f"{MOVE} RETURNING 1", c=c, m=room.in_thread, t=None)
    into_replies = await changed(app_engine, room.bob, f"{MOVE} RETURNING 1", c=c, m=room.later, t=room.thread)
    by_an_observer = await changed(app_engine, room.olive, f"{MOVE} RETURNING 1", c=c, m=room.in_thread, t=None)
    where = await attempt(
        app_engine,
        room.alice,
        "SELECT thread_id FROM messaging.messages WHERE conversation_id = :c AND id = :m",
        c=c,
        m=room.in_thread,
    )

    assert (out_of_replies, into_replies, by_an_observer) == (
        "RM409 message-in-reply-thread",
        "RM404 thread-not-found",
        "RM403 not-allowed",
    )
    assert where == room.thread
