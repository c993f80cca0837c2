"""A/B tests (analytics.ab_tests): variants with weights, each person's variant decided by
a hash, their first exposure recorded, and a result per variant with its confidence
interval.

Assignment: the first 60 bits of sha256("<test key>:<user id>") are a point in [0, 2^60);
laid over the variants' cumulative weights (in their order), it falls in one of them. The
same person and test always give the same variant, different tests are independent, and
over many people each variant's share tends to its weight over the sum of the weights.
The database computes it (analytics.assign_variant, called by analytics.expose when a
person asks for their variant); `assign_variant` here is the same computation, for tests
and tools. Once exposed, a person keeps the variant they were shown.

Result: per variant, the people exposed and those of them who had the test's conversion
event after their exposure (and before the test stopped), the rate, and its 95 % Wilson
score interval, which stays within [0, 1] and behaves on small counts."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.analytics import _gate
from rapport.analytics.errors import ExperimentKeyTaken, ExperimentNotFound, ExperimentStopped
from rapport.analytics.schemas_reports import (
    ExperimentIn,
    ExperimentOut,
    ExperimentReportOut,
    MyVariantOut,
    VariantResultOut,
)
from rapport.compliance import service as compliance_service
from rapport.kernel.actor import Actor
from rapport.kernel.ids import uuid7

# The normal quantile of a two-sided 95 % interval.
Z_95 = 1.959963984540054
_SPAN = 1 << 60

_INSERT = text(
    """
    INSERT INTO analytics.ab_tests (id, key, name, description, variants, conversion_event)
    VALUES (:id, :key, :name, :description, CAST(:variants AS jsonb), :conversion_event)
    ON CONFLICT (key) DO NOTHING
    """
)
_COLUMNS = "id, key, name, description, variants, conversion_event, status, started_at, stopped_at"
_BY_KEY = text(f"SELECT {_COLUMNS} FROM analytics.ab_tests WHERE key = :key")
_LIST = text(f"SELECT {_COLUMNS} FROM analytics.ab_tests ORDER BY status, started_at DESC, key")
_STOP = text(
    f"""
    UPDATE analytics.ab_tests SET status = 'stopped', stopped_at = now()
     WHERE key = :key AND status = 'running'
    RETURNING {_COLUMNS}
    """
)
_COUNTS = text("SELECT variant, exposures, conversions FROM analytics.experiment_counts(:id)")
_EXPOSE = text("SELECT variant, running, exposed_at FROM analytics.expose(:key)")
_NOW = text("SELECT now()")


def assign_variant(key: str, user_id: UUID, variants: Sequence[tuple[str, int]]) -> str:
    """The variant of `user_id` in test `key`, as analytics.assign_variant computes it:
    `variants` are (name, weight) pairs in their order."""
    digest = hashlib.sha256(f"{key}:{user_id}".encode()).hexdigest()
    point = int(digest[:15], 16)
    total = sum(weight for _, weight in variants)
    upto = 0
    for name, weight in variants:
        upto += weight
        if point * total < upto * _SPAN:
            return name
    raise ValueError("no variant has a weight above 0")


def wilson_interval(successes: int, trials: int, *, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (None without trials)."""
    if trials == 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _out(row: Any) -> ExperimentOut:
    return ExperimentOut.model_validate(row, from_attributes=True)


async def do_create_experiment(db: AsyncConnection, *, body: ExperimentIn) -> ExperimentOut:
    """Start an A/B test.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        ExperimentKeyTaken: another test has this key.
    """
    await _gate.require_platform_admin(db)
    variants = orjson.dumps([variant.model_dump() for variant in body.variants]).decode()
    params = {
        "id": uuid7(),
        "key": body.key,
        "name": body.name,
        "description": body.description,
        "variants": variants,
        "conversion_event": body.conversion_event,
    }
    if (await db.execute(_INSERT, params)).rowcount == 0:
        raise ExperimentKeyTaken(f"A test is already called {body.key}.")
    return _out((await db.execute(_BY_KEY, {"key": body.key})).one())


async def list_experiments(db: AsyncConnection) -> list[ExperimentOut]:
    """Every test, running ones first, the newest first.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
    """
    await _gate.require_platform_admin(db)
    return [_out(row) for row in await db.execute(_LIST)]


async def do_stop_experiment(db: AsyncConnection, *, key: str) -> ExperimentOut:
    """Stop a test: nobody new is exposed; conversions after now no longer count.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        ExperimentNotFound: no test has this key.
        ExperimentStopped: it has stopped already.
    """
    await _gate.require_platform_admin(db)
    row = (await db.execute(_STOP, {"key": key})).one_or_none()
    if row is not None:
        return _out(row)
    if (await db.execute(_BY_KEY, {"key": key})).one_or_none() is None:
        raise ExperimentNotFound()
    raise ExperimentStopped()


async def experiment_report(db: AsyncConnection, *, key: str) -> ExperimentReportOut:
    """A test with its result per variant.

    Raises:
        PlatformAdminRequired: the caller is not a platform administrator.
        ExperimentNotFound: no test has this key.
    """
    await _gate.require_platform_admin(db)
    row = (await db.execute(_BY_KEY, {"key": key})).one_or_none()
    if row is None:
        raise ExperimentNotFound()
    results = []
    for count in await db.execute(_COUNTS, {"id": row.id}):
        interval = wilson_interval(count.conversions, count.exposures)
        results.append(
            VariantResultOut(
                variant=count.variant,
                exposures=count.exposures,
                conversions=count.conversions,
                rate=round(count.conversions / count.exposures, 6) if count.exposures else None,
                ci_low=round(interval[0], 6) if interval else None,
                ci_high=round(interval[1], 6) if interval else None,
            )
        )
    return ExperimentReportOut(experiment=_out(row), results=results)


async def expose(db: AsyncConnection, actor: Actor, *, key: str) -> MyVariantOut:
    """The acting person's variant of a test, their first exposure recorded while it runs
    (analytics.expose, a definer function: a person reads no test otherwise).

    An exposure is kept under the consent rule of client events (rapport.analytics._ingest):
    only while the person's `privacy_policy` consent is given. Without it they are still
    answered their variant (a hash of the test and their id: nothing is read of them and
    nothing kept), the same one they will be counted under once they consent, but the
    exposure the function records is undone (`exposed_at` is null): a person who has not
    consented is in no test's figures. One exposed before withdrawing keeps their variant.

    Raises:
        ExperimentNotFound: no test has this key.
    """
    consented = await compliance_service.has_consent(db, user_id=actor.user_id, consent_type="privacy_policy")
    if consented:
        row = (await db.execute(_EXPOSE, {"key": key})).one_or_none()
    else:
        async with db.begin_nested() as unexposed:
            row = (await db.execute(_EXPOSE, {"key": key})).one_or_none()
            await unexposed.rollback()
    if row is None:
        raise ExperimentNotFound()
    exposed_at = row.exposed_at
    if not consented and exposed_at is not None:
        # An exposure stamped with this transaction's time was the one just undone.
        now = (await db.execute(_NOW)).scalar_one()
        exposed_at = None if exposed_at == now else exposed_at
    return MyVariantOut(key=key, variant=row.variant, running=row.running, exposed_at=exposed_at)
