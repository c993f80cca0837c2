"""Contact requests: ask (POST /v1/contact-requests), accept, reject or cancel
(POST /v1/contact-requests/{id}/{answer}), and list them (GET /v1/contact-requests).
Two people who ask each other become contacts at once.

Alice asks bob; mallory is a stranger to both."""

from __future__ import annotations

import pytest

from rapport.kernel.ids import uuid7
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

REQUESTS = "/v1/contact-requests"


async def ask(client, requester: Persona, addressee: Persona | str, **extra):
    user_id = addressee if isinstance(addressee, str) else addressee.user_id
    return await client.post(REQUESTS, headers=requester.headers, json={"user_id": user_id, **extra})


async def answer(client, persona: Persona, request_id: str, verb: str):
    return await client.post(f"{REQUESTS}/{request_id}/{verb}", headers=persona.headers)


async def asked(client, requester: Persona, addressee: Persona) -> str:
    """The id of a new pending request."""
    response = await ask(client, requester, addressee)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def contact_user_ids(client, persona: Persona) -> list[str]:
    return [c["contact_user_id"] for c in (await client.get("/v1/contacts", headers=persona.headers)).json()["items"]]


async def listed(client, persona: Persona, **params) -> list[dict]:
    response = await client.get(REQUESTS, headers=persona.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


# Asking


async def test_a_request_is_pending(client, alice, bob):
    response = await ask(client, alice, bob)
    assert (response.status_code, response.json()["status"]) == (201, "pending")


async def test_a_request_names_both_people(client, alice, bob):
    body = (await ask(client, alice, bob)).json()
    assert (body["requester_id"], body["addressee_id"]) == (alice.user_id, bob.user_id)


async def test_a_request_carries_its_message(client, alice, bob):
    response = await ask(client, alice, bob, message="  We met at the croquet match.  ")
    assert response.json()["message"] == "We met at the croquet match."


async def test_a_request_alone_makes_no_contacts(client, alice, bob):
    await ask(client, alice, bob)
    assert await contact_user_ids(client, bob) == []


async def test_a_second_request_while_one_is_pending_is_refused(client, alice, bob):
    await ask(client, alice, bob)
    response = await ask(client, alice, bob)
    assert (response.status_code, problem_type(response)) == (409, "contact-request-pending")


async def test_a_request_to_oneself_is_refused(client, alice):
    response = await ask(client, alice, alice)
    assert (response.status_code, problem_type(response)) == (422, "cannot-target-self")


async def test_a_request_to_an_unknown_user_is_not_found(client, alice):
    response = await ask(client, alice, str(uuid7()))
    assert (response.status_code, problem_type(response)) == (404, "user-not-found")


@pytest.mark.parametrize("visibility", ["private", "contacts"])
async def test_a_request_to_a_profile_one_cannot_see_is_not_found(client, alice, bob, visibility):
    await client.patch("/v1/profile", headers=bob.headers, json={"profile_visibility": visibility})
    response = await ask(client, alice, bob)
    assert (response.status_code, problem_type(response)) == (404, "user-not-found")


async def test_a_request_to_a_contact_is_refused(client, alice, bob):
    await answer(client, bob, await asked(client, alice, bob), "accept")
    response = await ask(client, alice, bob)
    assert (response.status_code, problem_type(response)) == (409, "already-contacts")


async def test_the_other_side_of_a_contact_is_refused_too(client, alice, bob):
    await answer(client, bob, await asked(client, alice, bob), "accept")
    response = await ask(client, bob, alice)
    assert (response.status_code, problem_type(response)) == (409, "already-contacts")


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "not-a-uuid"},
        {},
        {"user_id": str(uuid7()), "message": "m" * 501},
        {"user_id": str(uuid7()), "status": "accepted"},
    ],
    ids=["bad-id", "no-id", "message-501", "unknown-field"],
)
async def test_a_malformed_request_is_refused(client, alice, body):
    response = await client.post(REQUESTS, headers=alice.headers, json=body)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


# Asking each other


async def test_asking_back_accepts_at_once(client, alice, bob):
    request_id = await asked(client, alice, bob)
    response = await ask(client, bob, alice)
    assert (response.status_code, response.json()["id"], response.json()["status"]) == (201, request_id, "accepted")


