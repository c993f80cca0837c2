"""Tasks shared by the parents of a room (/v1/coparenting/tasks): made, listed, changed,
completed and removed by either parent, refused to anyone else, with related people and a
reminder when they fall due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.modules.coparenting import service
from tests.messaging.support import make_conversation
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database


@pytest.fixture
async def room(app_engine, alice, bob) -> UUID:
    """Alice and bob's shared room."""
    return await make_conversation(app_engine, alice, bob, type="direct")


async def make_task(client: httpx.AsyncClient, persona: Persona, **fields: Any) -> dict[str, Any]:
    made = await client.post("/v1/coparenting/tasks", headers=persona.headers, json={"title": "Buy shoes", **fields})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def events_of(runtime: Any, type: str) -> list[Any]:
    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(
            text("SELECT scope_kind, scope_id, payload, actor_id FROM kernel.events WHERE type = :t ORDER BY position"),
            {"t": type},
        )
        return list(rows)


async def test_a_task_of_ones_own_has_the_seeds_defaults(client, alice):
    task = await make_task(client, alice)

    assert task["status"] == "open" and task["priority"] == "medium" and task["type"] == "general"
    assert task["user_id"] == alice.user_id and task["conversation_id"] is None
    assert task["completed_at"] is None and task["related_people"] == []


async def test_a_task_in_the_shared_room_is_the_other_parents_too(client, runtime, alice, bob, room):
    task = await make_task(client, alice, conversation_id=str(room), priority="high", type="school")

    seen = await client.get(f"/v1/coparenting/tasks/{task['id']}", headers=bob.headers)
    listed = await client.get("/v1/coparenting/tasks", headers=bob.headers, params={"conversation_id": str(room)})

    assert seen.status_code == 200 and seen.json()["title"] == "Buy shoes"
    assert [item["id"] for item in listed.json()["items"]] == [task["id"]]
    [event] = await events_of(runtime, "coparenting.task.created")
    assert (event.scope_kind, event.scope_id) == ("conversation", room)


async def test_either_parent_changes_and_completes_a_shared_task(client, alice, bob, room):
    task = await make_task(client, alice, conversation_id=str(room))

    changed = await client.patch(
        f"/v1/coparenting/tasks/{task['id']}",
        headers=bob.headers,
        json={"status": "completed", "assignee_id": bob.user_id, "description": "Size 31"},
    )

    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["status"] == "completed" and body["completed_at"] is not None
    assert body["assignee_id"] == bob.user_id and body["description"] == "Size 31"
    reopened = await client.patch(f"/v1/coparenting/tasks/{task['id']}", headers=alice.headers, json={"status": "open"})
    assert reopened.json()["completed_at"] is None


async def test_a_task_is_given_only_to_someone_in_its_room(client, alice, bob, mallory, room):
    own = await make_task(client, alice)

    to_stranger = await client.post(
        "/v1/coparenting/tasks",
        headers=alice.headers,
        json={"title": "x", "conversation_id": str(room), "assignee_id": mallory.user_id},
    )
    own_to_bob = await client.patch(
        f"/v1/coparenting/tasks/{own['id']}", headers=alice.headers, json={"assignee_id": bob.user_id}
    )

    assert problem_type(to_stranger).endswith("invalid-assignee")
    assert problem_type(own_to_bob).endswith("invalid-assignee")
    shared = await make_task(client, alice, conversation_id=str(room), assignee_id=bob.user_id)
    assert shared["assignee_id"] == bob.user_id


async def test_a_stranger_neither_sees_nor_changes_a_task(client, alice, mallory, room):
    task = await make_task(client, alice, conversation_id=str(room))
    url = f"/v1/coparenting/tasks/{task['id']}"

    for response in (
        await client.get(url, headers=mallory.headers),
        await client.patch(url, headers=mallory.headers, json={"title": "Mine"}),
        await client.delete(url, headers=mallory.headers),
    ):
        assert response.status_code == 404
        assert problem_type(response).endswith("task-not-found")
    assert (await client.get("/v1/coparenting/tasks", headers=mallory.headers)).json()["items"] == []
    in_room = await client.post(
        "/v1/coparenting/tasks", headers=mallory.headers, json={"title": "x", "conversation_id": str(room)}
    )
    assert in_room.status_code == 404


async def test_the_list_filters_by_status_and_assignee(client, alice, bob, room):
    first = await make_task(client, alice, conversation_id=str(room), assignee_id=bob.user_id)
    second = await make_task(client, alice)
    await client.patch(f"/v1/coparenting/tasks/{second['id']}", headers=alice.headers, json={"status": "canceled"})

    mine = await client.get("/v1/coparenting/tasks", headers=bob.headers, params={"assigned_to_me": "true"})
    canceled = await client.get("/v1/coparenting/tasks", headers=alice.headers, params={"status": "canceled"})
    every = await client.get("/v1/coparenting/tasks", headers=alice.headers)

    assert [item["id"] for item in mine.json()["items"]] == [first["id"]]
    assert [item["id"] for item in canceled.json()["items"]] == [second["id"]]
    assert [item["id"] for item in every.json()["items"]] == [second["id"], first["id"]]


