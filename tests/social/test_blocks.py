"""Blocking (PUT /v1/blocks/{user_id}), unblocking (DELETE) and the list of people one
blocks (GET /v1/blocks). The blocked person is never told, loses the contact, and can no
longer ask to be one: to them the blocker is an unknown user (tests/security/
test_blocks_hide_the_blocker.py checks every route).

Alice blocks bob; mallory is a stranger."""

from __future__ import annotations

import pytest

from rapport.kernel.ids import uuid7
from tests.support import Persona, befriend, problem_type

pytestmark = pytest.mark.module_database

BLOCKS = "/v1/blocks"
REQUESTS = "/v1/contact-requests"


async def block(client, blocker: Persona, blocked: Persona | str, **body):
    user_id = blocked if isinstance(blocked, str) else blocked.user_id
    return await client.put(f"{BLOCKS}/{user_id}", headers=blocker.headers, json=body or None)


async def unblock(client, blocker: Persona, blocked: Persona | str):
    user_id = blocked if isinstance(blocked, str) else blocked.user_id
    return await client.delete(f"{BLOCKS}/{user_id}", headers=blocker.headers)


async def blocked_ids(client, persona: Persona, **params) -> list[str]:
    response = await client.get(BLOCKS, headers=persona.headers, params=params)
    assert response.status_code == 200, response.text
    return [b["blocked_id"] for b in response.json()["items"]]


async def ask(client, requester: Persona, addressee: Persona):
    return await client.post(REQUESTS, headers=requester.headers, json={"user_id": addressee.user_id})


async def contact_user_ids(client, persona: Persona) -> list[str]:
    return [c["contact_user_id"] for c in (await client.get("/v1/contacts", headers=persona.headers)).json()["items"]]


async def request_status(client, persona: Persona, request_id: str, direction: str) -> str:
    for status in ("pending", "accepted", "rejected", "cancelled"):
        listed = (
            await client.get(REQUESTS, headers=persona.headers, params={"direction": direction, "status": status})
        ).json()["items"]
        if any(r["id"] == request_id for r in listed):
            return status
    raise AssertionError(f"request {request_id} is not listed")


# Blocking


async def test_blocking_answers_with_the_block(client, alice, bob):
    response = await block(client, alice, bob, reason="Spam")
    assert (response.status_code, response.json()["blocked_id"], response.json()["reason"]) == (
        200,
        bob.user_id,
        "Spam",
    )


async def test_a_block_needs_no_reason(client, alice, bob):
    response = await block(client, alice, bob)
    assert (response.status_code, response.json()["reason"]) == (200, None)


async def test_a_block_is_listed(client, alice, bob):
    await block(client, alice, bob)
    assert await blocked_ids(client, alice) == [bob.user_id]


async def test_blocking_again_changes_nothing(client, alice, bob):
    first = (await block(client, alice, bob, reason="Spam")).json()
    again = await block(client, alice, bob, reason="Something else")
    assert (again.status_code, again.json()) == (200, first)


async def test_blocking_again_lists_one_block(client, alice, bob):
    await block(client, alice, bob)
    await block(client, alice, bob)
    assert await blocked_ids(client, alice) == [bob.user_id]


async def test_blocking_oneself_is_refused(client, alice):
    response = await block(client, alice, alice)
    assert (response.status_code, problem_type(response)) == (422, "cannot-target-self")


async def test_blocking_someone_whose_profile_is_private(client, alice, bob):
    await client.patch("/v1/profile", headers=bob.headers, json={"profile_visibility": "private"})
    response = await block(client, alice, bob)
    assert response.status_code == 200


async def test_blocking_an_id_without_an_account_answers_as_for_a_private_account(client, alice, bob):
    """Otherwise the answer would tell a stranger which private accounts exist."""
    await client.patch("/v1/profile", headers=bob.headers, json={"profile_visibility": "private"})
    nobody = str(uuid7())
    private, unknown = await block(client, alice, bob, reason="x"), await block(client, alice, nobody, reason="x")
    assert (unknown.status_code, sorted(unknown.json())) == (private.status_code, sorted(private.json()))
    assert (unknown.json()["blocked_id"], unknown.json()["reason"]) == (nobody, "x")