async def test_asking_back_makes_the_asker_a_contact(client, alice, bob):
    await asked(client, alice, bob)
    await ask(client, bob, alice)
    assert await contact_user_ids(client, alice) == [bob.user_id]


async def test_asking_back_makes_the_one_asked_a_contact(client, alice, bob):
    await asked(client, alice, bob)
    await ask(client, bob, alice)
    assert await contact_user_ids(client, bob) == [alice.user_id]


@pytest.mark.parametrize("visibility", ["private", "contacts"])
async def test_asking_back_someone_whose_profile_one_cannot_see_accepts(client, alice, bob, visibility):
    await client.patch("/v1/profile", headers=alice.headers, json={"profile_visibility": visibility})
    await asked(client, alice, bob)
    response = await ask(client, bob, alice)
    assert (response.status_code, response.json()["status"]) == (201, "accepted")


# Accepting


async def test_accepting_answers_with_the_accepted_request(client, alice, bob):
    response = await answer(client, bob, await asked(client, alice, bob), "accept")
    assert (response.status_code, response.json()["status"]) == (200, "accepted")


async def test_accepting_records_when(client, alice, bob):
    response = await answer(client, bob, await asked(client, alice, bob), "accept")
    assert response.json()["responded_at"] is not None


async def test_accepting_puts_the_requester_in_the_addressees_contacts(client, alice, bob):
    await answer(client, bob, await asked(client, alice, bob), "accept")
    assert await contact_user_ids(client, bob) == [alice.user_id]


async def test_accepting_puts_the_addressee_in_the_requesters_contacts(client, alice, bob):
    await answer(client, bob, await asked(client, alice, bob), "accept")
    assert await contact_user_ids(client, alice) == [bob.user_id]


async def test_the_requester_cannot_accept_their_own_request(client, alice, bob):
    response = await answer(client, alice, await asked(client, alice, bob), "accept")
    assert (response.status_code, problem_type(response)) == (403, "not-request-addressee")


async def test_the_requester_cannot_reject_their_own_request(client, alice, bob):
    response = await answer(client, alice, await asked(client, alice, bob), "reject")
    assert (response.status_code, problem_type(response)) == (403, "not-request-addressee")


@pytest.mark.parametrize("verb", ["accept", "reject", "cancel"])
async def test_a_stranger_cannot_answer_someone_elses_request(client, alice, bob, mallory, verb):
    response = await answer(client, mallory, await asked(client, alice, bob), verb)
    assert (response.status_code, problem_type(response)) == (404, "contact-request-not-found")


async def test_a_strangers_accept_changes_nothing(client, alice, bob, mallory):
    request_id = await asked(client, alice, bob)
    await answer(client, mallory, request_id, "accept")
    assert [r["status"] for r in await listed(client, bob)] == ["pending"]


@pytest.mark.parametrize("verb", ["accept", "reject", "cancel"])
async def test_an_unknown_request_is_not_found(client, alice, verb):
    response = await answer(client, alice, str(uuid7()), verb)
    assert (response.status_code, problem_type(response)) == (404, "contact-request-not-found")


async def test_an_unknown_answer_is_refused(client, alice, bob):
    response = await answer(client, bob, await asked(client, alice, bob), "ignore")
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


# Rejecting and cancelling


async def test_rejecting_answers_with_the_rejected_request(client, alice, bob):
    response = await answer(client, bob, await asked(client, alice, bob), "reject")
    assert (response.status_code, response.json()["status"]) == (200, "rejected")


async def test_rejecting_makes_no_contacts(client, alice, bob):
    await answer(client, bob, await asked(client, alice, bob), "reject")
    assert await contact_user_ids(client, alice) == []


async def test_after_a_rejection_one_may_ask_again(client, alice, bob):
    await answer(client, bob, await asked(client, alice, bob), "reject")
    response = await ask(client, alice, bob)
    assert (response.status_code, response.json()["status"]) == (201, "pending")


async def test_the_requester_cancels(client, alice, bob):
    response = await answer(client, alice, await asked(client, alice, bob), "cancel")
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")


async def test_after_cancelling_one_may_ask_again(client, alice, bob):
    await answer(client, alice, await asked(client, alice, bob), "cancel")
    response = await ask(client, alice, bob)
    assert response.status_code == 201


