"""The messages Rapport posts in a pairing's shared room, by jobs once the acceptance or
the end commits: "the other parent joined" and the mediation notice when a pairing is
accepted, "the pairing ended" when an active one ends.

`system` and `ai` messages are Rapport's own, which no person may send, so they are
posted in system transactions: the jobs'. A job runs at least once; `announced_at` and
`mediation_announced_at` and `ended_announced_at`, each set in the transaction of its
message, make each post exactly once. None of them names a
parent: the room's messages outlive an erased account, and the pairing (whose parent
columns erasure empties) says who."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from sqlalchemy import Column, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel import jobs
from rapport.kernel.db import AnyRow, system_transaction
from rapport.kernel.runtime import Runtime
from rapport.messaging import service as messaging_service
from rapport.modules.coparenting.models_pairing import pairing_sessions

QUEUE = "coparenting"
JOINED = "The other parent joined the shared room"
MEDIATION_AVAILABLE = (
    "Mediation is available: before you send, you can ask for a calmer version of your message. Only you see it."
)
ENDED = "The co-parenting pairing ended. This room and its history stay."


async def _post_once(
    runtime: Runtime, pairing_id: str, done: Column[Any], post: Callable[[AsyncConnection, AnyRow], Awaitable[bool]]
) -> None:
    """In a system transaction of its own, with the pairing's row locked: unless `done` is
    set, `post` its message and, when it did, set `done` now."""
    async with system_transaction(runtime.system_engine) as db:
        query = select(pairing_sessions).where(pairing_sessions.c.id == UUID(pairing_id)).with_for_update()
        row: AnyRow | None = (await db.execute(query)).one_or_none()
        if row is None or getattr(row, done.name) is not None or row.shared_room_id is None:
            return
        if await post(db, row):
            await db.execute(
                update(pairing_sessions).where(pairing_sessions.c.id == row.id).values({done.name: func.now()})
            )


async def _post_joined(db: AsyncConnection, row: AnyRow) -> bool:
    if row.parent_b_id is None:
        return False
    await messaging_service.do_post_system_message(
        db,
        conversation_id=row.shared_room_id,
        content=JOINED,
        content_metadata={"event": "pairing.joined", "pairing_id": str(row.id)},
    )
    return True


async def _post_mediation(db: AsyncConnection, row: AnyRow) -> bool:
    if row.status != "active":
        return False
    await messaging_service.do_post_system_message(
        db,
        conversation_id=row.shared_room_id,
        content=MEDIATION_AVAILABLE,
        content_metadata={"event": "mediation.available", "pairing_id": str(row.id)},
        type="ai",
    )
    return True


async def _post_ended(db: AsyncConnection, row: AnyRow) -> bool:
    if row.status != "canceled" or row.accepted_at is None:
        return False
    await messaging_service.do_post_system_message(
        db,
        conversation_id=row.shared_room_id,
        content=ENDED,
        content_metadata={"event": "pairing.ended", "pairing_id": str(row.id)},
    )
    return True


@jobs.tasks.task("coparenting.announce_joined", queue=QUEUE, max_attempts=5, timeout_seconds=60)
async def announce_joined(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    """Post "The other parent joined", then the mediation notice, in the pairing's room,
    each once. One message a transaction: a second message in the transaction that posted
    the first would check the room's creator again (its row changed in this transaction)
    and wait on an erasure of that account that waits on the room."""
    await _post_once(ctx.runtime, payload["pairing_id"], pairing_sessions.c.announced_at, _post_joined)
    await _post_once(ctx.runtime, payload["pairing_id"], pairing_sessions.c.mediation_announced_at, _post_mediation)


@jobs.tasks.task("coparenting.announce_ended", queue=QUEUE, max_attempts=5, timeout_seconds=60)
async def announce_ended(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    """Post "The co-parenting pairing ended" in the room of a pairing that was active, once."""
    await _post_once(ctx.runtime, payload["pairing_id"], pairing_sessions.c.ended_announced_at, _post_ended)
