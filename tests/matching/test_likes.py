"""Liking and passing: a like waits for the other's; both make the match mutual and open
exactly one direct conversation, also when both like at the same moment; passes and
likes are final, repeats change nothing; each person hears of what concerns them.

Alice and bob want each other and are proposed to each other before each test."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import httpx
import pytest

from rapport.kernel.runtime import Runtime
from tests.matching.test_daily import daily, plant_profile, propose, user_events
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

MATCHES = "/v1/matching/matches"


@pytest.fixture
async def proposed(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Alice's match with bob, and bob's with alice."""
    await plant_profile(runtime, alice, gender="woman", pref_genders=["man"])
    await plant_profile(runtime, bob, gender="man", pref_genders=["woman"])
    await propose(runtime)
    [hers], [his] = await daily(client, alice), await daily(client, bob)
    return hers, his


async def decide(client: httpx.AsyncClient, who: Persona, match: dict[str, Any], decision: str) -> httpx.Response:
    return await client.post(f"{MATCHES}/{match['id']}/{decision}", headers=who.headers)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert (response.status_code, problem_type(response)) == (status, slug), response.text


async def direct_conversations(client: httpx.AsyncClient, who: Persona) -> list[dict[str, Any]]:
    response = await client.get("/v1/conversations", headers=who.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    items: list[dict[str, Any]] = body["items"] if isinstance(body, dict) else body
    return [conversation for conversation in items if conversation["type"] == "direct"]


async def test_a_like_alone_waits_for_the_other(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona, proposed: tuple[dict[str, Any], ...]
) -> None:
    hers, _ = proposed
    liked = ok(await decide(client, alice, hers, "like"))

    assert (liked["status"], liked["conversation_id"]) == ("liked", None) and liked["decided_at"] is not None
    assert [m["status"] for m in await daily(client, bob)] == ["proposed"]
    assert await user_events(runtime, alice, "match.liked") == [
        ("match.liked", {"match_id": hers["id"], "user_id": bob.user_id})
    ]
    assert await user_events(runtime, bob, "match.liked") == []


async def test_two_likes_make_the_match_mutual_and_open_one_conversation(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona, proposed: tuple[dict[str, Any], ...]
) -> None:
    hers, his = proposed
    ok(await decide(client, alice, hers, "like"))
    mutual = ok(await decide(client, bob, his, "like"))

    assert mutual["status"] == "mutual" and mutual["conversation_id"] is not None
    [seen] = await daily(client, alice)
    assert (seen["status"], seen["conversation_id"]) == ("mutual", mutual["conversation_id"])
    [conversation] = await direct_conversations(client, alice)
    assert conversation["id"] == mutual["conversation_id"]
    assert [c["id"] for c in await direct_conversations(client, bob)] == [mutual["conversation_id"]]
    assert await user_events(runtime, alice, "match.mutual") == [
        ("match.mutual", {"match_id": hers["id"], "user_id": bob.user_id, "conversation_id": mutual["conversation_id"]})
    ]
    assert await user_events(runtime, bob, "match.mutual") == [
        (
            "match.mutual",
            {"match_id": his["id"], "user_id": alice.user_id, "conversation_id": mutual["conversation_id"]},
        )
    ]


async def test_two_likes_at_the_same_moment_make_it_mutual_once(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona, proposed: tuple[dict[str, Any], ...]
) -> None:
    hers, his = proposed
    answers = await asyncio.gather(decide(client, alice, hers, "like"), decide(client, bob, his, "like"))

    statuses = sorted(ok(answer)["status"] for answer in answers)
    assert statuses in (["liked", "mutual"], ["mutual", "mutual"])
    [mine], [theirs] = await daily(client, alice), await daily(client, bob)
    assert (mine["status"], theirs["status"]) == ("mutual", "mutual")
    assert mine["conversation_id"] == theirs["conversation_id"] is not None
    assert len(await direct_conversations(client, alice)) == 1
    assert len(await user_events(runtime, alice, "match.mutual")) == 1
    assert len(await user_events(runtime, bob, "match.mutual")) == 1


async def test_a_pass_is_never_told_and_ends_the_match(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona, proposed: tuple[dict[str, Any], ...]
) -> None:
    hers, his = proposed
    passed = ok(await decide(client, alice, hers, "pass"))
    liked = ok(await decide(client, bob, his, "like"))

    assert (passed["status"], liked["status"]) == ("passed", "liked")
    assert await user_events(runtime, bob, "match.passed") == []
    assert await direct_conversations(client, bob) == []


async def test_decisions_are_final_and_repeats_change_nothing(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, proposed: tuple[dict[str, Any], ...]
) -> None:
    hers, his = proposed
    ok(await decide(client, alice, hers, "pass"))
    assert ok(await decide(client, alice, hers, "pass"))["status"] == "passed"
    refused(await decide(client, alice, hers, "like"), 409, "match-already-decided")

    ok(await decide(client, bob, his, "like"))
    assert ok(await decide(client, bob, his, "like"))["status"] == "liked"
    refused(await decide(client, bob, his, "pass"), 409, "match-already-decided")


async def test_liking_a_mutual_match_again_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona, proposed: tuple[dict[str, Any], ...]
) -> None:
    hers, his = proposed
    ok(await decide(client, alice, hers, "like"))
    ok(await decide(client, bob, his, "like"))

    assert ok(await decide(client, alice, hers, "like"))["status"] == "mutual"
    assert len(await user_events(runtime, alice, "match.mutual")) == 1


async def test_someone_blocked_after_the_proposal_cannot_be_liked(
    client: httpx.AsyncClient, alice: Persona, bob: Persona, proposed: tuple[dict[str, Any], ...]
) -> None:
    hers, _ = proposed
    blocked = await client.put(f"/v1/blocks/{alice.user_id}", headers=bob.headers, json={})
    assert blocked.status_code in (200, 201), blocked.text

    refused(await decide(client, alice, hers, "like"), 404, "match-not-found")
    refused(await client.get(f"{MATCHES}/{hers['id']}", headers=alice.headers), 404, "match-not-found")


async def test_one_match_reads_as_in_the_day(
    client: httpx.AsyncClient, alice: Persona, proposed: tuple[dict[str, Any], ...]
) -> None:
    hers, _ = proposed
    assert ok(await client.get(f"{MATCHES}/{hers['id']}", headers=alice.headers)) == hers


@pytest.mark.parametrize("decision", ["like", "pass"])
async def test_an_unknown_match_is_not_found(client: httpx.AsyncClient, alice: Persona, decision: str) -> None:
    refused(await client.post(f"{MATCHES}/{uuid4()}/{decision}", headers=alice.headers), 404, "match-not-found")


async def test_a_match_id_must_be_a_uuid(client: httpx.AsyncClient, alice: Persona) -> None:
    response = await client.post(f"{MATCHES}/not-an-id/like", headers=alice.headers)
    assert (response.status_code, problem_type(response)) == (422, "validation-error")


async def test_liking_needs_a_caller(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{MATCHES}/{uuid4()}/like")).status_code == 401
