"""Client events in, on the hot path: a batch is validated whole by its request model
(rapport.analytics.schemas.EventBatch), then kept in one statement on the direct asyncpg
pool, `analytics.ingest_events` (migration 2026_11_30_0045): the session check, the
person's consent, their rate limit and one multi-row insert, in one round trip.

Consent: client events are kept only while the person's newest `privacy_policy` consent
(rapport.compliance) is given, the consent that covers processing their use of the apps
as the privacy policy describes it. Without it a well-formed batch is answered 202 with
`accepted: 0` and dropped, spending nothing of the rate limit: a client cannot tell a
consent from a fault by retrying, and nothing of the person is kept.

Rate limit: one token bucket per person in auth.rate_limits (rapport.identity._limits'
algorithm), `analytics_events_per_user_per_hour` units an hour, one unit per event; a batch
past it is refused whole (429 with Retry-After) and nothing of it is kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.analytics.errors import TooManyEvents
from rapport.analytics.schemas import EventBatch, EventIn
from rapport.config import Settings
from rapport.kernel.actor import Actor
from rapport.kernel.errors import InvalidToken
from rapport.kernel.runtime import Runtime

_HOUR = 3600.0
BUCKET_PREFIX = "analytics-events:"

_INGEST = "SELECT accepted, retry_after FROM analytics.ingest_events($1, $2, $3, $4::jsonb, $5, $6)"
_EVENTS: TypeAdapter[list[EventIn]] = TypeAdapter(list[EventIn])

# The same bucket, spent from the caller's own transaction (a crash report is one unit):
# rapport.identity._limits' statement, on the key the policy rate_limits_own_analytics admits.
_TAKE = text(
    """
    INSERT INTO auth.rate_limits AS r (key, tat)
    VALUES (:key, now() + make_interval(secs => :interval))
    ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, now()) + make_interval(secs => :interval)
     WHERE greatest(r.tat, now()) + make_interval(secs => :interval) <= now() + make_interval(secs => :ceiling)
    RETURNING tat
    """
)
_WAIT = text(
    "SELECT greatest(1, ceil(extract(epoch FROM tat - now()) + :interval - :ceiling))::integer"
    " FROM auth.rate_limits WHERE key = :key"
)


def unit_seconds(settings: Settings) -> float:
    """Seconds for one unit of a person's bucket to come back."""
    return _HOUR / max(settings.analytics_events_per_user_per_hour, 1)


def ceiling_seconds(settings: Settings) -> float:
    """How far ahead of now a bucket may run: an hour, and half a unit of slack."""
    return _HOUR + unit_seconds(settings) / 2


@asynccontextmanager
async def _credential_refusals() -> AsyncIterator[None]:
    """The session or key that ended between the token's check and the statement."""
    try:
        yield
    except (DBAPIError, asyncpg.PostgresError) as error:
        driver = getattr(error, "orig", error)
        driver = getattr(driver, "__cause__", None) or driver
        if getattr(driver, "sqlstate", None) == "RA401":
            raise InvalidToken("The session has ended. Sign in again.") from None
        raise


async def ingest(runtime: Runtime, actor: Actor, *, batch: EventBatch) -> int:
    """Keep a batch of the actor's client events; how many were kept (0 without consent).

    Raises:
        InvalidToken: the session or key has ended.
        TooManyEvents: the person's hourly budget of events is spent; nothing was kept.
    """
    payload = _EVENTS.dump_json(batch.events, exclude_none=True).decode()
    settings = runtime.settings
    async with _credential_refusals():
        row = await runtime.direct.fetchrow(
            _INGEST,
            actor.user_id,
            actor.session_id,
            actor.api_key_id,
            payload,
            unit_seconds(settings),
            ceiling_seconds(settings),
        )
    assert row is not None  # the function returns exactly one row
    if row["retry_after"] is not None:
        raise TooManyEvents(
            "The hourly budget of analytics events is spent; nothing of this batch was kept.",
            retry_after=int(row["retry_after"]),
        )
    return int(row["accepted"])


async def take_one(db: AsyncConnection, *, settings: Settings, actor: Actor) -> None:
    """Spend one unit of the person's bucket in their own transaction.

    Raises:
        TooManyEvents: the bucket is empty.
    """
    params = {
        "key": BUCKET_PREFIX + str(actor.user_id),
        "interval": unit_seconds(settings),
        "ceiling": ceiling_seconds(settings),
    }
    if (await db.execute(_TAKE, params)).first() is not None:
        return
    wait = (await db.execute(_WAIT, params)).scalar_one_or_none()
    raise TooManyEvents("The hourly budget of analytics reports is spent.", retry_after=int(wait or 1))
