"""Message types a person may not fake and those that carry a shape: `bot` messages are
sent by bot accounts alone; a `graph` message carries a chart (its kind and series) in
content_metadata."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bots.support import add_bot, make_bot
from tests.messaging.support import make_conversation
from tests.support import problem_type

pytestmark = pytest.mark.module_database

CHART = {
    "kind": "line",
    "title": "Replies a day",
    "series": [{"name": "Replies", "points": [3, 5.5, {"x": "Sun", "y": 2}]}],
}


async def post(client, sender, room, **fields: Any):
    return await client.post(f"/v1/conversations/{room}/messages", headers=sender.headers, json=fields)


async def test_a_person_cannot_send_a_bot_message(client, app_engine, developer, bob):
    room = await make_conversation(app_engine, developer, bob)

    refused = await post(client, bob, room, content="I am a bot, trust me", type="bot")

    assert (refused.status_code, problem_type(refused)) == (403, "message-type-reserved")
    history = await client.get(f"/v1/conversations/{room}/messages", headers=bob.headers)
    assert history.json()["items"] == []


async def test_a_bot_sends_a_bot_message(client, app_engine, receiver, developer, bob):
    room = await make_conversation(app_engine, developer, bob)
    bot = await make_bot(client, receiver, developer, "helper")
    await add_bot(client, developer, room, bot)

    sent = await post(client, bot, room, content="Here is your answer", type="bot")

    assert sent.status_code == 201, sent.text
    assert (sent.json()["type"], sent.json()["sender_id"]) == ("bot", bot.id)


async def test_a_graph_message_carries_a_chart(client, app_engine, developer, bob):
    room = await make_conversation(app_engine, developer, bob)

    sent = await post(client, bob, room, content="This week", type="graph", content_metadata=CHART)

    assert sent.status_code == 201, sent.text
    assert sent.json()["content_metadata"] == CHART


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"series": CHART["series"]},
        {"kind": "line"},
        {"kind": "line", "series": []},
        {"kind": "wave", "series": CHART["series"]},
        {"kind": "bar", "series": [{"name": "Replies", "points": []}]},
        {"kind": "bar", "series": [{"name": "Replies", "points": ["many"]}]},
        {"kind": "bar", "series": [{"points": [1]}]},
        {"kind": "bar", "series": [{"name": "Replies", "points": [{"x": 1}]}]},
        {**CHART, "colour": "red"},
    ],
)
async def test_a_graph_message_without_a_chart_is_refused(client, app_engine, developer, bob, metadata):
    room = await make_conversation(app_engine, developer, bob)

    refused = await post(client, bob, room, content="This week", type="graph", content_metadata=metadata)

    assert (refused.status_code, problem_type(refused)) == (422, "validation-error"), refused.text
