"""Conversations: create (a direct one at most once per pair), read, change, delete, find
public channels, join and leave.

Membership changes go through the definer functions of migration 2026_11_29_0014
(`messaging.add_participant`, `messaging.change_participant`), which hold the rules of who
may do what; their refusals become Rapport errors here (`call`). Each change publishes its
event in the same transaction.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import and_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable, Select

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import NotFound, ValidationFailed, constraint_of
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import JsonObject, Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.messaging._refusals import refusals
from rapport.messaging.errors import ConversationNotFound, NotAllowed, PersonNotFound, YouBlockThem
from rapport.messaging.models import ParticipantRole, conversations, participants
from rapport.messaging.schemas_conversations import (
    ConversationCreate,
    ConversationOut,
    ConversationUpdate,
    MembershipOut,
)
from rapport.social import service as social_service

# The statuses of someone who takes part (a muted person reads, and is silenced only).
TAKING_PART = ("active", "muted")

_ADD = text("SELECT messaging.add_participant(:conversation, :member, :role, :see_history)")
_CHANGE = text(
    "SELECT messaging.change_participant(:conversation, :member, :role, :status, :can_send, :can_invite, :see_history)"
)
_DELETE = text("SELECT messaging.delete_conversation(:conversation)")
_DIRECT_WITH = text("SELECT messaging.direct_with(:other, :encrypted)")
# The parent chain above a conversation, as far as the actor sees it (a cycle would make
# sub-conversation listings loop).
_ANCESTOR = text(
    """
    WITH RECURSIVE chain (id, parent_id, depth) AS (
        SELECT c.id, c.parent_id, 1 FROM messaging.conversations c WHERE c.id = :start
        UNION ALL
        SELECT c.id, c.parent_id, chain.depth + 1
          FROM messaging.conversations c JOIN chain ON c.id = chain.parent_id
         WHERE chain.depth < 100
    )
    SELECT EXISTS (SELECT 1 FROM chain WHERE chain.id = :target)
    """
)

_me = participants.alias("me")
_MEMBERSHIP = ("role", "status", "can_send", "can_invite", "can_see_history", "is_muted", "is_pinned", "nickname")
_FIELDS = (
    "id",
    "type",
    "name",
    "description",
    "avatar_url",
    "settings",
    "status",
    "is_public",
    "is_encrypted",
    "max_participants",
    "parent_id",
    "creator_id",
    "member_count",
    "last_seq",
    "last_message_at",
    "created_at",
    "updated_at",
)
# What a direct conversation may change: it has no name or place of its own.
_DIRECT_CHANGES = frozenset({"settings", "status"})


async def call(db: AsyncConnection, statement: Executable, params: dict[str, Any]) -> Any:
    """Run one of messaging's SQL functions and return its value.

    Raises:
        The Rapport error of a refusal it raises (rapport.messaging.errors.refusal_of).
    """
    async with refusals():
        return (await db.execute(statement, params)).scalar_one()


async def announce(
    db: AsyncConnection, *, actor: Actor, scope: Scope, type: str, conversation_id: UUID, **payload: Any
) -> None:
    """Publish an event about a conversation (ids and small values only)."""
    body: JsonObject = {"conversation_id": str(conversation_id)}
    body.update({key: str(value) if isinstance(value, UUID) else value for key, value in payload.items()})
    await publish(db, scope=scope, type=type, payload=body, actor_id=actor.user_id)


async def visible_person(db: AsyncConnection, *, user_id: UUID) -> None:
    """Raises:
    PersonNotFound: no such account, or its profile is invisible to the actor (which
        includes someone who blocks the actor).
    """
    try:
        await social_service.access_profile(db, user_id=user_id)
    except NotFound:
        raise PersonNotFound() from None


async def add_and_announce(
    db: AsyncConnection,
    *,
    actor: Actor,
    conversation_id: UUID,
    user_id: UUID,
    role: ParticipantRole = "member",
    see_history: bool = True,
) -> str:
    """Add someone through messaging.add_participant (its rules decide) and publish
    participant.joined unless they already took part. Returns added, rejoined or already.

    Raises:
        ConversationNotFound, NotAllowed, PersonNotFound, ConversationFull, DirectIsTwo,
        InvalidRole: the function's refusals.
    """
    result = str(
        await call(
            db,
            _ADD,
            {"conversation": conversation_id, "member": user_id, "role": role, "see_history": see_history},
        )
    )
    if result != "already":
        joined = (
            await db.execute(
                select(participants.c.role, participants.c.invited_by).where(
                    participants.c.conversation_id == conversation_id, participants.c.user_id == user_id
                )
            )
        ).one()
        await announce(
            db,
            actor=actor,
            scope=Scope.conversation(conversation_id),
            type="participant.joined",
            conversation_id=conversation_id,
            user_id=user_id,
            role=joined.role,
            invited_by=joined.invited_by,
        )
    return result


async def change_participant(
    db: AsyncConnection,
    *,
    conversation_id: UUID,
    user_id: UUID,
    role: str | None = None,
    status: str | None = None,
    can_send: bool | None = None,
    can_invite: bool | None = None,
    can_see_history: bool | None = None,
) -> None:
    """messaging.change_participant: None leaves a value as it is.

    Raises:
        ConversationNotFound, ParticipantNotFound, NotAllowed, OwnerMustHandOver,
        InvalidRole: the function's refusals.
    """
    await call(
        db,
        _CHANGE,
        {
            "conversation": conversation_id,
            "member": user_id,
            "role": role,
            "status": status,
            "can_send": can_send,
            "can_invite": can_invite,
            "see_history": can_see_history,
        },
    )


def _with_membership(actor: Actor) -> Select[Any]:
    """Conversations with the actor's own part in each (when they take part)."""
    return select(
        conversations, *(_me.c[name].label(f"my_{name}") for name in (*_MEMBERSHIP, "read_seq", "joined_at"))
    ).select_from(
        conversations.outerjoin(
            _me,
            and_(
                _me.c.conversation_id == conversations.c.id,
                _me.c.user_id == actor.user_id,
                _me.c.status.in_(TAKING_PART),
            ),
        )
    )