async def test_a_block_of_an_id_without_an_account_is_listed_and_lifted_like_any(client, alice):
    nobody = str(uuid7())
    await block(client, alice, nobody)
    listed = await blocked_ids(client, alice)
    response = await unblock(client, alice, nobody)
    assert (listed, response.status_code, await blocked_ids(client, alice)) == ([nobody], 204, [])


@pytest.mark.parametrize(
    "body",
    [{"reason": "r" * 501}, {"reason": 5}, {"until": "tomorrow"}],
    ids=["reason-501", "reason-number", "unknown-field"],
)
async def test_a_bad_block_is_refused(client, alice, bob, body):
    response = await block(client, alice, bob, **body)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_a_malformed_user_id_is_refused(client, alice):
    response = await block(client, alice, "not-a-uuid")
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


# What a block ends


async def test_blocking_removes_the_contact_from_the_blockers_list(client, alice, bob):
    await befriend(client, alice, bob)
    await block(client, alice, bob)
    assert await contact_user_ids(client, alice) == []


async def test_blocking_removes_the_contact_from_the_blocked_persons_list(client, alice, bob):
    await befriend(client, alice, bob)
    await block(client, alice, bob)
    assert await contact_user_ids(client, bob) == []


async def test_blocking_leaves_other_contacts(client, alice, bob, mallory):
    await befriend(client, alice, bob)
    await befriend(client, alice, mallory)
    await block(client, alice, bob)
    assert await contact_user_ids(client, alice) == [mallory.user_id]


async def test_blocking_cancels_the_blockers_pending_request(client, alice, bob):
    request_id = (await ask(client, alice, bob)).json()["id"]
    await block(client, alice, bob)
    assert await request_status(client, alice, request_id, "outgoing") == "cancelled"


async def test_the_blocked_persons_pending_request_stays_pending_for_them(client, alice, bob):
    """Cancelled, it would tell them of the block: only they cancel their requests."""
    request_id = (await ask(client, bob, alice)).json()["id"]
    await block(client, alice, bob)
    assert await request_status(client, bob, request_id, "outgoing") == "pending"


async def test_the_blocker_no_longer_sees_the_blocked_persons_request(client, alice, bob):
    await ask(client, bob, alice)
    await block(client, alice, bob)
    assert (await client.get(REQUESTS, headers=alice.headers)).json()["items"] == []


async def test_the_request_shows_again_when_the_block_is_lifted(client, alice, bob):
    request_id = (await ask(client, bob, alice)).json()["id"]
    await block(client, alice, bob)
    await unblock(client, alice, bob)
    assert await request_status(client, alice, request_id, "incoming") == "pending"


async def test_a_request_from_the_blocked_person_cannot_be_accepted(client, alice, bob):
    request_id = (await ask(client, alice, bob)).json()["id"]
    await block(client, bob, alice)
    response = await client.post(f"{REQUESTS}/{request_id}/accept", headers=bob.headers)
    assert (response.status_code, problem_type(response)) == (403, "contact-request-not-allowed")


async def test_the_blocker_cancelling_the_blocked_persons_request_is_refused(client, alice, bob):
    request_id = (await ask(client, alice, bob)).json()["id"]
    await block(client, bob, alice)
    response = await client.post(f"{REQUESTS}/{request_id}/cancel", headers=bob.headers)
    assert (response.status_code, problem_type(response)) == (403, "not-request-requester")


async def test_blocking_leaves_other_peoples_requests(client, alice, bob, mallory):
    request_id = (await ask(client, mallory, alice)).json()["id"]
    await block(client, alice, bob)
    assert await request_status(client, mallory, request_id, "outgoing") == "pending"


async def test_the_blocked_person_cannot_ask_to_be_a_contact(client, alice, bob):
    await block(client, alice, bob)
    response = await ask(client, bob, alice)
    assert (response.status_code, problem_type(response)) == (404, "user-not-found")


