"""Who a new message may reach, for system work that decides outside any request (the
notifications pipeline reads `message.created` from the outbox and asks here)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.messaging.models import ConversationType

# The message by its primary key (conversation, seq), in the one partition its id's time
# names; its conversation, unless deleted.
_MESSAGE = text(
    """
    SELECT c.type AS conversation_type, c.name AS conversation_name, m.content, m.deleted_at, m.hidden_from_guests
      FROM messaging.conversations c
      JOIN messaging.messages m ON m.conversation_id = c.id AND m.seq = :seq
                                AND m.created_at = messaging.id_time(:message_id)
     WHERE c.id = :conversation_id AND c.deleted_at IS NULL
    """
)
# Those taking part (active, or silenced by a moderator: they still read), with their own mute.
_PARTICIPANTS = text(
    """
    SELECT user_id, is_muted FROM messaging.participants
     WHERE conversation_id = :conversation_id AND status IN ('active', 'muted')
    """
)
# The guests of a conversation: a message hidden from guests reaches none of them.
_GUESTS = text("SELECT user_id FROM messaging.participants WHERE conversation_id = :conversation_id AND role = 'guest'")


@dataclass(frozen=True)
class MessageAudience:
    conversation_type: ConversationType
    conversation_name: str | None
    content: str
    # Each participant but the sender (and guests, for a message hidden from them), with
    # whether they muted the conversation.
    muted: dict[UUID, bool]


async def get_message_audience(
    db: AsyncConnection,
    *,
    conversation_id: UUID,
    seq: int,
    message_id: UUID,
    sender_id: UUID,
    participants: dict[UUID, dict[UUID, bool]] | None = None,
) -> MessageAudience | None:
    """A message's conversation and who takes part in it now (system work); None when the
    message or its conversation is gone (deleted since it was sent). `participants`, when
    given, keeps each conversation's participants (with their mute) across calls: work
    that reads many messages of one conversation in one transaction reads them once."""
    found = await db.execute(_MESSAGE, {"conversation_id": conversation_id, "seq": seq, "message_id": message_id})
    message = found.one_or_none()
    if message is None or message.deleted_at is not None:
        return None
    everyone = participants.get(conversation_id) if participants is not None else None
    if everyone is None:
        rows = await db.execute(_PARTICIPANTS, {"conversation_id": conversation_id})
        everyone = {row.user_id: row.is_muted for row in rows}
        if participants is not None:
            participants[conversation_id] = everyone
    unseen = {sender_id}
    if message.hidden_from_guests:
        unseen |= set((await db.execute(_GUESTS, {"conversation_id": conversation_id})).scalars())
    return MessageAudience(
        conversation_type=message.conversation_type,
        conversation_name=message.conversation_name,
        content=message.content,
        muted={user_id: muted for user_id, muted in everyone.items() if user_id not in unseen},
    )
