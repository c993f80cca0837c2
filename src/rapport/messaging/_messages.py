"""One message after it was sent: reading it, editing, deleting for everyone, hiding for
oneself, its earlier versions, and forwarding it.

Every statement names the conversation, and finds a message by
`conversation_id = :c AND id = :m AND created_at = messaging.id_time(:m)`, so that one
partition is read. Who may do what is checked here to tell 404 from 403, and again by the
database: row-level security and the trigger messaging.guard_message_update, whose
refusals `refusal_of` turns into the same errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.errors import RapportError, ValidationFailed
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.runtime import Runtime
from rapport.messaging import _hot
from rapport.messaging._refusals import refusals
from rapport.messaging.errors import (
    CannotSend,
    ConversationEncrypted,
    ConversationNotFound,
    MessageNotFound,
    NotAllowed,
)
from rapport.messaging.models import MessageType, ParticipantRole, ParticipantStatus
from rapport.messaging.schemas import SendMessage
from rapport.messaging.schemas_messages import EditMessage, MessageVersion, MessageVersions

MODERATORS: frozenset[str] = frozenset({"owner", "admin", "moderator"})

# The caller's own participant row, in a conversation that still exists.
_MEMBERSHIP = text(
    """
    SELECT p.role, p.status, p.can_send
      FROM messaging.participants p
      JOIN messaging.conversations c ON c.id = p.conversation_id
     WHERE p.conversation_id = :c AND p.user_id = :u AND c.deleted_at IS NULL
    """
)
# A message by id, within the reader's window (row-level security), one partition read.
_MESSAGE = text(
    """
    SELECT m.id, m.seq, m.sender_id, m.type, m.content, m.content_metadata, m.mentions, m.deleted_at
      FROM messaging.messages m
     WHERE m.conversation_id = :c AND m.id = :m AND m.created_at = messaging.id_time(:m)
    """
)
_ENCRYPTED = text(
    """
    SELECT m.content_encrypted FROM messaging.messages m
     WHERE m.conversation_id = :c AND m.id = :m AND m.created_at = messaging.id_time(:m)
    """
)
_RENDER = text(
    """
    SELECT messaging.render_message(m, :u)::text
      FROM messaging.messages m
     WHERE m.conversation_id = :c AND m.id = :m AND m.created_at = messaging.id_time(:m)
    """
)


@dataclass(frozen=True)
class Membership:
    """The caller's place in a conversation."""

    role: ParticipantRole
    status: ParticipantStatus
    can_send: bool

    @property
    def takes_part(self) -> bool:
        """Active or silenced: not removed, not gone."""
        return self.status in ("active", "muted")

    @property
    def moderates(self) -> bool:
        return self.takes_part and self.role in MODERATORS


@dataclass(frozen=True)
class Found:
    """A message the caller can see, with the caller's place in its conversation."""

    membership: Membership
    id: UUID
    seq: int
    sender_id: UUID | None
    type: MessageType
    content: str
    content_metadata: dict[str, Any]
    mentions: list[UUID]
    is_deleted: bool


async def access_membership(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, taking_part: bool = True
) -> Membership:
    """The caller's place in a conversation: taking part in it (active or silenced), or,
    with `taking_part=False`, also having left it (they still read what came before).

    Raises:
        ConversationNotFound: missing, deleted, or the caller is not (or no longer) in it.
    """
    row = (await db.execute(_MEMBERSHIP, {"c": conversation_id, "u": actor.user_id})).one_or_none()
    if row is None:
        raise ConversationNotFound()
    membership = Membership(role=row.role, status=row.status, can_send=row.can_send)
    if taking_part and not membership.takes_part:
        raise ConversationNotFound()
    return membership


# The files a message carries that may still be sent on, in order (migration
# 2026_11_30_0021 links them at the send): not those their owner has deleted since.
_FILES = text(
    """
    SELECT a.file_id FROM media.attachments a JOIN media.files f ON f.id = a.file_id
     WHERE a.conversation_id = :c AND a.seq = :s AND f.deleted_at IS NULL AND f.status NOT IN ('quarantined', 'failed')
     ORDER BY a.position
    """
)


