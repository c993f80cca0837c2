"""Liking and passing on one's daily matches. A like on a match whose other person liked
it too makes the match mutual for both and opens their direct conversation (messaging's
do_open_direct, at most one per pair); matching.decide_match locks the pair's two rows,
so two likes at the same moment make it mutual once. Passes are never shown to the other
person; a like is shown to them once it is mutual (or earlier, to a paid tier: the
subscriptions' who-liked-me).

Events: `match.liked` and `match.passed` to the person deciding; `match.mutual` to each
of the two, with their own match, the other person and the conversation."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import RapportError
from rapport.kernel.outbox import Scope, publish
from rapport.messaging import service as messaging_service
from rapport.modules.matching import schemas_matches as s
from rapport.modules.matching._daily import MATCH_SELECT, match_out
from rapport.modules.matching._subscriptions import ensure_like_allowed
from rapport.modules.matching.errors import MatchDecided, MatchNotFound
from rapport.modules.matching.models_matches import matches
from rapport.social import service as social_service

Decision = Literal["like", "pass"]


_ONE = text(MATCH_SELECT + " WHERE m.id = :id AND m.user_id = :me")
_DECIDE = text("SELECT outcome, other_user_id, other_match_id FROM matching.decide_match(:id, :decision)")


async def access_match(db: AsyncConnection, *, actor: Actor, match_id: UUID) -> AnyRow:
    """Load one of the actor's matches.

    Raises:
        MatchNotFound: missing, someone else's, or with a person either blocks.
    """
    row: AnyRow | None = (await db.execute(_ONE, {"id": match_id, "me": actor.user_id})).one_or_none()
    if row is None or await social_service.is_blocked(db, a=actor.user_id, b=row.matched_user_id):
        raise MatchNotFound()
    return row


async def get_match(db: AsyncConnection, *, actor: Actor, match_id: UUID) -> s.MatchOut:
    """Raises:
    MatchNotFound: missing, someone else's, or with a person either blocks.
    """
    return match_out(await access_match(db, actor=actor, match_id=match_id))


async def _open_conversation(db: AsyncConnection, *, actor: Actor, other: UUID, match_id: UUID) -> UUID | None:
    """The two people's direct conversation, opened by the second to like; None when
    messaging refuses it (the other's profile is hidden from the actor): the match stays
    mutual, and either can still write to the other where messaging allows."""
    try:
        async with db.begin_nested():
            conversation, _ = await messaging_service.do_open_direct(
                db, actor=actor, user_id=other, settings={"matching_match_id": str(match_id)}
            )
    except RapportError:
        return None
    return conversation.id


async def _decide(db: AsyncConnection, *, actor: Actor, match_id: UUID, decision: Decision) -> s.MatchOut:
    row = await access_match(db, actor=actor, match_id=match_id)
    if decision == "like" and row.status == "proposed":
        await ensure_like_allowed(db, actor.user_id)
    decided = (await db.execute(_DECIDE, {"id": match_id, "decision": decision})).one()
    if decided.outcome == "not_found":
        raise MatchNotFound()
    if decided.outcome == "decided":
        raise MatchDecided(f"You have already {row.status} this match.")
    if decided.outcome in ("liked", "passed"):
        await publish(
            db,
            scope=Scope.user(actor.user_id),
            type=f"match.{decided.outcome}",
            payload={"match_id": str(match_id), "user_id": str(decided.other_user_id)},
            actor_id=actor.user_id,
        )
    elif decided.outcome == "mutual":
        await _become_mutual(
            db, actor=actor, match_id=match_id, other=decided.other_user_id, other_match_id=decided.other_match_id
        )
    return await get_match(db, actor=actor, match_id=match_id)


async def _become_mutual(
    db: AsyncConnection, *, actor: Actor, match_id: UUID, other: UUID, other_match_id: UUID
) -> None:
    conversation_id = await _open_conversation(db, actor=actor, other=other, match_id=match_id)
    if conversation_id is not None:
        await db.execute(
            update(matches).where(matches.c.id.in_((match_id, other_match_id))).values(conversation_id=conversation_id)
        )
    conversation = str(conversation_id) if conversation_id else None
    for person, mine, them in ((actor.user_id, match_id, other), (other, other_match_id, actor.user_id)):
        await publish(
            db,
            scope=Scope.user(person),
            type="match.mutual",
            payload={"match_id": str(mine), "user_id": str(them), "conversation_id": conversation},
            actor_id=actor.user_id,
        )


async def do_like(db: AsyncConnection, *, actor: Actor, match_id: UUID) -> s.MatchOut:
    """Like one of the actor's matches. When the other person has liked theirs, both
    become `mutual`, the two people's direct conversation opens (the match's
    `conversation_id`) and each receives `match.mutual`; otherwise the actor receives
    `match.liked`. Liking again changes nothing.

    Raises:
        MatchNotFound: missing, someone else's, or with a person either blocks.
        MatchDecided: the actor passed on it.
        DailyLikesSpent: the actor's tier allows no more likes today.
    """
    return await _decide(db, actor=actor, match_id=match_id, decision="like")


async def do_pass(db: AsyncConnection, *, actor: Actor, match_id: UUID) -> s.MatchOut:
    """Pass on one of the actor's matches: neither will be proposed to the other again, and
    the other is never told. Publishes `match.passed` to the actor. Passing again changes
    nothing.

    Raises:
        MatchNotFound: missing, someone else's, or with a person either blocks.
        MatchDecided: the actor liked it.
    """
    return await _decide(db, actor=actor, match_id=match_id, decision="pass")
