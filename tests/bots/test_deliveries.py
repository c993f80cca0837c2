"""Deliveries to bots' webhooks: each message a bot is to hear is POSTed, signed, to its
webhook by a job, after the send has committed; every attempt is recorded on its
interaction (GET /v1/bots/{id}/interactions), and a receiver that fails is retried with
backoff until the job's attempts are spent. The receiver is a real HTTP server that
checks each signature as a bot's own server would."""

from __future__ import annotations

import time
from uuid import UUID

import orjson
import pytest
from sqlalchemy import text

from rapport.bots import service
from rapport.bots.tasks import MAX_ATTEMPTS
from rapport.kernel.db import system_transaction
from tests.bots.support import add_bot, dead_deliveries, interactions_of, make_bot, verify
from tests.messaging.support import make_conversation, send

pytestmark = pytest.mark.module_database


@pytest.fixture
async def room(app_engine, developer, bob) -> UUID:
    """Alice (who makes bots) and bob's group."""
    return await make_conversation(app_engine, developer, bob)


async def test_a_mention_reaches_the_webhook_signed(client, runtime, deliveries, receiver, developer, bob, room):
    bot = await make_bot(client, receiver, developer, "helper")
    await add_bot(client, developer, room, bot)

    message = await send(client, bob, room, "@helper what time is it?", mentions=[bot.id])
    await deliveries.settle()

    [delivery] = receiver.to("helper")
    [interaction] = await interactions_of(runtime, bot)
    assert receiver.refused == []
    assert delivery.headers["rapport-delivery"] == str(interaction.id) == delivery.body["id"]
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.body["type"] == "message.created" and delivery.body["bot_id"] == bot.id
    assert delivery.body["conversation_id"] == str(room)
    assert delivery.body["message"]["id"] == message["id"]
    assert delivery.body["message"]["content"] == "@helper what time is it?"
    assert delivery.body["message"]["sender_id"] == bob.user_id
    assert (interaction.status, interaction.attempts, interaction.http_status) == ("completed", 1, 200)
    assert interaction.response_data == {"ok": True} and interaction.completed_at is not None
    assert [(a["attempt"], a["http_status"], a["error"]) for a in interaction.observation_data] == [(1, 200, None)]


def test_the_signature_is_what_a_receiver_computes():
    body = orjson.dumps({"id": "x", "message": {"content": "héllo"}})
    header = service.signature("whsec_test", timestamp=int(time.time()), body=body)

    assert verify("whsec_test", header, body) is None
    assert verify("whsec_other", header, body) == "wrong signature"
    assert verify("whsec_test", header, body + b" ") == "wrong signature"
    assert verify("whsec_test", header, body, now=time.time() + 3600) == "stale timestamp"


async def test_a_bot_hears_mentions_only_unless_it_asked_for_all(
    client, runtime, deliveries, receiver, developer, bob, room
):
    shy = await make_bot(client, receiver, developer, "shy")
    keen = await make_bot(client, receiver, developer, "keen", receives="all")
    await add_bot(client, developer, room, shy)
    await add_bot(client, developer, room, keen)

    await send(client, bob, room, "Good morning")
    await send(client, developer, room, "Shy, a word?", mentions=[shy.id])
    await deliveries.settle()

    assert [d.body["message"]["content"] for d in receiver.to("shy")] == ["Shy, a word?"]
    assert [d.body["message"]["content"] for d in receiver.to("keen")] == ["Good morning", "Shy, a word?"]


async def test_a_bots_own_messages_are_not_echoed_and_other_bots_hear_them_when_mentioned(
    client, runtime, deliveries, receiver, developer, room
):
    echo = await make_bot(client, receiver, developer, "echo", receives="all")
    other = await make_bot(client, receiver, developer, "other", receives="all")
    await add_bot(client, developer, room, echo)
    await add_bot(client, developer, room, other)

    reply = await client.post(
        f"/v1/conversations/{room}/messages", headers=echo.headers, json={"content": "I am a bot"}
    )
    await client.post(
        f"/v1/conversations/{room}/messages",
        headers=echo.headers,
        json={"content": "Other, over to you", "mentions": [other.id]},
    )
    await deliveries.settle()

    assert reply.status_code == 201, reply.text
    assert reply.json()["sender_id"] == echo.id
    assert receiver.to("echo") == []
    assert [d.body["message"]["content"] for d in receiver.to("other")] == ["Other, over to you"]


