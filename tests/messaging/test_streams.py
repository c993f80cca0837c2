"""Streamed messages (POST .../messages/{id}/stream) and bot messages hidden from guests.

Alice streams an answer in a group with bob; mallory is a stranger. In the guest tests a
bot (robo, speaking with its API key) talks in a room where gus takes part as a guest."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.messaging import service as messaging_service
from tests.messaging.messages_support import as_superuser, events_of, history, listing, message_path
from tests.messaging.streams_support import api_key_of, make_bot, step, synced
from tests.messaging.support import make_conversation, send
from tests.support import problem_type

pytestmark = pytest.mark.module_database


async def events_about(runtime, conversation_id: UUID, message_id: str) -> list[dict[str, Any]]:
    return [e for e in await events_of(runtime, conversation_id) if e["payload"].get("message_id") == message_id]


async def get_message(client, persona, conversation_id: UUID, message_id: str) -> dict[str, Any]:
    response = await client.get(message_path(conversation_id, message_id), headers=persona.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- streaming -----------------------------------------------------------------------------


async def test_a_streamed_message_grows_in_place_and_every_step_is_an_event(client, app_engine, runtime, alice, bob):
    room = await make_conversation(app_engine, alice, bob)
    opened = await send(client, alice, room, "", streaming=True)
    assert opened["delivery_status"] == "streaming" and opened["content"] == ""

    first = await step(client, alice, room, opened["id"], append="Hello")
    assert first.status_code == 200, first.text
    assert first.json() == {
        "id": opened["id"],
        "conversation_id": str(room),
        "seq": opened["seq"],
        "delivery_status": "streaming",
        "length": 5,
    }
    assert (await get_message(client, bob, room, opened["id"]))["content"] == "Hello"
    await step(client, alice, room, opened["id"], append=", world")
    ended = await step(client, alice, room, opened["id"], done=True)
    assert ended.json()["delivery_status"] == "delivered" and ended.json()["length"] == 12

    message = await get_message(client, bob, room, opened["id"])
    assert message["content"] == "Hello, world" and message["delivery_status"] == "delivered"
    assert message["is_edited"] is False
    events = await events_about(runtime, room, opened["id"])
    assert [e["type"] for e in events] == [
        "message.stream.started",
        "message.streamed",
        "message.streamed",
        "message.stream.ended",
        "message.created",
    ]
    assert [(e["payload"]["append"], e["payload"]["length"]) for e in events[1:3]] == [("Hello", 5), (", world", 12)]
    assert events[3]["payload"]["delivery_status"] == "delivered"
    assert events[4]["payload"]["sender_id"] == alice.user_id


async def test_appends_make_no_versions_and_history_shows_the_stream(client, app_engine, alice, bob):
    room = await make_conversation(app_engine, alice, bob)
    opened = await send(client, alice, room, "Thinking", streaming=True)
    await step(client, alice, room, opened["id"], append="...")
    edits = await client.get(message_path(room, opened["id"]) + "/edits", headers=bob.headers)
    assert edits.status_code == 200 and edits.json()["items"] == []
    [shown] = await history(client, bob, room)
    assert shown["content"] == "Thinking..." and shown["delivery_status"] == "streaming"


async def test_a_step_keeps_its_spaces_and_newlines(client, app_engine, alice, bob):
    room = await make_conversation(app_engine, alice, bob)
    opened = await send(client, alice, room, "", streaming=True)
    await step(client, alice, room, opened["id"], append="  one\r\n")
    await step(client, alice, room, opened["id"], append="\ttwo ", done=True)
    assert (await get_message(client, bob, room, opened["id"]))["content"] == "  one\n\ttwo "


async def test_a_failed_stream_keeps_what_it_had_and_is_never_created(client, app_engine, runtime, alice, bob):
    room = await make_conversation(app_engine, alice, bob)
    opened = await send(client, alice, room, "", streaming=True)
    broke = await step(client, alice, room, opened["id"], append="Half an ans", failed=True)
    assert broke.status_code == 200 and broke.json()["delivery_status"] == "failed"
    message = await get_message(client, bob, room, opened["id"])
    assert message["content"] == "Half an ans" and message["delivery_status"] == "failed"
    types = [e["type"] for e in await events_about(runtime, room, opened["id"])]
    assert types == ["message.stream.started", "message.streamed", "message.stream.ended"]


async def test_ordinary_messages_have_no_status_and_do_not_stream(client, app_engine, runtime, alice, bob):
    room = await make_conversation(app_engine, alice, bob)
    plain = await send(client, alice, room, "just words")
    assert plain["delivery_status"] is None
    refused = await step(client, alice, room, plain["id"], append="more")
    assert refused.status_code == 409 and problem_type(refused) == "message-not-streaming"
    assert [e["type"] for e in await events_about(runtime, room, plain["id"])] == ["message.created"]


@pytest.mark.parametrize("ending", [{"done": True}, {"failed": True}])
async def test_after_its_end_a_stream_takes_no_step(client, app_engine, alice, bob, ending):
    room = await make_conversation(app_engine, alice, bob)
    opened = await send(client, alice, room, "", streaming=True)
    assert (await step(client, alice, room, opened["id"], append="Done.", **ending)).status_code == 200
    for body in ({"append": "again"}, {"done": True}, {"failed": True}):
        late = await step(client, alice, room, opened["id"], **body)
        assert late.status_code == 409 and problem_type(late) == "message-not-streaming"


async def test_only_the_sender_streams_into_a_message(client, app_engine, alice, bob, mallory):
    room = await make_conversation(app_engine, alice, bob)
    opened = await send(client, alice, room, "", streaming=True)
    by_bob = await step(client, bob, room, opened["id"], append="hijack")
    assert by_bob.status_code == 403 and problem_type(by_bob) == "not-allowed-in-conversation"
    by_mallory = await step(client, mallory, room, opened["id"], append="hijack")
    assert by_mallory.status_code == 404 and problem_type(by_mallory) == "conversation-not-found"
    unknown = await step(client, alice, room, str(uuid7()), append="x")
    assert unknown.status_code == 404 and problem_type(unknown) == "message-not-found"
    assert (await get_message(client, bob, room, opened["id"]))["content"] == ""


async def test_a_silenced_sender_cannot_append_but_may_end_the_stream(client, app_engine, alice, bob):
    room = await make_conversation(app_engine, alice, bob)
    opened = await send(client, bob, room, "", streaming=True)
    silenced = await client.patch(
        f"/v1/conversations/{room}/participants/{bob.user_id}", json={"status": "muted"}, headers=alice.headers
    )
    assert silenced.status_code == 200, silenced.text
    refused = await step(client, bob, room, opened["id"], append="more")
    assert refused.status_code == 403 and problem_type(refused) == "cannot-send"
    assert (await step(client, bob, room, opened["id"], failed=True)).json()["delivery_status"] == "failed"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"append": ""},
        {"done": True, "failed": True},
        {"append": "bell \u0007"},
        {"append": "x" * 3501},
        {"append": "\u00e9" * 1751},
        {"append": 5},
        {"append": "x", "done": "yes"},
        {"append": "x", "colour": "red"},
    ],
)
async def test_a_malformed_step_is_a_422(client, app_engine, alice, bob, body):
    room = await make_conversation(app_engine, alice, bob)
    opened = await send(client, alice, room, "", streaming=True)
    response = await step(client, alice, room, opened["id"], **body)
    assert response.status_code == 422, response.text
    assert (await get_message(client, bob, room, opened["id"]))["content"] == ""


async def test_a_stream_stops_at_the_length_limit(client, app_engine, alice, bob):
    room = await make_conversation(app_engine, alice, bob)
    opened = await send(client, alice, room, "x" * 9_990, streaming=True)
    too_long = await step(client, alice, room, opened["id"], append="y" * 11)
    assert too_long.status_code == 422 and problem_type(too_long) == "message-too-long"
    fits = await step(client, alice, room, opened["id"], append="y" * 10, done=True)
    assert fits.status_code == 200 and fits.json()["length"] == 10_000


async def test_a_streaming_message_is_not_edited_until_it_ends(client, app_engine, alice, bob):
    room = await make_conversation(app_engine, alice, bob)
    opened = await send(client, alice, room, "Draft", streaming=True)
    refused = await client.patch(message_path(room, opened["id"]), json={"content": "Other"}, headers=alice.headers)
    assert refused.status_code == 409 and problem_type(refused) == "message-streaming"
    await step(client, alice, room, opened["id"], done=True)
    edited = await client.patch(message_path(room, opened["id"]), json={"content": "Final"}, headers=alice.headers)
    assert edited.status_code == 200 and edited.json()["is_edited"] is True
    edits = await client.get(message_path(room, opened["id"]) + "/edits", headers=alice.headers)
    assert [v["content"] for v in edits.json()["items"]] == ["Draft"]


async def test_a_streaming_message_may_be_deleted_and_then_takes_no_step(client, app_engine, alice, bob):
    room = await make_conversation(app_engine, alice, bob)
    opened = await send(client, alice, room, "", streaming=True)
    deleted = await client.delete(message_path(room, opened["id"]), headers=alice.headers)
    assert deleted.status_code == 204
    gone = await step(client, alice, room, opened["id"], append="late")
    assert gone.status_code == 404 and problem_type(gone) == "message-not-found"


async def test_notifications_hear_a_streamed_message_once_and_whole(client, app_engine, jobs_done, alice, bob):
    room = await make_conversation(app_engine, alice, bob)
    await jobs_done()  # the pipeline's cursor starts where it first reads: before the message
    opened = await send(client, alice, room, "", streaming=True)
    await step(client, alice, room, opened["id"], append="The answer")
    await jobs_done()
    mine = await client.get("/v1/notifications", headers=bob.headers)
    assert [n for n in mine.json()["items"] if n["related_id"] == opened["id"]] == []
    await step(client, alice, room, opened["id"], append=" is 42.", done=True)
    await jobs_done()
    mine = await client.get("/v1/notifications", headers=bob.headers)
    [told] = [n for n in mine.json()["items"] if n["conversation_id"] == str(room)]
    assert told["related_id"] == opened["id"] and told["bundle_count"] == 1
    assert "The answer is 42." in told["body"]


# -- hidden from guests ----------------------------------------------------------------------


async def guest_room(client, app_engine, database, make_persona, alice):
    """Alice's room with bob (member), gus (guest) and robo (a bot, speaking with its key)."""
    bob, gus, robo = await make_persona("bob"), await make_persona("gus"), await make_persona("robo")
    room = await make_conversation(app_engine, alice, bob, gus, robo, roles={"gus": "guest"})
    return room, bob, gus, await make_bot(client, database, robo)


