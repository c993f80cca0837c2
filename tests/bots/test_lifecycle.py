"""Bots through their whole life: who may add one to a conversation (its owner, an
administrator, a holder of chat:robot:add there); what guests never learn of its
messages (not in their unread counts, not through the files they carry); a streamed
answer it abandons ends as failed; a new webhook secret that does not lose a delivery;
deleting it takes it out of every conversation with the deliveries still queued; and what
was delivered to it goes with the retention policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rapport.access import service as access_service
from rapport.bots import service
from rapport.bots.tasks import expire_streams
from rapport.compliance import service_retention
from rapport.kernel import jobs
from rapport.kernel.db import system_transaction, user_transaction
from tests.bots.support import Bot, add_bot, interactions_of, make_bot, verify
from tests.media.upload_support import MEDIA, png_bytes, upload
from tests.messaging.messages_support import events_of, listing, message_path
from tests.messaging.support import make_conversation, send
from tests.security.messaging_sql import DENIED, attempt
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


def speaking(bot: Bot) -> Persona:
    """The bot as a sender: its account, with its API key."""
    return Persona(name=bot.hook, email="", password="", user_id=bot.id, access_token=bot.key)


async def guest_room(client, app_engine, receiver, developer, bob, make_persona) -> tuple[UUID, Persona, Bot]:
    """Alice's (the developer's) room with bob (member), gus (guest) and her bot, whose
    messages guests do not see (the default)."""
    gus = await make_persona("gus")
    room = await make_conversation(app_engine, developer, bob, gus, roles={"gus": "guest"})
    bot = await make_bot(client, receiver, developer, "helper")
    await add_bot(client, developer, room, bot)
    return room, gus, bot


async def add(client, persona: Persona, conversation_id: UUID, bot: Bot):
    return await client.post(
        f"/v1/conversations/{conversation_id}/participants", headers=persona.headers, json={"user_id": bot.id}
    )


async def grant_robot_add(runtime, persona: Persona, conversation_id: UUID | None) -> None:
    """Give a persona chat:robot:add (for one conversation, or platform-wide) through a
    role of its own, as an access administrator would."""
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "INSERT INTO access.roles (id, name, description) VALUES (gen_random_uuid(), 'bot-adder', 'Adds bots')"
                " ON CONFLICT (name) DO NOTHING"
            )
        )
        await db.execute(
            text(
                "INSERT INTO access.role_permissions (role_id, permission)"
                " SELECT id, 'chat:robot:add' FROM access.roles WHERE name = 'bot-adder' ON CONFLICT DO NOTHING"
            )
        )
        await access_service.grant_role_system(db, UUID(persona.user_id), "bot-adder", conversation_id)


async def participant_status(runtime, conversation_id: UUID, user_id: str) -> str | None:
    async with system_transaction(runtime.system_engine) as db:
        return (
            await db.execute(
                text("SELECT status FROM messaging.participants WHERE conversation_id = :c AND user_id = :u"),
                {"c": conversation_id, "u": UUID(user_id)},
            )
        ).scalar_one_or_none()


# -- adding a bot ------------------------------------------------------------------------------


async def test_only_its_owner_adds_a_bot(client, app_engine, receiver, developer, bob, carol):
    bot = await make_bot(client, receiver, developer, "helper")
    bobs_room = await make_conversation(app_engine, bob, carol)
    alices_room = await make_conversation(app_engine, developer, carol)

    refused = await add(client, bob, bobs_room, bot)
    added = await add(client, developer, alices_room, bot)

    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem_type(refused) == "bot-add-not-allowed"
    assert added.status_code == 201, added.text


async def test_no_other_way_puts_someone_elses_bot_in_a_conversation(client, receiver, developer, bob):
    bot = await make_bot(client, receiver, developer, "helper")

    made = await client.post(
        "/v1/conversations", headers=bob.headers, json={"type": "group", "name": "Mine", "participant_ids": [bot.id]}
    )
    direct = await client.post(
        "/v1/conversations", headers=bob.headers, json={"type": "direct", "participant_ids": [bot.id]}
    )

    assert (made.status_code, problem_type(made)) == (403, "bot-add-not-allowed")
    assert (direct.status_code, problem_type(direct)) == (403, "bot-add-not-allowed")
    mine = await client.get("/v1/conversations", headers=bob.headers)
    assert mine.json()["items"] == []  # neither was made


async def test_an_administrator_adds_anyones_bot(client, app_engine, receiver, developer, admin, carol):
    bot = await make_bot(client, receiver, developer, "helper")
    room = await make_conversation(app_engine, admin, carol)

    added = await add(client, admin, room, bot)

    assert added.status_code == 201, added.text


async def test_chat_robot_add_for_a_conversation_lets_one_add_a_bot_there_only(
    client, app_engine, runtime, receiver, developer, bob, carol
):
    bot = await make_bot(client, receiver, developer, "helper")
    granted_room = await make_conversation(app_engine, bob, carol)
    other_room = await make_conversation(app_engine, bob, carol)
    await grant_robot_add(runtime, bob, granted_room)

    elsewhere = await add(client, bob, other_room, bot)
    there = await add(client, bob, granted_room, bot)

    assert (elsewhere.status_code, problem_type(elsewhere)) == (403, "bot-add-not-allowed")
    assert there.status_code == 201, there.text


async def test_chat_robot_add_platform_wide_lets_one_add_a_bot_anywhere(
    client, app_engine, runtime, receiver, developer, bob, carol
):
    bot = await make_bot(client, receiver, developer, "helper")
    room = await make_conversation(app_engine, bob, carol)
    await grant_robot_add(runtime, bob, None)

    added = await add(client, bob, room, bot)

    assert added.status_code == 201, added.text


async def test_a_bot_joins_a_public_channel_by_itself(client, app_engine, runtime, receiver, developer, bob):
    bot = await make_bot(client, receiver, developer, "helper")
    channel = await make_conversation(app_engine, bob, type="channel", is_public=True)

    joined = await client.post(f"/v1/conversations/{channel}/join", headers=bot.headers)

    assert joined.status_code in (200, 201), joined.text
    assert await participant_status(runtime, channel, bot.id) == "active"


# -- guests: unread counts and files ---------------------------------------------------------


async def test_a_guests_unread_count_leaves_out_what_is_hidden_from_guests(
    client, app_engine, receiver, developer, bob, make_persona
):
    room, gus, bot = await guest_room(client, app_engine, receiver, developer, bob, make_persona)
    welcome = await send(client, developer, room, "Welcome")
    await send(client, speaking(bot), room, "Note for agents: VIP customer")
    await send(client, speaking(bot), room, "Suggested answer: refund")
    await send(client, developer, room, "How can we help?")

    assert (await listing(client, gus, room))["unread_count"] == 2
    assert (await listing(client, bob, room))["unread_count"] == 4

    read = await client.post(f"/v1/conversations/{room}/read", headers=gus.headers, json={"message_id": welcome["id"]})
    assert read.status_code == 200, read.text
    assert read.json()["unread_count"] == 1
    delivered = await client.post(
        f"/v1/conversations/{room}/delivered", headers=gus.headers, json={"message_id": welcome["id"]}
    )
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["unread_count"] == 1
    unread = await client.post(
        f"/v1/conversations/{room}/unread", headers=gus.headers, json={"message_id": welcome["id"]}
    )
    assert unread.json()["unread_count"] == 2
    assert (await listing(client, gus, room))["unread_count"] == 2
    # Everyone else counts as before.
    bobs = await client.post(f"/v1/conversations/{room}/read", headers=bob.headers, json={"message_id": welcome["id"]})
    assert bobs.json()["unread_count"] == 3


async def test_a_guests_unread_count_leaves_out_what_is_deleted_or_hidden_by_them(
    client, app_engine, receiver, developer, bob, make_persona
):
    room, gus, bot = await guest_room(client, app_engine, receiver, developer, bob, make_persona)
    await send(client, speaking(bot), room, "Internal")
    gone = await send(client, developer, room, "Oops")
    mine = await send(client, developer, room, "Hide me")
    await send(client, developer, room, "Still here")
    deleted = await client.delete(message_path(room, gone["id"]), headers=developer.headers)
    assert deleted.status_code == 204, deleted.text
    hidden = await client.post(f"{message_path(room, mine['id'])}/hide", headers=gus.headers)
    assert hidden.status_code == 204, hidden.text

    assert (await listing(client, gus, room))["unread_count"] == 1
    assert (await listing(client, bob, room))["unread_count"] == 3


async def test_a_guest_does_not_read_a_file_of_a_message_hidden_from_them(
    client, app_engine, receiver, developer, bob, make_persona, deliveries
):
    room, gus, bot = await guest_room(client, app_engine, receiver, developer, bob, make_persona)
    uploaded = await upload(client, speaking(bot), png_bytes(16, 16), name="notes.png", content_type="image/png")
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["id"]
    shown = await upload(client, developer, png_bytes(16, 16), name="hello.png", content_type="image/png")
    await deliveries.worker.wait_idle()  # scanned: others may read them
    await send(client, speaking(bot), room, "For agents", attachments=[file_id])
    await send(client, developer, room, "For everyone", attachments=[shown.json()["id"]])

    for path in ("", "/content"):
        as_guest = await client.get(f"{MEDIA}/{file_id}{path}", headers=gus.headers)
        missing = await client.get(f"{MEDIA}/{UUID(int=7)}{path}", headers=gus.headers)
        assert (as_guest.status_code, problem_type(as_guest)) == (missing.status_code, problem_type(missing))
        assert as_guest.status_code == 404
        assert (await client.get(f"{MEDIA}/{file_id}{path}", headers=bob.headers)).status_code == 200
    assert (await client.get(f"{MEDIA}/{shown.json()['id']}/content", headers=gus.headers)).status_code == 200
    # Nor, in SQL as the server's role, which message carries it.
    for persona, seen in ((gus, 0), (bob, 1)):
        async with user_transaction(app_engine, UUID(persona.user_id)) as db:
            count = (
                await db.execute(
                    text("SELECT count(*) FROM media.attachments WHERE file_id = :f"), {"f": UUID(file_id)}
                )
            ).scalar_one()
        assert count == seen, persona.name


# -- abandoned streams -------------------------------------------------------------------------


async def fail_abandoned(runtime, *, opened_before: datetime) -> int:
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_fail_abandoned_streams(db, opened_before=opened_before)


async def delivery_status(client, persona: Persona, room: UUID, message_id: str) -> str:
    response = await client.get(message_path(room, message_id), headers=persona.headers)
    assert response.status_code == 200, response.text
    return str(response.json()["delivery_status"])


async def test_a_bots_stream_left_open_ends_as_failed_as_its_own_failure_would(
    client, app_engine, runtime, receiver, developer, bob, make_persona
):
    room, _, bot = await guest_room(client, app_engine, receiver, developer, bob, make_persona)
    broke_off = await send(client, speaking(bot), room, "Let me check", streaming=True)
    failed = await client.post(
        f"{message_path(room, broke_off['id'])}/stream", headers=bot.headers, json={"failed": True}
    )
    assert failed.status_code == 200, failed.text
    abandoned = await send(client, speaking(bot), room, "Thinking", streaming=True)
    persons = await send(client, bob, room, "Typing", streaming=True)

    # Opened after the moment: left alone.
    assert await fail_abandoned(runtime, opened_before=datetime.now(UTC) - timedelta(hours=1)) == 0
    assert await delivery_status(client, bob, room, abandoned["id"]) == "streaming"
    assert await fail_abandoned(runtime, opened_before=datetime.now(UTC) + timedelta(seconds=5)) == 1

    assert await delivery_status(client, bob, room, abandoned["id"]) == "failed"
    assert await delivery_status(client, bob, room, persons["id"]) == "streaming"  # a person's: not a bot's
    ended = [e for e in await events_of(runtime, room) if e["type"] == "message.stream.ended"]
    [own] = [e["payload"] for e in ended if e["payload"]["message_id"] == broke_off["id"]]
    [expired] = [e for e in ended if e["payload"]["message_id"] == abandoned["id"]]
    assert expired["payload"].keys() == own.keys()
    assert expired["payload"] == {
        "message_id": abandoned["id"],
        "seq": abandoned["seq"],
        "delivery_status": "failed",
        "length": len("Thinking"),
        "hidden_from_guests": True,
    }
    assert expired["actor_id"] is None
    # The bot comes back too late.
    late = await client.post(
        f"{message_path(room, abandoned['id'])}/stream", headers=bot.headers, json={"append": " more"}
    )
    assert (late.status_code, problem_type(late)) == (409, "message-not-streaming")
    assert await fail_abandoned(runtime, opened_before=datetime.now(UTC) + timedelta(seconds=5)) == 0


async def test_the_job_ends_streams_open_past_the_setting(
    client, app, app_engine, runtime, receiver, developer, bob, deliveries
):
    room = await make_conversation(app_engine, developer, bob)
    bot = await make_bot(client, receiver, developer, "helper")
    await add_bot(client, developer, room, bot)
    opened = await send(client, speaking(bot), room, "Thinking", streaming=True)
    settings = app.state.runtime.settings
    # Every stream opened before the job runs is past a timeout this short.
    app.state.runtime.settings = settings.model_copy(update={"bot_stream_timeout_s": 0.001})
    try:
        async with system_transaction(runtime.system_engine) as db:
            await jobs.enqueue(db, expire_streams, {})
        await deliveries.worker.wait_idle()
    finally:
        app.state.runtime.settings = settings

    assert await delivery_status(client, bob, room, opened["id"]) == "failed"


async def test_ending_abandoned_streams_is_system_work_alone(
    client, app_engine, runtime, receiver, developer, bob, mallory
):
    """bots.fail_abandoned_streams, a definer, out of context: the server's role may not
    call it (whoever acts), and the worker's role only in a system transaction."""
    room = await make_conversation(app_engine, developer, bob)
    bot = await make_bot(client, receiver, developer, "helper")
    await add_bot(client, developer, room, bot)
    opened = await send(client, speaking(bot), room, "Thinking", streaming=True)
    statement = "SELECT count(*) FROM bots.fail_abandoned_streams(now() + interval '1 minute', 100)"

    for who in (mallory, developer, None):
        assert await attempt(app_engine, who, statement) == DENIED
    async with runtime.system_engine.engine.connect() as db:
        with pytest.raises(DBAPIError, match="system work"):
            await db.execute(text(statement))

    assert await delivery_status(client, bob, room, opened["id"]) == "streaming"


