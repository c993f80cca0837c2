"""Matches as mallory: alice and bob are proposed to each other. Mallory reads, likes and
passes none of their matches through the API; straight through SQL as `rapport_app` she
(and a transaction naming nobody) sees no row of matching.matches, makes no proposal and
changes none. Bob does not see alice's pass, nor her match until she likes it; no one
changes a decision around matching.decide_match, which out of context decides nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime
from tests.matching.test_daily import daily, plant_profile, propose
from tests.messaging.support import make_conversation
from tests.security.messaging_sql import DENIED, attempt, changed
from tests.support import Persona, problem_type

pytestmark = pytest.mark.module_database

MATCHES = "/v1/matching/matches"
CHECK = "CheckViolationError"


@pytest.fixture
async def pair(
    client: httpx.AsyncClient, runtime: Runtime, alice: Persona, bob: Persona, mallory: Persona
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Alice's match with bob, and bob's with alice; mallory has a profile far away."""
    await plant_profile(runtime, alice, gender="woman", pref_genders=["man"])
    await plant_profile(runtime, bob, gender="man", pref_genders=["woman"])
    await plant_profile(runtime, mallory, gender="man", at=(-33.87, 151.21))
    await propose(runtime)
    [hers], [his] = await daily(client, alice), await daily(client, bob)
    return hers, his


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("POST", "/like"), ("POST", "/pass")])
async def test_mallory_reaches_no_match_of_theirs(
    client: httpx.AsyncClient,
    mallory: Persona,
    alice: Persona,
    pair: tuple[dict[str, Any], ...],
    method: str,
    suffix: str,
) -> None:
    for match in pair:
        response = await client.request(method, f"{MATCHES}/{match['id']}{suffix}", headers=mallory.headers)
        assert (response.status_code, problem_type(response)) == (404, "match-not-found")
    assert [m["status"] for m in await daily(client, alice)] == ["proposed"]
    assert await daily(client, mallory) == []


async def test_the_other_person_cannot_decide_for_you(
    client: httpx.AsyncClient, bob: Persona, pair: tuple[dict[str, Any], ...]
) -> None:
    hers, _ = pair
    response = await client.post(f"{MATCHES}/{hers['id']}/pass", headers=bob.headers)
    assert (response.status_code, problem_type(response)) == (404, "match-not-found")


async def test_mallory_and_nobody_read_no_match(
    app_engine: AsyncEngine, mallory: Persona, alice: Persona, pair: tuple[dict[str, Any], ...]
) -> None:
    assert await attempt(app_engine, mallory, "SELECT count(*) FROM matching.matches") == 0
    assert await attempt(app_engine, None, "SELECT count(*) FROM matching.matches") == 0
    assert await attempt(app_engine, alice, "SELECT count(*) FROM matching.matches") == 1


async def test_a_pass_and_a_mere_proposal_stay_unseen_a_like_is_seen(
    client: httpx.AsyncClient, app_engine: AsyncEngine, alice: Persona, bob: Persona, carol: Persona, runtime: Runtime
) -> None:
    await plant_profile(runtime, alice, gender="woman")
    await plant_profile(runtime, bob, gender="man")
    await plant_profile(runtime, carol, gender="man")
    await propose(runtime)
    for match in await daily(client, alice):
        decision = "pass" if match["matched_user_id"] == bob.user_id else "like"
        assert (await client.post(f"{MATCHES}/{match['id']}/{decision}", headers=alice.headers)).status_code == 200

    theirs = "SELECT count(*) FROM matching.matches WHERE user_id = :alice"
    assert await attempt(app_engine, bob, theirs, alice=UUID(alice.user_id)) == 0
    assert await attempt(app_engine, carol, theirs, alice=UUID(alice.user_id)) == 1


async def test_mallory_proposes_nothing(app_engine: AsyncEngine, mallory: Persona, alice: Persona, pair: Any) -> None:
    planted = (
        "INSERT INTO matching.matches (id, user_id, matched_user_id, score, for_date)"
        " VALUES (:id, :person, :other, 1, current_date)"
    )
    for who, other in ((mallory, alice), (alice, mallory)):
        outcome = await attempt(
            app_engine, mallory, planted, id=uuid7(), person=UUID(who.user_id), other=UUID(other.user_id)
        )
        assert outcome == DENIED


async def test_no_one_changes_a_decision_around_the_function(
    app_engine: AsyncEngine, alice: Persona, mallory: Persona, pair: tuple[dict[str, Any], ...]
) -> None:
    hers, his = pair
    ids = {"a": UUID(hers["id"]), "b": UUID(his["id"])}
    liked = "UPDATE matching.matches SET status = 'mutual', decided_at = now() WHERE id IN (:a, :b) RETURNING 1"
    assert await changed(app_engine, alice, liked, **ids) == DENIED
    assert await attempt(app_engine, mallory, "DELETE FROM matching.matches") == DENIED
    moved = "UPDATE matching.matches SET conversation_id = NULL WHERE id IN (:a, :b) RETURNING 1"
    assert await changed(app_engine, mallory, moved, **ids) == 0


async def test_a_conversation_is_recorded_only_on_a_mutual_match_its_people_share(
    client: httpx.AsyncClient,
    app_engine: AsyncEngine,
    alice: Persona,
    bob: Persona,
    mallory: Persona,
    pair: tuple[dict[str, Any], ...],
) -> None:
    hers, his = pair
    elsewhere = await make_conversation(app_engine, mallory, alice)
    record = "UPDATE matching.matches SET conversation_id = :c WHERE id = :id RETURNING 1"
    assert await changed(app_engine, alice, record, c=elsewhere, id=UUID(hers["id"])) == CHECK
    for who, match in ((alice, hers), (bob, his)):
        assert (await client.post(f"{MATCHES}/{match['id']}/like", headers=who.headers)).status_code == 200
    theirs = await make_conversation(app_engine, bob, mallory)
    assert await changed(app_engine, bob, record, c=theirs, id=UUID(hers["id"])) == CHECK


async def test_decide_match_out_of_context_decides_nothing(
    client: httpx.AsyncClient,
    app_engine: AsyncEngine,
    alice: Persona,
    mallory: Persona,
    pair: tuple[dict[str, Any], ...],
) -> None:
    hers, _ = pair
    decide = "SELECT outcome FROM matching.decide_match(:id, :decision)"
    assert await attempt(app_engine, None, decide, id=UUID(hers["id"]), decision="like") == "not_found"
    assert await attempt(app_engine, mallory, decide, id=UUID(hers["id"]), decision="pass") == "not_found"
    assert await attempt(app_engine, alice, decide, id=UUID(hers["id"]), decision="maybe") == "not_found"
    assert [m["status"] for m in await daily(client, alice)] == ["proposed"]
