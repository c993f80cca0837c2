"""The in-app inbox: GET /v1/notifications (newest first, keyset-paginated, with is_read,
bundle_count and the exact unread count), GET /v1/notifications/unread-count and
POST /v1/notifications/read. Notifications are written as the pipeline writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from tests.notifications.inbox_support import NOTIFICATIONS, notify, notify_many
from tests.support import problem_type

pytestmark = pytest.mark.module_database

READ = "/v1/notifications/read"
UNREAD_COUNT = "/v1/notifications/unread-count"


async def inbox(client, persona, **params):
    response = await client.get(NOTIFICATIONS, headers=persona.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def titles(client, persona, **params):
    return [item["title"] for item in (await inbox(client, persona, **params))["items"]]


async def test_notifications_come_newest_first_with_their_read_state(client, runtime, alice):
    await notify_many(runtime, alice, 3)

    body = await inbox(client, alice)

    assert [item["title"] for item in body["items"]] == ["#2", "#1", "#0"]
    first = body["items"][0]
    assert (first["is_read"], first["read_at"], first["bundle_count"]) == (False, None, 1)
    assert (first["type"], first["category"], first["priority"]) == ("system", "system", "normal")
    assert body["unread_count"] == 3
    assert body["next"] is None


async def test_an_empty_inbox_says_so(client, alice):
    assert await inbox(client, alice) == {"items": [], "next": None, "unread_count": 0}


async def test_pages_follow_each_other_with_nothing_twice_or_missing(client, runtime, alice):
    await notify_many(runtime, alice, 5)

    first = await inbox(client, alice, limit=2)
    second = await inbox(client, alice, limit=2, cursor=first["next"])
    third = await inbox(client, alice, limit=2, cursor=second["next"])

    pages = [[item["title"] for item in page["items"]] for page in (first, second, third)]
    assert pages == [["#4", "#3"], ["#2", "#1"], ["#0"]]
    assert third["next"] is None
    assert {page["unread_count"] for page in (first, second, third)} == {5}


async def test_a_bundle_that_grew_stands_where_its_newest_member_arrived(client, runtime, alice):
    bundle = await notify(runtime, alice, "Bob: hi", group_key="conversation:1", type="message", category="social")
    await notify(runtime, alice, "Later notice")
    # The pipeline bundles a newer message of the group into the unread notification.
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "UPDATE notifications.notifications SET bundle_count = bundle_count + 1, title = 'Bob: again',"
                " created_at = now() WHERE id = :id"
            ),
            {"id": bundle},
        )

    items = (await inbox(client, alice))["items"]

    assert [(item["title"], item["bundle_count"]) for item in items] == [("Bob: again", 2), ("Later notice", 1)]
    assert items[0]["group_key"] == "conversation:1"


async def test_the_unread_filter_shows_one_side(client, runtime, alice):
    first, _ = await notify_many(runtime, alice, 2)
    marked = await client.post(READ, headers=alice.headers, json={"ids": [str(first)]})
    assert marked.status_code == 200, marked.text

    assert await titles(client, alice, unread="true") == ["#1"]
    assert await titles(client, alice, unread="false") == ["#0"]
    assert (await inbox(client, alice, unread="false"))["unread_count"] == 1


async def test_marking_some_read_answers_the_unread_count_left(client, runtime, alice):
    ids = await notify_many(runtime, alice, 3)

    response = await client.post(READ, headers=alice.headers, json={"ids": [str(ids[0]), str(ids[2])]})

    assert response.status_code == 200, response.text
    assert response.json() == {"unread_count": 1}
    by_title = {item["title"]: item for item in (await inbox(client, alice))["items"]}
    assert [by_title[t]["is_read"] for t in ("#0", "#1", "#2")] == [True, False, True]
    assert by_title["#0"]["read_at"] is not None and by_title["#1"]["read_at"] is None


async def test_marking_all_read_leaves_none_unread(client, runtime, alice):
    await notify_many(runtime, alice, 3)

    response = await client.post(READ, headers=alice.headers, json={"all": True})

    assert response.json() == {"unread_count": 0}
    assert all(item["is_read"] for item in (await inbox(client, alice))["items"])


async def test_marking_read_again_changes_nothing(client, runtime, alice):
    notification = await notify(runtime, alice)
    await client.post(READ, headers=alice.headers, json={"ids": [str(notification)]})
    read_at = (await inbox(client, alice))["items"][0]["read_at"]

    again = await client.post(READ, headers=alice.headers, json={"ids": [str(notification)]})

    assert again.json() == {"unread_count": 0}
    assert (await inbox(client, alice))["items"][0]["read_at"] == read_at


async def test_marking_read_tells_the_reader_s_devices(client, runtime, alice):
    ids = await notify_many(runtime, alice, 2)

    await client.post(READ, headers=alice.headers, json={"ids": [str(ids[0])]})

    async with system_transaction(runtime.system_engine) as db:
        events = (
            await db.execute(
                text(
                    "SELECT scope_kind, scope_id, payload, actor_id FROM kernel.events WHERE type = 'notification.read'"
                )
            )
        ).all()
    assert [(e.scope_kind, e.scope_id, e.actor_id) for e in events] == [
        ("user", UUID(alice.user_id), UUID(alice.user_id))
    ]
    assert events[0].payload == {"unread_count": 1, "ids": [str(ids[0])]}


async def test_the_unread_count_is_exact(client, runtime, alice):
    ids = await notify_many(runtime, alice, 4)
    await client.post(READ, headers=alice.headers, json={"ids": [str(ids[1])]})

    response = await client.get(UNREAD_COUNT, headers=alice.headers)

    assert response.status_code == 200
    assert response.json() == {"unread_count": 3}


async def test_a_notification_scheduled_for_later_waits(client, runtime, alice):
    await notify(runtime, alice, "Now")
    await notify(runtime, alice, "Tomorrow", scheduled_for=datetime.now(UTC) + timedelta(days=1))
    await notify(runtime, alice, "Was due", scheduled_for=datetime.now(UTC) - timedelta(minutes=1))

    body = await inbox(client, alice)

    assert sorted(item["title"] for item in body["items"]) == ["Now", "Was due"]
    assert body["unread_count"] == 2


@pytest.mark.parametrize(
    "body",
    [{}, {"ids": [], "all": True}, {"all": False}, {"ids": []}, {"ids": ["not-an-id"]}, {"all": "true"}],
)
async def test_mark_read_needs_ids_or_all(client, alice, body):
    response = await client.post(READ, headers=alice.headers, json=body)

    assert response.status_code == 422
    assert problem_type(response) == "validation-error"


async def test_a_cursor_not_issued_here_is_refused(client, alice):
    response = await client.get(NOTIFICATIONS, headers=alice.headers, params={"cursor": "bm90LWEtY3Vyc29y"})

    assert response.status_code == 400
    assert problem_type(response) == "invalid-cursor"


async def test_the_inbox_needs_a_signed_in_caller(client):
    assert (await client.get(NOTIFICATIONS)).status_code == 401
    assert (await client.post(READ, json={"all": True})).status_code == 401