async def hidden(runtime, room: UUID, message_id: str) -> bool:
    async with system_transaction(runtime.system_engine) as db:
        return bool(
            (
                await db.execute(
                    text("SELECT hidden_from_guests FROM messaging.messages WHERE conversation_id = :c AND id = :m"),
                    {"c": room, "m": UUID(message_id)},
                )
            ).scalar_one()
        )


async def test_a_bots_messages_are_hidden_from_guests_only(client, app_engine, runtime, database, make_persona, alice):
    room, bob, gus, robo = await guest_room(client, app_engine, database, make_persona, alice)
    said = await send(client, alice, room, "Welcome")
    answered = await send(client, robo, room, "I am the assistant")
    assert await hidden(runtime, room, answered["id"]) and not await hidden(runtime, room, said["id"])

    assert [m["content"] for m in await history(client, bob, room)] == ["I am the assistant", "Welcome"]
    assert [m["content"] for m in await history(client, gus, room)] == ["Welcome"]
    single = await client.get(message_path(room, answered["id"]), headers=gus.headers)
    assert single.status_code == 404 and problem_type(single) == "message-not-found"
    anchored = await client.get(
        f"/v1/conversations/{room}/messages", headers=gus.headers, params={"before": answered["id"]}
    )
    assert anchored.status_code == 404
    assert (await listing(client, gus, room))["last_message"]["content"] == "Welcome"
    assert (await listing(client, bob, room))["last_message"]["content"] == "I am the assistant"