def _out(row: AnyRow, actor: Actor) -> ConversationOut:
    values = row._mapping
    membership = None
    if values["my_role"] is not None:
        membership = MembershipOut(**{name: values[f"my_{name}"] for name in (*_MEMBERSHIP, "read_seq", "joined_at")})
    direct_with = None
    if values["type"] == "direct":
        direct_with = values["direct_high"] if values["direct_low"] == actor.user_id else values["direct_low"]
    return ConversationOut(**{name: values[name] for name in _FIELDS}, direct_with=direct_with, membership=membership)


async def _load(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> AnyRow:
    row: AnyRow | None = (
        await db.execute(_with_membership(actor).where(conversations.c.id == conversation_id))
    ).one_or_none()
    if row is None:
        raise ConversationNotFound()
    return row


async def get_conversation(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> ConversationOut:
    """A conversation the actor takes part in, or a public channel, with the actor's part.

    Raises:
        ConversationNotFound: missing, deleted, or neither theirs nor public.
    """
    return _out(await _load(db, actor=actor, conversation_id=conversation_id), actor)


async def access_conversation(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, roles: tuple[str, ...] = ()
) -> AnyRow:
    """Load a conversation the actor takes part in (with `my_role` and the rest of their
    part), and with `roles`, check that their role is one of them.

    Raises:
        ConversationNotFound: missing, deleted, or the actor takes no part in it (a
            public channel too: acting in it needs joining).
        NotAllowed: the actor's role is not among `roles`.
    """
    row = await _load(db, actor=actor, conversation_id=conversation_id)
    if row.my_role is None:
        raise ConversationNotFound()
    if roles and row.my_role not in roles:
        raise NotAllowed()
    return row


async def _write(db: AsyncConnection, statement: Executable) -> int:
    """Insert or update a conversation; a too-large settings object is the client's error."""
    try:
        return (await db.execute(statement)).rowcount
    except DBAPIError as error:
        if constraint_of(error) == "ck_conversations_settings":
            raise ValidationFailed("settings: must be at most 8000 bytes as PostgreSQL stores it") from None
        raise


async def _check_parent(db: AsyncConnection, *, parent_id: UUID, conversation_id: UUID | None) -> None:
    """Raises:
    ConversationNotFound: the parent is not a conversation the actor can see.
    ValidationFailed: the parent is the conversation itself or one below it.
    """
    if parent_id == conversation_id:
        raise ValidationFailed("parent_id: a conversation cannot be its own parent.")
    found = (await db.execute(select(conversations.c.id).where(conversations.c.id == parent_id))).one_or_none()
    if found is None:
        raise ConversationNotFound("The parent conversation does not exist, or you cannot see it.")
    if (
        conversation_id is not None
        and (await db.execute(_ANCESTOR, {"start": parent_id, "target": conversation_id})).scalar_one()
    ):
        raise ValidationFailed("parent_id: that conversation is below this one; parents cannot loop.")


async def do_create_conversation(
    db: AsyncConnection, *, actor: Actor, body: ConversationCreate
) -> tuple[ConversationOut, bool]:
    """Create a conversation with the actor as its owner and the people named as members
    (a direct one: see do_open_direct). Returns it, and whether it was made now.

    Raises:
        PersonNotFound: someone named does not exist, is invisible to the actor, or is
            blocked by the actor.
        ConversationNotFound: the parent is not a conversation the actor can see.
        ConversationFull: more people than max_participants.
        YouBlockThem: (direct) the actor blocks the other person.
        ValidationFailed: a direct conversation with oneself; settings too large.
    """
    if body.type == "direct":
        return await do_open_direct(
            db, actor=actor, user_id=body.participant_ids[0], settings=body.settings, encrypted=body.is_encrypted
        )
    if body.parent_id is not None:
        await _check_parent(db, parent_id=body.parent_id, conversation_id=None)
    others = list(dict.fromkeys(user_id for user_id in body.participant_ids if user_id != actor.user_id))
    for user_id in others:
        await visible_person(db, user_id=user_id)
    conversation_id = uuid7()
    await _write(
        db,
        insert(conversations).values(
            id=conversation_id,
            type=body.type,
            name=body.name,
            description=body.description,
            avatar_url=str(body.avatar_url) if body.avatar_url is not None else None,
            settings=body.settings,
            is_public=body.type == "channel",
            is_encrypted=body.is_encrypted,
            max_participants=body.max_participants,
            parent_id=body.parent_id,
            creator_id=actor.user_id,
        ),
    )
    await _announce_created(db, actor=actor, conversation_id=conversation_id, type=body.type)
    # The creator first: messaging.add_participant makes the creator of an empty
    # conversation its owner, who then adds the others.
    await add_and_announce(db, actor=actor, conversation_id=conversation_id, user_id=actor.user_id)
    for user_id in others:
        await add_and_announce(db, actor=actor, conversation_id=conversation_id, user_id=user_id)
    return await get_conversation(db, actor=actor, conversation_id=conversation_id), True


async def _announce_created(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, type: str) -> None:
    await announce(
        db,
        actor=actor,
        scope=Scope.conversation(conversation_id),
        type="conversation.created",
        conversation_id=conversation_id,
        conversation_type=type,
    )


async def do_open_direct(
    db: AsyncConnection,
    *,
    actor: Actor,
    user_id: UUID,
    settings: dict[str, Any] | None = None,
    encrypted: bool = False,
) -> tuple[ConversationOut, bool]:
    """The direct conversation between the actor and someone: made if there is none (at
    most one plain and one end-to-end `encrypted` per pair, uq_conversations_direct_pair),
    else the existing one, re-opened for whichever of the two had left it. Returns it, and
    whether it is new to the actor (made now, or they had left it).

    Raises:
        ValidationFailed: with oneself.
        PersonNotFound: no such account, invisible to the actor, or blocking the actor.
        YouBlockThem: the actor blocks them.
    """
    if user_id == actor.user_id:
        raise ValidationFailed("participant_ids: a direct conversation is with someone else.")
    # Someone who blocks the actor is invisible to them, exactly as an unknown id.
    await visible_person(db, user_id=user_id)
    if await social_service.is_blocked(db, a=actor.user_id, b=user_id):
        raise YouBlockThem()
    low, high = sorted((actor.user_id, user_id))
    conversation_id = uuid7()
    # A racing open of the same pair waits on the unique index, then finds the winner's.
    made = await _write(
        db,
        insert(conversations)
        .values(
            id=conversation_id,
            type="direct",
            settings=settings or {},
            is_encrypted=encrypted,
            creator_id=actor.user_id,
            direct_low=low,
            direct_high=high,
        )
        .on_conflict_do_nothing(),
    )
    if made:
        await _announce_created(db, actor=actor, conversation_id=conversation_id, type="direct")
        await add_and_announce(db, actor=actor, conversation_id=conversation_id, user_id=actor.user_id)
        await add_and_announce(db, actor=actor, conversation_id=conversation_id, user_id=user_id)
        return await get_conversation(db, actor=actor, conversation_id=conversation_id), True
    existing = (await db.execute(_DIRECT_WITH, {"other": user_id, "encrypted": encrypted})).scalar_one()
    if existing is None:
        # Deleted between the insert and this look: the next try makes a new one.
        raise ConversationNotFound("The conversation was just deleted; try again.")
    mine = await add_and_announce(db, actor=actor, conversation_id=existing, user_id=actor.user_id)
    await add_and_announce(db, actor=actor, conversation_id=existing, user_id=user_id)
    return await get_conversation(db, actor=actor, conversation_id=existing), mine != "already"


async def list_public_channels(
    db: AsyncConnection, *, actor: Actor, query: str | None, page: PageRequest
) -> Page[ConversationOut]:
    """Public channels, newest first (ix_conversations_public), those whose name contains
    `query` (any case) when given. The name filter reads the channels in id order and
    keeps the matches: right while channels number in the thousands; a trigram or
    full-text index is the step after that."""
    statement = _with_membership(actor).where(conversations.c.is_public, conversations.c.deleted_at.is_(None))
    if query:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(conversations.c.name.ilike(f"%{escaped}%", escape="\\"))
    rows = (await db.execute(keyset(statement, conversations.c.id, page))).all()
    return make_page([_out(row, actor) for row in rows], page)


async def do_update_conversation(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, changes: ConversationUpdate
) -> ConversationOut:
    """Change the fields sent (owners and admins).

    Raises:
        ConversationNotFound: not a conversation the actor takes part in; or the new
            parent is not one they can see.
        NotAllowed: the actor is not an owner or admin.
        ValidationFailed: clearing a channel's name; a limit below the people already
            in; a parent that would make a loop; a direct conversation's name or place.
    """
    row = await access_conversation(db, actor=actor, conversation_id=conversation_id, roles=("owner", "admin"))
    values = changes.changes()
    if not values:
        return _out(row, actor)
    if row.type == "direct" and values.keys() - _DIRECT_CHANGES:
        raise ValidationFailed("A direct conversation changes only its settings and status.")
    if values.get("avatar_url") is not None:
        values["avatar_url"] = str(values["avatar_url"])
    if "name" in values and values["name"] is None and row.type == "channel":
        raise ValidationFailed("name: a channel needs a name.")
    limit = values.get("max_participants")
    if limit is not None and limit < row.member_count:
        raise ValidationFailed(f"max_participants: {row.member_count} people already take part.")
    if values.get("parent_id") is not None:
        await _check_parent(db, parent_id=values["parent_id"], conversation_id=conversation_id)
    await _write(db, update(conversations).where(conversations.c.id == conversation_id).values(**values))
    await announce(
        db,
        actor=actor,
        scope=Scope.conversation(conversation_id),
        type="conversation.changed",
        conversation_id=conversation_id,
        fields=sorted(values),
    )
    return await get_conversation(db, actor=actor, conversation_id=conversation_id)


async def do_delete_conversation(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> None:
    """Delete a conversation (its owners): nobody sees it from now on.

    Raises:
        ConversationNotFound: not a conversation the actor takes part in.
        NotAllowed: the actor is not an owner.
    """
    await call(db, _DELETE, {"conversation": conversation_id})
    await announce(
        db,
        actor=actor,
        scope=Scope.conversation(conversation_id),
        type="conversation.deleted",
        conversation_id=conversation_id,
    )


async def do_join(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> ConversationOut:
    """Join a public channel (a participant joining again changes nothing).

    Raises:
        ConversationNotFound: not a public channel (or the actor was removed from it).
        ConversationFull: it has reached max_participants.
    """
    await add_and_announce(db, actor=actor, conversation_id=conversation_id, user_id=actor.user_id)
    return await get_conversation(db, actor=actor, conversation_id=conversation_id)


async def do_leave(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> None:
    """Leave a conversation: the actor keeps the history up to now and sees nothing after.

    Raises:
        ConversationNotFound: the actor takes no part in it.
        OwnerMustHandOver: the last owner, while others remain.
    """
    await change_participant(db, conversation_id=conversation_id, user_id=actor.user_id, status="left")
    await announce(
        db,
        actor=actor,
        scope=Scope.conversation(conversation_id),
        type="participant.left",
        conversation_id=conversation_id,
        user_id=actor.user_id,
        status="left",
    )
