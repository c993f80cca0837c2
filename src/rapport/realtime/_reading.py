"""Reading every scope of the outbox after a position, for the one reader of a process.

`kernel.outbox.read_after` reads the scopes a caller names; the feed of a process serves
every socket it holds, so it reads them all, behind the same safe-position barrier
(docs/decisions/0012): the barrier and the read share one statement, hence one snapshot,
and nothing that can still commit below the resume position is ever passed.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.outbox import ORDINAL_BITS, EventBatch, batch_of

_READ_ALL_AFTER = text(
    """
    WITH barrier AS (
        SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << :bits AS safe
    )
    SELECT barrier.safe, e.position, e.scope_kind, e.scope_id, e.type, e.payload, e.actor_id, e.created_at
      FROM barrier
      LEFT JOIN LATERAL (
          SELECT *
            FROM kernel.events
           WHERE position > :after AND position < barrier.safe
           ORDER BY position
           LIMIT :limit
      ) e ON true
     ORDER BY e.position
    """
)

_SAFE_POSITION = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << :bits")


async def read_all_after(db: AsyncConnection, *, position: int, limit: int) -> EventBatch:
    """Every committed event after `position`, oldest first, up to `limit`, and the
    position to resume from (as `read_after`, for all scopes). Run it on the worker's role.

    Raises:
        ValueError: `limit` is not positive.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    rows = (await db.execute(_READ_ALL_AFTER, {"bits": ORDINAL_BITS, "after": position, "limit": limit})).all()
    return batch_of(rows, after=position, limit=limit)


async def current_position(db: AsyncConnection) -> int:
    """The position a reader starting now resumes from: below it, everything that will
    ever exist has committed."""
    safe: int = (await db.execute(_SAFE_POSITION, {"bits": ORDINAL_BITS})).scalar_one()
    return safe - 1
