"""Daily matches: each day a job proposes to each person up to DAILY_LIMIT people, and
each proposal is made to both people of the pair (one row each, the same score).

Who may be proposed to whom, both ways: both profiles active and located; each person's
gender among the genders the other wants (none named: any); each one's age within the
other's range; the great-circle distance (matching.distance_km) within both people's
distance; neither blocking the other (social.is_blocked); and never a pair already
proposed, whatever became of it (liked, passed, mutual). A person without a location
is proposed to no one: a distance preference cannot be honoured without one.

Of the people who pass, the POOL nearest are scored (nearest first along the GiST index
ix_profiles_place, looking at the WALK nearest people at most; where a person's distance
reaches the date line, a second walk from across it, merged by true distance): a day's
few proposals are chosen among them, and the job's cost is bounded per person whatever the density of
the city (docs/decisions/0026). People proposed on earlier days drop out of the pool,
so the days go further afield.

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

The job reads people in batches, CONCURRENCY at once. For each batch, one query ranks
each person's best candidates; then, one batch at a time (an advisory lock), the pairs
are taken greedily by score so that nobody receives more than DAILY_LIMIT proposals a
day, counting those already made today, and leaving out any pair another batch proposed
meanwhile. Two jobs running at once therefore neither exceed the limit nor propose a
pair twice (the unique pair of matching.matches would refuse it anyway), and a job run
again on the same day only tops people up.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
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
# The nearest eligible people scored per person (docs/decisions/0026): the job's cost
# grows with the number of people, not with how many live within someone's distance.
POOL = 30
# The nearest people looked at per person to fill the pool, at most: what bounds the
# walk where fewer than POOL people within reach pass the rules.
WALK = 2000
# The mean radius matching.distance_km measures with (migration 2026_11_30_0031).
EARTH_RADIUS_KM = 6371.0088
# People per batch (one transaction each).
BATCH_SIZE = 500
# Batches ranking their candidates at once: the ranking is the job's work, in
# PostgreSQL, and spreads over its cores; the choosing after it takes turns.
CONCURRENCY = 2
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

# The nearest people to a point along ix_profiles_place (nearest first, the columns read
# from the index itself), by the flat distance of the point operator, in degrees.
_WALK = """
    SELECT o.user_id, o.latitude, o.longitude, o.gender, o.birth_date, o.pref_genders, o.pref_age_min,
           o.pref_age_max, o.pref_distance_km
      FROM matching.profiles o
     WHERE o.latitude IS NOT NULL AND o.is_active AND {gate}
     ORDER BY point(o.longitude, o.latitude) <-> point({longitude}, me.latitude)
     LIMIT :walk
"""

# Who of the people walked passes every preference both ways and was never proposed to
# them. The checks are cheap comparisons first: the age ranges as ranges of birth dates,
# the genders, then the exact distance and the earlier proposals.
_PASSES = """
    CROSS JOIN LATERAL (
        SELECT matching.distance_km(me.latitude, me.longitude, n.latitude, n.longitude) AS km
    ) dk
    WHERE n.user_id <> me.user_id
      AND n.birth_date <= me.born_by AND n.birth_date > me.born_after
      AND me.age BETWEEN n.pref_age_min AND n.pref_age_max
      AND (cardinality(me.pref_genders) = 0 OR n.gender = ANY(me.pref_genders))
      AND (cardinality(n.pref_genders) = 0 OR me.gender = ANY(n.pref_genders))
      AND dk.km <= least(me.pref_distance_km, n.pref_distance_km)
      AND NOT EXISTS (SELECT 1 FROM matching.matches m
                       WHERE m.user_id = me.user_id AND m.matched_user_id = n.user_id)
      AND NOT EXISTS (SELECT 1 FROM matching.matches m
                       WHERE m.user_id = n.user_id AND m.matched_user_id = me.user_id)