async def test_removing_a_shared_task_removes_it_for_both(client, runtime, alice, bob, room):
    task = await make_task(client, alice, conversation_id=str(room))

    assert (await client.delete(f"/v1/coparenting/tasks/{task['id']}", headers=bob.headers)).status_code == 204

    assert (await client.get(f"/v1/coparenting/tasks/{task['id']}", headers=alice.headers)).status_code == 404
    [event] = await events_of(runtime, "coparenting.task.deleted")
    assert event.actor_id == UUID(bob.user_id)


async def test_related_people_are_shown_by_name_to_both_parents(client, alice, bob, room):
    emma = await client.post("/v1/contacts", headers=alice.headers, json={"first_name": "Emma", "last_name": "L"})
    task = await make_task(client, alice, conversation_id=str(room), related_contact_ids=[emma.json()["id"]])

    seen = await client.get(f"/v1/coparenting/tasks/{task['id']}", headers=bob.headers)

    assert seen.json()["related_people"] == [
        {"contact_id": emma.json()["id"], "name": "Emma L", "added_by": alice.user_id}
    ]
    removed = await client.delete(f"/v1/coparenting/tasks/{task['id']}/people/{emma.json()['id']}", headers=bob.headers)
    assert removed.json()["related_people"] == []


async def test_only_ones_own_contacts_are_added_to_a_task(client, alice, bob, room):
    bobs = await client.post("/v1/contacts", headers=bob.headers, json={"first_name": "Leo"})
    task = await make_task(client, alice, conversation_id=str(room))

    added = await client.put(f"/v1/coparenting/tasks/{task['id']}/people/{bobs.json()['id']}", headers=alice.headers)
    again = await client.put(f"/v1/coparenting/tasks/{task['id']}/people/{bobs.json()['id']}", headers=bob.headers)

    assert problem_type(added).endswith("contact-not-found")
    assert [person["name"] for person in again.json()["related_people"]] == ["Leo"]


async def test_a_due_task_is_reminded_of_once_to_its_assignee(client, runtime, alice, bob, room):
    due = datetime.now(UTC) + timedelta(days=2)
    task = await make_task(client, alice, conversation_id=str(room), assignee_id=bob.user_id, due_date=due.isoformat())
    async with system_transaction(runtime.system_engine) as db:
        [job] = (
            await db.execute(text("SELECT payload, run_at FROM kernel.jobs WHERE task = 'coparenting.task_reminder'"))
        ).all()
    assert job.payload["task_id"] == task["id"] and job.run_at == due

    sent = await service.send_due_reminder(runtime.system_engine, task_id=UUID(task["id"]), due=due)
    again = await service.send_due_reminder(runtime.system_engine, task_id=UUID(task["id"]), due=due)

    assert (sent, again) == (True, False)
    [event] = await events_of(runtime, "reminder.due")
    assert (event.scope_kind, event.scope_id) == ("user", UUID(bob.user_id))
    assert event.payload["task_id"] == task["id"] and event.payload["headline"].startswith("Task due: ")
    read = await client.get(f"/v1/coparenting/tasks/{task['id']}", headers=alice.headers)
    assert read.json()["reminded_at"] is not None


async def test_a_rescheduled_or_finished_task_is_not_reminded_of_its_old_date(client, runtime, alice):
    due = datetime.now(UTC) + timedelta(hours=3)
    task = await make_task(client, alice, due_date=due.isoformat())
    later = due + timedelta(days=1)
    await client.patch(
        f"/v1/coparenting/tasks/{task['id']}", headers=alice.headers, json={"due_date": later.isoformat()}
    )

    assert not await service.send_due_reminder(runtime.system_engine, task_id=UUID(task["id"]), due=due)
    await client.patch(f"/v1/coparenting/tasks/{task['id']}", headers=alice.headers, json={"status": "completed"})
    assert not await service.send_due_reminder(runtime.system_engine, task_id=UUID(task["id"]), due=later)
    assert await events_of(runtime, "reminder.due") == []


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "x" * 201},
        {"title": "x", "priority": "critical"},
        {"title": "x", "type": "School Run"},
        {"title": "x", "due_date": "2026-12-01T10:00:00"},
        {"title": "x", "related_contact_ids": ["not-a-uuid"]},
    ],
)
async def test_bad_tasks_are_refused(client, alice, body):
    refused = await client.post("/v1/coparenting/tasks", headers=alice.headers, json=body)

    assert refused.status_code == 422


@pytest.mark.parametrize("body", [{"title": None}, {"status": None}, {"status": "done"}])
async def test_bad_changes_are_refused(client, alice, body):
    task = await make_task(client, alice)

    assert (
        await client.patch(f"/v1/coparenting/tasks/{task['id']}", headers=alice.headers, json=body)
    ).status_code == 422
