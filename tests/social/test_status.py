"""Status updates that expire after 24 hours: POST /v1/statuses, GET /v1/statuses/me,
GET /v1/users/{user_id}/statuses, DELETE /v1/statuses/{status_id}."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from rapport.kernel.ids import uuid7
from tests.social.parts_support import (
    block,
    make_contacts,
    post_expired_status,
    set_visibility,
)
from tests.support import problem_type

pytestmark = pytest.mark.module_database

STATUSES = "/v1/statuses"
MINE = "/v1/statuses/me"


def of(persona) -> str:
    return f"/v1/users/{persona.user_id}/statuses"


async def post(client, persona, **body):
    return await client.post(STATUSES, headers=persona.headers, json=body or {"content": "At the park"})


def contents(response) -> list[str]:
    return [item["content"] for item in response.json()["items"]]


async def test_a_status_expires_24_hours_after_it_is_posted(client, alice):
    response = await post(client, alice, content="At the park", background_color="#1A2B3C")

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["user_id"], body["content"], body["background_color"]) == (alice.user_id, "At the park", "#1a2b3c")
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(body["created_at"])
    assert lifetime == timedelta(hours=24)


async def test_a_status_may_be_only_a_picture(client, alice):
    response = await post(client, alice, media_url="https://media.example.com/p/1.jpg")

    assert response.status_code == 201
    assert (response.json()["content"], response.json()["media_url"]) == (None, "https://media.example.com/p/1.jpg")


@pytest.mark.parametrize(
    "body",
    [
        {"content": "x" * 701},
        {"content": ""},
        {"content": "   "},
        {"content": None},
        {"background_color": "#000000"},
        {"content": "hi", "media_url": "http://media.example.com/p.jpg"},
        {"content": "hi", "media_url": "javascript:alert(1)"},
        {"content": "hi", "media_url": "https://" + "x" * 2048},
        {"content": "hi", "background_color": "red"},
        {"content": "hi", "expires_at": "2999-01-01T00:00:00Z"},
        {"content": 7},
        {"content": "nul\u0000"},
    ],
)
async def test_bad_statuses_are_refused_with_422(client, alice, body):
    response = await client.post(STATUSES, headers=alice.headers, json=body)

    assert response.status_code == 422, response.text
    assert problem_type(response) == "validation-error"


async def test_my_live_statuses_newest_first(client, runtime, alice):
    await post_expired_status(runtime, alice, "old")
    await post(client, alice, content="first")
    await post(client, alice, content="second")

    response = await client.get(MINE, headers=alice.headers)

    assert contents(response) == ["second", "first"]


async def test_my_expired_statuses_on_request(client, runtime, alice):
    await post_expired_status(runtime, alice, "old")
    await post(client, alice, content="new")

    response = await client.get(MINE, headers=alice.headers, params={"include_expired": "true"})

    assert contents(response) == ["new", "old"]


async def test_my_statuses_page_by_page(client, alice):
    for n in range(3):
        await post(client, alice, content=f"status {n}")

    first = await client.get(MINE, headers=alice.headers, params={"limit": 2})
    second = await client.get(MINE, headers=alice.headers, params={"limit": 2, "cursor": first.json()["next"]})

    assert contents(first) + contents(second) == ["status 2", "status 1", "status 0"]
    assert second.json()["next"] is None


async def test_anyone_signed_in_sees_the_live_statuses_of_a_public_profile(client, runtime, alice, bob):
    await post_expired_status(runtime, alice, "old")
    await post(client, alice, content="live")

    response = await client.get(of(alice), headers=bob.headers)

    assert response.status_code == 200
    assert contents(response) == ["live"]


async def test_only_contacts_see_the_statuses_of_a_contacts_only_profile(client, runtime, alice, bob, mallory):
    await post(client, alice, content="for friends")
    await set_visibility(runtime, alice, "contacts")
    await make_contacts(runtime, alice, bob)

    as_bob = await client.get(of(alice), headers=bob.headers)
    as_mallory = await client.get(of(alice), headers=mallory.headers)

    assert contents(as_bob) == ["for friends"]
    assert as_mallory.status_code == 404
    assert problem_type(as_mallory) == "profile-not-found"


async def test_nobody_else_sees_the_statuses_of_a_private_profile(client, runtime, alice, bob):
    await post(client, alice)
    await make_contacts(runtime, alice, bob)
    await set_visibility(runtime, alice, "private")

    response = await client.get(of(alice), headers=bob.headers)

    assert response.status_code == 404
    assert problem_type(response) == "profile-not-found"


async def test_the_blocker_sees_no_status_of_the_person_blocked(client, runtime, alice, mallory):
    await post(client, alice)
    await block(runtime, mallory, alice)

    response = await client.get(of(alice), headers=mallory.headers)

    assert (response.status_code, response.json()["items"]) == (200, [])


async def test_the_person_blocked_finds_no_statuses_at_all(client, runtime, alice, mallory):
    """The blocker's profile is invisible to them, as a private one is."""
    await post(client, alice)
    await block(runtime, alice, mallory)

    response = await client.get(of(alice), headers=mallory.headers)

    assert (response.status_code, problem_type(response)) == (404, "profile-not-found")


async def test_an_unknown_user_has_no_statuses(client, alice):
    response = await client.get(f"/v1/users/{uuid7()}/statuses", headers=alice.headers)

    assert response.status_code == 404
    assert problem_type(response) == "profile-not-found"


async def test_deleting_my_status_removes_it(client, alice, bob):
    status = (await post(client, alice)).json()

    deleted = await client.delete(f"{STATUSES}/{status['id']}", headers=alice.headers)

    assert deleted.status_code == 204
    assert (await client.get(of(alice), headers=bob.headers)).json()["items"] == []


async def test_an_expired_status_can_be_deleted_by_its_owner(client, runtime, alice):
    status_id = await post_expired_status(runtime, alice)

    response = await client.delete(f"{STATUSES}/{status_id}", headers=alice.headers)

    assert response.status_code == 204


async def test_nobody_deletes_someone_elses_status(client, alice, mallory):
    status = (await post(client, alice)).json()

    response = await client.delete(f"{STATUSES}/{status['id']}", headers=mallory.headers)

    assert response.status_code == 404
    assert problem_type(response) == "status-not-found"
    assert contents(await client.get(MINE, headers=alice.headers)) == ["At the park"]


@pytest.mark.parametrize(
    ("status_id", "expected"), [(str(uuid7()), 404), ("yesterday", 422)], ids=["unknown-id", "not-an-id"]
)
async def test_unknown_or_malformed_status_ids(client, alice, status_id, expected):
    response = await client.delete(f"{STATUSES}/{status_id}", headers=alice.headers)

    assert response.status_code == expected


async def test_statuses_need_a_signed_in_caller(client):
    response = await client.post(STATUSES, json={"content": "hi"})

    assert response.status_code == 401
