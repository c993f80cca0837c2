"""The hot lane (decisions/0017) for a conversation's participants, the caller's own
permissions and a search narrowed to a conversation or a sender: a plainly well-formed
request is answered in the lane with what FastAPI's route answers; anything unusual, and
every malformed request, goes on to FastAPI, whose refusals stay its own.

Which lane answered is read from the request's matched route (`scope["route"]`), which the
lane sets to its own HotRoute and FastAPI to its APIRoute. The same request with one extra,
harmless query parameter is declined by the lane, so FastAPI's answer to it is the one to
compare with.

Alice owns a group with bob and carol; mallory is a stranger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from rapport.kernel.ids import uuid7
from tests.access.support import grant
from tests.lanes import FASTAPI, HOT, lane_watching_client
from tests.messaging import group_world
from tests.messaging.support import make_conversation, send
from tests.support import Persona, bearer, problem_type

pytestmark = pytest.mark.module_database

# The shared world's fixtures (tests.messaging.group_world), taken by this module.
World = group_world.World
module_world, world, group = group_world.module_world, group_world.world, group_world.group
alice, bob, carol, mallory = group_world.alice, group_world.bob, group_world.carol, group_world.mallory

PERMISSIONS = "/v1/permissions/me"
SEARCH = "/v1/messages/search"
# A query parameter no route reads: FastAPI ignores it, the lane declines the request.
DECLINED = {"unread_by_either_route": "1"}


@pytest.fixture
def lanes() -> list[str]:
    """Which lane answered each request, in order."""
    return []


@pytest.fixture
async def client(app: FastAPI, lanes: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    """conftest's client, over the app as it is served, noting which lane answered."""
    async with lane_watching_client(app, lanes) as http:
        yield http


async def get(
    client: httpx.AsyncClient, lanes: list[str], persona: Persona | None, path: str, **params: str
) -> tuple[httpx.Response, str]:
    """The answer to a GET, and which lane gave it."""
    headers = persona.headers if persona else {}
    response = await client.get(path, params=params, headers=headers)
    return response, lanes[-1]


async def both_lanes(
    client: httpx.AsyncClient, lanes: list[str], persona: Persona, path: str, **params: str
) -> tuple[httpx.Response, httpx.Response]:
    """The lane's answer to a request, and FastAPI's to the same request."""
    hot, hot_lane = await get(client, lanes, persona, path, **params)
    slow, slow_lane = await get(client, lanes, persona, path, **params, **DECLINED)
    assert (hot_lane, slow_lane) == (HOT, FASTAPI)
    return hot, slow


def without_request_id(response: httpx.Response) -> dict[str, Any]:
    problem: dict[str, Any] = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem.pop("request_id")
    return problem


def participants_of(conversation_id: UUID | str) -> str:
    return f"/v1/conversations/{conversation_id}/participants"


# Carol moderates the group (tests.messaging.group_world).
CAROL_ROLE = "moderator"


@pytest.fixture
def room(world: World) -> UUID:
    return world.group


# GET /v1/conversations/{id}/participants


async def test_participants_are_answered_in_the_lane_as_fastapi_answers_them(client, lanes, room, alice, bob):
    hot, slow = await both_lanes(client, lanes, bob, participants_of(room))

    assert hot.status_code == slow.status_code == 200
    assert hot.headers["content-type"] == slow.headers["content-type"] == "application/json"
    assert hot.content == slow.content
    people = hot.json()
    assert len(people["items"]) == 3 and people["next"] is None
    assert {item["user_id"] for item in people["items"]} >= {alice.user_id, bob.user_id}


async def test_participants_pages_and_statuses_are_the_same_in_either_lane(
    client, lanes, app_engine, alice, bob, carol
):
    conversation = await make_conversation(app_engine, alice, bob, carol)
    removed = await client.delete(f"{participants_of(conversation)}/{carol.user_id}", headers=alice.headers)
    assert removed.status_code == 204

    first, slow_first = await both_lanes(client, lanes, alice, participants_of(conversation), limit="1")
    assert first.content == slow_first.content
    cursor = first.json()["next"]
    assert cursor is not None and len(first.json()["items"]) == 1
    second, slow_second = await both_lanes(
        client, lanes, alice, participants_of(conversation), limit="1", cursor=cursor
    )
    assert second.content == slow_second.content
    assert second.json()["items"][0]["user_id"] != first.json()["items"][0]["user_id"]

    gone, slow_gone = await both_lanes(client, lanes, alice, participants_of(conversation), status="removed")
    assert gone.content == slow_gone.content
    assert [(item["user_id"], item["status"]) for item in gone.json()["items"]] == [(carol.user_id, "removed")]


