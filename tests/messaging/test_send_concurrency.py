"""Many senders in one conversation at once, each retrying every send while the first
attempt is still in flight: nothing lost, nothing sent twice, sequences gapless from 1,
and every participant's unread count exact."""

from __future__ import annotations

import asyncio

import pytest

from tests.messaging.support import make_conversation

pytestmark = pytest.mark.module_database

SENDERS_PER_PERSON = 4
MESSAGES_PER_SENDER = 5


async def test_concurrent_senders_and_racing_retries(client, app_engine, make_persona, alice, bob, carol, mallory):
    dave = await make_persona("dave")
    people = [alice, bob, carol, mallory, dave]
    conversation = await make_conversation(app_engine, alice, bob, carol, mallory, dave)
    path = f"/v1/conversations/{conversation}/messages"

    async def sender(person, lane: int) -> list[tuple[str, int, str]]:
        answers = []
        for n in range(MESSAGES_PER_SENDER):
            body = {"content": f"{person.name}-{lane}-{n}", "client_message_id": f"{lane}-{n}"}
            # The send and its retry race each other.
            first, retry = await asyncio.gather(
                client.post(path, json=body, headers=person.headers),
                client.post(path, json=body, headers=person.headers),
            )
            statuses = sorted([first.status_code, retry.status_code])
            assert statuses == [200, 201], (first.text, retry.text)
            assert first.json()["id"] == retry.json()["id"]
            answers.append((first.json()["id"], first.json()["seq"], person.name))
        return answers

    lanes = [sender(person, lane) for person in people for lane in range(SENDERS_PER_PERSON)]
    assert len(lanes) == 20
    sent = [answer for lane in await asyncio.gather(*lanes) for answer in lane]

    total = len(people) * SENDERS_PER_PERSON * MESSAGES_PER_SENDER
    assert len({message_id for message_id, _, _ in sent}) == total
    assert sorted(seq for _, seq, _ in sent) == list(range(1, total + 1))

    # History holds exactly those messages, once each.
    stored: list[dict] = []
    cursor = None
    while True:
        params = {"limit": 200, **({"before": cursor} if cursor else {})}
        page = (await client.get(path, headers=alice.headers, params=params)).json()
        stored += page["items"]
        cursor = page["next"]
        if cursor is None:
            break
    assert sorted(m["seq"] for m in stored) == list(range(1, total + 1))
    assert {m["id"] for m in stored} == {message_id for message_id, _, _ in sent}

    # Each person's own last message is their read marker: unread is what others sent after it.
    for person in people:
        own_last = max(seq for _, seq, name in sent if name == person.name)
        expected = sum(1 for _, seq, name in sent if seq > own_last and name != person.name)
        items = (await client.get("/v1/conversations", headers=person.headers)).json()["items"]
        (mine,) = [i for i in items if i["id"] == str(conversation)]
        assert mine["unread_count"] == expected, person.name
        assert mine["last_seq"] == total
