"""Escalations: up a level in the same room or into a new escalated room, then every step
(created -> assigned -> in_progress -> resolved, cancelled from any open status), every
illegal step a 409 naming the status, who may take each step, and the events they publish.

Tess (T1) escalates Alice's room; Theo (T2), Tara (T3) and Max (manager) work above her."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest

from rapport.kernel.runtime import Runtime
from tests.support import problem_type
from tests.support_desk.support import (
    ESCALATIONS,
    ROOMS,
    Desk,
    as_system,
    escalate,
    events,
    join,
    ok,
    open_room,
    step,
)

pytestmark = pytest.mark.module_database


def refused(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text
    body: dict[str, Any] = response.json()
    return body


async def worked_room(client: httpx.AsyncClient, desk: Desk) -> str:
    """Alice's room, with Tess in it."""
    room_id: str = (await open_room(client, desk.alice, priority=3))["conversation_id"]
    ok(await join(client, desk.tess, room_id))
    return room_id


async def escalation(client: httpx.AsyncClient, desk: Desk, **fields: Any) -> dict[str, Any]:
    room_id = await worked_room(client, desk)
    return ok(await escalate(client, desk.tess, room_id, **fields), 201)


# --- escalating ------------------------------------------------------------------------------


async def test_same_room_raises_the_room(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    room_id = await worked_room(client, desk)

    made = ok(await escalate(client, desk.tess, room_id, to_level="T2", priority=1, mode="same_room"), 201)

    assert (made["status"], made["mode"], made["from_level"], made["to_level"], made["priority"]) == (
        "created",
        "same_room",
        "T1",
        "T2",
        1,
    )
    assert (made["source_room_id"], made["room_id"], made["target_room_id"]) == (room_id, room_id, None)
    assert made["created_by"] == desk.tess.user_id
    room = ok(await client.get(f"{ROOMS}/{room_id}", headers=desk.alice.headers))
    assert (room["level"], room["priority"]) == ("T2", 1)
    [(kind, scope, payload)] = [e for e in await events(runtime) if e[0].startswith("support.escalation")]
    assert (kind, scope, payload["escalation_id"], payload["status"]) == (
        "support.escalation.created",
        room_id,
        made["id"],
        "created",
    )


async def test_new_room_opens_an_escalated_room_below_with_the_customer(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = await worked_room(client, desk)

    made = ok(await escalate(client, desk.tess, room_id, to_level="T3", mode="new_room"), 201)

    target = made["target_room_id"]
    assert target not in (None, room_id) and made["room_id"] == target
    room = ok(await client.get(f"{ROOMS}/{target}", headers=desk.alice.headers))
    assert (room["level"], room["escalated_from"], room["customer_id"], room["priority"]) == (
        "T3",
        room_id,
        desk.alice.user_id,
        3,
    )
    conversation = ok(await client.get(f"/v1/conversations/{target}", headers=desk.alice.headers))
    assert (conversation["type"], conversation["parent_id"], conversation["member_count"]) == (
        "escalated",
        room_id,
        1,
    )
    source = ok(await client.get(f"{ROOMS}/{room_id}", headers=desk.alice.headers))
    assert source["level"] == "T1"
    # Tess, below the new room's level, does not see it.
    refused(await client.get(f"{ROOMS}/{target}", headers=desk.tess.headers), 404, "support-room-not-found")
    ok(await client.get(f"{ROOMS}/{target}", headers=desk.tara.headers))


@pytest.mark.parametrize("to_level", ["T1"])
async def test_an_escalation_goes_up(client: httpx.AsyncClient, desk: Desk, to_level: str) -> None:
    room_id = await worked_room(client, desk)

    body = refused(await escalate(client, desk.tess, room_id, to_level=to_level), 409, "support-escalation-not-upward")

    assert (body["level"], body["to_level"]) == ("T1", to_level)


@pytest.mark.parametrize("to_level", ["T1", "T2"])
async def test_an_escalation_never_goes_down(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, to_level: str
) -> None:
    room_id = await worked_room(client, desk)
    ok(await escalate(client, desk.tess, room_id, to_level="T2", mode="same_room"), 201)
    ok(await join(client, desk.theo, room_id))

    body = refused(await escalate(client, desk.theo, room_id, to_level=to_level), 409, "support-escalation-not-upward")

    assert (body["level"], body["to_level"]) == ("T2", to_level)
    assert ok(await client.get(f"{ROOMS}/{room_id}", headers=desk.alice.headers))["level"] == "T2"
    assert len(await as_system(runtime, "SELECT id FROM support.escalations WHERE source_room_id = :r", r=room_id)) == 1


async def test_escalating_needs_the_permission(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    room_id = await worked_room(client, desk)

    body = refused(await escalate(client, desk.alice, room_id), 403, "permission-required")
    assert body["permission"] == "chat:escalation:create"
    refused(await escalate(client, desk.mallory, room_id), 404, "support-room-not-found")
    assert await as_system(runtime, "SELECT id FROM support.escalations") == []


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "", "to_level": "T2"},
        {"reason": "why", "to_level": "T9"},
        {"reason": "why", "to_level": "t2"},
        {"reason": "why", "to_level": "T2", "priority": 0},
        {"reason": "why", "to_level": "T2", "mode": "elsewhere"},
        {"to_level": "T2"},
    ],
)
async def test_a_bad_escalation_is_refused(client: httpx.AsyncClient, desk: Desk, body: dict[str, Any]) -> None:
    room_id = await worked_room(client, desk)

    response = await client.post(f"{ROOMS}/{room_id}/escalations", headers=desk.tess.headers, json=body)

    refused(response, 422, "validation-error")


