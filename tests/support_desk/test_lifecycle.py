"""Closing a support room ends what could still act in it, at once: its conversation
closes (nobody sends; the history stays readable), its guests' sessions and keys stop
working, its open guest links are revoked, and its open escalations are cancelled with a
note. A closed room stays closed, and closing again changes nothing more.

Alice is the customer; Tess works T1 and joins her rooms; Theo works T2; Gus and Gwen are
guests Alice lets in."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest

from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime
from tests.support import bearer, problem_type
from tests.support_desk.support import (
    ESCALATIONS,
    ROOMS,
    Desk,
    as_superuser,
    escalate,
    events,
    guest_link,
    guest_persona,
    join,
    ok,
    open_room,
    redeem,
    send,
    step,
)

pytestmark = pytest.mark.module_database

CLOSED_NOTE = "Cancelled: the support room was closed."


def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text


async def close(client: httpx.AsyncClient, who: Any, room_id: str) -> dict[str, Any]:
    return ok(await client.post(f"{ROOMS}/{room_id}/close", headers=who.headers))


async def staffed_room(client: httpx.AsyncClient, desk: Desk) -> str:
    """A room of Alice's that Tess joined and answered."""
    room_id: str = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, room_id))
    await send(client, desk.alice, room_id, "My order never arrived")
    await send(client, desk.tess, room_id, "Let me look")
    return room_id


# --- the conversation ---------------------------------------------------------------------------