async def test_guests_find_no_hidden_message_in_search(client, app_engine, database, make_persona, alice):
    room, bob, gus, robo = await guest_room(client, app_engine, database, make_persona, alice)
    await send(client, robo, room, "zebrafish protocol")
    await send(client, alice, room, "zebrafish welcome")

    async def found(persona) -> list[str]:
        response = await client.get("/v1/messages/search", headers=persona.headers, params={"q": "zebrafish"})
        assert response.status_code == 200, response.text
        return sorted(hit["content"] for hit in response.json()["items"])

    assert await found(bob) == ["zebrafish protocol", "zebrafish welcome"]
    assert await found(gus) == ["zebrafish welcome"]


async def test_a_person_speaking_with_an_api_key_is_seen_by_guests(client, app_engine, database, make_persona, alice):
    room, _, gus, _ = await guest_room(client, app_engine, database, make_persona, alice)
    script = await api_key_of(client, alice)
    await send(client, script, room, "From alice's script")
    assert [m["content"] for m in await history(client, gus, room)] == ["From alice's script"]


async def test_guests_receive_no_event_of_a_hidden_message(client, app_engine, runtime, database, make_persona, alice):
    room, bob, gus, robo = await guest_room(client, app_engine, database, make_persona, alice)
    opened = await send(client, robo, room, "", streaming=True)
    await step(client, robo, room, opened["id"], append="secret plan", done=True)
    await send(client, alice, room, "hello all")

    def about(events):
        return [e["type"] for e in events if e["payload"].get("message_id") == opened["id"]]

    assert about(await synced(client, runtime, bob)) == [
        "message.stream.started",
        "message.streamed",
        "message.stream.ended",
        "message.created",
    ]
    guest_events = await synced(client, runtime, gus)
    assert about(guest_events) == []
    assert "message.created" in [e["type"] for e in guest_events]  # alice's


