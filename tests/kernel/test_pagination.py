"""Keyset pagination: opaque cursors, limits, and walking a list page by page."""

from __future__ import annotations

import uuid

import pytest

from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import MAX_LIMIT, InvalidCursor, decode_cursor, encode_cursor
from tests.support import problem_type, sign_in

pytestmark = pytest.mark.module_database

SESSIONS = "/v1/auth/sessions"


def test_cursor_round_trip():
    value = uuid7()
    assert decode_cursor(encode_cursor(value)) == value


def test_cursor_is_url_safe():
    assert all(c.isalnum() or c in "-_" for c in encode_cursor(uuid7()))


@pytest.mark.parametrize("garbage", ["garbage", "!!!!", "é" * 22, "AAAA"])
def test_garbage_cursor_is_refused(garbage):
    with pytest.raises(InvalidCursor):
        decode_cursor(garbage)


async def test_garbage_cursor_is_400_invalid_cursor(client, alice):
    response = await client.get(SESSIONS, params={"cursor": "garbage"}, headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (400, "invalid-cursor")


async def test_overlong_cursor_is_422(client, alice):
    response = await client.get(SESSIONS, params={"cursor": "A" * 65}, headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1, "many"])
async def test_limit_out_of_range_is_422(client, alice, limit):
    response = await client.get(SESSIONS, params={"limit": limit}, headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_limit_at_the_maximum_is_accepted(client, alice):
    response = await client.get(SESSIONS, params={"limit": MAX_LIMIT}, headers=alice.headers)
    assert response.status_code == 200


async def test_last_page_has_no_next(client, alice):
    response = await client.get(SESSIONS, params={"limit": 1}, headers=alice.headers)
    assert response.json()["next"] is None


async def test_limit_one_walks_every_session_newest_first(client, alice):
    for _ in range(3):
        await sign_in(client, alice)  # alice now has four sessions; the last is current
    seen, cursor = [], None
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(SESSIONS, params=params, headers=alice.headers)).json()
        assert len(page["items"]) == 1
        seen.append(page["items"][0]["id"])
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == sorted(set(seen), reverse=True) and len(seen) == 4


async def test_a_cursor_past_the_end_gives_an_empty_page(client, alice):
    oldest = encode_cursor(uuid.UUID(int=0))
    response = await client.get(SESSIONS, params={"cursor": oldest}, headers=alice.headers)
    assert response.json() == {"items": [], "next": None}
