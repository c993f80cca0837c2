"""Reactions: one per emoji per person per message (seed 004 message_reactions). Counts
are rendered with each message by messaging.render_message; observers cannot react
(row-level security says so too)."""

from __future__ import annotations

import unicodedata
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.schemas import BIDI_CONTROLS, storable
from rapport.messaging._messages import access_message
from rapport.messaging.errors import InvalidEmoji, NotAllowed

# What ck_reactions_emoji allows.
MAX_EMOJI = 32
# Unicode categories that draw no mark of their own, or break a line: a reaction made of
# them would be blank or break the layout. Format characters (Cf) stay: emoji sequences
# join with U+200D.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def check_emoji(emoji: str) -> str:
    """The reaction as stored (NFC): 1 to 32 characters, no whitespace, control,
    unassigned or bidirectional characters.

    Raises:
        InvalidEmoji: anything else.
    """
    if not storable(emoji):
        raise InvalidEmoji()
    emoji = unicodedata.normalize("NFC", emoji)
    if not 1 <= len(emoji) <= MAX_EMOJI:
        raise InvalidEmoji()
    for char in emoji:
        if char.isspace() or char in BIDI_CONTROLS or unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise InvalidEmoji()
    return emoji


_ADD = text(
    """
    INSERT INTO messaging.reactions (conversation_id, message_id, user_id, emoji)
    VALUES (:c, :m, :u, :emoji)
    ON CONFLICT DO NOTHING
    RETURNING emoji
    """
)
_REMOVE = text(
    """
    DELETE FROM messaging.reactions
     WHERE conversation_id = :c AND message_id = :m AND user_id = :u AND emoji = :emoji
    RETURNING emoji
    """
)


async def do_react(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID, emoji: str, on: bool
) -> None:
    """Add (`on`) or take back one's reaction with this emoji; doing it twice changes
    nothing and announces nothing the second time.

    Raises:
        InvalidEmoji: see check_emoji.
        ConversationNotFound, MessageNotFound: see access_message (deleted messages too).
        NotAllowed: an observer reacting.
    """
    emoji = check_emoji(emoji)
    found = await access_message(db, actor=actor, conversation_id=conversation_id, message_id=message_id)
    if on and found.membership.role == "observer":
        raise NotAllowed("Observers do not react.")
    params = {"c": conversation_id, "m": message_id, "u": actor.user_id, "emoji": emoji}
    changed = (await db.execute(_ADD if on else _REMOVE, params)).first() is not None
    if changed:
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="reaction.added" if on else "reaction.removed",
            payload={"message_id": str(message_id), "seq": found.seq, "user_id": str(actor.user_id), "emoji": emoji},
            actor_id=actor.user_id,
        )
