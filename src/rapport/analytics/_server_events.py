"""Rapport's own events: what the server knows happened, recorded into analytics.events
(source `server`) from the outbox, after the change that published it has committed.
The paths that send, register and sign in never wait for it, nor know analytics exists.

    outbox type          event name      category
    message.created      message_sent    engagement
    account.signed_up    signed_up       acquisition
    account.signed_in    logged_in       retention

Each carries the actor and the outbox event's time (event_timestamp); created_at is when
it was recorded. These are recorded whatever the person's analytics consent: each is a
fact Rapport already keeps in its own tables (the message, the account, the sign-in
history), and the copy carries nothing more (the conversation, the sign-in method and
device type). A person erased meanwhile is left out (their account is gone, and the
outbox's events naming them with it).

Identity publishes its two in the nil user's scope, which no one's feed carries (a client
hears nothing new), naming the account in the payload and as the actor; the account's
erasure takes them from the outbox like any event it caused.

The reader's cursor, lock and loop are rapport.kernel.outbox.CursorReader's; a batch is one
insert over the events it read."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.db import SystemEngine
from rapport.kernel.outbox import Event
from rapport.kernel.outbox.readers import CursorReader, ReaderLoop

MESSAGE_CREATED = "message.created"
SIGNED_UP = "account.signed_up"
SIGNED_IN = "account.signed_in"

# The outbox type, and the analytics event name and category it becomes.
NAMES: dict[str, tuple[str, str]] = {
    MESSAGE_CREATED: ("message_sent", "engagement"),
    SIGNED_UP: ("signed_up", "acquisition"),
    SIGNED_IN: ("logged_in", "retention"),
}

_RECORD = text(
    """
    INSERT INTO analytics.events (user_id, event_name, event_category, source, event_timestamp, properties,
                                  platform, device_type)
    SELECT e.user_id, e.event_name, e.event_category, 'server', e.event_timestamp, e.properties,
           e.platform, e.device_type
      FROM jsonb_to_recordset(CAST(:batch AS jsonb)) AS e (
               user_id uuid, event_name text, event_category text, event_timestamp timestamptz,
               properties jsonb, platform text, device_type text)
      JOIN auth.users u ON u.id = e.user_id
    """
)


def _short(value: Any, most: int = 32) -> str | None:
    return value[:most] if isinstance(value, str) and value else None


def server_event(event: Event) -> dict[str, Any] | None:
    """The analytics row an outbox event stands for, or None (no actor to name)."""
    name, category = NAMES[event.type]
    payload = event.payload
    properties: dict[str, Any] = {}
    platform = device_type = None
    if event.type == MESSAGE_CREATED:
        actor = payload.get("sender_id") or event.actor_id
        properties["conversation_id"] = str(event.scope_id)
    else:
        # Published in the nil user's scope (no one's feed), naming the account.
        actor = payload.get("user_id") or event.actor_id
        if isinstance(payload.get("method"), str):
            properties["method"] = payload["method"][:32]
        platform = _short(payload.get("platform"))
        device_type = _short(payload.get("device_type"))
    if actor is None:
        return None
    return {
        "user_id": str(UUID(str(actor))),
        "event_name": name,
        "event_category": category,
        "event_timestamp": event.created_at.isoformat(),
        "properties": properties,
        "platform": platform,
        "device_type": device_type,
    }


async def _record(db: AsyncConnection, events: list[Event]) -> int:
    """The batch's server events, in one insert; how many were recorded."""
    rows = [row for row in map(server_event, events) if row is not None]
    if not rows:
        return 0
    result = await db.execute(_RECORD, {"batch": orjson.dumps(rows).decode()})
    return int(result.rowcount)


# Its cursor, lock ("analyti" in ASCII) and loop are rapport.kernel.outbox's.
READER = CursorReader(
    name="analytics-server-events",
    cursor_table="analytics.cursor",
    cursor="server-events",
    lock_key=0x616E616C797469,
    types=tuple(NAMES),
    handle=_record,
    batch=1000,
)


async def record_all(engine: SystemEngine) -> int:
    """Batches until the recorder has read past every event committed when it was called;
    how many analytics events it recorded."""
    return await READER.read_all(engine)


class ServerEventRecorder(ReaderLoop):
    """The recorder's loop beside the job worker (rapport.kernel.outbox.ReaderLoop)."""

    def __init__(self, engine: SystemEngine) -> None:
        super().__init__(READER, engine)
