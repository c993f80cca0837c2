"""Alice's bot, attacked: through the API by mallory (a stranger) and by the bot itself
(through its API key), and through SQL as `rapport_app`, where PostgreSQL itself must
refuse whatever bug a query might have. A bot's webhook, its secret and what was
delivered to it (copies of messages) are whoever manages it's alone; a bot sees only the
conversations it takes part in.

Tables: bots.bots, bots.robot_interactions, bots.cursor."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from rapport.bots import service
from rapport.kernel.db import system_transaction
from rapport.kernel.provisioning import DatabaseUrls
from tests.bots.support import Bot, WebhookReceiver, add_bot, make_bot, make_developer
from tests.messaging.support import make_conversation, send
from tests.module_scope import build_once
from tests.security.messaging_sql import DENIED, attempt
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


@dataclass
class World:
    alice: Persona
    bob: Persona
    mallory: Persona
    bot: Bot
    room: UUID
    elsewhere: UUID


@pytest.fixture(scope="module")
async def receiver():
    async with WebhookReceiver() as server:
        yield server


@pytest.fixture(scope="module")
async def module_world(module_app: FastAPI, module_database: DatabaseUrls, receiver: WebhookReceiver) -> World:
    """Alice's bot (it hears everything) in her room with bob, with one delivery on
    record; bob and mallory talk elsewhere, without it. Built once: each test's reset puts
    it back as it was (module_scope.build_once)."""
    receiver.reset()
    async with build_once(module_app, module_database) as built:
        alice, bob, mallory = await built.personas("alice", "bob", "mallory")
        return await _build(built.client, built.runtime, built.app_engine, receiver, alice, bob, mallory)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


async def _build(client, runtime, app_engine, receiver, alice, bob, mallory) -> World:
    await make_developer(runtime, alice)
    bot = await make_bot(client, receiver, alice, "helper", receives="all")
    room = await make_conversation(app_engine, alice, bob)
    await add_bot(client, alice, room, bot)
    elsewhere = await make_conversation(app_engine, bob, mallory)
    await send(client, bob, room, "For the bot")
    await send(client, bob, elsewhere, "Not for the bot")
    await service.dispatch_all(runtime.system_engine)
    return World(alice, bob, mallory, bot, room, elsewhere)


async def test_mallory_cannot_reach_alices_bot_through_the_api(client, world):
    bot, mallory = world.bot.id, world.mallory
    for method, path in (
        ("GET", f"/v1/bots/{bot}"),
        ("PATCH", f"/v1/bots/{bot}"),
        ("DELETE", f"/v1/bots/{bot}"),
        ("POST", f"/v1/bots/{bot}/keys"),
        ("GET", f"/v1/bots/{bot}/interactions"),
    ):
        answer = await client.request(
            method, path, headers=mallory.headers, json={"status": "disabled"} if method == "PATCH" else None
        )
        assert answer.status_code == 404, (method, path, answer.text)
        assert problem_type(answer) == "bot-not-found"
    assert (await client.get("/v1/bots", headers=mallory.headers)).json()["items"] == []
    # Nothing changed: the bot's key still works, and it is still active.
    assert (await client.get("/v1/conversations", headers=world.bot.headers)).status_code == 200
    assert (await client.get(f"/v1/bots/{bot}", headers=world.alice.headers)).json()["status"] == "active"


async def test_bob_who_shares_a_room_with_the_bot_does_not_manage_it(client, world):
    answer = await client.get(f"/v1/bots/{world.bot.id}/interactions", headers=world.bob.headers)

    assert answer.status_code == 404


async def test_a_bot_sees_only_its_conversations(client, world):
    bot = world.bot

    listed = await client.get("/v1/conversations", headers=bot.headers)

    assert [c["id"] for c in listed.json()["items"]] == [str(world.room)]
    for method, path, body in (
        ("GET", f"/v1/conversations/{world.elsewhere}", None),
        ("GET", f"/v1/conversations/{world.elsewhere}/messages", None),
        ("GET", f"/v1/conversations/{world.elsewhere}/participants", None),
        ("POST", f"/v1/conversations/{world.elsewhere}/messages", {"content": "Let me in"}),
        ("POST", f"/v1/conversations/{world.elsewhere}/participants", {"user_id": bot.id}),
    ):
        answer = await client.request(method, path, headers=bot.headers, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    # Nor does it manage itself: its secret and deliveries are its owner's.
    assert (await client.get(f"/v1/bots/{bot.id}", headers=bot.headers)).status_code == 404


async def test_a_bots_account_cannot_make_bots_nor_keys(client, world):
    made = await client.post(
        "/v1/bots", headers=world.bot.headers, json={"name": "Spawn", "webhook_url": "http://127.0.0.1:9/x"}
    )
    key = await client.post("/v1/auth/api-keys", headers=world.bot.headers, json={"name": "more"})

    assert problem_type(made) == "session-required"
    assert problem_type(key) == "session-required"


async def test_sql_as_the_server_shows_a_bot_and_its_deliveries_to_its_owner_alone(app_engine, runtime, world):
    async with system_transaction(runtime.system_engine) as db:
        assert (await db.execute(text("SELECT count(*) FROM bots.robot_interactions"))).scalar_one() == 1
    owner_sees = await attempt(app_engine, world.alice, "SELECT count(*) FROM bots.robot_interactions")
    assert owner_sees == 1
    for someone in (world.mallory, world.bob, None):
        assert await attempt(app_engine, someone, "SELECT count(*) FROM bots.bots") == 0, someone
        assert await attempt(app_engine, someone, "SELECT count(*) FROM bots.robot_interactions") == 0, someone
    # The bot itself, in its own context: not even its own secret.
    as_bot = Persona(name="bot", email="", password="", user_id=world.bot.id)
    assert await attempt(app_engine, as_bot, "SELECT count(*) FROM bots.bots") == 0
    assert await attempt(app_engine, as_bot, "SELECT count(*) FROM bots.robot_interactions") == 0


async def test_sql_as_the_bot_reads_only_its_conversations(app_engine, world):
    as_bot = Persona(name="bot", email="", password="", user_id=world.bot.id)
    for query in (
        "SELECT count(*) FROM messaging.conversations WHERE id = :c",
        "SELECT count(*) FROM messaging.participants WHERE conversation_id = :c",
        "SELECT count(*) FROM messaging.messages WHERE conversation_id = :c",
    ):
        assert await attempt(app_engine, as_bot, query, c=world.room) > 0, query
        assert await attempt(app_engine, as_bot, query, c=world.elsewhere) == 0, query
    rooms = "SELECT array_agg(DISTINCT conversation_id) FROM messaging.messages"
    assert await attempt(app_engine, as_bot, rooms) == [world.room]
    # Bob, who is in both, sees the other conversation's message the bot does not.
    assert await attempt(app_engine, world.bob, "SELECT count(*) FROM messaging.messages") == 2


async def test_sql_as_the_server_writes_nothing_of_bots(app_engine, world):
    bot = world.bot.id
    for who in (world.alice, world.mallory):
        hijack = "UPDATE bots.bots SET webhook_url = 'http://evil' WHERE id = :b"
        assert await attempt(app_engine, who, hijack, b=bot) == DENIED
        assert await attempt(app_engine, who, "DELETE FROM bots.robot_interactions WHERE bot_id = :b", b=bot) == DENIED
        assert (
            await attempt(
                app_engine,
                who,
                "INSERT INTO bots.bots (id, owner_id, name, webhook_url, webhook_secret)"
                " VALUES (:u, :u, 'Mine', 'http://evil', '\\x00')",
                u=UUID(who.user_id),
            )
            == DENIED
        )
        assert await attempt(app_engine, who, "SELECT count(*) FROM bots.cursor") == DENIED
        assert await attempt(app_engine, who, "UPDATE bots.cursor SET position = 0") == DENIED


async def test_the_bots_functions_tell_the_server_nothing_it_may_not_know(app_engine, world):
    bot = world.bot.id
    # Who takes part where is the dispatcher's (system work) to read.
    seats = "SELECT count(*) FROM bots.taking_part(ARRAY[CAST(:r AS uuid)])"
    assert await attempt(app_engine, world.mallory, seats, r=world.room) == DENIED
    # Whether mallory manages alice's bot: no; whether guests see its messages: one boolean.
    owner = UUID(world.alice.user_id)
    assert await attempt(app_engine, world.mallory, "SELECT bots.manages(:o)", o=owner) is False
    assert await attempt(app_engine, world.alice, "SELECT bots.manages(:o)", o=owner) is True
    assert await attempt(app_engine, world.mallory, "SELECT bots.is_visible_to_guests(:b)", b=bot) is False


async def test_is_visible_to_guests_answers_only_about_bots_the_caller_manages(client, app_engine, world):
    bot = world.bot.id
    shown = await client.patch(f"/v1/bots/{bot}", headers=world.alice.headers, json={"is_visible_to_guests": True})
    assert shown.status_code == 200, shown.text

    asked = "SELECT bots.is_visible_to_guests(:b)"
    assert await attempt(app_engine, world.alice, asked, b=bot) is True
    for someone in (world.mallory, world.bob, None):
        assert await attempt(app_engine, someone, asked, b=bot) is False, someone
    # The trigger's function runs only as the trigger.
    may_run = "SELECT has_function_privilege('rapport_app', 'bots.close_account()', 'EXECUTE')"
    assert await attempt(app_engine, world.mallory, may_run) is False


async def test_deleting_alices_bot_is_hers_to_do(client, world):
    refused = await client.delete(f"/v1/bots/{world.bot.id}", headers=world.mallory.headers)
    done = await client.delete(f"/v1/bots/{world.bot.id}", headers=world.alice.headers)

    assert refused.status_code == 404 and done.status_code == 204
    assert (await client.get("/v1/conversations", headers=world.bot.headers)).status_code == 401
