"""Daily matches: each day a job proposes to each person up to DAILY_LIMIT people, and
each proposal is made to both people of the pair (one row each, the same score).

Who may be proposed to whom, both ways: both profiles active and located; each person's
gender among the genders the other wants (none named: any); each one's age within the
other's range; the great-circle distance within both people's distance (a bounding box
on the profiles' (latitude, longitude) index first, matching.in_box, then
matching.distance_km); neither blocking the other (social.is_blocked); and never a pair
already proposed, whatever became of it (liked, passed, mutual). A person without a
location is proposed to no one: a distance preference cannot be honoured without one.

The compatibility score (0-1) is the weighted sum of four parts, each 0-1, kept as its
breakdown:

- attachment: how secure the two are together, 1 - (mean of both people's ECR-R anxiety
  and avoidance scores - 1) / 6 (two secure people score high); 0.5 when either has not
  taken the assessment;
- interests: interests in common over interests named by either (Jaccard);
- values: the cosine similarity of their feature vectors (rapport.modules.matching's
  user_features), mapped to 0-1; 0.5 without one;
- demographics: half closeness (1 - distance / the nearer of the two distance
  preferences), half age (1 - years apart / AGE_SPAN, at least 0).

The job reads people in batches. For each batch, one query ranks each person's best
candidates; the pairs are then taken greedily by score so that nobody receives more than
DAILY_LIMIT proposals a day, counting those already made today. Batches are serialised by
an advisory lock, so two jobs running at once neither exceed the limit nor propose a pair
twice (the unique pair of matching.matches would refuse it anyway), and a job run again
on the same day only tops people up.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow, SystemEngine, system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.modules.matching import schemas_matches as s
from rapport.modules.matching.models_matches import matches

# Proposals a person receives a day, at most.
DAILY_LIMIT = 5
# Candidates ranked per person and batch: enough that the greedy pass rarely runs dry
# when the best candidates are already full for the day.
CANDIDATES_PER_PERSON = 3 * DAILY_LIMIT
# People per batch (one transaction each).
BATCH_SIZE = 500
# Years apart at which the age half of demographics reaches 0.
AGE_SPAN = 20
WEIGHTS = {"attachment": 0.35, "interests": 0.25, "values": 0.2, "demographics": 0.2}
PROPOSED_EVENT = "match.proposed"
_LOCK = "matching.propose_daily"

_PEOPLE = text(
    """
    SELECT p.user_id FROM matching.profiles p
     WHERE p.is_active AND p.latitude IS NOT NULL AND (CAST(:after AS uuid) IS NULL OR p.user_id > :after)
     ORDER BY p.user_id
     LIMIT :batch
    """
)

# The newest assessment of a person (ix_assessments_user_id).
_LATEST_ASSESSMENT = """
    SELECT s.anxiety_score::float8 AS anxiety, s.avoidance_score::float8 AS avoidance
      FROM matching.assessments s WHERE s.user_id = {person} ORDER BY s.created_at DESC, s.id DESC LIMIT 1