async def test_closing_closes_the_conversation_and_keeps_its_history(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    room_id = await staffed_room(client, desk)

    await close(client, desk.tess, room_id)

    conversation = ok(await client.get(f"/v1/conversations/{room_id}", headers=desk.alice.headers))
    assert conversation["status"] == "closed"
    for sender in (desk.alice, desk.tess):
        sent = await client.post(
            f"/v1/conversations/{room_id}/messages", headers=sender.headers, json={"content": "still there?"}
        )
        refused(sent, 409, "conversation-not-active")
    for reader in (desk.alice, desk.tess):
        history = ok(await client.get(f"/v1/conversations/{room_id}/messages", headers=reader.headers))
        assert [m["content"] for m in history["items"]] == ["Let me look", "My order never arrived"]
    changed = [p for kind, scope, p in await events(runtime, "conversation.changed") if scope == room_id]
    assert changed == [{"conversation_id": room_id, "fields": ["status"]}]


async def test_nobody_opens_the_closed_conversation_again(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = await staffed_room(client, desk)
    await close(client, desk.alice, room_id)

    for who in (desk.alice, desk.tess):
        reopened = await client.patch(f"/v1/conversations/{room_id}", headers=who.headers, json={"status": "active"})
        refused(reopened, 403, "not-allowed-in-conversation")

    assert ok(await client.get(f"/v1/conversations/{room_id}", headers=desk.alice.headers))["status"] == "closed"
    assert ok(await client.get(f"{ROOMS}/{room_id}", headers=desk.alice.headers))["status"] == "closed"


# --- guests -------------------------------------------------------------------------------------


async def test_closing_ends_every_guest_session_at_once(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    room_id = await staffed_room(client, desk)
    link = await guest_link(client, desk.alice, room_id, max_uses=2)
    gus = guest_persona(ok(await redeem(client, link["token"], "Gus"), 201), "gus")
    gwen = guest_persona(ok(await redeem(client, link["token"], "Gwen"), 201), "gwen")
    key = ok(await client.post("/v1/auth/api-keys", headers=gus.headers, json={"name": "mine"}), 201)["key"]
    other_room = (await open_room(client, desk.alice, issue_description="Another issue"))["conversation_id"]
    other = guest_persona(ok(await redeem(client, (await guest_link(client, desk.alice, other_room))["token"]), 201))

    await close(client, desk.alice, room_id)

    for guest in (gus, gwen):
        assert (await client.get("/v1/auth/me", headers=guest.headers)).status_code == 401
        assert (await client.get(f"/v1/conversations/{room_id}/messages", headers=guest.headers)).status_code == 401
        again = await client.post("/v1/auth/refresh", json={"refresh_token": guest.refresh_token})
        assert again.status_code == 401, again.text
    assert (await client.get("/v1/auth/me", headers=bearer(key))).status_code == 401
    # A guest of another room keeps theirs.
    ok(await client.get(f"{ROOMS}/{other_room}", headers=other.headers))
    revoked = {p["session_id"] for _, _, p in await events(runtime, "session.revoked")}
    assert {gus.session_id, gwen.session_id} <= revoked and other.session_id not in revoked


async def test_closing_revokes_the_rooms_open_links(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = await staffed_room(client, desk)
    unused = await guest_link(client, desk.alice, room_id)
    elsewhere = (await open_room(client, desk.alice, issue_description="Another issue"))["conversation_id"]
    kept = await guest_link(client, desk.alice, elsewhere)

    await close(client, desk.alice, room_id)

    [listed] = ok(await client.get(f"{ROOMS}/{room_id}/guest-links", headers=desk.alice.headers))["items"]
    assert listed["id"] == unused["id"] and listed["revoked_at"] is not None
    # Its holder is told why it opens nothing.
    refused(await redeem(client, unused["token"]), 409, "support-room-closed")
    [still] = ok(await client.get(f"{ROOMS}/{elsewhere}/guest-links", headers=desk.alice.headers))["items"]
    assert still["revoked_at"] is None
    ok(await redeem(client, kept["token"]), 201)


# --- escalations --------------------------------------------------------------------------------


async def test_closing_cancels_the_open_escalations_with_a_note(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    room_id = await staffed_room(client, desk)
    escalation = ok(await escalate(client, desk.tess, room_id, to_level="T2"), 201)
    ok(await step(client, desk.theo, escalation["id"], "assign"))
    ok(await step(client, desk.theo, escalation["id"], "start"))

    await close(client, desk.alice, room_id)

    cancelled = ok(await client.get(f"{ESCALATIONS}/{escalation['id']}", headers=desk.theo.headers))
    assert (cancelled["status"], cancelled["resolution_notes"]) == ("cancelled", CLOSED_NOTE)
    assert cancelled["cancelled_at"] is not None and cancelled["resolved_at"] is None
    refused(
        await step(client, desk.theo, escalation["id"], "resolve", notes="Refunded"),
        409,
        "support-escalation-transition",
    )
    announced = [
        (kind, p["status"]) for kind, scope, p in await events(runtime, "support.escalation.") if scope == room_id
    ]
    assert announced[-1] == ("support.escalation.cancelled", "cancelled")
    assert [kind for kind, _ in announced].count("support.escalation.cancelled") == 1
    assert ok(await client.get(f"{ROOMS}/{room_id}", headers=desk.theo.headers))["status"] == "closed"


async def test_an_ended_escalation_keeps_its_end(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = await staffed_room(client, desk)
    escalation = ok(await escalate(client, desk.tess, room_id, to_level="T2"), 201)
    ok(await step(client, desk.theo, escalation["id"], "assign"))
    ok(await step(client, desk.theo, escalation["id"], "start"))
    ok(await step(client, desk.theo, escalation["id"], "resolve", notes="Refunded in full"))

    await close(client, desk.alice, room_id)

    resolved = ok(await client.get(f"{ESCALATIONS}/{escalation['id']}", headers=desk.theo.headers))
    assert (resolved["status"], resolved["resolution_notes"]) == ("resolved", "Refunded in full")


async def test_an_escalated_room_and_the_room_it_came_from_close_apart(client: httpx.AsyncClient, desk: Desk) -> None:
    source = await staffed_room(client, desk)
    escalation = ok(await escalate(client, desk.tess, source, to_level="T2", mode="new_room"), 201)
    target = escalation["target_room_id"]

    # The escalation is worked in the escalated room: closing the source leaves it open.
    await close(client, desk.alice, source)
    waiting = ok(await client.get(f"{ESCALATIONS}/{escalation['id']}", headers=desk.theo.headers))
    assert waiting["status"] == "created"
    assert ok(await client.get(f"{ROOMS}/{target}", headers=desk.alice.headers))["status"] == "open"
    await send(client, desk.alice, target, "Still here")

    await close(client, desk.alice, target)
    ended = ok(await client.get(f"{ESCALATIONS}/{escalation['id']}", headers=desk.theo.headers))
    assert (ended["status"], ended["resolution_notes"]) == ("cancelled", CLOSED_NOTE)


# --- closing again ------------------------------------------------------------------------------


async def test_closing_again_changes_nothing_more(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    room_id = await staffed_room(client, desk)
    ok(await escalate(client, desk.tess, room_id, to_level="T2"), 201)
    first = await close(client, desk.alice, room_id)
    before = [event for event in await events(runtime, "") if event[1] == room_id]

    again = await close(client, desk.alice, room_id)

    assert again == first
    assert [event for event in await events(runtime, "") if event[1] == room_id] == before


async def test_a_room_closed_before_closing_ended_more_finishes_closing_when_closed_again(
    client: httpx.AsyncClient, runtime: Runtime, database: DatabaseUrls, desk: Desk
) -> None:
    room_id = await staffed_room(client, desk)
    gus = guest_persona(ok(await redeem(client, (await guest_link(client, desk.alice, room_id))["token"]), 201))
    # As an earlier release closed it: the room alone.
    await as_superuser(
        database,
        "UPDATE support.rooms SET status = 'closed', closed_at = now() WHERE conversation_id = $1",
        UUID(room_id),
    )
    await send(client, desk.alice, room_id, "The conversation was left open")

    await close(client, desk.alice, room_id)

    assert ok(await client.get(f"/v1/conversations/{room_id}", headers=desk.alice.headers))["status"] == "closed"
    assert (await client.get("/v1/auth/me", headers=gus.headers)).status_code == 401
    assert [
        kind for kind, scope, _ in await events(runtime) if scope == room_id and kind == "support.room.closed"
    ] == []