async def test_a_stranger_gets_404_from_the_lane_as_from_fastapi(client, lanes, room, mallory):
    for conversation in (room, uuid7()):
        hot, slow = await both_lanes(client, lanes, mallory, participants_of(conversation))
        assert hot.status_code == slow.status_code == 404
        assert problem_type(hot) == "conversation-not-found"
        assert without_request_id(hot) == without_request_id(slow)


async def test_a_cursor_not_of_this_server_is_refused_in_the_lane_as_by_fastapi(client, lanes, room, alice):
    hot, slow = await both_lanes(client, lanes, alice, participants_of(room), cursor="abc")
    assert hot.status_code == slow.status_code == 400
    assert problem_type(hot) == "invalid-cursor"
    assert without_request_id(hot) == without_request_id(slow)


@pytest.mark.parametrize(
    ("params", "status", "kind"),
    [
        ({"limit": "0"}, 422, "validation-error"),
        ({"limit": "201"}, 422, "validation-error"),
        ({"limit": "ten"}, 422, "validation-error"),
        ({"limit": "+5"}, 200, None),
        ({"status": "asleep"}, 422, "validation-error"),
        ({"status": ""}, 422, "validation-error"),
        ({"cursor": "A" * 65}, 422, "validation-error"),
        ({"limit": "1", "cursor": ""}, 200, None),
    ],
)
async def test_participants_with_anything_unusual_are_fastapi_s(client, lanes, room, alice, params, status, kind):
    response, lane = await get(client, lanes, alice, participants_of(room), **params)
    assert lane == FASTAPI
    assert response.status_code == status
    if kind is not None:
        assert response.headers["content-type"] == "application/problem+json"
        assert problem_type(response) == kind


async def test_a_conversation_id_in_another_spelling_is_fastapi_s(client, lanes, room, alice):
    upper, upper_lane = await get(client, lanes, alice, participants_of(str(room).upper()))
    bare, bare_lane = await get(client, lanes, alice, participants_of(room.hex))
    plain, plain_lane = await get(client, lanes, alice, participants_of(room))
    assert (upper_lane, bare_lane, plain_lane) == (FASTAPI, FASTAPI, HOT)
    assert upper.content == bare.content == plain.content


async def test_a_malformed_conversation_id_is_refused_by_fastapi(client, lanes, alice):
    for given in ("not-a-conversation", "0190a8f2-0000-7000-8000-00000000000g"):
        response, lane = await get(client, lanes, alice, participants_of(given))
        assert lane == FASTAPI
        assert response.status_code == 422 and problem_type(response) == "validation-error"


async def test_participants_need_a_live_session_in_either_lane(client, lanes, room, alice):
    anonymous, anonymous_lane = await get(client, lanes, None, participants_of(room))
    assert anonymous_lane == FASTAPI and anonymous.status_code == 401

    forged = await client.get(participants_of(room), headers=bearer("not.a.token"))
    assert lanes[-1] == HOT and forged.status_code == 401

    assert (await client.post("/v1/auth/logout", headers=alice.headers)).status_code == 204
    hot, slow = await both_lanes(client, lanes, alice, participants_of(room))
    assert hot.status_code == slow.status_code == 401
    assert without_request_id(hot) == without_request_id(slow)


# GET /v1/permissions/me


async def test_my_permissions_are_answered_in_the_lane_as_fastapi_answers_them(client, lanes, runtime, room, carol):
    await grant(runtime, carol, "bot-developer")
    await grant(runtime, carol, "supervisor", room)

    hot, slow = await both_lanes(client, lanes, carol, PERMISSIONS)

    assert hot.status_code == slow.status_code == 200
    assert hot.headers["content-type"] == slow.headers["content-type"] == "application/json"
    assert hot.content == slow.content
    mine = hot.json()
    assert mine["is_admin"] is False
    assert {(held["permission"], held["conversation_id"]) for held in mine["permissions"]} >= {
        ("chat:robot:manage", None),
        ("supervisor:chat:observe", str(room)),
    }


async def test_someone_holding_nothing_hears_so_from_the_lane(client, lanes, mallory):
    hot, slow = await both_lanes(client, lanes, mallory, PERMISSIONS)
    assert hot.json() == slow.json() == {"is_admin": False, "permissions": []}


async def test_my_permissions_need_a_live_session_in_either_lane(client, lanes, alice):
    anonymous, anonymous_lane = await get(client, lanes, None, PERMISSIONS)
    assert anonymous_lane == FASTAPI and anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"

    assert (await client.post("/v1/auth/logout", headers=alice.headers)).status_code == 204
    hot, slow = await both_lanes(client, lanes, alice, PERMISSIONS)
    assert hot.status_code == slow.status_code == 401
    assert without_request_id(hot) == without_request_id(slow)