"""

_CANDIDATES = text(
    f"""
    WITH me AS (
        SELECT p.user_id, p.gender, p.interests, p.latitude, p.longitude, p.pref_genders, p.pref_age_min,
               p.pref_age_max, p.pref_distance_km, matching.age_on(p.birth_date, :day) AS age,
               a.anxiety, a.avoidance, f.features
          FROM matching.profiles p
          LEFT JOIN LATERAL ({_LATEST_ASSESSMENT.format(person="p.user_id")}) a ON true
          LEFT JOIN matching.user_features f ON f.user_id = p.user_id
         WHERE p.user_id = ANY(:people) AND p.is_active AND p.latitude IS NOT NULL
    )
    SELECT me.user_id, c.matched_user_id, c.attachment, c.interests, c.vals, c.demographics, c.score
      FROM me
     CROSS JOIN LATERAL (
        SELECT o.user_id AS matched_user_id, parts.*,
               :w_attachment * parts.attachment + :w_interests * parts.interests + :w_values * parts.vals
               + :w_demographics * parts.demographics AS score
          FROM matching.profiles o
         CROSS JOIN LATERAL (
            SELECT matching.distance_km(me.latitude, me.longitude, o.latitude, o.longitude) AS km,
                   matching.age_on(o.birth_date, :day) AS age
         ) d
          LEFT JOIN LATERAL ({_LATEST_ASSESSMENT.format(person="o.user_id")}) oa ON true
          LEFT JOIN matching.user_features ofe ON ofe.user_id = o.user_id
         CROSS JOIN LATERAL (
            SELECT CASE WHEN me.anxiety IS NULL OR oa.anxiety IS NULL THEN 0.5
                        ELSE 1 - ((me.anxiety + me.avoidance + oa.anxiety + oa.avoidance) / 4 - 1) / 6
                   END AS attachment,
                   matching.interest_overlap(me.interests, o.interests) AS interests,
                   matching.feature_similarity(me.features, ofe.features) AS vals,
                   0.5 * greatest(0, 1 - d.km / least(me.pref_distance_km, o.pref_distance_km))
                   + 0.5 * (1 - least(abs(me.age - d.age), :age_span)::float8 / :age_span) AS demographics
         ) parts
         WHERE matching.in_box(o.latitude, o.longitude, me.latitude, me.longitude, me.pref_distance_km)
           AND o.is_active AND o.user_id <> me.user_id
           AND (cardinality(me.pref_genders) = 0 OR o.gender = ANY(me.pref_genders))
           AND (cardinality(o.pref_genders) = 0 OR me.gender = ANY(o.pref_genders))
           AND d.age BETWEEN me.pref_age_min AND me.pref_age_max
           AND me.age BETWEEN o.pref_age_min AND o.pref_age_max
           AND d.km <= least(me.pref_distance_km, o.pref_distance_km)
           AND NOT EXISTS (SELECT 1 FROM matching.matches m
                            WHERE m.user_id = me.user_id AND m.matched_user_id = o.user_id)
           AND NOT EXISTS (SELECT 1 FROM matching.matches m
                            WHERE m.user_id = o.user_id AND m.matched_user_id = me.user_id)
           AND NOT social.is_blocked(me.user_id, o.user_id)
         ORDER BY score DESC, o.user_id
         LIMIT :candidates
     ) c
    """
).bindparams(bindparam("people", type_=ARRAY(PG_UUID(as_uuid=True))))

_TODAY = text("SELECT (now() AT TIME ZONE 'UTC')::date")


@dataclass(frozen=True)
class DailyReport:
    """What a run of the daily job did: people looked at, pairs proposed (each pair is
    two rows of matching.matches, one per person)."""

    for_date: date
    people: int
    pairs: int


def _breakdown(row: AnyRow) -> dict[str, float]:
    return {
        "attachment": round(float(row.attachment), 3),
        "interests": round(float(row.interests), 3),
        "values": round(float(row.vals), 3),
        "demographics": round(float(row.demographics), 3),
    }


async def _counts_of(db: AsyncConnection, people: set[UUID], for_date: date) -> Counter[UUID]:
    rows = await db.execute(
        select(matches.c.user_id, func.count())
        .where(matches.c.for_date == for_date, matches.c.user_id.in_(people))
        .group_by(matches.c.user_id)
    )
    return Counter({row[0]: row[1] for row in rows})


async def propose_batch(db: AsyncConnection, *, people: list[UUID], for_date: date, limit: int = DAILY_LIMIT) -> int:
    """Propose today's matches of some people (system work); the pairs proposed.

    Publishes `match.proposed` (the day and how many are new) to each person who received
    any, the people proposed to them included."""
    await db.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": _LOCK})
    weights = {f"w_{name}": weight for name, weight in WEIGHTS.items()}
    candidates = (
        await db.execute(
            _CANDIDATES,
            {
                "people": people,
                "day": for_date,
                "age_span": AGE_SPAN,
                "candidates": max(limit * 3, CANDIDATES_PER_PERSON),
                **weights,
            },
        )
    ).all()
    if not candidates:
        return 0
    counts = await _counts_of(
        db, {row.user_id for row in candidates} | {row.matched_user_id for row in candidates}, for_date
    )
    taken: set[frozenset[UUID]] = set()
    rows: list[dict[str, Any]] = []
    new: Counter[UUID] = Counter()
    for row in sorted(candidates, key=lambda r: (-r.score, r.user_id, r.matched_user_id)):
        pair = frozenset((row.user_id, row.matched_user_id))
        if pair in taken or counts[row.user_id] >= limit or counts[row.matched_user_id] >= limit:
            continue
        taken.add(pair)
        score, breakdown = round(float(row.score), 3), _breakdown(row)
        for person, other in ((row.user_id, row.matched_user_id), (row.matched_user_id, row.user_id)):
            counts[person] += 1
            new[person] += 1
            rows.append(
                {
                    "id": uuid7(),
                    "user_id": person,
                    "matched_user_id": other,
                    "score": score,
                    "breakdown": breakdown,
                    "for_date": for_date,
                }
            )
    if rows:
        await db.execute(insert(matches).on_conflict_do_nothing(), rows)
    for person, count in new.items():
        await publish(
            db,
            scope=Scope.user(person),
            type=PROPOSED_EVENT,
            payload={"for_date": for_date.isoformat(), "count": count},
            actor_id=None,
        )
    return len(taken)


async def today(db: AsyncConnection) -> date:
    """The day (UTC) by the database's clock."""
    day: date = (await db.execute(_TODAY)).scalar_one()
    return day