def test_the_round_looks_often_enough_for_the_timeout(runtime):
    """Once a minute, or twice per timeout when the timeout is shorter than two minutes."""
    assert runtime.settings.bot_stream_timeout_s == 300
    assert service.rounds(runtime)._every == 60
    short = runtime.settings.model_copy(update={"bot_stream_timeout_s": 30})
    original, runtime.settings = runtime.settings, short
    try:
        assert service.rounds(runtime)._every == 15
    finally:
        runtime.settings = original


# -- webhook secrets ---------------------------------------------------------------------------


def v1_count(header: str) -> int:
    return sum(1 for part in header.split(",") if part.startswith("v1="))


async def test_a_new_webhook_secret_signs_beside_the_old_one_for_a_while(
    client, app_engine, runtime, receiver, developer, bob, deliveries
):
    room = await make_conversation(app_engine, developer, bob)
    bot = await make_bot(client, receiver, developer, "helper", receives="all")
    await add_bot(client, developer, room, bot)

    rotated = await client.post(f"/v1/bots/{bot.id}/webhook-secret", headers=developer.headers)

    assert rotated.status_code == 200, rotated.text
    secret = rotated.json()["webhook_secret"]
    assert secret.startswith("whsec_") and secret != bot.secret
    until = datetime.fromisoformat(rotated.json()["previous_webhook_secret_until"])
    assert timedelta(hours=23) < until - datetime.now(UTC) <= service.SECRET_GRACE
    shown = (await client.get(f"/v1/bots/{bot.id}", headers=developer.headers)).json()
    assert datetime.fromisoformat(shown["previous_webhook_secret_until"]) == until
    assert secret not in str(shown) and bot.secret not in str(shown)

    # A receiver still on the old secret, then one switched to the new: neither refuses.
    await send(client, bob, room, "first")
    await deliveries.until(lambda: _received(receiver, 1))
    receiver.expect("helper", secret)
    await send(client, bob, room, "second")
    await deliveries.until(lambda: _received(receiver, 2))
    first, second = receiver.to("helper")
    assert receiver.refused == []
    for delivery in (first, second):
        header = delivery.headers["rapport-signature"]
        raw = orjson.dumps(delivery.body)
        assert v1_count(header) == 2
        assert verify(secret, header, raw) is None and verify(bot.secret, header, raw) is None

    # Once the grace is over, the new secret alone signs.
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("UPDATE bots.bots SET previous_webhook_secret_until = now() - interval '1 second' WHERE id = :b"),
            {"b": UUID(bot.id)},
        )
    await send(client, bob, room, "third")
    await deliveries.until(lambda: _received(receiver, 3))
    third = receiver.to("helper")[2]
    header, raw = third.headers["rapport-signature"], orjson.dumps(third.body)
    assert v1_count(header) == 1
    assert verify(secret, header, raw) is None
    assert verify(bot.secret, header, raw) == "wrong signature"