async def access_message(
    db: AsyncConnection,
    *,
    actor: Actor,
    conversation_id: UUID,
    message_id: UUID,
    taking_part: bool = True,
    live: bool = True,
) -> Found:
    """A message the caller can see (row-level security: within their window of the
    history), and their place in its conversation. `live` refuses a deleted message.

    Raises:
        ConversationNotFound: see access_membership.
        MessageNotFound: not in this conversation, outside the caller's window, or deleted
            when `live`.
    """
    membership = await access_membership(db, actor=actor, conversation_id=conversation_id, taking_part=taking_part)
    row = (await db.execute(_MESSAGE, {"c": conversation_id, "m": message_id})).one_or_none()
    if row is None or (live and row.deleted_at is not None):
        raise MessageNotFound()
    return Found(
        membership=membership,
        id=row.id,
        seq=row.seq,
        sender_id=row.sender_id,
        type=row.type,
        content=row.content,
        content_metadata=row.content_metadata,
        mentions=list(row.mentions),
        is_deleted=row.deleted_at is not None,
    )


async def render_message(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID) -> str:
    """The message's JSON for the caller, as history gives it (messaging.render_message)."""
    rendered = (await db.execute(_RENDER, {"c": conversation_id, "m": message_id, "u": actor.user_id})).scalar_one()
    return str(rendered)


async def get_message(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID) -> str:
    """One message as JSON, in history's shape (deleted ones keep their place, emptied).

    Raises:
        ConversationNotFound, MessageNotFound: see access_message.
    """
    await access_message(
        db, actor=actor, conversation_id=conversation_id, message_id=message_id, taking_part=False, live=False
    )
    return await render_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id)


def _may_write(membership: Membership) -> None:
    """Raises CannotSend unless the caller may send here (edits are sends too: a silenced
    participant or an observer cannot rewrite what they said)."""
    if membership.status != "active" or not membership.can_send or membership.role == "observer":
        raise CannotSend()


async def do_edit_message(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID, changes: EditMessage
) -> str:
    """Change one's own message; the trigger keeps the earlier version and sets
    edited_at. Returns the message's JSON.

    Raises:
        ConversationNotFound, MessageNotFound: see access_message (deleted messages too).
        NotAllowed: someone else's message.
        CannotSend: the caller may not send here any more.
        ValidationFailed: a text message left without text.
    """
    found = await access_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id)
    if found.sender_id != actor.user_id:
        raise NotAllowed("Only the sender edits a message.")
    _may_write(found.membership)
    values: dict[str, Any] = changes.changes()
    if found.type == "text" and values.get("content", found.content) == "":
        raise ValidationFailed("A text message needs content.")
    assignments = []
    params: dict[str, Any] = {"c": conversation_id, "m": message_id, "u": actor.user_id}
    if "content" in values:
        assignments.append("content = :content")
        params["content"] = values["content"]
    if "content_metadata" in values:
        assignments.append("content_metadata = CAST(:metadata AS jsonb)")
        params["metadata"] = orjson.dumps(values["content_metadata"]).decode()
    if "mentions" in values:
        assignments.append("mentions = CAST(:mentions AS uuid[])")
        params["mentions"] = list(dict.fromkeys(values["mentions"]))
    if not assignments:
        return await render_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id)
    # The column names come from the fixed list above, never from the request.
    statement = text(
        f"UPDATE messaging.messages AS m SET {', '.join(assignments)}"
        " WHERE m.conversation_id = :c AND m.id = :m AND m.created_at = messaging.id_time(:m)"
        " RETURNING m.content, m.content_metadata, m.mentions, messaging.render_message(m, :u)::text AS message"
    )
    async with refusals():
        row = (await db.execute(statement, params)).one()
    # Compared after the trigger had its say: it keeps only participants among the mentions.
    before = (found.content, found.content_metadata, found.mentions)
    if (row.content, row.content_metadata, list(row.mentions)) != before:
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="message.edited",
            payload={"message_id": str(message_id), "seq": found.seq},
            actor_id=actor.user_id,
        )
    return str(row.message)


_DELETE = text(
    """
    UPDATE messaging.messages AS m SET deleted_at = now()
     WHERE m.conversation_id = :c AND m.id = :m AND m.created_at = messaging.id_time(:m)
    """
)


async def do_delete_message(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID) -> None:
    """Delete a message for everyone: its sender, or the conversation's moderators and
    above. The trigger empties it, keeps the version, drops its mentions, pins and
    reactions and records the retraction that keeps unread counts exact.

    Raises:
        ConversationNotFound, MessageNotFound: see access_message (already deleted too).
        NotAllowed: someone else's message, and the caller does not moderate here.
    """
    found = await access_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id)
    if found.sender_id != actor.user_id and not found.membership.moderates:
        raise NotAllowed("Only the sender or a moderator deletes a message for everyone.")
    async with refusals():
        await db.execute(_DELETE, {"c": conversation_id, "m": message_id})
    await publish(
        db,
        scope=Scope.conversation(conversation_id),
        type="message.deleted",
        payload={"message_id": str(message_id), "seq": found.seq},
        actor_id=actor.user_id,
    )


