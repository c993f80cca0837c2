"""The rooms' conversations, which are messaging's: the desk opens them, brings people
into them and closes them as system work, through messaging's service for it
(`do_open_room`, `do_admit`, `do_set_room_status`), which carries none of the rules
about who may invite whom, since the desk, not a participant, decides who takes part."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.messaging import service as messaging_service
from rapport.modules.support.schemas import ConversationSummary

Role = Literal["member", "guest"]


async def open_conversation(
    db: AsyncConnection,
    *,
    type: messaging_service.RoomType,
    creator_id: UUID,
    name: str,
    description: str,
    parent_id: UUID | None,
    members: list[tuple[UUID, Role]],
    max_participants: int | None = None,
) -> ConversationSummary:
    """Make a room's conversation with its first people in it (system work), holding at
    most `max_participants` people when given."""
    conversation_id = await messaging_service.do_open_room(
        db,
        type=type,
        creator_id=creator_id,
        members=members,
        name=name[:200],
        description=description,
        parent_id=parent_id,
        max_participants=max_participants,
    )
    made = await messaging_service.get_conversation(
        db, actor=Actor(user_id=creator_id), conversation_id=conversation_id
    )
    return ConversationSummary.model_validate(made.model_dump())


async def enrol(db: AsyncConnection, *, conversation_id: UUID, user_id: UUID, role: Role) -> None:
    """Bring someone into a room's conversation in a role (system work); messaging tells
    the room."""
    await messaging_service.do_admit(db, conversation_id=conversation_id, user_id=user_id, role=role)


async def close_conversation(db: AsyncConnection, *, conversation_id: UUID) -> None:
    """Close a room's conversation (system work): nobody sends in it any more, and its
    history stays readable; messaging tells the room when it changed."""
    await messaging_service.do_set_room_status(db, conversation_id=conversation_id, status="closed")


async def set_limit(db: AsyncConnection, *, conversation_id: UUID, max_participants: int | None) -> None:
    """Set how many may take part in a room's conversation (system work); messaging refuses
    a limit below how many take part, and enforces it on whoever comes in."""
    await messaging_service.do_set_room_limit(db, conversation_id=conversation_id, max_participants=max_participants)