async def test_the_blocker_cannot_ask_the_blocked_person_either(client, alice, bob):
    await block(client, alice, bob)
    response = await ask(client, alice, bob)
    assert (response.status_code, problem_type(response)) == (403, "contact-request-not-allowed")


async def test_a_refused_request_is_not_made(client, alice, bob):
    await block(client, alice, bob)
    await ask(client, bob, alice)
    assert (await client.get(REQUESTS, headers=alice.headers)).json()["items"] == []


# Unblocking


async def test_unblocking(client, alice, bob):
    await block(client, alice, bob)
    response = await unblock(client, alice, bob)
    assert (response.status_code, await blocked_ids(client, alice)) == (204, [])


async def test_after_unblocking_requests_are_allowed_again(client, alice, bob):
    await block(client, alice, bob)
    await unblock(client, alice, bob)
    response = await ask(client, bob, alice)
    assert (response.status_code, response.json()["status"]) == (201, "pending")


async def test_unblocking_does_not_bring_the_contact_back(client, alice, bob):
    await befriend(client, alice, bob)
    await block(client, alice, bob)
    await unblock(client, alice, bob)
    assert await contact_user_ids(client, bob) == []


async def test_unblocking_someone_not_blocked_is_not_found(client, alice, bob):
    response = await unblock(client, alice, bob)
    assert (response.status_code, problem_type(response)) == (404, "block-not-found")


async def test_unblocking_an_unknown_user_is_not_found(client, alice):
    response = await unblock(client, alice, str(uuid7()))
    assert (response.status_code, problem_type(response)) == (404, "block-not-found")


async def test_unblocking_twice_is_not_found(client, alice, bob):
    await block(client, alice, bob)
    await unblock(client, alice, bob)
    response = await unblock(client, alice, bob)
    assert (response.status_code, problem_type(response)) == (404, "block-not-found")


async def test_a_block_each_way_is_undone_one_at_a_time(client, alice, bob):
    await block(client, alice, bob)
    await block(client, bob, alice)
    await unblock(client, alice, bob)
    asked_by_alice, asked_by_bob = await ask(client, alice, bob), await ask(client, bob, alice)
    assert (problem_type(asked_by_alice), problem_type(asked_by_bob)) == (
        "user-not-found",
        "contact-request-not-allowed",
    )


# The list, and who sees it


async def test_blocks_are_listed_a_page_at_a_time(client, make_persona, alice):
    people = [await make_persona(name) for name in ("carol", "dave", "erin")]
    for persona in people:
        await block(client, alice, persona)
    first = (await client.get(BLOCKS, headers=alice.headers, params={"limit": 2})).json()
    second = (await client.get(BLOCKS, headers=alice.headers, params={"limit": 2, "cursor": first["next"]})).json()
    seen = [b["blocked_id"] for b in first["items"] + second["items"]]
    assert (sorted(seen), second["next"]) == (sorted(p.user_id for p in people), None)


async def test_the_blocked_person_does_not_see_the_block(client, alice, bob):
    await block(client, alice, bob)
    assert await blocked_ids(client, bob) == []


async def test_a_stranger_does_not_see_the_block(client, alice, bob, mallory):
    await block(client, alice, bob)
    assert await blocked_ids(client, mallory) == []


async def test_the_blocked_person_cannot_lift_the_block(client, alice, bob):
    await block(client, alice, bob)
    response = await unblock(client, bob, alice)
    assert (response.status_code, problem_type(response)) == (404, "block-not-found")


async def test_a_stranger_cannot_lift_the_block(client, alice, bob, mallory):
    await block(client, alice, bob)
    await unblock(client, mallory, bob)
    assert await blocked_ids(client, alice) == [bob.user_id]


async def test_blocking_needs_a_signed_in_user(client, bob):
    response = await client.put(f"{BLOCKS}/{bob.user_id}")
    assert response.status_code == 401