async def test_the_addressee_cannot_cancel(client, alice, bob):
    response = await answer(client, bob, await asked(client, alice, bob), "cancel")
    assert (response.status_code, problem_type(response)) == (403, "not-request-requester")


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("accept", "accept"),
        ("accept", "reject"),
        ("reject", "accept"),
        ("reject", "reject"),
        ("cancel", "accept"),
        ("cancel", "reject"),
    ],
)
async def test_a_request_is_answered_once(client, alice, bob, first, then):
    request_id = await asked(client, alice, bob)
    await answer(client, alice if first == "cancel" else bob, request_id, first)
    response = await answer(client, bob, request_id, then)
    assert (response.status_code, problem_type(response)) == (409, "contact-request-not-pending")


async def test_an_answered_request_cannot_be_cancelled(client, alice, bob):
    request_id = await asked(client, alice, bob)
    await answer(client, bob, request_id, "accept")
    response = await answer(client, alice, request_id, "cancel")
    assert (response.status_code, problem_type(response)) == (409, "contact-request-not-pending")


# Listing


@pytest.fixture
async def crowd(client, make_persona, alice, bob, mallory) -> dict[str, str]:
    """Alice is asked by bob, carol and dave; she asks mallory. Bob's is accepted,
    carol's rejected. Request ids by requester."""
    carol, dave = await make_persona("carol"), await make_persona("dave")
    ids = {persona.name: await asked(client, persona, alice) for persona in (bob, carol, dave)}
    ids["alice"] = await asked(client, alice, mallory)
    await answer(client, alice, ids["bob"], "accept")
    await answer(client, alice, ids["carol"], "reject")
    return ids


async def test_incoming_pending_requests_are_listed_by_default(client, alice, crowd):
    assert [r["id"] for r in await listed(client, alice)] == [crowd["dave"]]


@pytest.mark.parametrize(("status", "requester"), [("accepted", "bob"), ("rejected", "carol"), ("pending", "dave")])
async def test_incoming_requests_by_status(client, alice, crowd, status, requester):
    assert [r["id"] for r in await listed(client, alice, status=status)] == [crowd[requester]]


async def test_outgoing_requests(client, alice, crowd):
    assert [r["id"] for r in await listed(client, alice, direction="outgoing")] == [crowd["alice"]]


async def test_outgoing_requests_by_status(client, alice, bob, crowd):
    assert [r["id"] for r in await listed(client, bob, direction="outgoing", status="accepted")] == [crowd["bob"]]


async def test_the_addressee_sees_an_incoming_request(client, mallory, crowd):
    assert [r["id"] for r in await listed(client, mallory)] == [crowd["alice"]]


async def test_a_stranger_sees_none_of_the_requests(client, make_persona, crowd):
    erin = await make_persona("erin")
    lists = [
        await listed(client, erin, direction=d, status=s)
        for d in ("incoming", "outgoing")
        for s in ("pending", "accepted", "rejected", "cancelled")
    ]
    assert lists == [[]] * 8


async def test_requests_are_listed_newest_first_a_page_at_a_time(client, make_persona, alice):
    askers = [await make_persona(name) for name in ("carol", "dave", "erin")]
    ids = [await asked(client, persona, alice) for persona in askers]
    first = (await client.get(REQUESTS, headers=alice.headers, params={"limit": 2})).json()
    second = (await client.get(REQUESTS, headers=alice.headers, params={"limit": 2, "cursor": first["next"]})).json()
    assert ([r["id"] for r in first["items"]], [r["id"] for r in second["items"]], second["next"]) == (
        ids[:0:-1],
        ids[:1],
        None,
    )


@pytest.mark.parametrize(
    "params",
    [{"direction": "sideways"}, {"status": "maybe"}, {"limit": 0}, {"limit": 201}, {"cursor": "!!"}],
    ids=["direction", "status", "limit-0", "limit-201", "cursor"],
)
async def test_bad_list_parameters_are_refused(client, alice, params):
    response = await client.get(REQUESTS, headers=alice.headers, params=params)
    assert response.status_code in (400, 422) and problem_type(response) in ("validation-error", "invalid-cursor")
