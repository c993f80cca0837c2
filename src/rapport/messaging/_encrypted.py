"""End-to-end encrypted messages: the row a send makes and the edit, in a transaction
opened as the sender, which also holds the ciphertexts (rapport.encryption).

Such a message holds no text: `content` is '' (ck_messages_encrypted_empty) and
`content_metadata` only `{"encryption": {"version": n}}`, which an edit counts up, so that
messaging.guard_message_update records the edit as for any message (edited_at, a version
in message_history). Everything else (its place, receipts, reactions, deletes, the
stream) is the same as for any message. messaging.sequence_message refuses a plain
message in an encrypted conversation and an encrypted one in a plain conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.messaging._conversations import access_conversation
from rapport.messaging._messages import _may_write, access_message, render_message
from rapport.messaging._refusals import refusals
from rapport.messaging.errors import (
    CannotSend,
    ConversationNotActive,
    ConversationNotEncrypted,
    NotAllowed,
    ReplyNotFound,
)
from rapport.social import service as social_service


@dataclass(frozen=True)
class EncryptedMessage:
    """An encrypted message as its sender's transaction left it."""

    created: bool
    id: UUID
    seq: int
    json: str


_CLAIM_CLIENT_ID = text(
    """
    INSERT INTO messaging.client_messages AS k (conversation_id, sender_id, client_message_id, message_id)
    VALUES (:c, :u, :client, :m)
    ON CONFLICT DO NOTHING
    RETURNING k.message_id
    """
)
_EARLIER = text(
    """
    SELECT m.id, m.seq FROM messaging.client_messages k
      JOIN messaging.messages m
        ON m.conversation_id = k.conversation_id AND m.id = k.message_id
       AND m.created_at = messaging.id_time(k.message_id)
     WHERE k.conversation_id = :c AND k.sender_id = :u AND k.client_message_id = :client
    """
)
_REPLY = text(
    """
    SELECT 1 FROM messaging.messages r
     WHERE r.conversation_id = :c AND r.id = :r AND r.created_at = messaging.id_time(:r) AND r.deleted_at IS NULL
    """
)
_INSERT = text(
    """
    INSERT INTO messaging.messages (
        id, conversation_id, sender_id, type, content, content_metadata, content_encrypted, client_message_id,
        reply_to_id, created_at)
    VALUES (:m, :c, :u, 'text', '', '{"encryption": {"version": 1}}'::jsonb, true, :client, :r, messaging.id_time(:m))
    RETURNING seq
    """
)
_IS_ENCRYPTED = text(
    """
    SELECT m.content_encrypted FROM messaging.messages m
     WHERE m.conversation_id = :c AND m.id = :m AND m.created_at = messaging.id_time(:m)
    """
)
# The version counts up: content_metadata changes, so the guard records an edit.
_EDIT = text(
    """
    UPDATE messaging.messages AS m
       SET content_metadata = jsonb_build_object('encryption', jsonb_build_object(
               'version', coalesce((m.content_metadata #>> '{encryption,version}')::bigint, 0) + 1))
     WHERE m.conversation_id = :c AND m.id = :m AND m.created_at = messaging.id_time(:m)
    RETURNING m.seq, messaging.render_message(m, :u)::text AS message
    """
)


async def do_post_encrypted_message(
    db: AsyncConnection,
    *,
    actor: Actor,
    conversation_id: UUID,
    client_message_id: str | None = None,
    reply_to: UUID | None = None,
) -> EncryptedMessage:
    """Make an encrypted message (no text) as the actor, and publish `message.created` as a
    send does; or, for a client_message_id used before, find the message it made
    (`created` false). The caller adds the ciphertexts in the same transaction.

    Raises:
        ConversationNotFound: the actor takes no part in it.
        ConversationNotEncrypted: a plain conversation.
        ConversationNotActive: archived or closed.
        CannotSend: silenced, an observer, or a direct conversation with a block.
        ReplyNotFound: reply_to is no live message of this conversation.
    """
    row = await access_conversation(db, actor=actor, conversation_id=conversation_id)
    if not row.is_encrypted:
        raise ConversationNotEncrypted()
    message_id = uuid7()
    params = {"c": conversation_id, "u": actor.user_id, "m": message_id, "client": client_message_id, "r": reply_to}
    # A racing retry waits on the claim for the first to commit, then finds its message.
    if client_message_id is not None and (await db.execute(_CLAIM_CLIENT_ID, params)).first() is None:
        earlier = (await db.execute(_EARLIER, params)).one()
        rendered = await render_message(db, actor=actor, conversation_id=conversation_id, message_id=earlier.id)
        return EncryptedMessage(created=False, id=earlier.id, seq=earlier.seq, json=rendered)
    if row.status != "active":
        raise ConversationNotActive()
    if row.my_status != "active" or not row.my_can_send or row.my_role == "observer":
        raise CannotSend()
    if row.type == "direct" and await social_service.is_blocked(db, a=row.direct_low, b=row.direct_high):
        raise CannotSend()
    if reply_to is not None and (await db.execute(_REPLY, params)).first() is None:
        raise ReplyNotFound()
    async with refusals():
        seq = int((await db.execute(_INSERT, params)).scalar_one())
    await publish(
        db,
        scope=Scope.conversation(conversation_id),
        type="message.created",
        payload={
            "message_id": str(message_id),
            "seq": seq,
            "sender_id": str(actor.user_id),
            "thread_id": None,
            "mentions": [],
        },
        actor_id=actor.user_id,
    )
    rendered = await render_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id)
    return EncryptedMessage(created=True, id=message_id, seq=seq, json=rendered)


async def do_edit_encrypted_message(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID
) -> EncryptedMessage:
    """Mark one's own encrypted message edited (its version counts up; the trigger keeps
    the earlier one and sets edited_at) and publish `message.edited`. The caller adds the
    new ciphertexts in the same transaction.

    Raises:
        ConversationNotFound, MessageNotFound: see access_message (deleted messages too).
        ConversationNotEncrypted: a plain message.
        NotAllowed: someone else's message.
        CannotSend: the actor may not send here any more.
    """
    found = await access_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id)
    if not (await db.execute(_IS_ENCRYPTED, {"c": conversation_id, "m": message_id})).scalar_one():
        raise ConversationNotEncrypted()
    if found.sender_id != actor.user_id:
        raise NotAllowed("Only the sender edits a message.")
    _may_write(found.membership)
    async with refusals():
        row = (await db.execute(_EDIT, {"c": conversation_id, "m": message_id, "u": actor.user_id})).one()
    await publish(
        db,
        scope=Scope.conversation(conversation_id),
        type="message.edited",
        payload={"message_id": str(message_id), "seq": row.seq},
        actor_id=actor.user_id,
    )
    return EncryptedMessage(created=False, id=message_id, seq=int(row.seq), json=str(row.message))


_ENCRYPTED_CONVERSATIONS = text(
    """
    SELECT p.conversation_id FROM messaging.participants p
      JOIN messaging.conversations c ON c.id = p.conversation_id
     WHERE p.user_id = :u AND p.status IN ('active', 'muted') AND c.is_encrypted AND c.deleted_at IS NULL
     ORDER BY p.conversation_id
    """
)


async def list_encrypted_conversation_ids(db: AsyncConnection, *, actor: Actor) -> list[UUID]:
    """The encrypted conversations the actor takes part in (active or silenced)."""
    return list((await db.execute(_ENCRYPTED_CONVERSATIONS, {"u": actor.user_id})).scalars())
