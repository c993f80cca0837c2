"""The system message of a new pairing, posted by a job once the acceptance commits.

A `system` message is Rapport's own, which no person may send, so it is posted in a
system transaction: the job's. It runs at least once; `announced_at`, set in the same
transaction as the message, makes it post exactly once."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, select, update

from rapport.kernel import jobs
from rapport.kernel.db import system_transaction
from rapport.messaging import service as messaging_service
from rapport.modules.coparenting.models_pairing import pairing_sessions

QUEUE = "coparenting"
JOINED = "The other parent joined the shared room"


@jobs.tasks.task("coparenting.announce_joined", queue=QUEUE, max_attempts=5, timeout_seconds=60)
async def announce_joined(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    """Post "The other parent joined" in the pairing's room, once."""
    async with system_transaction(ctx.runtime.system_engine) as db:
        row = (
            await db.execute(
                select(pairing_sessions).where(pairing_sessions.c.id == UUID(payload["pairing_id"])).with_for_update()
            )
        ).one_or_none()
        if row is None or row.announced_at is not None or row.shared_room_id is None or row.parent_b_id is None:
            return
        # Neither the name nor the id of the parent who joined: the room's messages outlive
        # an erased account, and the pairing (whose parent columns erasure empties) says who.
        await messaging_service.do_post_system_message(
            db,
            conversation_id=row.shared_room_id,
            content=JOINED,
            content_metadata={"event": "pairing.joined", "pairing_id": str(row.id)},
        )
        await db.execute(
            update(pairing_sessions).where(pairing_sessions.c.id == row.id).values(announced_at=func.now())
        )
