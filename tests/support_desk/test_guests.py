"""Guest links: the customer or an agent in the room makes one; someone without an account
redeems it for a guest account signed in to that room alone; its token is kept as an HMAC
under the server's key; expired, used up, wrong, revoked, and rooms shut to guests are
refused."""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

import httpx
import pytest

from rapport.kernel.runtime import Runtime
from rapport.modules.support import service
from tests.support import bearer, problem_type
from tests.support_desk.support import (
    ROOMS,
    Desk,
    as_system,
    events,
    guest_link,
    guest_persona,
    join,
    ok,
    open_room,
    redeem,
    send,
)

pytestmark = pytest.mark.module_database


def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text


async def test_a_guest_joins_the_room_through_a_link(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    link = await guest_link(client, desk.alice, room_id)

    session = ok(await redeem(client, link["token"], "Gus the neighbour"), 201)

    assert session["room"]["conversation_id"] == room_id
    gus = guest_persona(session)
    me = ok(await client.get("/v1/auth/me", headers=gus.headers))
    assert (me["kind"], me["email"]) == ("guest", None)
    people = ok(await client.get(f"/v1/conversations/{room_id}/participants", headers=gus.headers))
    assert {p["user_id"]: p["role"] for p in people["items"]}[gus.user_id] == "guest"
    await send(client, gus, room_id, "I am helping Alice")
    ok(await client.get(f"{ROOMS}/{room_id}", headers=gus.headers))
    profile = ok(await client.get(f"/v1/users/{gus.user_id}/profile", headers=desk.alice.headers))
    assert profile["display_name"] == "Gus the neighbour"
    joined = [payload["guest_id"] for kind, _, payload in await events(runtime) if kind == "support.guest.joined"]
    assert joined == [gus.user_id]


async def test_the_guests_session_refreshes_like_any(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    session = ok(await redeem(client, (await guest_link(client, desk.alice, room_id))["token"]), 201)

    refreshed = ok(await client.post("/v1/auth/refresh", json={"refresh_token": session["tokens"]["refresh_token"]}))

    assert refreshed["user_id"] == session["tokens"]["user_id"]


async def test_the_token_is_shown_once_and_kept_as_its_hash(
    client: httpx.AsyncClient, runtime: Runtime, desk: Desk
) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    ok(await join(client, desk.tess, room_id))
    link = await guest_link(client, desk.tess, room_id, max_uses=3, expires_in_seconds=600)

    assert link["token"].startswith("rsg_") and (link["max_uses"], link["uses"]) == (3, 0)
    [stored] = await as_system(
        runtime, "SELECT token_hash FROM support.guest_links WHERE id = :id", id=UUID(link["id"])
    )
    # Keyed by the server: a copy of the table does not let anyone test guessed tokens.
    assert bytes(stored.token_hash) == service.token_hash(runtime.keyring, link["token"])
    assert bytes(stored.token_hash) != hashlib.sha256(link["token"].encode()).digest()
    listed = ok(await client.get(f"{ROOMS}/{room_id}/guest-links", headers=desk.tess.headers))
    assert [item["id"] for item in listed["items"]] == [link["id"]] and "token" not in listed["items"][0]
    assert ok(await client.get(f"{ROOMS}/{room_id}/guest-links", headers=desk.alice.headers))["items"] == []


async def test_a_link_admits_as_many_guests_as_it_may(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    single = await guest_link(client, desk.alice, room_id)
    double = await guest_link(client, desk.alice, room_id, max_uses=2)

    ok(await redeem(client, single["token"]), 201)
    refused(await redeem(client, single["token"]), 410, "support-guest-link-used")
    ok(await redeem(client, double["token"]), 201)
    ok(await redeem(client, double["token"]), 201)
    refused(await redeem(client, double["token"]), 410, "support-guest-link-used")


async def test_an_expired_link_is_refused(client: httpx.AsyncClient, runtime: Runtime, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    link = await guest_link(client, desk.alice, room_id)
    await as_system(
        runtime,
        "UPDATE support.guest_links SET expires_at = created_at + interval '1 microsecond',"
        " created_at = now() - interval '1 hour' WHERE id = :id",
        id=UUID(link["id"]),
    )

    refused(await redeem(client, link["token"]), 410, "support-guest-link-expired")


async def test_a_wrong_or_revoked_token_opens_nothing(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    link = await guest_link(client, desk.alice, room_id)

    refused(await redeem(client, link["token"] + "x"), 404, "support-guest-link-not-found")
    refused(await redeem(client, "rsg_nothing"), 404, "support-guest-link-not-found")
    refused(
        await client.delete(f"/v1/support/guest-links/{link['id']}", headers=desk.mallory.headers),
        404,
        "support-guest-link-not-found",
    )
    revoked = await client.delete(f"/v1/support/guest-links/{link['id']}", headers=desk.alice.headers)
    assert revoked.status_code == 204, revoked.text
    refused(await redeem(client, link["token"]), 404, "support-guest-link-not-found")


async def test_a_room_shut_to_guests_admits_none(client: httpx.AsyncClient, desk: Desk) -> None:
    closed_door = (await open_room(client, desk.alice, guests_allowed=False))["conversation_id"]
    refused(
        await client.post(f"{ROOMS}/{closed_door}/guest-links", headers=desk.alice.headers, json={}),
        403,
        "support-guests-not-allowed",
    )

    room_id = (await open_room(client, desk.alice))["conversation_id"]
    link = await guest_link(client, desk.alice, room_id)
    ok(await client.patch(f"{ROOMS}/{room_id}", headers=desk.alice.headers, json={"guests_allowed": False}))
    refused(await redeem(client, link["token"]), 403, "support-guests-not-allowed")


async def test_a_closed_room_admits_no_guest(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    link = await guest_link(client, desk.alice, room_id)
    ok(await client.post(f"{ROOMS}/{room_id}/close", headers=desk.alice.headers))

    refused(await redeem(client, link["token"]), 409, "support-room-closed")


async def test_only_the_customer_or_an_agent_in_it_makes_a_link(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]

    refused(
        await client.post(f"{ROOMS}/{room_id}/guest-links", headers=desk.tess.headers, json={}),
        403,
        "support-room-participant-required",
    )
    refused(
        await client.post(f"{ROOMS}/{room_id}/guest-links", headers=desk.mallory.headers, json={}),
        404,
        "support-room-not-found",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"max_uses": 0},
        {"max_uses": 101},
        {"expires_in_seconds": 59},
        {"expires_in_seconds": 8 * 24 * 3600},
        {"uses": 1},
    ],
)
async def test_a_bad_link_is_refused(client: httpx.AsyncClient, desk: Desk, body: dict[str, Any]) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]

    refused(
        await client.post(f"{ROOMS}/{room_id}/guest-links", headers=desk.alice.headers, json=body),
        422,
        "validation-error",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"token": "rsg_x"},
        {"display_name": "Gus"},
        {"token": "rsg_x", "display_name": " "},
        {"token": "", "display_name": "Gus"},
    ],
)
async def test_a_bad_guest_session_is_refused(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    refused(await client.post("/v1/support/guest-sessions", json=body), 422, "validation-error")


async def test_a_guest_opens_no_room_and_cannot_sign_in(client: httpx.AsyncClient, desk: Desk) -> None:
    room_id = (await open_room(client, desk.alice))["conversation_id"]
    gus = guest_persona(ok(await redeem(client, (await guest_link(client, desk.alice, room_id))["token"]), 201))

    refused(
        await client.post(ROOMS, headers=gus.headers, json={"issue_description": "mine"}),
        403,
        "support-customer-required",
    )
    refused(
        await client.post(f"{ROOMS}/{room_id}/guest-links", headers=gus.headers, json={}),
        403,
        "support-room-participant-required",
    )
    other = (await open_room(client, desk.alice))["conversation_id"]
    refused(await client.get(f"{ROOMS}/{other}", headers=gus.headers), 404, "support-room-not-found")
    assert (await client.get(f"/v1/conversations/{other}", headers=bearer(gus.access_token))).status_code == 404
