"""The ECR-R attachment assessment: POST /v1/matching/assessments scores 36 answers by the
published key (items 1-18 anxiety, 19-36 avoidance, reverse-keyed items 8 - answer, means
to two decimals, styles split at the midpoint 4), keeps each attempt, and GET lists them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rapport.modules.matching import service
from tests.support import problem_type

pytestmark = pytest.mark.module_database

ASSESSMENTS = "/v1/matching/assessments"


def worked_example() -> list[int]:
    """Answers whose scores were computed by hand (see test_a_worked_example_scores_as_computed_by_hand)."""
    answers = [0] * 36
    for item in range(1, 9):
        answers[item - 1] = 6  # anxiety items 1-8: 6 each, 48
    answers[9 - 1] = 2  # reverse-keyed: 8 - 2 = 6
    answers[10 - 1] = 5
    answers[11 - 1] = 1  # reverse-keyed: 8 - 1 = 7
    for item in range(12, 19):
        answers[item - 1] = 5  # items 12-18: 5 each, 35
    for item in (19, 21, 23, 24, 25, 32):
        answers[item - 1] = 2  # avoidance items keyed as worded: 2 each, 12
    for item in (20, 22, 26, 27, 28, 29, 30, 31, 33, 34, 35):
        answers[item - 1] = 6  # reverse-keyed: 8 - 6 = 2 each, 22
    answers[36 - 1] = 3  # reverse-keyed: 8 - 3 = 5
    return answers


async def test_a_worked_example_scores_as_computed_by_hand(client, alice) -> None:
    # Anxiety: 48 + 6 + 5 + 7 + 35 = 101; 101 / 18 = 5.611... -> 5.61 (above 4: high).
    # Avoidance: 12 + 22 + 5 = 39; 39 / 18 = 2.166... -> 2.17 (not above 4: low).
    # High anxiety, low avoidance: anxious.
    taken = await client.post(ASSESSMENTS, headers=alice.headers, json={"responses": worked_example()})
    assert taken.status_code == 201, taken.text
    body = taken.json()
    assert (body["anxiety_score"], body["avoidance_score"], body["style"]) == (5.61, 2.17, "anxious")
    assert body["responses"] == worked_example()


def test_the_reverse_keyed_items_are_the_published_ones() -> None:
    assert {9, 11, 20, 22, 26, 27, 28, 29, 30, 31, 33, 34, 35, 36} == service.REVERSE_KEYED
    assert list(service.ANXIETY_ITEMS) == list(range(1, 19))
    assert list(service.AVOIDANCE_ITEMS) == list(range(19, 37))


def test_answering_every_item_7_scores_reverse_keyed_items_as_1() -> None:
    # Anxiety: 16 items at 7 and items 9, 11 at 1: (112 + 2) / 18 = 6.33.
    # Avoidance: 6 items at 7 and 12 reverse-keyed at 1: (42 + 12) / 18 = 3.00.
    scores = service.score_responses([7] * 36)
    assert (scores.anxiety, scores.avoidance, scores.style) == (Decimal("6.33"), Decimal("3.00"), "anxious")


@pytest.mark.parametrize(
    ("anxiety", "avoidance", "style"),
    [
        (Decimal(4), Decimal(4), "secure"),  # the midpoint itself is not high
        (Decimal("4.06"), Decimal(4), "anxious"),
        (Decimal(4), Decimal("4.06"), "avoidant"),
        (Decimal("4.06"), Decimal("4.06"), "fearful"),
        (Decimal(1), Decimal(7), "avoidant"),
    ],
)
def test_styles_split_at_the_midpoint(anxiety: Decimal, avoidance: Decimal, style: str) -> None:
    assert service.style_of(anxiety, avoidance) == style


def test_all_fours_is_secure_at_the_midpoint() -> None:
    scores = service.score_responses([4] * 36)
    assert (scores.anxiety, scores.avoidance, scores.style) == (Decimal("4.00"), Decimal("4.00"), "secure")


def test_a_fearful_pattern() -> None:
    # Anxiety items as worded at 6, reverse-keyed 9 and 11 at 2 (-> 6): 6.00.
    # Avoidance items as worded at 7, reverse-keyed at 1 (-> 7): 7.00.
    answers = [6] * 18 + [7] * 18
    answers[8] = answers[10] = 2
    for item in service.REVERSE_KEYED:
        if item > 18:
            answers[item - 1] = 1
    scores = service.score_responses(answers)
    assert (scores.anxiety, scores.avoidance, scores.style) == (Decimal("6.00"), Decimal("7.00"), "fearful")


async def test_retaking_keeps_the_history_newest_first(client, alice) -> None:
    first = await client.post(ASSESSMENTS, headers=alice.headers, json={"responses": worked_example()})
    second = await client.post(ASSESSMENTS, headers=alice.headers, json={"responses": [4] * 36})
    assert first.status_code == second.status_code == 201
    listed = await client.get(ASSESSMENTS, headers=alice.headers)
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()["items"]] == [second.json()["id"], first.json()["id"]]
    assert [a["style"] for a in listed.json()["items"]] == ["secure", "anxious"]


async def test_the_history_pages_by_cursor(client, alice) -> None:
    for _ in range(3):
        assert (await client.post(ASSESSMENTS, headers=alice.headers, json={"responses": [3] * 36})).status_code == 201
    page = await client.get(ASSESSMENTS, headers=alice.headers, params={"limit": 2})
    assert len(page.json()["items"]) == 2 and page.json()["next"]
    rest = await client.get(ASSESSMENTS, headers=alice.headers, params={"limit": 2, "cursor": page.json()["next"]})
    assert len(rest.json()["items"]) == 1 and rest.json()["next"] is None


async def test_no_history_is_an_empty_list(client, alice) -> None:
    listed = await client.get(ASSESSMENTS, headers=alice.headers)
    assert listed.json() == {"items": [], "next": None}


async def test_the_assessment_becomes_part_of_the_feature_vector(client, alice, runtime) -> None:
    from rapport.kernel.actor import Actor
    from rapport.kernel.db import user_transaction

    await client.post(ASSESSMENTS, headers=alice.headers, json={"responses": worked_example()})
    async with user_transaction(runtime.engine, alice.user_id) as db:
        version, features = await service.get_features(db, actor=Actor(user_id=alice.user_id)) or (0, [])
    assert version == service.FEATURE_VERSION
    assert len(features) == service.DIMENSION
    expected = service.build_features([], anxiety=Decimal("5.61"), avoidance=Decimal("2.17"), style="anxious")
    assert features == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "responses",
    [
        [4] * 35,
        [4] * 37,
        [],
        [0] + [4] * 35,
        [8] + [4] * 35,
        ["4"] + [4] * 35,
        [4.5] + [4] * 35,
        [True] + [4] * 35,
        [None] + [4] * 35,
        "4" * 36,
    ],
)
async def test_bad_answers_are_refused(client, alice, responses) -> None:
    refused = await client.post(ASSESSMENTS, headers=alice.headers, json={"responses": responses})
    assert refused.status_code == 422
    assert problem_type(refused) == "validation-error"


async def test_a_body_without_responses_or_with_more_is_refused(client, alice) -> None:
    assert (await client.post(ASSESSMENTS, headers=alice.headers, json={})).status_code == 422
    extra = {"responses": [4] * 36, "style": "secure"}
    assert (await client.post(ASSESSMENTS, headers=alice.headers, json=extra)).status_code == 422


async def test_signing_in_is_needed(client) -> None:
    assert (await client.post(ASSESSMENTS, json={"responses": [4] * 36})).status_code == 401
    assert (await client.get(ASSESSMENTS)).status_code == 401
