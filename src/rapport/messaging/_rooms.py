"""Support rooms, as the support desk's system work opens, staffs and closes them: a
`support` room for a customer, an `escalated` one below its source (the parent), its
status (closed with the desk's room), and who takes part, decided by the desk
(`messaging.admit_participant`, `messaging.dismiss_participant` of migration
2026_11_30_0037) rather than by a participant's invitation. People cannot open
an escalated room themselves (the public route refuses it).

Each function runs in a system transaction (rapport.kernel.db.system_transaction) and
publishes the same events as the routes do, with no actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal
from uuid import UUID

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.errors import ValidationFailed
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.messaging._refusals import execute
from rapport.messaging.errors import ConversationNotFound
from rapport.messaging.models import ConversationStatus, ParticipantRole, conversations

RoomType = Literal["support", "escalated"]
ROOM_TYPES: tuple[RoomType, ...] = ("support", "escalated")

_ADMIT = text("SELECT messaging.admit_participant(:conversation, :member, :role, :see_history)")
_DISMISS = text("SELECT messaging.dismiss_participant(:conversation, :member)")


async def do_open_room(
    db: AsyncConnection,
    *,
    type: RoomType,
    creator_id: UUID,
    members: Sequence[tuple[UUID, ParticipantRole]],
    name: str | None = None,
    description: str | None = None,
    parent_id: UUID | None = None,
    max_participants: int | None = None,
) -> UUID:
    """Open a support or escalated room (system work) with `members` in it, each in the
    role given; returns its id. An escalated room names the room it came from as parent.

    Raises:
        ConversationNotFound: the parent does not exist (or is deleted).
        ValueError: an escalated room without a parent.
        PersonNotFound, ConversationFull, InvalidRole: see do_admit.
    """
    if type == "escalated" and parent_id is None:
        raise ValueError("an escalated room has the room it came from as parent")
    if parent_id is not None:
        parent = select(conversations.c.id).where(conversations.c.id == parent_id, conversations.c.deleted_at.is_(None))
        if (await db.execute(parent)).one_or_none() is None:
            raise ConversationNotFound("The parent conversation does not exist.")
    conversation_id = uuid7()
    await db.execute(
        insert(conversations).values(
            id=conversation_id,
            type=type,
            name=name,
            description=description,
            parent_id=parent_id,
            max_participants=max_participants,
            creator_id=creator_id,
        )
    )
    await publish(
        db,
        scope=Scope.conversation(conversation_id),
        type="conversation.created",
        payload={"conversation_id": str(conversation_id), "conversation_type": type},
        actor_id=None,
    )
    for user_id, role in members:
        await do_admit(db, conversation_id=conversation_id, user_id=user_id, role=role)
    return conversation_id


async def do_admit(
    db: AsyncConnection, *, conversation_id: UUID, user_id: UUID, role: ParticipantRole, see_history: bool = True
) -> str:
    """Make someone take part in a room in `role` (system work), or give them that role if
    they already do; publishes participant.joined or participant.changed. Returns added,
    rejoined, changed or already.

    Raises:
        ConversationNotFound: no such room (or deleted).
        PersonNotFound: no such active account.
        ConversationFull: the room is at max_participants.
        DirectIsTwo: a direct conversation (never staffed by the desk).
        InvalidRole: not a participant role.
    """
    result = str(
        (
            await execute(
                db,
                _ADMIT,
                {"conversation": conversation_id, "member": user_id, "role": role, "see_history": see_history},
            )
        ).scalar_one()
    )
    payload = {"conversation_id": str(conversation_id), "user_id": str(user_id)}
    if result in ("added", "rejoined"):
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="participant.joined",
            payload={**payload, "role": role, "invited_by": None},
            actor_id=None,
        )
    elif result == "changed":
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="participant.changed",
            payload={**payload, "changes": {"role": role}},
            actor_id=None,
        )
    return result


async def do_dismiss(db: AsyncConnection, *, conversation_id: UUID, user_id: UUID) -> bool:
    """End someone's part in a room (system work: removed, as a moderator would); publishes
    participant.left. Returns whether they took part.

    Raises:
        ConversationNotFound: no such room (or deleted).
    """
    dismissed = bool((await execute(db, _DISMISS, {"conversation": conversation_id, "member": user_id})).scalar_one())
    if dismissed:
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="participant.left",
            payload={"conversation_id": str(conversation_id), "user_id": str(user_id), "status": "removed"},
            actor_id=None,
        )
    return dismissed


async def do_set_room_status(db: AsyncConnection, *, conversation_id: UUID, status: ConversationStatus) -> bool:
    """Set a support or escalated room's status (system work: the desk closes the room,
    and nobody sends in it any more; its history stays readable). Publishes
    conversation.changed, as the route does, when the status changed; returns whether it did.

    Raises:
        ConversationNotFound: no such support or escalated room (or deleted).
    """
    room = (
        conversations.c.id == conversation_id,
        conversations.c.type.in_(ROOM_TYPES),
        conversations.c.deleted_at.is_(None),
    )
    changed = await db.execute(
        update(conversations)
        .where(*room, conversations.c.status != status)
        .values(status=status)
        .returning(conversations.c.id)
    )
    if changed.first() is None:
        if (await db.execute(select(conversations.c.id).where(*room))).first() is None:
            raise ConversationNotFound()
        return False
    await publish(
        db,
        scope=Scope.conversation(conversation_id),
        type="conversation.changed",
        payload={"conversation_id": str(conversation_id), "fields": ["status"]},
        actor_id=None,
    )
    return True


async def do_set_room_limit(db: AsyncConnection, *, conversation_id: UUID, max_participants: int | None) -> bool:
    """Set how many may take part in a support or escalated room (system work: the desk
    decides; None lifts the limit). Publishes conversation.changed, as the route does, when
    it changed; returns whether it did.

    Raises:
        ConversationNotFound: no such support or escalated room (or deleted).
        ValidationFailed: fewer than already take part.
    """
    room = (
        await db.execute(
            select(conversations.c.member_count, conversations.c.max_participants)
            .where(
                conversations.c.id == conversation_id,
                conversations.c.type.in_(ROOM_TYPES),
                conversations.c.deleted_at.is_(None),
            )
            .with_for_update()
        )
    ).one_or_none()
    if room is None:
        raise ConversationNotFound()
    if max_participants is not None and max_participants < room.member_count:
        raise ValidationFailed(f"max_participants: {room.member_count} people already take part.")
    if room.max_participants == max_participants:
        return False
    await db.execute(
        update(conversations).where(conversations.c.id == conversation_id).values(max_participants=max_participants)
    )
    await publish(
        db,
        scope=Scope.conversation(conversation_id),
        type="conversation.changed",
        payload={"conversation_id": str(conversation_id), "fields": ["max_participants"]},
        actor_id=None,
    )
    return True
