"""The ECR-R attachment assessment (Experiences in Close Relationships - Revised; Fraley,
Waller & Brennan 2000): 36 statements answered 1 (strongly disagree) to 7 (strongly agree).

Scoring key, as the authors publish it with the questionnaire:
- items 1-18 measure attachment-related anxiety, items 19-36 avoidance;
- items 9, 11, 20, 22, 26, 27, 28, 29, 30, 31, 33, 34, 35 and 36 are reverse-keyed
  (worded the other way: "I rarely worry about my partner leaving me"), scored 8 - answer;
- each score is the mean of its 18 items (1-7), kept to two decimals.

The style follows the two dimensions split at the scale's midpoint, 4: a mean above 4 is
high. Low anxiety and low avoidance: secure; high anxiety only: anxious (preoccupied);
high avoidance only: avoidant (dismissing); both high: fearful."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from sqlalchemy import RowMapping, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.modules.matching import _features
from rapport.modules.matching import models_people as m
from rapport.modules.matching import schemas_people as s

ANXIETY_ITEMS = range(1, 19)
AVOIDANCE_ITEMS = range(19, 37)
REVERSE_KEYED = frozenset({9, 11, 20, 22, 26, 27, 28, 29, 30, 31, 33, 34, 35, 36})
MIDPOINT = Decimal(4)
_CENTS = Decimal("0.01")


@dataclass(frozen=True)
class Scores:
    anxiety: Decimal
    avoidance: Decimal
    style: s.AttachmentStyle


def _keyed(item: int, answer: int) -> int:
    return 8 - answer if item in REVERSE_KEYED else answer


def _mean(responses: list[int], items: range) -> Decimal:
    total = sum(_keyed(item, responses[item - 1]) for item in items)
    return (Decimal(total) / len(items)).quantize(_CENTS, rounding=ROUND_HALF_UP)


def style_of(anxiety: Decimal, avoidance: Decimal) -> s.AttachmentStyle:
    """The attachment style of two scores, split at the midpoint (above 4 is high)."""
    anxious, avoidant = anxiety > MIDPOINT, avoidance > MIDPOINT
    if anxious and avoidant:
        return "fearful"
    if anxious:
        return "anxious"
    if avoidant:
        return "avoidant"
    return "secure"


def score_responses(responses: list[int]) -> Scores:
    """Score 36 answers (1-7, in the instrument's order).

    Raises:
        ValueError: not 36 answers each from 1 to 7 (the request shape refuses these first).
    """
    if len(responses) != len(ANXIETY_ITEMS) + len(AVOIDANCE_ITEMS) or any(not 1 <= r <= 7 for r in responses):
        raise ValueError("the ECR-R takes 36 answers from 1 to 7")
    # The style is decided on the exact means: a mean of k/18 never rounds onto 4.00 from above.
    exact_anxiety = Decimal(sum(_keyed(i, responses[i - 1]) for i in ANXIETY_ITEMS)) / len(ANXIETY_ITEMS)
    exact_avoidance = Decimal(sum(_keyed(i, responses[i - 1]) for i in AVOIDANCE_ITEMS)) / len(AVOIDANCE_ITEMS)
    return Scores(
        anxiety=_mean(responses, ANXIETY_ITEMS),
        avoidance=_mean(responses, AVOIDANCE_ITEMS),
        style=style_of(exact_anxiety, exact_avoidance),
    )


def _out(row: RowMapping) -> s.AssessmentOut:
    return s.AssessmentOut(
        id=row["id"],
        responses=list(row["responses"]),
        anxiety_score=float(row["anxiety_score"]),
        avoidance_score=float(row["avoidance_score"]),
        style=row["style"],
        created_at=row["created_at"],
    )


async def do_take_assessment(db: AsyncConnection, *, actor: Actor, responses: list[int]) -> s.AssessmentOut:
    """Record the actor's answers with their scores; it becomes their current assessment
    (earlier ones stay in their history) and their feature vector follows it."""
    scores = score_responses(responses)
    row = (
        (
            await db.execute(
                insert(m.assessments)
                .values(
                    id=uuid7(),
                    user_id=actor.user_id,
                    responses=responses,
                    anxiety_score=scores.anxiety,
                    avoidance_score=scores.avoidance,
                    style=scores.style,
                )
                .returning(m.assessments)
            )
        )
        .mappings()
        .one()
    )
    await _features.do_refresh_features(db, user_id=actor.user_id)
    return _out(row)


async def list_assessments(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[s.AssessmentOut]:
    """The actor's assessments, newest (the current one) first."""
    query = select(m.assessments).where(m.assessments.c.user_id == actor.user_id)
    rows = (await db.execute(keyset(query, m.assessments.c.id, page))).mappings().all()
    return make_page([_out(row) for row in rows], page)


async def current_assessment(db: AsyncConnection, *, user_id: UUID) -> s.AssessmentOut | None:
    """A person's newest assessment, or None: theirs in their own transaction, anyone's in
    system work."""
    query = select(m.assessments).where(m.assessments.c.user_id == user_id).order_by(m.assessments.c.id.desc()).limit(1)
    row = (await db.execute(query)).mappings().one_or_none()
    return None if row is None else _out(row)