"""

# Each person's pool: the first POOL of their WALK nearest people who pass (_PASSES).
# Blocks, rare, are checked on the pool, and the exact ages again with them.
#
# The index orders by flat distance in degrees, so someone just across the date line
# (longitude +-180) is 360 degrees away on it and, in a crowd, never reached. A person whose
# distance preference reaches the line (`near_line`: the widest longitude their distance
# spans at their latitude, or a pole in reach) also walks from their point shifted by 360
# degrees, which is nearest to the people across it; the two walks are merged by true
# distance. Everyone else keeps the single walk, which stops as soon as the pool is full.
_CANDIDATES = text(
    f"""
    WITH me AS (
        SELECT p.user_id, p.gender, p.interests, p.latitude, p.longitude, p.pref_genders, p.pref_age_min,
               p.pref_age_max, p.pref_distance_km, matching.age_on(p.birth_date, :day) AS age,
               (CAST(:day AS date) - make_interval(years => p.pref_age_min))::date AS born_by,
               (CAST(:day AS date) - make_interval(years => p.pref_age_max + 1))::date AS born_after,
               a.anxiety, a.avoidance, f.features, reach.near_line
          FROM matching.profiles p
          LEFT JOIN LATERAL ({_LATEST_ASSESSMENT.format(person="p.user_id")}) a ON true
          LEFT JOIN matching.user_features f ON f.user_id = p.user_id
         CROSS JOIN LATERAL (
            SELECT least(p.pref_distance_km / CAST(:earth_radius_km AS float8), pi() / 2) AS angle,
                   cos(radians(p.latitude)) AS c
         ) arc
         CROSS JOIN LATERAL (
            SELECT sin(arc.angle) >= arc.c
                   OR abs(p.longitude) + degrees(asin(least(1.0, sin(arc.angle) / greatest(arc.c, 1e-12)))) >= 180
                   AS near_line
         ) reach
         WHERE p.user_id = ANY(:people) AND p.is_active AND p.latitude IS NOT NULL
    )
    SELECT me.user_id, c.matched_user_id, c.attachment, c.interests, c.vals, c.demographics, c.score
      FROM me
     CROSS JOIN LATERAL (
        SELECT o.user_id AS matched_user_id, parts.*,
               :w_attachment * parts.attachment + :w_interests * parts.interests + :w_values * parts.vals
               + :w_demographics * parts.demographics AS score
          FROM (
            SELECT * FROM (
                SELECT n.user_id, n.pref_distance_km, dk.km
                  FROM ({_WALK.format(gate="NOT me.near_line", longitude="me.longitude")}) n
                {_PASSES}
                 LIMIT :pool
            ) one_walk
            UNION ALL
            SELECT * FROM (
                SELECT n.user_id, n.pref_distance_km, dk.km
                  FROM (
                    ({_WALK.format(gate="me.near_line", longitude="me.longitude")})
                    UNION
                    ({_WALK.format(gate="me.near_line", longitude="me.longitude - 360 * sign(me.longitude)")})
                  ) n
                {_PASSES}
                 ORDER BY dk.km, n.user_id
                 LIMIT :pool
            ) two_walks
          ) d
          JOIN matching.profiles o ON o.user_id = d.user_id
         CROSS JOIN LATERAL (SELECT matching.age_on(o.birth_date, :day) AS age) oage
          LEFT JOIN LATERAL ({_LATEST_ASSESSMENT.format(person="o.user_id")}) oa ON true
          LEFT JOIN matching.user_features ofe ON ofe.user_id = o.user_id
         CROSS JOIN LATERAL (
            SELECT CASE WHEN me.anxiety IS NULL OR oa.anxiety IS NULL THEN 0.5
                        ELSE 1 - ((me.anxiety + me.avoidance + oa.anxiety + oa.avoidance) / 4 - 1) / 6
                   END AS attachment,
                   matching.interest_overlap(me.interests, o.interests) AS interests,
                   matching.feature_similarity(me.features, ofe.features) AS vals,
                   0.5 * greatest(0, 1 - d.km / least(me.pref_distance_km, d.pref_distance_km))
                   + 0.5 * (1 - least(abs(me.age - oage.age), :age_span)::float8 / :age_span) AS demographics
         ) parts
         WHERE oage.age BETWEEN me.pref_age_min AND me.pref_age_max
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


_PROPOSED_AMONG = text(
    """
    SELECT m.user_id, m.matched_user_id
      FROM unnest(CAST(:a AS uuid[]), CAST(:b AS uuid[])) AS c(a, b)
      JOIN matching.matches m ON m.user_id = c.a AND m.matched_user_id = c.b
    """
)


async def _proposed_among(db: AsyncConnection, candidates: Sequence[AnyRow]) -> set[frozenset[UUID]]:
    """The candidate pairs another batch proposed since this one ranked them."""
    rows = await db.execute(
        _PROPOSED_AMONG,
        {"a": [row.user_id for row in candidates], "b": [row.matched_user_id for row in candidates]},
    )
    return {frozenset((row.user_id, row.matched_user_id)) for row in rows}


async def propose_batch(db: AsyncConnection, *, people: list[UUID], for_date: date, limit: int = DAILY_LIMIT) -> int:
    """Propose today's matches of some people (system work); the pairs proposed.

    Publishes `match.proposed` (the day and how many are new) to each person who received
    any, the people proposed to them included."""
    # Planned for each batch's values (a generic plan, which the driver's prepared
    # statement gets after a few runs, cannot see the birth dates), and along the index:
    # the planner cannot see through the row-level security policy, estimates a handful
    # of rows, and would sort the whole table once per person instead of walking it.
    await db.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    await db.execute(text("SELECT set_config('enable_seqscan', 'off', true)"))
    weights = {f"w_{name}": weight for name, weight in WEIGHTS.items()}
    candidates = (
        await db.execute(
            _CANDIDATES,
            {
                "people": people,
                "day": for_date,
                "age_span": AGE_SPAN,
                "candidates": max(limit * 3, CANDIDATES_PER_PERSON),
                "pool": max(limit * 3, POOL),
                "walk": WALK,
                "earth_radius_km": EARTH_RADIUS_KM,
                **weights,
            },
        )
    ).all()
    await db.execute(text("SELECT set_config('enable_seqscan', 'on', true)"))
    if not candidates:
        return 0
    # The choosing runs alone (batches rank their candidates at once, then take turns),
    # and sees what the batches before it proposed: neither the daily limit nor a pair
    # is then taken twice.
    await db.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": _LOCK})
    everyone = {row.user_id for row in candidates} | {row.matched_user_id for row in candidates}
    counts = await _counts_of(db, everyone, for_date)
    taken = await _proposed_among(db, candidates)
    proposed = 0
    rows: list[dict[str, Any]] = []
    new: Counter[UUID] = Counter()
    for row in sorted(candidates, key=lambda r: (-r.score, r.user_id, r.matched_user_id)):
        pair = frozenset((row.user_id, row.matched_user_id))
        if pair in taken or counts[row.user_id] >= limit or counts[row.matched_user_id] >= limit:
            continue
        taken.add(pair)
        proposed += 1
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
    return proposed


async def today(db: AsyncConnection) -> date:
    """The day (UTC) by the database's clock."""
    day: date = (await db.execute(_TODAY)).scalar_one()
    return day


async def propose_daily(
    engine: SystemEngine,
    *,
    for_date: date | None = None,
    batch_size: int = BATCH_SIZE,
    limit: int = DAILY_LIMIT,
    concurrency: int = CONCURRENCY,
) -> DailyReport:
    """Propose the day's matches to everyone who takes part (system work, one transaction
    per batch of people, `concurrency` batches ranking at once): safe to run again, which
    only tops people up to `limit`."""
    if for_date is None:
        async with system_transaction(engine) as db:
            for_date = await today(db)
    day = for_date
    after: UUID | None = None
    reading = asyncio.Lock()
    people_seen = pairs = 0

    async def next_batch() -> list[UUID]:
        nonlocal after
        async with reading, system_transaction(engine) as db:
            people = list((await db.execute(_PEOPLE, {"after": after, "batch": batch_size})).scalars())
        if people:
            after = people[-1]
        return people

    async def work() -> None:
        nonlocal people_seen, pairs
        while people := await next_batch():
            async with system_transaction(engine) as db:
                # Not `pairs += await …`: that reads `pairs` before the await, and loses
                # what the other batches added meanwhile.
                proposed = await propose_batch(db, people=people, for_date=day, limit=limit)
            pairs += proposed
            people_seen += len(people)

    await asyncio.gather(*(work() for _ in range(max(1, concurrency))))
    return DailyReport(for_date=day, people=people_seen, pairs=pairs)


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