async def test_a_failing_receiver_is_retried_then_the_delivery_fails(
    client, runtime, deliveries, receiver, developer, bob, room
):
    bot = await make_bot(client, receiver, developer, "flaky")
    await add_bot(client, developer, room, bot)
    receiver.fail_next(503, times=MAX_ATTEMPTS)

    await send(client, bob, room, "Anyone there?", mentions=[bot.id])

    async def spent() -> bool:
        [interaction] = await interactions_of(runtime, bot)
        return interaction.attempts == MAX_ATTEMPTS and interaction.status == "failed"

    await deliveries.until(spent)
    [interaction] = await interactions_of(runtime, bot)
    assert receiver.to("flaky") == [] and receiver.refused == []
    assert interaction.http_status == 503 and interaction.error_message == "The webhook answered 503."
    assert interaction.completed_at is not None and interaction.response_data == {"error": "busy"}
    assert [(a["attempt"], a["http_status"]) for a in interaction.observation_data] == [
        (n, 503) for n in range(1, MAX_ATTEMPTS + 1)
    ]
    [dead] = [job for job in await dead_deliveries(runtime) if job.task == "bots.deliver"]
    assert dead.attempts == MAX_ATTEMPTS and "503" in (dead.last_error or "")


async def test_a_receiver_back_after_failures_gets_the_delivery_once(
    client, runtime, deliveries, receiver, developer, bob, room
):
    bot = await make_bot(client, receiver, developer, "slow")
    await add_bot(client, developer, room, bot)
    receiver.fail_next(500, times=2)

    await send(client, bob, room, "Ping", mentions=[bot.id])

    async def delivered() -> bool:
        return bool(receiver.to("slow"))

    await deliveries.until(delivered)
    [interaction] = await interactions_of(runtime, bot)
    assert len(receiver.to("slow")) == 1
    assert (interaction.status, interaction.attempts, interaction.error_message) == ("completed", 3, None)
    assert [a["http_status"] for a in interaction.observation_data] == [500, 500, 200]


async def test_the_owner_reads_the_interactions(client, deliveries, receiver, developer, bob, room):
    bot = await make_bot(client, receiver, developer, "helper", receives="all")
    await add_bot(client, developer, room, bot)
    for word in ("one", "two", "three"):
        await send(client, bob, room, word)
    await deliveries.settle()

    first = await client.get(f"/v1/bots/{bot.id}/interactions", headers=developer.headers, params={"limit": 2})
    rest = await client.get(
        f"/v1/bots/{bot.id}/interactions", headers=developer.headers, params={"cursor": first.json()["next"]}
    )
    completed = await client.get(
        f"/v1/bots/{bot.id}/interactions", headers=developer.headers, params={"status": "failed"}
    )

    assert first.status_code == 200, first.text
    items = first.json()["items"] + rest.json()["items"]
    assert [i["request_data"]["message"]["content"] for i in items] == ["three", "two", "one"]
    assert {(i["status"], i["attempts"], i["http_status"]) for i in items} == {("completed", 1, 200)}
    assert completed.json()["items"] == []
    refused = await client.get(f"/v1/bots/{bot.id}/interactions", headers=developer.headers, params={"status": "x"})
    assert refused.status_code == 422


async def test_a_bot_removed_from_a_conversation_hears_nothing_more(
    client, runtime, deliveries, receiver, developer, bob, room
):
    bot = await make_bot(client, receiver, developer, "helper", receives="all")
    await add_bot(client, developer, room, bot)
    await send(client, bob, room, "Before")

    removed = await client.delete(f"/v1/conversations/{room}/participants/{bot.id}", headers=developer.headers)
    await send(client, bob, room, "After", mentions=[bot.id])
    await deliveries.settle()

    assert removed.status_code == 204, removed.text
    assert [d.body["message"]["content"] for d in receiver.to("helper")] == ["Before"]


