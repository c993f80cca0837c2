"""Stories (/v1/stories) and tags (/v1/tags, /v1/me/tags): written with their tags, read
as their visibility allows, changed and removed by their author, found in the feed by
words and tag, newest first, a page at a time."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import Persona, befriend, problem_type

pytestmark = pytest.mark.module_database


async def write(client: httpx.AsyncClient, persona: Persona, **fields: Any) -> dict[str, Any]:
    body = {"title": "A walk", "content": "We walked by the *river*.", **fields}
    made = await client.post("/v1/stories", headers=persona.headers, json=body)
    assert made.status_code == 201, made.text
    story: dict[str, Any] = made.json()
    return story


async def feed(client: httpx.AsyncClient, persona: Persona, **params: Any) -> list[str]:
    got = await client.get("/v1/stories/feed", headers=persona.headers, params=params)
    assert got.status_code == 200, got.text
    return [item["title"] for item in got.json()["items"]]


async def test_a_story_is_private_by_default_and_keeps_its_markdown(client, alice):
    story = await write(client, alice, content="# Day one\n\n- rose\n- fern")

    assert story["visibility"] == "private" and story["user_id"] == alice.user_id
    assert story["content"] == "# Day one\n\n- rose\n- fern" and story["tags"] == []
    got = await client.get(f"/v1/stories/{story['id']}", headers=alice.headers)
    assert got.json() == story


async def test_tags_are_one_regardless_of_case_and_cached_sorted_by_the_database(client, alice):
    story = await write(client, alice, tags=["Growth", "  meditation ", "growth"])

    assert story["tags"] == ["growth", "meditation"]
    changed = await client.patch(f"/v1/stories/{story['id']}", headers=alice.headers, json={"tags": ["Zen"]})
    assert changed.json()["tags"] == ["zen"]
    cleared = await client.patch(f"/v1/stories/{story['id']}", headers=alice.headers, json={"tags": []})
    assert cleared.json()["tags"] == []


async def test_visibility_decides_who_reads(client, alice, bob, mallory):
    await befriend(client, alice, bob)
    private = await write(client, alice, title="Mine")
    friends = await write(client, alice, title="Ours", visibility="friends")
    public = await write(client, alice, title="Everyone's", visibility="public")

    for story, readers in ((private, {"alice"}), (friends, {"alice", "bob"}), (public, {"alice", "bob", "mallory"})):
        for persona in (alice, bob, mallory):
            got = await client.get(f"/v1/stories/{story['id']}", headers=persona.headers)
            assert got.status_code == (200 if persona.name in readers else 404), (story["title"], persona.name)


async def test_the_feed_holds_own_contacts_friends_only_and_public_stories_newest_first(client, alice, bob, carol):
    await befriend(client, alice, bob)
    await write(client, bob, title="Bob private")
    await write(client, bob, title="Bob friends", visibility="friends")
    await write(client, carol, title="Carol friends", visibility="friends")
    await write(client, carol, title="Carol public", visibility="public")
    await write(client, alice, title="Alice private")

    assert await feed(client, alice) == ["Alice private", "Carol public", "Bob friends"]


async def test_the_feed_pages_with_a_cursor(client, alice):
    for n in range(5):
        await write(client, alice, title=f"Story {n}")

    first = await client.get("/v1/stories/feed", headers=alice.headers, params={"limit": 2})
    second = await client.get(
        "/v1/stories/feed", headers=alice.headers, params={"limit": 2, "cursor": first.json()["next"]}
    )
    last = await client.get(
        "/v1/stories/feed", headers=alice.headers, params={"limit": 2, "cursor": second.json()["next"]}
    )

    titles = [item["title"] for page in (first, second, last) for item in page.json()["items"]]
    assert titles == ["Story 4", "Story 3", "Story 2", "Story 1", "Story 0"]
    assert last.json()["next"] is None


async def test_the_feed_searches_words_and_filters_by_tag(client, alice):
    await write(client, alice, title="Morning pages", content="Coffee and a notebook", tags=["Journal"])
    await write(client, alice, title="Evening run", content="Five kilometres", tags=["running"])

    assert await feed(client, alice, q="notebook") == ["Morning pages"]
    assert await feed(client, alice, q='"five kilometres"') == ["Evening run"]
    assert await feed(client, alice, q="coffee -notebook") == []
    assert await feed(client, alice, tag="JOURNAL") == ["Morning pages"]
    assert await feed(client, alice, tag="running", q="run") == ["Evening run"]


async def test_the_feed_filters_by_author(client, alice, bob):
    await write(client, bob, title="Bob's", visibility="public")
    await write(client, alice, title="Alice's")

    assert await feed(client, alice, author_id=bob.user_id) == ["Bob's"]


async def test_only_the_author_changes_or_removes_a_story(client, alice, bob):
    story = await write(client, alice, visibility="public")
    url = f"/v1/stories/{story['id']}"

    changed = await client.patch(url, headers=bob.headers, json={"title": "Mine now"})
    removed = await client.delete(url, headers=bob.headers)

    assert changed.status_code == 403 and problem_type(changed).endswith("story-not-yours")
    assert removed.status_code == 403
    edited = await client.patch(url, headers=alice.headers, json={"title": "By the river", "visibility": "private"})
    assert edited.json()["title"] == "By the river" and edited.json()["updated_at"] > story["updated_at"]
    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    assert (await client.get(url, headers=alice.headers)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"title": "", "content": "x"},
        {"title": "x" * 141, "content": "x"},
        {"title": "x", "content": ""},
        {"title": "x", "content": "x" * 20001},
        {"title": "x", "content": "x", "visibility": "secret"},
        {"title": "x", "content": "x", "tags": ["a,b"]},
        {"title": "x", "content": "x", "tags": ["#a"]},
        {"title": "x", "content": "x", "tags": ["x" * 65]},
        {"title": "x", "content": "x", "tags": [f"t{n}" for n in range(11)]},
        {"title": "x", "content": "x", "tags": "growth"},
        {"title": "x", "content": "x", "extra": 1},
        {"title": "line\nbreak", "content": "x"},
    ],
)
async def test_bad_stories_are_refused(client, alice, body):
    made = await client.post("/v1/stories", headers=alice.headers, json=body)

    assert made.status_code == 422, made.text


async def test_bad_changes_and_queries_are_refused(client, alice):
    story = await write(client, alice)

    nulled = await client.patch(f"/v1/stories/{story['id']}", headers=alice.headers, json={"title": None})
    bad_tag = await client.get("/v1/stories/feed", headers=alice.headers, params={"tag": "a,b"})
    bad_cursor = await client.get("/v1/stories/feed", headers=alice.headers, params={"cursor": "nope"})
    bad_id = await client.get("/v1/stories/not-a-uuid", headers=alice.headers)

    assert nulled.status_code == 422
    assert bad_tag.status_code == 422 and problem_type(bad_tag).endswith("invalid-tag")
    assert bad_cursor.status_code == 400
    assert bad_id.status_code == 422


async def test_a_person_sets_their_own_tags(client, alice):
    put = await client.put("/v1/me/tags", headers=alice.headers, json={"tags": ["Hiking", "yoga", "hiking"]})

    assert put.status_code == 200 and put.json() == {"tags": ["hiking", "yoga"]}
    replaced = await client.put("/v1/me/tags", headers=alice.headers, json={"tags": ["yoga", "tea"]})
    assert replaced.json() == {"tags": ["tea", "yoga"]}
    assert (await client.get("/v1/me/tags", headers=alice.headers)).json() == {"tags": ["tea", "yoga"]}


async def test_the_vocabulary_lists_the_tags_in_sight_by_prefix(client, alice, bob):
    await write(client, bob, visibility="public", tags=["garden", "gardening"])
    await client.put("/v1/me/tags", headers=alice.headers, json={"tags": ["games"]})

    listed = await client.get("/v1/tags", headers=alice.headers, params={"prefix": "GA"})
    after = await client.get("/v1/tags", headers=alice.headers, params={"prefix": "ga", "after": "garden"})

    assert listed.json() == {"items": ["games", "garden", "gardening"], "next": None}
    assert after.json()["items"] == ["gardening"]


async def test_a_tag_nothing_carries_any_more_leaves_the_vocabulary(client, alice):
    story = await write(client, alice, visibility="public", tags=["ephemeral"])

    await client.delete(f"/v1/stories/{story['id']}", headers=alice.headers)

    assert (await client.get("/v1/tags", headers=alice.headers)).json()["items"] == []


async def test_anonymous_callers_are_refused(client):
    assert (await client.get("/v1/stories/feed")).status_code == 401
