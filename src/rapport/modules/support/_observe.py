"""Supervisors (supervisor:chat:observe, with chat:message:read) read any support room's
messages without taking part in it: nobody sees them among the participants. Observing
alone shows the room and the queues; reading its messages needs chat:message:read too.
The reading is the definer function support.observe_messages, which checks the
observing permission itself and answers nobody else."""

from __future__ import annotations

from uuid import UUID

import orjson
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access import service as access_service
from rapport.kernel.actor import Actor
from rapport.kernel.pagination import PageRequest, encode_cursor
from rapport.modules.support._levels import OBSERVE
from rapport.modules.support._rooms import access_room

READ = "chat:message:read"

# The messages come as PostgreSQL wrote their JSON and leave as they came: no parsing
# into Python and serialising again, which cost more than reading them.
_OBSERVE = text(
    "SELECT seq, id, message::text AS message FROM support.observe_messages(:room, :before, :size)"
).bindparams(bindparam("room", type_=PG_UUID(as_uuid=True)), bindparam("before", type_=PG_UUID(as_uuid=True)))


async def list_observed_messages(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, page: PageRequest) -> str:
    """A page of the room's messages, newest first, as the messaging API shows them (the
    cursor names the last one shown; one naming no message of the room gives an empty
    page), as the JSON of an ObservedPage.

    Raises:
        RoomNotFound: not a room the actor sees.
        PermissionRequired: the actor is no supervisor of it, or does not hold
            chat:message:read there.
    """
    await access_room(db, actor=actor, conversation_id=conversation_id)
    await access_service.require_permission(db, actor=actor, permission=OBSERVE, conversation_id=conversation_id)
    await access_service.require_permission(db, actor=actor, permission=READ, conversation_id=conversation_id)
    rows = (await db.execute(_OBSERVE, {"room": conversation_id, "before": page.after_id, "size": page.limit})).all()
    more = len(rows) > page.limit
    following = orjson.dumps(encode_cursor(rows[page.limit - 1].id) if more else None).decode()
    return '{"items":[' + ",".join(row.message for row in rows[: page.limit]) + '],"next":' + following + "}"