async def test_a_bot_hears_nothing_sent_before_it_joined(client, deliveries, receiver, developer, bob, room):
    await send(client, bob, room, "Earlier")
    bot = await make_bot(client, receiver, developer, "helper", receives="all")
    await add_bot(client, developer, room, bot)
    await send(client, bob, room, "Later")
    await deliveries.settle()

    assert [d.body["message"]["content"] for d in receiver.to("helper")] == ["Later"]


async def test_a_disabled_bot_hears_nothing(client, deliveries, receiver, developer, bob, room):
    bot = await make_bot(client, receiver, developer, "helper", receives="all")
    await add_bot(client, developer, room, bot)
    await client.patch(f"/v1/bots/{bot.id}", headers=developer.headers, json={"status": "disabled"})

    await send(client, bob, room, "Hello?")
    await deliveries.settle()

    assert receiver.to("helper") == []


async def test_a_bot_in_another_conversation_hears_nothing_of_this_one(
    client, app_engine, deliveries, receiver, developer, bob, carol, room
):
    bot = await make_bot(client, receiver, developer, "helper", receives="all")
    elsewhere = await make_conversation(app_engine, developer, carol)
    await add_bot(client, developer, elsewhere, bot)

    await send(client, bob, room, "Not for the bot", mentions=[bot.id])
    await deliveries.settle()

    assert receiver.to("helper") == []


async def test_each_message_is_delivered_once_however_often_the_dispatcher_runs(
    client, runtime, deliveries, receiver, developer, bob, room
):
    bot = await make_bot(client, receiver, developer, "helper", receives="all")
    await add_bot(client, developer, room, bot)
    await send(client, bob, room, "Once")

    await deliveries.settle()
    await service.dispatch_all(runtime.system_engine)
    await deliveries.settle()

    assert len(receiver.to("helper")) == 1
    assert len(await interactions_of(runtime, bot)) == 1


async def test_guests_see_a_bots_messages_only_when_it_says_so(client, runtime, receiver, developer, room):
    hidden = await make_bot(client, receiver, developer, "hidden")
    shown = await make_bot(client, receiver, developer, "shown", is_visible_to_guests=True)
    sent = {}
    for bot in (hidden, shown):
        await add_bot(client, developer, room, bot)
        answer = await client.post(f"/v1/conversations/{room}/messages", headers=bot.headers, json={"content": "Hi"})
        assert answer.status_code == 201, answer.text
        sent[bot.hook] = UUID(answer.json()["id"])

    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(
            text("SELECT id, hidden_from_guests FROM messaging.messages WHERE id = ANY(:ids)"),
            {"ids": list(sent.values())},
        )
        hidden_from_guests = {row.id: row.hidden_from_guests for row in rows}

    assert hidden_from_guests == {sent["hidden"]: True, sent["shown"]: False}


async def test_a_streamed_answer_is_delivered_once_when_it_ends(client, deliveries, receiver, developer, bob, room):
    """A bot's answer may stream (it grows in place, then is delivered); a bot that hears
    it is sent it once, whole, when it ends."""
    writer = await make_bot(client, receiver, developer, "writer")
    reader = await make_bot(client, receiver, developer, "reader")
    for bot in (writer, reader):
        await add_bot(client, developer, room, bot)
    opened = await client.post(
        f"/v1/conversations/{room}/messages",
        headers=writer.headers,
        json={"content": "", "streaming": True, "mentions": [reader.id]},
    )
    assert opened.status_code == 201, opened.text
    stream = f"/v1/conversations/{room}/messages/{opened.json()['id']}/stream"

    grown = await client.post(stream, headers=writer.headers, json={"append": "Hello, "})
    await deliveries.settle()
    heard_while_streaming = list(receiver.to("reader"))
    ended = await client.post(stream, headers=writer.headers, json={"append": "reader.", "done": True})
    await deliveries.settle()

    assert grown.status_code == 200 and ended.status_code == 200, (grown.text, ended.text)
    assert heard_while_streaming == []
    [delivery] = receiver.to("reader")
    assert delivery.body["message"]["content"] == "Hello, reader."
    assert delivery.body["message"]["delivery_status"] == "delivered"
    assert receiver.to("writer") == []