async def propose_daily(
    engine: SystemEngine, *, for_date: date | None = None, batch_size: int = BATCH_SIZE, limit: int = DAILY_LIMIT
) -> DailyReport:
    """Propose the day's matches to everyone who takes part (system work, one transaction
    per batch of people): safe to run again, which only tops people up to `limit`."""
    after: UUID | None = None
    people_seen = pairs = 0
    while True:
        async with system_transaction(engine) as db:
            if for_date is None:
                for_date = await today(db)
            people = list((await db.execute(_PEOPLE, {"after": after, "batch": batch_size})).scalars())
            if not people:
                break
            pairs += await propose_batch(db, people=people, for_date=for_date, limit=limit)
        people_seen += len(people)
        after = people[-1]
    assert for_date is not None
    return DailyReport(for_date=for_date, people=people_seen, pairs=pairs)


# A match with the card of the person proposed (matching.profile_card: what the caller may
# see of them), for match_out.
MATCH_SELECT = """
    SELECT m.id, m.user_id, m.matched_user_id, m.score, m.breakdown, m.status, m.for_date, m.created_at,
           m.decided_at, m.conversation_id, card.user_id AS card_user_id, card.age, card.gender, card.bio,
           card.interests, card.distance_km, card.photos
      FROM matching.matches m
      LEFT JOIN LATERAL matching.profile_card(m.matched_user_id) card ON true
"""

_DAILY = text(
    MATCH_SELECT
    + """
     WHERE m.user_id = :me AND m.for_date = :day AND NOT social.is_blocked(m.user_id, m.matched_user_id)
     ORDER BY m.score DESC, m.id
    """
)


def match_out(row: AnyRow) -> s.MatchOut:
    """A match as its person sees it, with the other's profile card when they may see it."""
    profile = None
    if row.card_user_id is not None:
        profile = s.MatchProfile(
            user_id=row.card_user_id,
            age=row.age,
            gender=row.gender,
            bio=row.bio,
            interests=list(row.interests),
            distance_km=row.distance_km,
            photos=list(row.photos),
        )
    return s.MatchOut(
        id=row.id,
        matched_user_id=row.matched_user_id,
        score=float(row.score),
        breakdown=s.MatchBreakdown.model_validate(row.breakdown),
        status=row.status,
        for_date=row.for_date,
        created_at=row.created_at,
        decided_at=row.decided_at,
        conversation_id=row.conversation_id,
        profile=profile,
    )


async def list_daily(db: AsyncConnection, *, actor: Actor, for_date: date | None = None) -> s.DailyOut:
    """The actor's matches of a day (today, UTC, by default), best first: what they have
    decided on too, but not someone who blocks them or whom they block."""
    day = for_date or await today(db)
    rows = (await db.execute(_DAILY, {"me": actor.user_id, "day": day})).all()
    return s.DailyOut(for_date=day, matches=[match_out(row) for row in rows])