async def test_a_guest_made_member_reads_what_was_hidden(client, app_engine, database, make_persona, alice):
    room, _, gus, robo = await guest_room(client, app_engine, database, make_persona, alice)
    await send(client, robo, room, "for members")
    promoted = await client.patch(
        f"/v1/conversations/{room}/participants/{gus.user_id}", json={"role": "member"}, headers=alice.headers
    )
    assert promoted.status_code == 200, promoted.text
    assert [m["content"] for m in await history(client, gus, room)] == ["for members"]


async def test_guests_are_not_notified_of_a_hidden_message(
    client, app_engine, jobs_done, database, make_persona, alice
):
    room, bob, gus, robo = await guest_room(client, app_engine, database, make_persona, alice)
    await jobs_done()  # the pipeline's cursor starts where it first reads: before the message
    await send(client, robo, room, "internal note")
    await jobs_done()
    for persona, count in ((bob, 1), (gus, 0)):
        mine = await client.get("/v1/notifications", headers=persona.headers)
        assert len([n for n in mine.json()["items"] if n["conversation_id"] == str(room)]) == count


async def test_a_bot_visible_to_guests_is_seen_by_them(client, app_engine, runtime, database, make_persona, alice):
    room, _, gus, robo = await guest_room(client, app_engine, database, make_persona, alice)
    await as_superuser(
        database,
        "INSERT INTO bots.bots (id, name, webhook_url, webhook_secret, is_visible_to_guests)"
        " VALUES ($1, 'robo', 'https://bots.example/hook', '\\x00'::bytea, true)",
        UUID(robo.user_id),
    )
    shown = await send(client, robo, room, "Hello, guest")
    assert not await hidden(runtime, room, shown["id"])
    assert [m["content"] for m in await history(client, gus, room)] == ["Hello, guest"]


async def test_a_guest_is_never_mentioned_in_a_hidden_message(client, app_engine, database, make_persona, alice):
    room, bob, gus, robo = await guest_room(client, app_engine, database, make_persona, alice)
    said = await send(client, robo, room, "@bob @gus", mentions=[bob.user_id, gus.user_id])
    assert said["mentions"] == [bob.user_id]


async def test_the_audience_of_a_hidden_message_leaves_guests_out(
    client, app_engine, runtime, database, make_persona, alice
):
    room, bob, _, robo = await guest_room(client, app_engine, database, make_persona, alice)
    said = await send(client, robo, room, "agents only")
    async with system_transaction(runtime.system_engine) as db:
        audience = await messaging_service.get_message_audience(
            db, conversation_id=room, seq=said["seq"], message_id=UUID(said["id"]), sender_id=UUID(robo.user_id)
        )
    assert audience is not None
    assert set(audience.muted) == {UUID(alice.user_id), UUID(bob.user_id)}