async def test_my_permissions_with_a_body_are_fastapi_s(client, lanes, alice):
    response = await client.request("GET", PERMISSIONS, headers=alice.headers, content=b"{}")
    assert lanes[-1] == FASTAPI and response.status_code == 200


# GET /v1/messages/search with conversation_id and sender_id


@pytest.fixture
async def said(client, app_engine, room, alice, bob) -> UUID:
    """Refunds talked about in the room by alice and bob, and in another room by alice;
    the other room's id."""
    elsewhere = await make_conversation(app_engine, alice, bob)
    await send(client, alice, room, "Your refund is on its way")
    await send(client, bob, room, "Thanks, about that refund: how long?")
    await send(client, alice, elsewhere, "A refund for the other order too")
    return elsewhere


def contents(response: httpx.Response) -> list[str]:
    return sorted(item["content"] for item in response.json()["items"])


async def test_a_search_in_one_conversation_is_answered_in_the_lane(client, lanes, room, said, bob):
    hot, slow = await both_lanes(client, lanes, bob, SEARCH, q="refund", conversation_id=str(room))

    assert hot.status_code == slow.status_code == 200
    assert hot.json() == slow.json()
    assert contents(hot) == ["Thanks, about that refund: how long?", "Your refund is on its way"]


async def test_a_search_by_one_sender_and_by_both_filters_is_answered_in_the_lane(
    client, lanes, room, said, alice, bob
):
    by_alice, slow_by_alice = await both_lanes(client, lanes, bob, SEARCH, q="refund", sender_id=alice.user_id)
    assert by_alice.json() == slow_by_alice.json()
    assert contents(by_alice) == ["A refund for the other order too", "Your refund is on its way"]

    both, slow_both = await both_lanes(
        client, lanes, bob, SEARCH, q="refund", conversation_id=str(said), sender_id=alice.user_id
    )
    assert both.json() == slow_both.json()
    assert contents(both) == ["A refund for the other order too"]


async def test_a_stranger_finds_nothing_in_someone_else_s_conversation(client, lanes, room, said, mallory):
    hot, slow = await both_lanes(client, lanes, mallory, SEARCH, q="refund", conversation_id=str(room))
    assert hot.status_code == slow.status_code == 200
    assert hot.json()["items"] == slow.json()["items"] == []


async def test_a_filtered_search_pages_in_the_lane_and_its_cursor_keeps_its_filters(client, lanes, room, said, bob):
    first, lane = await get(client, lanes, bob, SEARCH, q="refund", conversation_id=str(room), limit="1")
    assert lane == HOT and first.status_code == 200
    cursor = first.json()["next"]
    assert cursor is not None

    second, lane = await get(
        client, lanes, bob, SEARCH, q="refund", conversation_id=str(room), limit="1", cursor=cursor
    )
    assert lane == HOT and second.status_code == 200
    assert sorted(contents(first) + contents(second)) == [
        "Thanks, about that refund: how long?",
        "Your refund is on its way",
    ]

    other, slow_other = await both_lanes(client, lanes, bob, SEARCH, q="refund", limit="1", cursor=cursor)
    assert other.status_code == slow_other.status_code == 400
    assert problem_type(other) == "invalid-cursor"
    assert without_request_id(other) == without_request_id(slow_other)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"conversation_id": "not-a-conversation"}, 422),
        ({"conversation_id": ""}, 422),
        ({"sender_id": "0190a8f2-0000-7000-8000-00000000000g"}, 422),
        ({"cursor": "A" * 65}, 422),
        ({"since": "2026-01-01T00:00:00Z"}, 200),
        ({"type": "text"}, 200),
    ],
)
async def test_a_search_with_anything_unusual_is_fastapi_s(client, lanes, room, bob, params, status):
    response, lane = await get(client, lanes, bob, SEARCH, q="refund", **params)
    assert lane == FASTAPI
    assert response.status_code == status
    if status != 200:
        assert problem_type(response) == "validation-error"


async def test_a_conversation_id_in_another_spelling_searches_through_fastapi(client, lanes, room, said, bob):
    upper, upper_lane = await get(client, lanes, bob, SEARCH, q="refund", conversation_id=str(room).upper())
    plain, plain_lane = await get(client, lanes, bob, SEARCH, q="refund", conversation_id=str(room))
    assert (upper_lane, plain_lane) == (FASTAPI, HOT)
    assert contents(upper) == contents(plain)
