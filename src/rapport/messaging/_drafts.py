"""Drafts: one unsent message per person per conversation (seed 004 drafts), kept in sync
across the person's devices through events to them alone."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.outbox import Scope, publish
from rapport.messaging._messages import access_membership, access_message
from rapport.messaging.errors import DraftNotFound, MessageNotFound, ReplyNotFound, ThreadNotOpen
from rapport.messaging.schemas_messages import DraftIn, DraftOut

_OPEN_THREAD = text(
    """
    SELECT 1 FROM messaging.threads
     WHERE id = :t AND conversation_id = :c AND archived_at IS NULL
    """
)
_PUT = text(
    """
    INSERT INTO messaging.drafts (user_id, conversation_id, content, reply_to_id, thread_id)
    VALUES (:u, :c, :content, :reply_to, :thread)
    ON CONFLICT (user_id, conversation_id) DO UPDATE
       SET content = EXCLUDED.content, reply_to_id = EXCLUDED.reply_to_id, thread_id = EXCLUDED.thread_id,
           updated_at = now()
    RETURNING conversation_id, content, reply_to_id, thread_id, updated_at
    """
)
_GET = text(
    """
    SELECT conversation_id, content, reply_to_id, thread_id, updated_at
      FROM messaging.drafts WHERE user_id = :u AND conversation_id = :c
    """
)
_DELETE = text("DELETE FROM messaging.drafts WHERE user_id = :u AND conversation_id = :c RETURNING conversation_id")


async def do_put_draft(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, draft: DraftIn) -> DraftOut:
    """Keep the caller's draft in a conversation, replacing the one there was.

    Raises:
        ConversationNotFound: see access_membership.
        ReplyNotFound: the message replied to is not one the caller can see here, or is deleted.
        ThreadNotOpen: the thread is not in this conversation, or is archived.
    """
    await access_membership(db, actor=actor, conversation_id=conversation_id)
    if draft.reply_to_id is not None:
        try:
            await access_message(db, actor=actor, conversation_id=conversation_id, message_id=draft.reply_to_id)
        except MessageNotFound:
            raise ReplyNotFound() from None
    if (
        draft.thread_id is not None
        and (await db.execute(_OPEN_THREAD, {"t": draft.thread_id, "c": conversation_id})).first() is None
    ):
        raise ThreadNotOpen()
    params = {
        "u": actor.user_id,
        "c": conversation_id,
        "content": draft.content,
        "reply_to": draft.reply_to_id,
        "thread": draft.thread_id,
    }
    row = (await db.execute(_PUT, params)).one()
    await publish(
        db,
        scope=Scope.user(actor.user_id),
        type="draft.changed",
        payload={"conversation_id": str(conversation_id)},
        actor_id=actor.user_id,
    )
    return DraftOut.model_validate(row._mapping)


async def get_draft(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> DraftOut:
    """The caller's draft in a conversation.

    Raises:
        ConversationNotFound: see access_membership.
        DraftNotFound: there is none.
    """
    await access_membership(db, actor=actor, conversation_id=conversation_id)
    row = (await db.execute(_GET, {"u": actor.user_id, "c": conversation_id})).one_or_none()
    if row is None:
        raise DraftNotFound()
    return DraftOut.model_validate(row._mapping)


async def do_delete_draft(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> None:
    """Throw the caller's draft away (done when it is sent, or abandoned); none is fine.

    Raises:
        ConversationNotFound: see access_membership.
    """
    await access_membership(db, actor=actor, conversation_id=conversation_id)
    deleted = (await db.execute(_DELETE, {"u": actor.user_id, "c": conversation_id})).first() is not None
    if deleted:
        await publish(
            db,
            scope=Scope.user(actor.user_id),
            type="draft.deleted",
            payload={"conversation_id": str(conversation_id)},
            actor_id=actor.user_id,
        )
