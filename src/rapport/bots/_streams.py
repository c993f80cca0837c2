"""Abandoned streams: a bot that opened a streamed message (rapport.messaging._streams) and
never ended it, because it crashed or lost its connection mid-answer, would leave the
message `streaming` for ever, shown to everyone as still coming. The job
`bots.expire_streams` (rapport.bots.tasks), queued by the bots' round, ends each one
still open RAPPORT_BOT_STREAM_TIMEOUT_S after it began as `failed`, with the event a bot's
own failure sends (`message.stream.ended`, `delivery_status: failed`), in the same
transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.db import SystemEngine, system_transaction
from rapport.kernel.outbox import Scope, publish

# Streams ended per transaction: a backlog (a long outage of the worker) goes in batches.
BATCH = 200

_FAIL = text(
    "SELECT conversation, message, message_seq, content_length, hidden"
    "  FROM bots.fail_abandoned_streams(:opened_before, :max_rows)"
)
_CUTOFF = text("SELECT now() - make_interval(secs => :seconds)")


async def do_fail_abandoned_streams(db: AsyncConnection, *, opened_before: datetime, limit: int = BATCH) -> int:
    """End as failed up to `limit` bots' streamed messages opened before `opened_before`
    and still open, each with its `message.stream.ended` event (system transaction).
    Returns how many. A message whose bot is appending to it at this moment is passed over
    (its step holds it), and found again next time if it is still open."""
    rows = (await db.execute(_FAIL, {"opened_before": opened_before, "max_rows": limit})).all()
    for row in rows:
        payload = {
            "message_id": str(row.message),
            "seq": row.message_seq,
            "delivery_status": "failed",
            "length": row.content_length,
        }
        if row.hidden:
            # As every event of a message hidden from guests says, so that sync and the stream keep it from them.
            payload["hidden_from_guests"] = True
        await publish(
            db, scope=Scope.conversation(row.conversation), type="message.stream.ended", payload=payload, actor_id=None
        )
    return len(rows)


async def expire_streams(engine: SystemEngine, *, timeout_s: float) -> int:
    """End every bot's stream open longer than `timeout_s` (by the database's clock), a
    batch per transaction; how many."""
    total = 0
    while True:
        async with system_transaction(engine) as db:
            cutoff = (await db.execute(_CUTOFF, {"seconds": timeout_s})).scalar_one()
            ended = await do_fail_abandoned_streams(db, opened_before=cutoff)
        total += ended
        if ended < BATCH:
            return total
