"""A block never shows: to mallory, whom alice blocks, alice is exactly what an account
that does not exist is, on every route that names her (docs/decisions/0009). And no
answer tells a stranger whether a private account exists.

Alice has a public profile, filled-in parts and a live status; she blocks mallory. Bob, a
stranger alice does not block, sees all of it: without that, an equal answer would prove
nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

PARTS = {
    "demographics": {"preferred_name": "Ali"},
    "employment": {"occupation": "Nurse"},
    "background": {"culture": "French-Moroccan"},
}


@pytest.fixture
async def alice_blocks_mallory(client: httpx.AsyncClient, alice: Persona, bob: Persona, mallory: Persona) -> Persona:
    for part, body in PARTS.items():
        response = await client.put(f"/v1/profile/parts/{part}", headers=alice.headers, json=body)
        assert response.status_code == 200, response.text
    posted = await client.post("/v1/statuses", headers=alice.headers, json={"content": "At the beach"})
    assert posted.status_code == 201, posted.text
    blocked = await client.put(f"/v1/blocks/{mallory.user_id}", headers=alice.headers)
    assert blocked.status_code == 200, blocked.text
    return alice


def answer(response: httpx.Response) -> tuple[int, Any]:
    """What a client learns: the status and the body, less what differs on every request
    (the path the problem names, the request's id)."""
    body = response.json()
    if isinstance(body, dict):
        body.pop("instance", None)
        body.pop("request_id", None)
    return response.status_code, body


# Each route naming a user, as a request for that user's id.
READS = {
    "profile": "/v1/users/{id}/profile",
    "statuses": "/v1/users/{id}/statuses",
    **{f"part {part}": f"/v1/users/{{id}}/parts/{part}" for part in PARTS},
}


@pytest.mark.parametrize("route", READS.values(), ids=list(READS))
async def test_the_blocker_reads_as_a_user_who_does_not_exist(
    client: httpx.AsyncClient, alice_blocks_mallory: Persona, bob: Persona, mallory: Persona, route: str
) -> None:
    alice = alice_blocks_mallory
    seen_by_bob = await client.get(route.format(id=alice.user_id), headers=bob.headers)
    blocker = await client.get(route.format(id=alice.user_id), headers=mallory.headers)
    nobody = await client.get(route.format(id=uuid7()), headers=mallory.headers)

    assert seen_by_bob.status_code == 200
    assert answer(blocker) == answer(nobody)
    assert blocker.status_code == 404


async def test_the_blocker_by_username_reads_as_a_username_nobody_has(
    client: httpx.AsyncClient, alice_blocks_mallory: Persona, bob: Persona, mallory: Persona
) -> None:
    seen_by_bob = await client.get("/v1/users/by-username/alice", headers=bob.headers)
    blocker = await client.get("/v1/users/by-username/alice", headers=mallory.headers)
    nobody = await client.get("/v1/users/by-username/nobody_has_it", headers=mallory.headers)

    assert seen_by_bob.status_code == 200
    assert (answer(blocker), blocker.status_code) == (answer(nobody), 404)


async def test_search_leaves_the_blocker_out(
    client: httpx.AsyncClient, alice_blocks_mallory: Persona, bob: Persona, mallory: Persona
) -> None:
    def found(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [match["username"] for match in response.json()["items"]]

    by_bob = await client.get("/v1/users/search", headers=bob.headers, params={"q": "alice"})
    by_mallory = await client.get("/v1/users/search", headers=mallory.headers, params={"q": "alice"})

    assert (found(by_bob), found(by_mallory)) == (["alice"], [])


async def _requests_between(runtime: Runtime, a: str, b: str) -> int:
    async with system_transaction(runtime.system_engine) as db:
        count = await db.execute(
            text(
                "SELECT count(*) FROM social.contact_requests "
                "WHERE (requester_id, addressee_id) IN ((:a, :b), (:b, :a))"
            ),
            {"a": UUID(a), "b": UUID(b)},
        )
        return int(count.scalar_one())


async def test_a_contact_request_to_the_blocker_answers_as_to_nobody(
    client: httpx.AsyncClient, runtime: Runtime, alice_blocks_mallory: Persona, mallory: Persona
) -> None:
    alice = alice_blocks_mallory
    blocker = await client.post("/v1/contact-requests", headers=mallory.headers, json={"user_id": alice.user_id})
    nobody = await client.post("/v1/contact-requests", headers=mallory.headers, json={"user_id": str(uuid7())})

    assert (answer(blocker), problem_type(blocker)) == (answer(nobody), "user-not-found")
    assert await _requests_between(runtime, alice.user_id, mallory.user_id) == 0


async def test_a_stranger_who_is_not_blocked_may_ask(
    client: httpx.AsyncClient, alice_blocks_mallory: Persona, bob: Persona
) -> None:
    """The control: the request above fails because of the block, not of the fixture."""
    response = await client.post(
        "/v1/contact-requests", headers=bob.headers, json={"user_id": alice_blocks_mallory.user_id}
    )
    assert response.status_code == 201


async def test_the_blocker_still_sees_the_person_blocked(
    client: httpx.AsyncClient, alice_blocks_mallory: Persona, mallory: Persona
) -> None:
    response = await client.get(f"/v1/users/{mallory.user_id}/profile", headers=alice_blocks_mallory.headers)
    assert response.status_code == 200


async def test_the_block_lifted_the_blocker_shows_again(
    client: httpx.AsyncClient, alice_blocks_mallory: Persona, mallory: Persona
) -> None:
    alice = alice_blocks_mallory
    await client.delete(f"/v1/blocks/{mallory.user_id}", headers=alice.headers)
    response = await client.get(f"/v1/users/{alice.user_id}/profile", headers=mallory.headers)
    assert response.status_code == 200


# What a stranger may learn of private accounts


async def make_private(client: httpx.AsyncClient, persona: Persona) -> None:
    response = await client.patch("/v1/profile", headers=persona.headers, json={"profile_visibility": "private"})
    assert response.status_code == 200, response.text


async def test_blocking_answers_alike_for_a_private_account_and_for_no_account(
    client: httpx.AsyncClient, bob: Persona, mallory: Persona
) -> None:
    await make_private(client, bob)
    private = await client.put(f"/v1/blocks/{bob.user_id}", headers=mallory.headers)
    nobody_id = str(uuid7())
    nobody = await client.put(f"/v1/blocks/{nobody_id}", headers=mallory.headers)

    def shape(response: httpx.Response, user_id: str) -> tuple[int, dict[str, Any]]:
        body = response.json()
        return response.status_code, body | {"blocked_id": body["blocked_id"] == user_id, "created_at": None}

    assert shape(private, bob.user_id) == shape(nobody, nobody_id)
    listed = (await client.get("/v1/blocks", headers=mallory.headers)).json()["items"]
    assert sorted(b["blocked_id"] for b in listed) == sorted([bob.user_id, nobody_id])


async def test_unblocking_answers_alike_for_a_private_account_and_for_no_account(
    client: httpx.AsyncClient, bob: Persona, mallory: Persona
) -> None:
    await make_private(client, bob)
    private = await client.delete(f"/v1/blocks/{bob.user_id}", headers=mallory.headers)
    nobody = await client.delete(f"/v1/blocks/{uuid7()}", headers=mallory.headers)
    assert answer(private) == answer(nobody)


@pytest.mark.parametrize("visibility", ["public", "contacts", "private"])
async def test_a_taken_username_answers_alike_whatever_the_profile_shows(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, mallory: Persona, visibility: str
) -> None:
    """The one signal left (a name is in use) says nothing of the profile behind it."""
    await client.patch("/v1/profile", headers=bob.headers, json={"profile_visibility": visibility})
    taken = await client.patch("/v1/profile", headers=mallory.headers, json={"username": "BOB"})
    reference = await client.patch("/v1/profile", headers=mallory.headers, json={"username": "ALICE"})

    assert (taken.status_code, problem_type(taken)) == (reference.status_code, "username-taken")
    assert taken.json()["detail"].replace("BOB", "ALICE") == reference.json()["detail"]


async def test_a_private_profile_by_username_reads_as_no_profile(
    client: httpx.AsyncClient, bob: Persona, mallory: Persona
) -> None:
    await make_private(client, bob)
    private = await client.get("/v1/users/by-username/bob", headers=mallory.headers)
    nobody = await client.get("/v1/users/by-username/nobody_has_it", headers=mallory.headers)
    assert (answer(private), private.status_code) == (answer(nobody), 404)


async def test_a_contact_request_to_a_private_account_answers_as_to_nobody(
    client: httpx.AsyncClient, bob: Persona, mallory: Persona
) -> None:
    await make_private(client, bob)
    private = await client.post("/v1/contact-requests", headers=mallory.headers, json={"user_id": bob.user_id})
    nobody = await client.post("/v1/contact-requests", headers=mallory.headers, json={"user_id": str(uuid7())})
    assert (answer(private), private.status_code) == (answer(nobody), 404)