async def test_a_closed_room_is_not_escalated(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = await worked_room(client, desk)
    ok(await client.post(f"{ROOMS}/{room_id}/close", headers=desk.alice.headers))

    refused(await escalate(client, desk.tess, room_id), 409, "support-room-closed")


# --- every step ---------------------------------------------------------------------------------


async def test_assign_start_resolve(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    made = await escalation(client, desk, to_level="T2", mode="new_room")
    escalation_id, target = made["id"], made["target_room_id"]

    assigned = ok(await step(client, desk.tess, escalation_id, "assign", assignee_id=desk.theo.user_id))
    started = ok(await step(client, desk.theo, escalation_id, "start"))
    resolved = ok(await step(client, desk.theo, escalation_id, "resolve", notes="Refunded in full"))

    assert (assigned["status"], assigned["assigned_to"]) == ("assigned", desk.theo.user_id)
    assert assigned["assigned_at"] is not None
    assert (started["status"], started["started_at"] is not None) == ("in_progress", True)
    assert (resolved["status"], resolved["resolution_notes"]) == ("resolved", "Refunded in full")
    assert resolved["resolved_at"] is not None
    # The assignee joined the room it is worked in.
    people = ok(await client.get(f"/v1/conversations/{target}/participants", headers=desk.theo.headers))
    assert {p["user_id"] for p in people["items"]} == {desk.alice.user_id, desk.theo.user_id}
    steps = [(kind, payload["status"]) for kind, _, payload in await events(runtime, "support.escalation.")]
    assert steps == [
        ("support.escalation.created", "created"),
        ("support.escalation.created", "created"),
        ("support.escalation.assigned", "assigned"),
        ("support.escalation.assigned", "assigned"),
        ("support.escalation.assigned", "assigned"),
        ("support.escalation.started", "in_progress"),
        ("support.escalation.started", "in_progress"),
        ("support.escalation.resolved", "resolved"),
        ("support.escalation.resolved", "resolved"),
    ]
    told = [scope for kind, scope, _ in await events(runtime, "support.escalation.assigned")]
    assert desk.theo.user_id in told and target in told
    # The audit keeps each step of it.
    audited = await as_system(
        runtime,
        "SELECT operation, new_data ->> 'status' AS status FROM audit.record_changes"
        " WHERE schema_name = 'support' AND table_name = 'escalations' ORDER BY id",
    )
    assert [(row.operation, row.status) for row in audited] == [
        ("INSERT", "created"),
        ("UPDATE", "assigned"),
        ("UPDATE", "in_progress"),
        ("UPDATE", "resolved"),
    ]


async def test_an_agent_takes_an_escalation_for_themself(client: httpx.AsyncClient, desk: Desk) -> None:
    made = await escalation(client, desk, to_level="T2")

    taken = ok(await step(client, desk.theo, made["id"], "assign"))

    assert taken["assigned_to"] == desk.theo.user_id


async def test_an_assignee_works_the_level(client: httpx.AsyncClient, desk: Desk) -> None:
    made = await escalation(client, desk, to_level="T3")

    refused(await step(client, desk.theo, made["id"], "assign"), 404, "support-escalation-not-found")
    refused(
        await step(client, desk.tess, made["id"], "assign", assignee_id=desk.theo.user_id),
        409,
        "support-assignee-not-agent",
    )
    refused(
        await step(client, desk.tess, made["id"], "assign", assignee_id=desk.alice.user_id),
        409,
        "support-assignee-not-agent",
    )
    ok(await step(client, desk.tess, made["id"], "assign", assignee_id=desk.max.user_id))
    # Re-assigned while not yet started.
    again = ok(await step(client, desk.max, made["id"], "assign", assignee_id=desk.tara.user_id))
    assert again["assigned_to"] == desk.tara.user_id


async def test_only_the_assignee_starts_and_resolves(client: httpx.AsyncClient, desk: Desk) -> None:
    made = await escalation(client, desk, to_level="T2")
    ok(await step(client, desk.tess, made["id"], "assign", assignee_id=desk.theo.user_id))

    refused(await step(client, desk.max, made["id"], "start"), 403, "support-not-assignee")
    ok(await step(client, desk.theo, made["id"], "start"))
    refused(await step(client, desk.max, made["id"], "resolve", notes="done"), 403, "support-not-assignee")
    refused(await step(client, desk.theo, made["id"], "resolve", notes=""), 422, "validation-error")
    refused(await step(client, desk.theo, made["id"], "resolve"), 422, "validation-error")


@pytest.mark.parametrize("status", ["created", "assigned", "in_progress"])
async def test_an_open_escalation_is_cancelled(client: httpx.AsyncClient, desk: Desk, status: str) -> None:
    made = await escalation(client, desk, to_level="T2")
    if status != "created":
        ok(await step(client, desk.tess, made["id"], "assign", assignee_id=desk.theo.user_id))
    if status == "in_progress":
        ok(await step(client, desk.theo, made["id"], "start"))

    cancelled = ok(await step(client, desk.tess, made["id"], "cancel"))

    assert (cancelled["status"], cancelled["cancelled_at"] is not None) == ("cancelled", True)


async def test_only_its_creator_or_an_assigner_cancels(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    made = await escalation(client, desk, to_level="T2")
    await as_system(
        runtime,
        "DELETE FROM access.role_permissions WHERE permission = 'chat:escalation:assign'"
        " AND role_id = (SELECT id FROM access.roles WHERE name = 'support-t2')",
    )

    refused(await step(client, desk.theo, made["id"], "cancel"), 403, "permission-required")
    ok(await step(client, desk.tess, made["id"], "cancel"))


# Each step from each status it may not start from: a 409 naming the status.
ILLEGAL = [
    ("created", "start", {}),
    ("created", "resolve", {"notes": "n"}),
    ("assigned", "resolve", {"notes": "n"}),
    ("in_progress", "assign", {}),
    ("in_progress", "start", {}),
    ("resolved", "assign", {}),
    ("resolved", "start", {}),
    ("resolved", "resolve", {"notes": "n"}),
    ("resolved", "cancel", {}),
    ("cancelled", "assign", {}),
    ("cancelled", "start", {}),
    ("cancelled", "resolve", {"notes": "n"}),
    ("cancelled", "cancel", {}),
]


@pytest.mark.parametrize(("status", "name", "body"), ILLEGAL)
async def test_an_illegal_step_is_a_conflict_naming_the_status(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, status: str, name: str, body: dict[str, Any]
) -> None:
    made = await escalation(client, desk, to_level="T2")
    if status in ("assigned", "in_progress", "resolved"):
        ok(await step(client, desk.tess, made["id"], "assign", assignee_id=desk.theo.user_id))
    if status in ("in_progress", "resolved"):
        ok(await step(client, desk.theo, made["id"], "start"))
    if status == "resolved":
        ok(await step(client, desk.theo, made["id"], "resolve", notes="done"))
    if status == "cancelled":
        ok(await step(client, desk.tess, made["id"], "cancel"))
    before = await as_system(runtime, "SELECT status, updated_at FROM support.escalations")

    problem = refused(await step(client, desk.theo, made["id"], name, **body), 409, "support-escalation-transition")

    assert problem["status"] == status
    assert await as_system(runtime, "SELECT status, updated_at FROM support.escalations") == before


async def test_the_database_refuses_an_illegal_transition_too(
    runtime: Runtime, client: httpx.AsyncClient, desk: Desk
) -> None:
    made = await escalation(client, desk, to_level="T2")

    with pytest.raises(Exception, match="cannot become"):
        await as_system(
            runtime,
            "UPDATE support.escalations SET status = 'resolved', resolved_at = now() WHERE id = :id",
            id=UUID(made["id"]),
        )


async def test_an_unknown_escalation_is_not_found(client: httpx.AsyncClient, desk: Desk) -> None:
    missing = "01890000-0000-7000-8000-000000000000"

    refused(await client.get(f"{ESCALATIONS}/{missing}", headers=desk.max.headers), 404, "support-escalation-not-found")
    refused(await step(client, desk.max, missing, "start"), 404, "support-escalation-not-found")


async def test_the_room_lists_its_escalations(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = await worked_room(client, desk)
    first = ok(await escalate(client, desk.tess, room_id, to_level="T2", mode="new_room"), 201)
    second = ok(await escalate(client, desk.tess, room_id, to_level="T3", mode="new_room"), 201)

    listed = ok(await client.get(f"{ROOMS}/{room_id}/escalations", headers=desk.max.headers))

    assert [item["id"] for item in listed["items"]] == [second["id"], first["id"]]
    # Theo works T2: he sees the first, not the one to T3.
    theirs = ok(await client.get(f"{ROOMS}/{room_id}/escalations", headers=desk.theo.headers))
    assert [item["id"] for item in theirs["items"]] == [first["id"]]
