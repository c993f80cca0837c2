"""History (GET /v1/conversations/{id}/messages): newest first, keyset pages, before,
after and around a message, within each reader's window."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.kernel.db import user_transaction
from rapport.kernel.ids import uuid7
from tests.messaging.support import make_conversation, send
from tests.support import problem_type

pytestmark = pytest.mark.module_database


def history(conversation_id: UUID) -> str:
    return f"/v1/conversations/{conversation_id}/messages"


async def contents(client, persona, conversation_id, **params) -> tuple[list[str], str | None]:
    response = await client.get(history(conversation_id), headers=persona.headers, params=params)
    assert response.status_code == 200, response.text
    page = response.json()
    return [m["content"] for m in page["items"]], page["next"]


async def test_pages_go_back_in_time_without_gaps_or_repeats(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    for n in range(7):
        await send(client, alice, conversation, f"m{n}")
    first, cursor = await contents(client, bob, conversation, limit=3)
    assert first == ["m6", "m5", "m4"] and cursor is not None
    second, cursor = await contents(client, bob, conversation, limit=3, before=cursor)
    third, end = await contents(client, bob, conversation, limit=3, before=cursor)
    assert second == ["m3", "m2", "m1"] and third == ["m0"] and end is None


async def test_after_reads_forward_and_around_centres_on_a_message(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = [await send(client, alice, conversation, f"m{n}") for n in range(9)]
    forward, cursor = await contents(client, bob, conversation, after=sent[2]["id"], limit=3)
    assert forward == ["m3", "m4", "m5"] and cursor == sent[5]["id"]
    around, _ = await contents(client, bob, conversation, around=sent[4]["id"], limit=4)
    assert around == ["m6", "m5", "m4", "m3"]


async def test_an_anchor_from_elsewhere_is_not_found(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    other = await make_conversation(app_engine, alice, bob)
    foreign = await send(client, alice, other, "elsewhere")
    for anchor in (foreign["id"], str(uuid7())):
        response = await client.get(history(conversation), headers=bob.headers, params={"before": anchor})
        assert response.status_code == 404 and problem_type(response) == "message-not-found"


async def test_two_anchors_at_once_are_refused(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    message = await send(client, alice, conversation, "m")
    response = await client.get(
        history(conversation), headers=bob.headers, params={"before": message["id"], "after": message["id"]}
    )
    assert response.status_code == 422


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"before": "nope"}, {"limit": "many"}])
async def test_bad_paging_is_a_422(client, app_engine, alice, bob, params):
    conversation = await make_conversation(app_engine, alice, bob)
    response = await client.get(history(conversation), headers=bob.headers, params=params)
    assert response.status_code == 422


async def test_a_stranger_reads_nothing(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "private")
    response = await client.get(history(conversation), headers=mallory.headers)
    assert response.status_code == 404 and problem_type(response) == "conversation-not-found"


async def test_withheld_history_starts_at_joining(client, app_engine, alice, bob, carol):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "before carol")
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await db.execute(
            text("SELECT messaging.add_participant(:c, :u, 'member', false)"), {"c": conversation, "u": carol.user_id}
        )
    await send(client, alice, conversation, "after carol")
    assert (await contents(client, carol, conversation))[0] == ["after carol"]
    assert (await contents(client, bob, conversation))[0] == ["after carol", "before carol"]


async def test_after_leaving_nothing_new_is_seen(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, alice, conversation, "while bob is here")
    async with user_transaction(app_engine, UUID(bob.user_id)) as db:
        await db.execute(
            text("SELECT messaging.change_participant(:c, :u, NULL, 'left', NULL, NULL, NULL)"),
            {"c": conversation, "u": bob.user_id},
        )
    await send(client, alice, conversation, "after bob left")
    assert (await contents(client, bob, conversation))[0] == ["while bob is here"]
    refused = await client.post(history(conversation), json={"content": "back?"}, headers=bob.headers)
    assert refused.status_code == 404


async def test_a_deleted_senders_messages_still_read(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await send(client, bob, conversation, "from bob")
    engine = runtime.system_engine.engine
    async with engine.begin() as db:
        await db.execute(text("SELECT set_config('rapport.system', 'on', true)"))
        await db.execute(text("DELETE FROM auth.users WHERE id = :u"), {"u": bob.user_id})
    response = await client.get(history(conversation), headers=alice.headers)
    assert response.status_code == 200, response.text
    (message,) = response.json()["items"]
    assert message["content"] == "from bob" and message["sender_id"] is None
