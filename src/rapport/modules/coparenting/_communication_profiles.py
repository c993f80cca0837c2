"""Communication profiles: how a person writes, learned from their own recent messages
(tone tendencies, average length, vocabulary, emoji use).

The messages are read in a transaction acting as the person, so that row-level security
shows exactly what they may read themselves, and only what they sent; the profile is
written by system work, so that nobody writes their own. Reading a profile is recorded as
access to personal data (it is profiling, in the GDPR's sense)."""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.runtime import Runtime
from rapport.modules.coparenting import schemas_mediation as s
from rapport.modules.coparenting._tone import tone_of
from rapport.modules.coparenting.errors import ProfileNotLearned
from rapport.modules.coparenting.models_mediation import (
    EmojiUsage,
    ToneTendency,
    VocabularyComplexity,
    communication_profiles,
)

# The newest messages a profile is learned from.
MESSAGES_READ = 500

_OWN_MESSAGES = text(
    """
    SELECT content FROM messaging.messages
     WHERE sender_id = :user_id AND type = 'text' AND deleted_at IS NULL AND content <> ''
     ORDER BY created_at DESC
     LIMIT :limit
    """
)
_RECORD_READ = text(
    "SELECT audit.record_sensitive_access(:subject, 'coparenting.communication_profiles', 'read', '{}')"
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_EMOTICON = re.compile(r"(?<!\w)[:;=]-?[)(DPp](?!\w)|<3")
_CONTRACTION = re.compile(r"\b\w+'(?:s|t|re|ve|ll|d|m)\b", re.IGNORECASE)
_CASUAL = re.compile(r"\b(?:lol|haha\w*|gonna|wanna|yeah|yep|nope|hey|ok|okay|cool|thx|pls|btw)\b", re.IGNORECASE)
_FORMAL = re.compile(
    r"\b(?:dear|regards|sincerely|kind regards|best wishes|please find|i would like|would you kindly|furthermore)\b",
    re.IGNORECASE,
)
_HEDGES = re.compile(r"\b(?:maybe|perhaps|i think|i guess|could|would|might|if possible|if you can)\b", re.IGNORECASE)
# A long word, for vocabulary complexity: seven letters or more.
_LONG_WORD = 7
# How long before a profile's last learning a message still counts as new to it: one sent
# while the profile was being learned (after its messages were read, before it was
# written) is then learned from at the next round, at the cost of one learning more.
LEARNING_OVERLAP = timedelta(minutes=5)
_DUE = text(
    """
    SELECT p.user_id FROM coparenting.communication_profiles p
     WHERE EXISTS (SELECT 1 FROM messaging.messages m
                    WHERE m.sender_id = p.user_id AND m.created_at > p.updated_at - CAST(:overlap AS interval)
                      AND m.type = 'text' AND m.deleted_at IS NULL AND m.content <> '')
     ORDER BY p.updated_at, p.user_id
     LIMIT :limit
    """
)


@dataclass(frozen=True)
class Learned:
    tone_tendencies: list[ToneTendency] = field(default_factory=list)
    avg_message_length: int = 0
    vocabulary_complexity: VocabularyComplexity = "simple"
    emoji_usage: EmojiUsage = "none"
    messages_analysed: int = 0


def _emoji_count(message: str) -> int:
    pictures = sum(
        1
        for char in message
        if unicodedata.category(char) == "So" and (ord(char) >= 0x1F000 or 0x2600 <= ord(char) < 0x2800)
    )
    return pictures + len(_EMOTICON.findall(message))


def _vocabulary(words: Sequence[str]) -> VocabularyComplexity:
    if not words:
        return "simple"
    long_share = sum(len(word) >= _LONG_WORD for word in words) / len(words)
    if long_share < 0.12:
        return "simple"
    return "moderate" if long_share < 0.22 else "complex"


def _emoji_usage(per_message: float) -> EmojiUsage:
    if per_message == 0:
        return "none"
    if per_message < 0.2:
        return "minimal"
    return "moderate" if per_message < 0.8 else "frequent"


def _share(messages: Sequence[str], pattern: re.Pattern[str]) -> float:
    return sum(1 for message in messages if pattern.search(message)) / len(messages)


def _tendencies(messages: Sequence[str], average: float, emoji_rate: float) -> list[ToneTendency]:
    tones = [tone_of(message) for message in messages]
    tense = sum(tone.label in ("tense", "hostile") for tone in tones) / len(tones)
    warm = sum(tone.label == "friendly" for tone in tones) / len(tones)
    contractions = _share(messages, _CONTRACTION)
    found: list[ToneTendency] = []
    if average < 80 and _share(messages, _HEDGES) < 0.2:
        found.append("direct")
    if _share(messages, _FORMAL) >= 0.2 or (contractions < 0.1 and average >= 60 and emoji_rate == 0):
        found.append("formal")
    if _share(messages, _CASUAL) >= 0.2 or emoji_rate >= 0.3 or contractions >= 0.4:
        found.append("casual")
    if warm >= 0.35:
        found.append("warm")
    if tense >= 0.25:
        found.append("tense")
    return found


def learn(messages: Sequence[str]) -> Learned:
    """A profile from a person's messages (newest first, any number)."""
    if not messages:
        return Learned()
    average = statistics.fmean(len(message) for message in messages)
    words = [word for message in messages for word in _WORD.findall(message)]
    emoji_rate = sum(_emoji_count(message) for message in messages) / len(messages)
    return Learned(
        tone_tendencies=_tendencies(messages, average, emoji_rate),
        avg_message_length=round(average),
        vocabulary_complexity=_vocabulary(words),
        emoji_usage=_emoji_usage(emoji_rate),
        messages_analysed=len(messages),
    )


async def learn_profile(runtime: Runtime, *, user_id: UUID) -> bool:
    """Learn (again) one person's profile from their newest messages; False when the
    account is gone. Safe to run twice: the second run learns the same again."""
    async with user_transaction(runtime.engine, user_id) as db:
        rows = (await db.execute(_OWN_MESSAGES, {"user_id": user_id, "limit": MESSAGES_READ})).all()
    learned = learn([row.content for row in rows])
    values = {
        "tone_tendencies": learned.tone_tendencies,
        "avg_message_length": learned.avg_message_length,
        "vocabulary_complexity": learned.vocabulary_complexity,
        "emoji_usage": learned.emoji_usage,
        "messages_analysed": learned.messages_analysed,
    }
    upsert = insert(communication_profiles).values(user_id=user_id, **values)
    statement = upsert.on_conflict_do_update(
        index_elements=[communication_profiles.c.user_id],
        set_={**values, "profile_version": communication_profiles.c.profile_version + 1},
    )
    try:
        async with system_transaction(runtime.system_engine) as db:
            await db.execute(statement)
            await publish(db, scope=Scope.user(user_id), type="coparenting.profile.learned", payload={}, actor_id=None)
    except IntegrityError:
        # The account was erased since the job was queued.
        return False
    return True


async def due_for_learning(
    db: AsyncConnection, *, overlap: timedelta = LEARNING_OVERLAP, limit: int = 1000
) -> list[UUID]:
    """The people whose profile was learned and who have sent messages since (system work),
    least recently learned first, at most `limit`; a message up to `overlap` older than the
    last learning counts as new (LEARNING_OVERLAP). A profile nobody asked for is never
    learned."""
    rows = await db.execute(_DUE, {"overlap": overlap, "limit": limit})
    return [row.user_id for row in rows]


async def get_profile(db: AsyncConnection, *, actor: Actor) -> s.CommunicationProfileOut:
    """The actor's communication profile; the read is recorded.

    Raises:
        ProfileNotLearned: none has been learned for them yet.
    """
    row = (
        await db.execute(communication_profiles.select().where(communication_profiles.c.user_id == actor.user_id))
    ).one_or_none()
    if row is None:
        raise ProfileNotLearned()
    await db.execute(_RECORD_READ, {"subject": actor.user_id})
    return s.CommunicationProfileOut(
        tone_tendencies=row.tone_tendencies,
        avg_message_length=row.avg_message_length,
        vocabulary_complexity=row.vocabulary_complexity,
        emoji_usage=row.emoji_usage,
        messages_analysed=row.messages_analysed,
        profile_version=row.profile_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
