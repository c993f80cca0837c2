"""Invite links: made, listed and revoked by those who may invite (messaging.may_invite);
followed by anyone who has the token, through messaging.join_by_invite.

The token is shown once, when the link is made; Rapport keeps its SHA-256 only, so a
leaked table opens no conversation. A wrong, expired, used-up or revoked token all answer
the same 404."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.crypto import random_token, sha256
from rapport.kernel.db import AnyRow
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.messaging._conversations import access_conversation, announce, call, get_conversation
from rapport.messaging.errors import DirectIsTwo, InviteNotFound, NotAllowed
from rapport.messaging.models import invites, participants
from rapport.messaging.schemas_conversations import ConversationOut, InviteCreate, InviteCreated, InviteOut

TOKEN_PREFIX = "rci_"

_MAY_INVITE = text("SELECT messaging.may_invite(:conversation)")
_JOIN = text("SELECT messaging.join_by_invite(:token_hash)")
_POSITION = text("SELECT messaging.current_position()")

# Whether a link still opens the conversation: what messaging.join_by_invite asks of it.
_IS_LIVE = and_(
    invites.c.revoked_at.is_(None),
    or_(invites.c.expires_at.is_(None), invites.c.expires_at > func.now()),
    or_(invites.c.max_uses.is_(None), invites.c.uses < invites.c.max_uses),
).label("is_live")


def _out(row: AnyRow) -> InviteOut:
    return InviteOut.model_validate(row._mapping)


async def _access_invites(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> AnyRow:
    """Raises:
    ConversationNotFound: the actor takes no part in the conversation.
    NotAllowed: the actor may not invite to it.
    """
    conversation = await access_conversation(db, actor=actor, conversation_id=conversation_id)
    if not (await db.execute(_MAY_INVITE, {"conversation": conversation_id})).scalar_one():
        raise NotAllowed("Only those who may invite (owners, admins, moderators, can_invite) handle invite links.")
    return conversation


async def do_create_invite(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, body: InviteCreate
) -> InviteCreated:
    """Make an invite link; its token is in the answer and nowhere else.

    Raises:
        ConversationNotFound: the actor takes no part in the conversation.
        NotAllowed: the actor may not invite to it.
        DirectIsTwo: a direct conversation has no room for a third person.
    """
    conversation = await _access_invites(db, actor=actor, conversation_id=conversation_id)
    if conversation.type == "direct":
        raise DirectIsTwo()
    token = random_token(TOKEN_PREFIX)
    expires_at: Any = body.expires_at
    if body.expires_in_seconds is not None:
        # The database's clock: it is the one join_by_invite compares with.
        expires_at = func.now() + timedelta(seconds=body.expires_in_seconds)
    invite_id = uuid7()
    await db.execute(
        invites.insert().values(
            id=invite_id,
            conversation_id=conversation_id,
            token_hash=sha256(token),
            created_by=actor.user_id,
            expires_at=expires_at,
            max_uses=body.max_uses,
        )
    )
    row = (
        await db.execute(
            select(invites, _IS_LIVE).where(invites.c.conversation_id == conversation_id, invites.c.id == invite_id)
        )
    ).one()
    return InviteCreated(**_out(row).model_dump(), token=token)


async def list_invites(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, page: PageRequest
) -> Page[InviteOut]:
    """A conversation's invite links, newest first, live or not (never their tokens).

    Raises:
        ConversationNotFound: the actor takes no part in the conversation.
        NotAllowed: the actor may not invite to it.
    """
    await _access_invites(db, actor=actor, conversation_id=conversation_id)
    query = select(invites, _IS_LIVE).where(invites.c.conversation_id == conversation_id)
    rows = (await db.execute(keyset(query, invites.c.id, page))).all()
    return make_page([_out(row) for row in rows], page)


async def do_revoke_invite(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, invite_id: UUID) -> None:
    """Revoke a link (again: it stays revoked as it was).

    Raises:
        ConversationNotFound: the actor takes no part in the conversation.
        NotAllowed: the actor may not invite to it.
        InviteNotFound: no such link in this conversation.
    """
    await _access_invites(db, actor=actor, conversation_id=conversation_id)
    revoked = (
        await db.execute(
            update(invites)
            .where(invites.c.id == invite_id, invites.c.conversation_id == conversation_id)
            .values(revoked_at=func.coalesce(invites.c.revoked_at, func.now()))
            .returning(invites.c.id)
        )
    ).one_or_none()
    if revoked is None:
        raise InviteNotFound()


async def do_join_by_invite(db: AsyncConnection, *, actor: Actor, token: str) -> ConversationOut:
    """Join the conversation an invite link leads to, as a member who sees its history;
    one use of the link (following it again while taking part uses nothing).

    Raises:
        InviteNotFound: wrong, expired, used up or revoked; its maker may no longer
            invite; the actor blocks them or is blocked by them, or was removed from the
            conversation.
        ConversationFull: it has reached max_participants.
    """
    conversation_id = await call(db, _JOIN, {"token_hash": sha256(token)})
    # messaging.add_participant records the position of the transaction that (re)joins.
    me = (
        await db.execute(
            select(participants.c.joined_position, participants.c.role, participants.c.invited_by).where(
                participants.c.conversation_id == conversation_id, participants.c.user_id == actor.user_id
            )
        )
    ).one()
    if me.joined_position == (await db.execute(_POSITION)).scalar_one():
        await announce(
            db,
            actor=actor,
            scope=Scope.conversation(conversation_id),
            type="participant.joined",
            conversation_id=conversation_id,
            user_id=actor.user_id,
            role=me.role,
            invited_by=me.invited_by,
        )
    return await get_conversation(db, actor=actor, conversation_id=conversation_id)
