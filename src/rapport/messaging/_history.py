"""A room's history (seed 003 `messages_history`, for rooms and participants): the
previous state of the room at each change, and of someone's place in it, written by the
triggers of migration 2026_11_30_0037 and read by supervisors (`supervisor:chat:observe`,
through `messaging.observes` in the tables' row-level security: a platform-wide grant
reaches support and escalated rooms only, migration 2026_11_30_0041).

Both tables are read in one statement, newest first, by their time-ordered ids: one
keyset over the two.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.pagination import Page, PageRequest, make_page
from rapport.messaging.errors import ConversationNotFound, PermissionRequired
from rapport.messaging.schemas_streams import RoomChange

OBSERVE = "supervisor:chat:observe"

# Whether the caller observes the room (and it exists), and their own part in it if any.
_STANDING = text("SELECT messaging.observes(:c) AS observes, messaging.participant_role(:c) AS role")
# Each side reads its newest rows above the cursor by (conversation_id, id DESC); the
# policies leave only what the caller observes.
_CHANGES = text(
    """
    (SELECT h.id, h.conversation_id, 'conversation' AS subject, NULL::uuid AS user_id, h.operation,
            h.changed_by, h.changed_at, h.old_row AS previous
       FROM messaging.conversation_history h
      WHERE h.conversation_id = :c AND (CAST(:after AS uuid) IS NULL OR h.id < :after)
      ORDER BY h.id DESC LIMIT :n)
    UNION ALL
    (SELECT h.id, h.conversation_id, 'participant', h.user_id, h.operation,
            h.changed_by, h.changed_at, h.old_row
       FROM messaging.participant_history h
      WHERE h.conversation_id = :c AND (CAST(:after AS uuid) IS NULL OR h.id < :after)
      ORDER BY h.id DESC LIMIT :n)
    ORDER BY id DESC LIMIT :n
    """
)


async def list_room_history(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, page: PageRequest
) -> Page[RoomChange]:
    """A room's changes and its people's, newest first, for those who observe it
    (messaging.observes: supervisor:chat:observe granted for the room; a platform-wide
    grant for support and escalated rooms only; platform admins): a deleted room's too.
    Participants without the permission see the room but not this.

    Raises:
        PermissionRequired: the caller takes part in the room but does not observe it.
        ConversationNotFound: no such room, or the caller neither takes part in it nor
            observes it.
    """
    standing = (await db.execute(_STANDING, {"c": conversation_id})).one()
    if not standing.observes:
        if standing.role is not None:
            raise PermissionRequired(OBSERVE)
        raise ConversationNotFound()
    rows = await db.execute(_CHANGES, {"c": conversation_id, "after": page.after_id, "n": page.limit + 1})
    return make_page([RoomChange.model_validate(row._mapping) for row in rows], page)