_HIDE = text(
    """
    INSERT INTO messaging.hidden_messages (user_id, conversation_id, seq, message_id)
    VALUES (:u, :c, :seq, :m)
    ON CONFLICT DO NOTHING
    RETURNING seq
    """
)
_UNHIDE = text(
    """
    DELETE FROM messaging.hidden_messages
     WHERE user_id = :u AND conversation_id = :c AND seq = :seq
    RETURNING seq
    """
)


async def do_hide_message(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID, hidden: bool
) -> None:
    """Hide a message for oneself ("delete for me"), or show it again. History and the
    unread count leave hidden messages out; the caller's other devices hear of it.

    Raises:
        ConversationNotFound, MessageNotFound: see access_message.
    """
    found = await access_message(
        db, actor=actor, conversation_id=conversation_id, message_id=message_id, taking_part=False, live=False
    )
    params = {"u": actor.user_id, "c": conversation_id, "seq": found.seq, "m": message_id}
    changed = (await db.execute(_HIDE if hidden else _UNHIDE, params)).first() is not None
    if changed:
        await publish(
            db,
            scope=Scope.user(actor.user_id),
            type="message.hidden" if hidden else "message.unhidden",
            payload={"conversation_id": str(conversation_id), "message_id": str(message_id), "seq": found.seq},
            actor_id=actor.user_id,
        )


_VERSIONS = text(
    """
    SELECT h.id, h.operation, h.content, h.content_metadata, h.changed_by, h.changed_at
      FROM messaging.message_history h
     WHERE h.conversation_id = :c AND h.message_id = :m
     ORDER BY h.id
    """
)


async def list_edits(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID) -> MessageVersions:
    """A message's earlier versions, oldest first. Row-level security shows none once the
    message is deleted: its versions are kept for the audit rules, not for readers.

    Raises:
        ConversationNotFound, MessageNotFound: see access_message.
    """
    await access_message(
        db, actor=actor, conversation_id=conversation_id, message_id=message_id, taking_part=False, live=False
    )
    rows = (await db.execute(_VERSIONS, {"c": conversation_id, "m": message_id})).all()
    return MessageVersions(items=[MessageVersion.model_validate(row._mapping) for row in rows])


async def access_forward_source(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID, client_message_id: str | None
) -> SendMessage:
    """The copy of a message the caller can read, ready to send elsewhere.

    Raises:
        ConversationNotFound, MessageNotFound: see access_message (deleted ones too).
        ValidationFailed: a system or ai message, which is Rapport's own to send.
        ConversationEncrypted: an end-to-end encrypted message (Rapport holds no text of it).
    """
    found = await access_message(
        db, actor=actor, conversation_id=conversation_id, message_id=message_id, taking_part=False
    )
    if found.type in ("system", "ai"):
        raise ValidationFailed("Rapport's own messages (system, ai) are not forwarded.")
    if (await db.execute(_ENCRYPTED, {"c": conversation_id, "m": message_id})).scalar_one():
        raise ConversationEncrypted("An encrypted message is forwarded by a reader's client, encrypted anew.")
    # Its files go with it: whoever reads the message reads them (media.may_read_file).
    files = (await db.execute(_FILES, {"c": conversation_id, "s": found.seq})).scalars().all()
    # Built from a stored message, which passed every check when it was sent.
    return SendMessage.model_construct(
        attachments=list(files),
        content=found.content,
        client_message_id=client_message_id,
        type=found.type,
        content_metadata=found.content_metadata,
        reply_to=None,
        thread_id=None,
        mentions=[],
    )


async def do_forward(
    runtime: Runtime, *, actor: Actor, message_id: UUID, copy: SendMessage, conversation_ids: list[UUID]
) -> str:
    """Send the copy to each conversation, each a send of its own (the hot path, which
    publishes message.created): one refused does not stop the others. Returns the
    results as JSON (`ForwardResults`), each copy as PostgreSQL rendered it."""
    results: list[dict[str, Any]] = []
    for target in conversation_ids:
        try:
            created, message = await _hot.forward_message(
                runtime, actor, conversation_id=target, body=copy, forwarded_from=message_id
            )
        except RapportError as refusal:
            results.append(
                {"conversation_id": target, "status": refusal.status, "message": None, "problem": refusal.to_problem()}
            )
            continue
        results.append(
            {
                "conversation_id": target,
                "status": 201 if created else 200,
                "message": orjson.Fragment(message),
                "problem": None,
            }
        )
    return orjson.dumps({"results": results}).decode()
