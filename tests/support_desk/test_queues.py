"""Queues per level: unanswered rooms and open escalations, by priority then age, each with
its SLA due time and whether it is breached; the breached ones alone; pages; who may read
which level; the SLA table, read by all and set by administrators.

Times are planted in the past as system work, as waiting would make them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest

from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.compliance.admin_support import make_admin
from tests.support import problem_type
from tests.support_desk.support import (
    QUEUES,
    Desk,
    as_superuser,
    as_system,
    escalate,
    join,
    ok,
    open_room,
    send,
    step,
    watch,
)

pytestmark = pytest.mark.module_database

SLA = "/v1/support/sla"


def refused(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text
    body: dict[str, Any] = response.json()
    return body


async def opened_ago(runtime: Runtime, room_id: str, minutes: int) -> None:
    await as_system(
        runtime,
        "UPDATE support.rooms SET opened_at = now() - make_interval(mins => :minutes) WHERE conversation_id = :id",
        minutes=minutes,
        id=UUID(room_id),
    )


async def queue(client: httpx.AsyncClient, desk: Desk, level: str = "T1", **params: Any) -> dict[str, Any]:
    return ok(await client.get(f"{QUEUES}/{level}", headers=desk.max.headers, params=params))


async def service_levels(client: httpx.AsyncClient, desk: Desk) -> list[dict[str, Any]]:
    response = await client.get(SLA, headers=desk.alice.headers)
    assert response.status_code == 200, response.text
    levels: list[dict[str, Any]] = response.json()
    return levels


def kinds_and_ids(page: dict[str, Any]) -> list[tuple[str, str]]:
    return [(item["kind"], item["id"]) for item in page["items"]]


async def test_rooms_wait_by_priority_then_age(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    low_old = (await open_room(client, desk.alice, priority=4))["conversation_id"]
    high_new = (await open_room(client, desk.alice, priority=1))["conversation_id"]
    high_old = (await open_room(client, desk.alice, priority=1))["conversation_id"]
    await opened_ago(runtime, low_old, 30)
    await opened_ago(runtime, high_old, 10)

    page = await queue(client, desk)

    assert kinds_and_ids(page) == [("room", high_old), ("room", high_new), ("room", low_old)]
    first = page["items"][0]
    assert (first["room_id"], first["priority"], first["state"], first["breached"]) == (
        high_old,
        1,
        "unanswered",
        False,
    )


async def test_a_room_answered_leaves_the_queue(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, room_id))
    assert kinds_and_ids(await queue(client, desk)) == [("room", room_id)]

    await send(client, desk.tess, room_id, "On it")
    await watch(runtime)

    assert (await queue(client, desk))["items"] == []


async def test_escalations_wait_in_their_levels_queue(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    raised = (await open_room(client, desk.alice, priority=3))["conversation_id"]
    moved = (await open_room(client, desk.alice, priority=3))["conversation_id"]
    for room_id in (raised, moved):
        ok(await join(client, desk.tess, room_id))
    same = ok(await escalate(client, desk.tess, raised, to_level="T2", priority=2), 201)
    new = ok(await escalate(client, desk.tess, moved, to_level="T2", priority=2, mode="new_room"), 201)

    t2 = await queue(client, desk, "T2")

    # Each room worked through an escalation shows as the escalation only.
    assert kinds_and_ids(t2) == [("escalation", same["id"]), ("escalation", new["id"])]
    assert [item["room_id"] for item in t2["items"]] == [raised, new["target_room_id"]]
    assert {item["state"] for item in t2["items"]} == {"created"}
    assert kinds_and_ids(await queue(client, desk, "T1")) == [("room", moved)]

    ok(await step(client, desk.theo, same["id"], "assign"))
    ok(await step(client, desk.theo, same["id"], "start"))
    await send(client, desk.theo, raised, "Refunded")
    await watch(runtime)
    ok(await step(client, desk.theo, same["id"], "resolve", notes="done"))
    assert kinds_and_ids(await queue(client, desk, "T2")) == [("escalation", new["id"])]


async def test_due_times_follow_the_sla(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice, priority=2))["conversation_id"]
    ok(await join(client, desk.tess, room_id))
    made = ok(await escalate(client, desk.tess, room_id, to_level="T2", priority=2), 201)
    [row] = await as_system(
        runtime,
        "SELECT e.created_at + interval '60 minutes' AS respond, e.created_at + interval '1440 minutes' AS resolve"
        " FROM support.escalations e WHERE e.id = :id",
        id=UUID(made["id"]),
    )

    [waiting] = (await queue(client, desk, "T2"))["items"]
    ok(await step(client, desk.theo, made["id"], "assign"))
    [assigned] = (await queue(client, desk, "T2"))["items"]

    assert waiting["due_at"][:19] == row.respond.isoformat()[:19]
    assert assigned["due_at"][:19] == row.resolve.isoformat()[:19]


async def test_breached_lists_what_is_past_its_sla(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    late = (await open_room(client, desk.alice, priority=1))["conversation_id"]
    in_time = (await open_room(client, desk.alice, priority=1))["conversation_id"]
    slow = (await open_room(client, desk.alice, priority=5))["conversation_id"]
    await opened_ago(runtime, late, 16)
    await opened_ago(runtime, in_time, 14)
    await opened_ago(runtime, slow, 4000)

    everything = await queue(client, desk)
    breached = ok(await client.get(f"{QUEUES}/T1/breached", headers=desk.tess.headers))

    assert [(item["id"], item["breached"]) for item in everything["items"]] == [
        (late, True),
        (in_time, False),
        (slow, False),
    ]
    assert kinds_and_ids(breached) == [("room", late)]


async def test_a_breached_escalation(client: httpx.AsyncClient, database: DatabaseUrls, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, room_id))
    made = ok(await escalate(client, desk.tess, room_id, to_level="T3", priority=3), 201)
    await as_superuser(
        database,
        "UPDATE support.escalations SET created_at = now() - interval '241 minutes' WHERE id = $1",
        UUID(made["id"]),
    )

    breached = ok(await client.get(f"{QUEUES}/T3/breached", headers=desk.tara.headers))

    assert [(item["kind"], item["id"], item["breached"]) for item in breached["items"]] == [
        ("escalation", made["id"], True)
    ]


async def test_the_queue_pages(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    rooms = [(await open_room(client, desk.alice, priority=p))["conversation_id"] for p in (3, 1, 2, 1, 5)]

    seen: list[str] = []
    page = await queue(client, desk, limit=2)
    while True:
        seen += [item["id"] for item in page["items"]]
        if page["next"] is None:
            break
        page = await queue(client, desk, limit=2, cursor=page["next"])

    assert seen == [rooms[1], rooms[3], rooms[2], rooms[0], rooms[4]]


@pytest.mark.parametrize(
    "cursor",
    [
        "bm90LWEtY3Vyc29y",  # not JSON
        "eyJhIjoxfQ",  # an object
        "WzEsIjIwMjYtMDEtMDFUMDA6MDA6MDAiLCAgIngiXQ",  # a time without a zone, no id
        "WzEsIjIwMjYtMDEtMDFUMDA6MDA6MDAiLDEyM10",  # a number for an id
        "WzksIjIwMjYtMDEtMDFUMDA6MDA6MDArMDA6MDAiLCIwMTg5MDAwMC0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwMDAiXQ",  # priority 9
        "W3RydWUsIjIwMjYtMDEtMDFUMDA6MDA6MDArMDA6MDAiLCIwMTg5MDAwMC0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwMDAiXQ",  # true
        "%%%",
    ],
)
async def test_a_cursor_not_issued_here_is_refused(client: httpx.AsyncClient, desk: Desk, cursor: str) -> None:
    response = await client.get(f"{QUEUES}/T1", headers=desk.max.headers, params={"cursor": cursor})

    refused(response, 400, "invalid-cursor")


async def test_who_reads_which_queue(client: httpx.AsyncClient, desk: Desk) -> None:
    for level in ("T1", "T2", "T3", "manager"):
        ok(await client.get(f"{QUEUES}/{level}", headers=desk.max.headers))
        ok(await client.get(f"{QUEUES}/{level}", headers=desk.sam.headers))
    ok(await client.get(f"{QUEUES}/T1", headers=desk.theo.headers))
    ok(await client.get(f"{QUEUES}/T2", headers=desk.theo.headers))
    body = refused(await client.get(f"{QUEUES}/T3", headers=desk.theo.headers), 403, "support-level-required")
    assert body["level"] == "T3"
    refused(await client.get(f"{QUEUES}/T1", headers=desk.alice.headers), 403, "support-level-required")
    refused(await client.get(f"{QUEUES}/T4", headers=desk.max.headers), 422, "validation-error")
    refused(await client.get(f"{QUEUES}/T1", headers=desk.max.headers, params={"limit": 0}), 422, "validation-error")


async def test_a_supervisor_sees_every_room_in_the_queues(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    await as_system(runtime, "UPDATE support.rooms SET level = 'manager' WHERE conversation_id = :id", id=UUID(room_id))

    assert kinds_and_ids(ok(await client.get(f"{QUEUES}/manager", headers=desk.sam.headers))) == [("room", room_id)]


# --- the service levels ------------------------------------------------------------------------


async def test_the_sla_is_seeded_and_readable(client: httpx.AsyncClient, desk: Desk) -> None:
    levels = await service_levels(client, desk)

    assert [(row["priority"], row["first_response_minutes"]) for row in levels] == [
        (1, 15),
        (2, 60),
        (3, 240),
        (4, 1440),
        (5, 4320),
    ]
    assert all(row["resolution_minutes"] >= row["first_response_minutes"] for row in levels)


async def test_an_administrator_sets_the_sla_and_queues_follow(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    admin = await make_admin(runtime, desk.mallory)
    room_id = (await open_room(client, desk.alice, priority=3))["conversation_id"]
    await opened_ago(runtime, room_id, 30)
    assert not (await queue(client, desk))["items"][0]["breached"]

    changed = ok(
        await client.put(
            f"{SLA}/3", headers=admin.headers, json={"first_response_minutes": 20, "resolution_minutes": 60}
        )
    )

    assert (changed["first_response_minutes"], changed["updated_by"]) == (20, admin.user_id)
    assert (await queue(client, desk))["items"][0]["breached"]
    [audited] = await as_system(
        runtime,
        "SELECT acting_user_id, old_data, new_data, changed_fields FROM audit.record_changes"
        " WHERE schema_name = 'support' AND table_name = 'sla'",
    )
    assert str(audited.acting_user_id) == admin.user_id
    assert (audited.old_data["first_response_minutes"], audited.new_data["first_response_minutes"]) == (240, 20)
    assert "first_response_minutes" in audited.changed_fields


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/3", {"first_response_minutes": 0, "resolution_minutes": 10}),
        ("/3", {"first_response_minutes": 30, "resolution_minutes": 10}),
        ("/3", {"first_response_minutes": 30}),
        ("/6", {"first_response_minutes": 30, "resolution_minutes": 60}),
        ("/0", {"first_response_minutes": 30, "resolution_minutes": 60}),
    ],
)
async def test_a_bad_sla_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk, path: str, body: dict[str, Any]
) -> None:
    admin = await make_admin(runtime, desk.mallory)

    refused(await client.put(f"{SLA}{path}", headers=admin.headers, json=body), 422, "validation-error")


async def test_only_an_administrator_sets_the_sla(client: httpx.AsyncClient, desk: Desk) -> None:
    body = {"first_response_minutes": 1, "resolution_minutes": 1}

    for persona in (desk.max, desk.sam, desk.alice):
        problem = refused(await client.put(f"{SLA}/1", headers=persona.headers, json=body), 403, "permission-required")
        assert problem["permission"] == "access:admin:manage"
    assert (await service_levels(client, desk))[0]["first_response_minutes"] == 15
