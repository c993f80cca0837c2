"""Drafts (PUT/GET/DELETE /v1/conversations/{id}/draft): one unsent message per person per
conversation, theirs alone.

Alice owns a group with bob; mallory is a stranger."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.kernel.db import user_transaction
from rapport.kernel.ids import uuid7
from tests.messaging.messages_support import events_of, message_path, types_of
from tests.messaging.support import make_conversation, send
from tests.support import problem_type

pytestmark = pytest.mark.module_database


def draft_path(conversation_id: UUID) -> str:
    return f"/v1/conversations/{conversation_id}/draft"


async def test_a_draft_is_kept_replaced_and_thrown_away(client, app_engine, runtime, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, bob, conversation, "dinner?")

    first = await client.put(draft_path(conversation), json={"content": "maybe"}, headers=alice.headers)
    second = await client.put(
        draft_path(conversation), json={"content": "yes,\n at 8", "reply_to_id": sent["id"]}, headers=alice.headers
    )
    read = await client.get(draft_path(conversation), headers=alice.headers)

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert read.json() == second.json()
    draft = read.json()
    assert (draft["conversation_id"], draft["content"], draft["reply_to_id"], draft["thread_id"]) == (
        str(conversation),
        "yes,\n at 8",
        sent["id"],
        None,
    )

    deleted = await client.delete(draft_path(conversation), headers=alice.headers)
    again = await client.delete(draft_path(conversation), headers=alice.headers)
    gone = await client.get(draft_path(conversation), headers=alice.headers)
    assert (deleted.status_code, again.status_code) == (204, 204)
    assert (gone.status_code, problem_type(gone)) == (404, "draft-not-found")
    # The drafter's devices hear of it; the conversation does not.
    mine = await events_of(runtime, alice.user_id, kind="user")
    assert [e["type"] for e in mine] == ["draft.changed", "draft.changed", "draft.deleted"]
    assert mine[0]["payload"] == {"conversation_id": str(conversation)}
    assert not {t for t in await types_of(runtime, conversation) if t.startswith("draft.")}


async def test_a_draft_is_its_writer_s_alone(client, app_engine, alice, bob, mallory):
    conversation = await make_conversation(app_engine, alice, bob)
    await client.put(draft_path(conversation), json={"content": "secret"}, headers=alice.headers)

    bobs = await client.get(draft_path(conversation), headers=bob.headers)
    strangers = await client.get(draft_path(conversation), headers=mallory.headers)
    stranger_writes = await client.put(draft_path(conversation), json={"content": "x"}, headers=mallory.headers)
    stranger_deletes = await client.delete(draft_path(conversation), headers=mallory.headers)

    assert (bobs.status_code, problem_type(bobs)) == (404, "draft-not-found")
    for response in (strangers, stranger_writes, stranger_deletes):
        assert (response.status_code, problem_type(response)) == (404, "conversation-not-found")
    assert (await client.get(draft_path(conversation), headers=alice.headers)).json()["content"] == "secret"


async def test_a_draft_points_only_at_what_this_conversation_holds(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    other = await make_conversation(app_engine, alice)
    elsewhere = await send(client, alice, other, "elsewhere")
    deleted = await send(client, alice, conversation, "deleted")
    await client.delete(message_path(conversation, deleted["id"]), headers=alice.headers)
    thread = await client.post(
        f"/v1/conversations/{conversation}/threads", json={"title": "Plans"}, headers=alice.headers
    )
    foreign_thread = await client.post(f"/v1/conversations/{other}/threads", json={"title": "X"}, headers=alice.headers)

    cases = [
        ({"content": "x", "reply_to_id": elsewhere["id"]}, "reply-not-found"),
        ({"content": "x", "reply_to_id": deleted["id"]}, "reply-not-found"),
        ({"content": "x", "reply_to_id": str(uuid7())}, "reply-not-found"),
        ({"content": "x", "thread_id": foreign_thread.json()["id"]}, "thread-not-open"),
        ({"content": "x", "thread_id": str(uuid7())}, "thread-not-open"),
    ]
    for body, kind in cases:
        response = await client.put(draft_path(conversation), json=body, headers=alice.headers)
        assert (response.status_code, problem_type(response)) == (422, kind), body

    in_thread = await client.put(
        draft_path(conversation), json={"content": "x", "thread_id": thread.json()["id"]}, headers=alice.headers
    )
    assert in_thread.status_code == 200 and in_thread.json()["thread_id"] == thread.json()["id"]
    await client.patch(
        f"/v1/conversations/{conversation}/threads/{thread.json()['id']}",
        json={"archived": True},
        headers=alice.headers,
    )
    archived = await client.put(
        draft_path(conversation), json={"content": "x", "thread_id": thread.json()["id"]}, headers=alice.headers
    )
    assert (archived.status_code, problem_type(archived)) == (422, "thread-not-open")


async def test_someone_who_left_keeps_no_draft_there(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    await client.put(draft_path(conversation), json={"content": "unsent"}, headers=bob.headers)
    async with user_transaction(app_engine, UUID(bob.user_id)) as db:
        await db.execute(
            text("SELECT messaging.change_participant(:c, :u, NULL, 'left', NULL, NULL, NULL)"),
            {"c": conversation, "u": bob.user_id},
        )

    response = await client.put(draft_path(conversation), json={"content": "again"}, headers=bob.headers)

    assert (response.status_code, problem_type(response)) == (404, "conversation-not-found")


@pytest.mark.parametrize(
    "body",
    [
        {"content": "x" * 10_001},
        {"content": 5},
        {"content": None},
        {"content": "ok", "reply_to_id": "not-a-uuid"},
        {"content": "ok", "thread_id": 7},
        {"content": "ok", "mentions": []},
        {"content": "nul\x00"},
    ],
)
async def test_bad_drafts_are_refused(client, app_engine, alice, bob, body):
    conversation = await make_conversation(app_engine, alice, bob)

    response = await client.put(draft_path(conversation), json=body, headers=alice.headers)

    assert (response.status_code, problem_type(response)) == (422, "validation-error")
    gone = await client.get(draft_path(conversation), headers=alice.headers)
    assert gone.status_code == 404


async def test_an_empty_draft_is_still_a_draft(client, app_engine, alice, bob):
    conversation = await make_conversation(app_engine, alice, bob)
    sent = await send(client, bob, conversation, "question")

    response = await client.put(draft_path(conversation), json={"reply_to_id": sent["id"]}, headers=alice.headers)

    assert response.status_code == 200, response.text
    assert (response.json()["content"], response.json()["reply_to_id"]) == ("", sent["id"])