async def _received(receiver, count: int) -> bool:
    return len(receiver.to("helper")) >= count


async def test_a_second_rotation_leaves_only_the_latest_two_secrets(
    client, app_engine, receiver, developer, bob, deliveries
):
    room = await make_conversation(app_engine, developer, bob)
    bot = await make_bot(client, receiver, developer, "helper", receives="all")
    await add_bot(client, developer, room, bot)
    middle = (await client.post(f"/v1/bots/{bot.id}/webhook-secret", headers=developer.headers)).json()
    latest = (await client.post(f"/v1/bots/{bot.id}/webhook-secret", headers=developer.headers)).json()
    receiver.expect("helper", latest["webhook_secret"])

    await send(client, bob, room, "hello")
    await deliveries.until(lambda: _received(receiver, 1))

    [delivery] = receiver.to("helper")
    header, raw = delivery.headers["rapport-signature"], orjson.dumps(delivery.body)
    assert v1_count(header) == 2
    assert verify(middle["webhook_secret"], header, raw) is None
    assert verify(bot.secret, header, raw) == "wrong signature"


async def test_only_whoever_manages_a_bot_rotates_its_secret(client, runtime, receiver, developer, bob, admin):
    bot = await make_bot(client, receiver, developer, "helper")

    strangers = await client.post(f"/v1/bots/{bot.id}/webhook-secret", headers=bob.headers)
    its_own = await client.post(f"/v1/bots/{bot.id}/webhook-secret", headers=bot.headers)
    administrators = await client.post(f"/v1/bots/{bot.id}/webhook-secret", headers=admin.headers)

    assert (strangers.status_code, problem_type(strangers)) == (404, "bot-not-found")
    assert problem_type(its_own) == "session-required"
    assert administrators.status_code == 200, administrators.text
    events = await events_of(runtime, developer.user_id, kind="user")
    [told] = [e["payload"] for e in events if e["type"] == "bot.webhook_secret_rotated"]
    assert told["bot_id"] == bot.id


