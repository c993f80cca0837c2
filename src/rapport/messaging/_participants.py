"""Participants: list, add, change (roles, silencing, removal, permissions), and each
person's own settings in a conversation (mute, pin, nickname).

Who may do what to whom is messaging.add_participant's and messaging.change_participant's
to say (migration 2026_11_29_0014): owner > admin > moderator > member > guest, observer;
nobody acts on someone ranked as high as themself."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.outbox import Scope
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.messaging._conversations import (
    TAKING_PART,
    access_conversation,
    add_and_announce,
    announce,
    change_participant,
    do_leave,
    visible_person,
)
from rapport.messaging.errors import ParticipantNotFound
from rapport.messaging.models import ParticipantRole, ParticipantStatus, participants
from rapport.messaging.schemas_conversations import (
    MembershipOut,
    MembershipUpdate,
    ParticipantChange,
    ParticipantOut,
)

_GONE = ("removed", "left")


def _out(row: AnyRow) -> ParticipantOut:
    return ParticipantOut.model_validate(row._mapping)


async def get_participant(db: AsyncConnection, *, conversation_id: UUID, user_id: UUID) -> ParticipantOut:
    """Raises:
    ParticipantNotFound: the person never took part (or the actor cannot see them).
    """
    row = (
        await db.execute(
            select(participants).where(
                participants.c.conversation_id == conversation_id, participants.c.user_id == user_id
            )
        )
    ).one_or_none()
    if row is None:
        raise ParticipantNotFound()
    return _out(row)


async def list_participants(
    db: AsyncConnection,
    *,
    actor: Actor,
    conversation_id: UUID,
    status: ParticipantStatus | None,
    page: PageRequest,
) -> Page[ParticipantOut]:
    """Who takes part (active and silenced), or those of one status, newest account first.

    Raises:
        ConversationNotFound: the actor takes no part in it.
    """
    await access_conversation(db, actor=actor, conversation_id=conversation_id)
    query = select(participants).where(participants.c.conversation_id == conversation_id)
    if status is None:
        query = query.where(participants.c.status.in_(TAKING_PART))
    else:
        query = query.where(participants.c.status == status)
    rows = (await db.execute(keyset(query, participants.c.user_id, page))).all()
    return make_page([_out(row) for row in rows], page, id_of=lambda item: item.user_id)


async def do_add_participant(
    db: AsyncConnection,
    *,
    actor: Actor,
    conversation_id: UUID,
    user_id: UUID,
    role: ParticipantRole,
    can_see_history: bool,
) -> tuple[ParticipantOut, bool]:
    """Add someone, or bring back someone who left or was removed. Returns them, and
    whether they were added now (false: they already took part).

    Raises:
        ConversationNotFound: the actor takes no part in it.
        PersonNotFound: no such account, invisible to the actor, or blocked either way.
        NotAllowed: the actor may not invite, or not in that role.
        BotAddNotAllowed: a bot the actor neither manages nor holds chat:robot:add for here.
        ConversationFull, DirectIsTwo, InvalidRole: messaging.add_participant's refusals.
    """
    await access_conversation(db, actor=actor, conversation_id=conversation_id)
    if user_id != actor.user_id:
        await visible_person(db, user_id=user_id)
    result = await add_and_announce(
        db, actor=actor, conversation_id=conversation_id, user_id=user_id, role=role, see_history=can_see_history
    )
    return await get_participant(db, conversation_id=conversation_id, user_id=user_id), result != "already"


async def do_change_participant(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, user_id: UUID, changes: ParticipantChange
) -> ParticipantOut:
    """Change someone's role, status or permissions, or leave (`status: left` on oneself).

    Raises:
        ConversationNotFound: the actor takes no part in it.
        ParticipantNotFound: the person takes no part in it.
        NotAllowed: the actor's role does not allow this change to this person.
        OwnerMustHandOver: the last owner leaving while others remain.
        InvalidRole: messaging.change_participant's refusal.
    """
    await access_conversation(db, actor=actor, conversation_id=conversation_id)
    values = changes.changes()
    if not values:
        return await get_participant(db, conversation_id=conversation_id, user_id=user_id)
    if user_id == actor.user_id and values == {"status": "left"}:
        await do_leave(db, actor=actor, conversation_id=conversation_id)
        return await get_participant(db, conversation_id=conversation_id, user_id=user_id)
    await change_participant(db, conversation_id=conversation_id, user_id=user_id, **values)
    scope = Scope.conversation(conversation_id)
    if values.get("status") in _GONE:
        await announce(
            db,
            actor=actor,
            scope=scope,
            type="participant.left",
            conversation_id=conversation_id,
            user_id=user_id,
            status=values["status"],
        )
    else:
        await announce(
            db,
            actor=actor,
            scope=scope,
            type="participant.changed",
            conversation_id=conversation_id,
            user_id=user_id,
            changes=values,
        )
    if values.get("role") == "owner":
        # Handing over ownership made the giver an admin.
        await announce(
            db,
            actor=actor,
            scope=scope,
            type="participant.changed",
            conversation_id=conversation_id,
            user_id=actor.user_id,
            changes={"role": "admin"},
        )
    return await get_participant(db, conversation_id=conversation_id, user_id=user_id)


async def do_remove_participant(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, user_id: UUID) -> None:
    """Remove someone ranked below the actor (moderators and above); on oneself, leave.
    A removed person sees the history up to now, nothing after, and comes back only when
    someone adds them.

    Raises:
        ConversationNotFound: the actor takes no part in it.
        ParticipantNotFound: the person takes no part in it.
        NotAllowed: the actor's role does not allow it.
        OwnerMustHandOver: the last owner leaving while others remain.
    """
    if user_id == actor.user_id:
        await do_leave(db, actor=actor, conversation_id=conversation_id)
        return
    await access_conversation(db, actor=actor, conversation_id=conversation_id)
    await change_participant(db, conversation_id=conversation_id, user_id=user_id, status="removed")
    await announce(
        db,
        actor=actor,
        scope=Scope.conversation(conversation_id),
        type="participant.left",
        conversation_id=conversation_id,
        user_id=user_id,
        status="removed",
    )


async def do_update_membership(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, changes: MembershipUpdate
) -> MembershipOut:
    """The actor's own mute, pin and nickname in a conversation. The nickname is the
    others' business too (participant.changed to the conversation); mute and pin are the
    actor's alone (to their own devices).

    Raises:
        ConversationNotFound: the actor takes no part in it.
    """
    await access_conversation(db, actor=actor, conversation_id=conversation_id)
    values = changes.changes()
    mine = (participants.c.conversation_id == conversation_id, participants.c.user_id == actor.user_id)
    if values:
        statement = update(participants).where(*mine).values(**values).returning(participants)
        row = (await db.execute(statement)).one()
    else:
        row = (await db.execute(select(participants).where(*mine))).one()
    if "nickname" in values:
        await announce(
            db,
            actor=actor,
            scope=Scope.conversation(conversation_id),
            type="participant.changed",
            conversation_id=conversation_id,
            user_id=actor.user_id,
            changes={"nickname": values["nickname"]},
        )
    personal = {key: values[key] for key in ("is_muted", "is_pinned") if key in values}
    if personal:
        await announce(
            db,
            actor=actor,
            scope=Scope.user(actor.user_id),
            type="participant.changed",
            conversation_id=conversation_id,
            user_id=actor.user_id,
            changes=personal,
        )
    return MembershipOut.model_validate(row._mapping)