async def test_the_audit_never_holds_a_webhook_secret(client, runtime, receiver, developer):
    bot = await make_bot(client, receiver, developer, "helper")
    await client.post(f"/v1/bots/{bot.id}/webhook-secret", headers=developer.headers)

    async with system_transaction(runtime.system_engine) as db:
        rows = (
            await db.execute(
                text(
                    "SELECT old_data, new_data, changed_fields FROM audit.record_changes"
                    " WHERE schema_name = 'bots' AND table_name = 'bots' ORDER BY id"
                )
            )
        ).all()

    assert rows, "the bot's changes are audited"
    assert "webhook_secret" in rows[-1].changed_fields
    for row in rows:
        for data in (row.old_data or {}, row.new_data or {}):
            assert "webhook_secret" not in data and "previous_webhook_secret" not in data


# -- deleting a bot ----------------------------------------------------------------------------


async def queued_deliveries(runtime) -> list[Any]:
    async with system_transaction(runtime.system_engine) as db:
        return list(await db.execute(text("SELECT id, status FROM kernel.jobs WHERE task = 'bots.deliver'")))


async def test_a_deleted_bot_leaves_every_conversation_and_its_queued_deliveries_go(
    client, app_engine, runtime, receiver, developer, bob, carol, deliveries
):
    bot = await make_bot(client, receiver, developer, "helper", receives="all")
    first = await make_conversation(app_engine, developer, bob)
    second = await make_conversation(app_engine, developer, carol)
    left_already = await make_conversation(app_engine, developer, carol)
    for room in (first, second, left_already):
        await add_bot(client, developer, room, bot)
    gone = await client.post(f"/v1/conversations/{left_already}/leave", headers=bot.headers)
    assert gone.status_code == 204, gone.text
    await deliveries.worker.stop(grace_seconds=2)  # what is queued stays queued
    await send(client, bob, first, "Are you there?")
    assert await service.dispatch_all(runtime.system_engine) == 1
    assert len(await queued_deliveries(runtime)) == 1

    deleted = await client.delete(f"/v1/bots/{bot.id}", headers=developer.headers)

    assert deleted.status_code == 204, deleted.text
    assert await participant_status(runtime, first, bot.id) == "removed"
    assert await participant_status(runtime, second, bot.id) == "removed"
    assert await participant_status(runtime, left_already, bot.id) == "left"
    for room in (first, second):
        [left] = [e for e in await events_of(runtime, room) if e["type"] == "participant.left"]
        assert left["payload"] == {"conversation_id": str(room), "user_id": bot.id, "status": "removed"}
    participants = await client.get(f"/v1/conversations/{first}/participants", headers=bob.headers)
    assert bot.id not in [p["user_id"] for p in participants.json()["items"] if p["status"] == "active"]
    assert await queued_deliveries(runtime) == []
    assert await interactions_of(runtime, bot) == []
    deliveries.worker.start()
    await deliveries.settle()
    assert receiver.to("helper") == []


# -- retention ---------------------------------------------------------------------------------


async def test_what_was_delivered_to_a_bot_goes_after_ninety_days(
    client, app_engine, runtime, receiver, developer, bob, deliveries
):
    room = await make_conversation(app_engine, developer, bob)
    bot = await make_bot(client, receiver, developer, "helper", receives="all")
    await add_bot(client, developer, room, bot)
    await send(client, bob, room, "hello")
    await deliveries.until(lambda: _received(receiver, 1))
    [made] = await interactions_of(runtime, bot)
    settings = runtime.settings

    kept = await service_retention.apply_policies(
        runtime.system_engine, settings=settings, now=made.created_at + timedelta(days=89), only=["bot_interactions"]
    )
    assert [outcome.count for outcome in kept.outcomes] == [0]
    assert len(await interactions_of(runtime, bot)) == 1

    removed = await service_retention.apply_policies(
        runtime.system_engine, settings=settings, now=made.created_at + timedelta(days=91), only=["bot_interactions"]
    )
    assert [(outcome.count, outcome.error) for outcome in removed.outcomes] == [(1, None)]
    assert await interactions_of(runtime, bot) == []
