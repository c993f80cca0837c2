"""The topic organiser of a shared room (seed 000's AI-organised threads): each new message
of an organised room is put in the open topic thread whose topic it matches (moved there
through messaging, as a participant could; a participant who dismisses the placement
takes it out again), or, when
none does but it speaks of a known co-parenting topic (school, health, schedule, money,
activities, holidays), a new topic thread is proposed, which the participants may accept
(the thread is then made) or dismiss.

It reads the outbox (`message.created`) from its own durable cursor, in system
transactions, after the send has committed: the send path never waits for it. Matching
is deterministic term scoring: the message's words (lower case, simple plurals folded,
common words left out) against each thread's vocabulary (its title and category, and the
topic lexicon those name or touch).

What it stores names the message and the topic words it shares with the thread, never
the message's text; a suggestion is seen only by whoever may see its message."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import SystemEngine
from rapport.kernel.errors import NotFound, RapportError
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Event, Scope, publish
from rapport.kernel.outbox.readers import CursorReader, ReaderLoop
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.messaging import service as messaging_service
from rapport.modules.coparenting import models_family as m
from rapport.modules.coparenting import schemas_family as s
from rapport.modules.coparenting.errors import SuggestionDecided, TopicRoomNotFound, TopicSuggestionNotFound

# A message joins a thread when at least this share of its topic words (up to
# _WORDS_COUNTED of them) are the thread's.
PLACE_SCORE = 0.3
_WORDS_COUNTED = 4
# Threads compared per message: the most recently active.
_THREADS = 100

_ORGANISED_TYPES = ("text",)


def words(*lines: str) -> frozenset[str]:
    """The words of some text, for the lists below."""
    return frozenset(" ".join(lines).split())


# The topics co-parents talk about, with their words (each folded as messages are).
LEXICON: dict[str, tuple[str, frozenset[str]]] = {
    "school": (
        "School",
        words(
            "school teacher homework class classroom grade report exam test tuition principal semester term "
            "pta backpack lunchbox tutor"
        ),
    ),
    "health": (
        "Health",
        words(
            "doctor dentist appointment medicine medication sick fever allergy vaccine therapy therapist hospital "
            "prescription checkup flu cough inhaler pediatrician"
        ),
    ),
    "schedule": (
        "Schedule",
        words(
            "pickup dropoff weekend custody schedule swap handover exchange visitation overnight calendar "
            "monday tuesday wednesday thursday friday saturday sunday"
        ),
    ),
    "money": (
        "Expenses",
        words(
            "money pay paid payment expense cost bill reimburse reimbursement fee receipt invoice budget "
            "allowance refund"
        ),
    ),
    "activities": (
        "Activities",
        words(
            "soccer football practice lesson swim swimming piano dance camp game tournament club training "
            "recital ballet karate scout"
        ),
    ),
    "holidays": (
        "Holidays",
        words("holiday vacation christmas thanksgiving easter summer trip travel birthday passport flight grandparent"),
    ),
}

_STOP_WORDS = words(
    "a about after again all also am an and any are as at be because been before being but by can could did do "
    "does doing done dont for from get got had has have he her here him his how i if im in into is it its just "
    "know let like me more my need needs no not now of off ok okay on one or our out please re she should so "
    "some than thank thanks that the their them then there these they this those to too up us very was we "
    "were what when where which while who why will with would yes yet you your"
)
_WORD = re.compile(r"[a-z]+")


def fold(word: str) -> str:
    """A word as the organiser compares it: simple plurals folded ("lessons" → "lesson")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def terms_of(content: str) -> set[str]:
    """The words of a text that can carry a topic."""
    return {fold(word) for word in _WORD.findall(content.lower().replace("'", "")) if word not in _STOP_WORDS}


_FOLDED = {category: (title, frozenset(fold(word) for word in words)) for category, (title, words) in LEXICON.items()}


@dataclass(frozen=True)
class Thread:
    """An open topic thread and the words that say what it is about."""

    id: UUID
    vocabulary: frozenset[str]


@dataclass(frozen=True)
class Match:
    kind: s.SuggestionKind
    terms: list[str]
    score: float
    thread_id: UUID | None = None
    title: str | None = None
    category: str | None = None


def vocabulary(title: str | None, category: str | None) -> frozenset[str]:
    """A thread's words: its title's and category's, and the lexicon's of every topic
    those name or share a word with ("Soccer practice" takes the activities' words)."""
    named = terms_of(" ".join(part for part in (title, category) if part))
    words = set(named)
    for key, (topic_title, lexicon) in _FOLDED.items():
        if key in named or fold(topic_title.lower()) in named or (category or "").lower() == key or named & lexicon:
            words |= lexicon
    return frozenset(words)


def _best(terms: set[str], candidates: Iterable[tuple[Any, frozenset[str]]]) -> tuple[float, Any, list[str]] | None:
    """The candidate sharing the largest share of the message's topic words (the first
    listed on a tie), with that share and the words."""
    counted = min(len(terms), _WORDS_COUNTED)
    best: tuple[float, Any, list[str]] | None = None
    for key, words in candidates:
        shared = sorted(terms & words)
        score = min(1.0, len(shared) / counted)
        if shared and (best is None or score > best[0]):
            best = (score, key, shared)
    return best


def match(terms: set[str], threads: list[Thread]) -> Match | None:
    """Where a message with these words belongs: the best matching thread when it matches
    well (PLACE_SCORE) or at least as well as any topic of the lexicon, else a new topic
    from the lexicon, else nowhere. Deterministic: ties go to the thread listed first
    (the most recently active), then to the lexicon's order."""
    if not terms:
        return None
    thread = _best(terms, ((t.id, t.vocabulary) for t in threads))
    topic = _best(terms, ((key, lexicon) for key, (_, lexicon) in _FOLDED.items()))
    if thread is not None and (thread[0] >= PLACE_SCORE or topic is None or thread[0] >= topic[0]):
        score, thread_id, shared = thread
        return Match("place", shared[:20], round(score, 3), thread_id=thread_id)
    if topic is None:
        return None
    score, key, shared = topic
    return Match("new", shared[:20], round(score, 3), title=LEXICON[key][0], category=key)


# --- the participants' side ----------------------------------------------------------

r = m.topic_rooms
sg = m.topic_suggestions


def _suggestion(row: Any) -> s.TopicSuggestionOut:
    return s.TopicSuggestionOut.model_validate(row._mapping)


async def get_topic_room(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> s.TopicRoomOut:
    """Whether topics are organised in a room the actor takes part in.

    Raises:
        ConversationNotFound: the actor takes no part in it.
        TopicRoomNotFound: they are not.
    """
    await messaging_service.access_conversation(db, actor=actor, conversation_id=conversation_id)
    row = (await db.execute(select(r).where(r.c.conversation_id == conversation_id))).one_or_none()
    if row is None:
        raise TopicRoomNotFound()
    return s.TopicRoomOut.model_validate(row._mapping)


async def do_enable_topics(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> tuple[bool, s.TopicRoomOut]:
    """Have the organiser read a room's new messages from now on (again: nothing
    changes). Returns whether it was switched on now.

    Raises:
        ConversationNotFound: the actor takes no part in it.
        NotAllowed: the actor only observes it.
    """
    await messaging_service.access_conversation(
        db, actor=actor, conversation_id=conversation_id, roles=("owner", "admin", "moderator", "member", "guest")
    )
    made = (
        await db.execute(
            insert(r)
            .values(conversation_id=conversation_id, enabled_by=actor.user_id)
            .on_conflict_do_nothing()
            .returning(r)
        )
    ).one_or_none()
    if made is not None:
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="coparenting.topics.enabled",
            payload={"conversation_id": str(conversation_id)},
            actor_id=actor.user_id,
        )
        return True, s.TopicRoomOut.model_validate(made._mapping)
    return False, await get_topic_room(db, actor=actor, conversation_id=conversation_id)


async def do_disable_topics(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> None:
    """Stop organising a room's new messages (the suggestions made stay).

    Raises:
        ConversationNotFound: the actor takes no part in it.
        NotAllowed: the actor only observes it.
        TopicRoomNotFound: topics were not organised there.
    """
    await messaging_service.access_conversation(
        db, actor=actor, conversation_id=conversation_id, roles=("owner", "admin", "moderator", "member", "guest")
    )
    removed = await db.execute(delete(r).where(r.c.conversation_id == conversation_id))
    if removed.rowcount == 0:
        raise TopicRoomNotFound()
    await publish(
        db,
        scope=Scope.conversation(conversation_id),
        type="coparenting.topics.disabled",
        payload={"conversation_id": str(conversation_id)},
        actor_id=actor.user_id,
    )


async def list_suggestions(
    db: AsyncConnection,
    *,
    actor: Actor,
    conversation_id: UUID,
    page: PageRequest,
    state: s.SuggestionState | None = None,
) -> Page[s.TopicSuggestionOut]:
    """A room's suggestions the actor may see (those of messages they can read), newest first.

    Raises:
        ConversationNotFound: the actor takes no part in it.
    """
    await messaging_service.access_conversation(db, actor=actor, conversation_id=conversation_id)
    query = select(sg).where(sg.c.conversation_id == conversation_id)
    if state is not None:
        query = query.where(sg.c.state == state)
    rows = (await db.execute(keyset(query, sg.c.id, page))).all()
    return make_page([_suggestion(row) for row in rows], page)


async def _pending(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, suggestion_id: UUID) -> Any:
    await messaging_service.access_conversation(
        db, actor=actor, conversation_id=conversation_id, roles=("owner", "admin", "moderator", "member", "guest")
    )
    row = (
        await db.execute(
            select(sg).where(sg.c.conversation_id == conversation_id, sg.c.id == suggestion_id).with_for_update()
        )
    ).one_or_none()
    if row is None:
        raise TopicSuggestionNotFound()
    if row.state not in ("placed", "pending"):
        raise SuggestionDecided()
    return row


async def do_accept_suggestion(
    db: AsyncConnection,
    *,
    actor: Actor,
    conversation_id: UUID,
    suggestion_id: UUID,
    title: str | None = None,
) -> s.TopicSuggestionOut:
    """Accept a suggestion: a proposed topic becomes a topic thread (with `title`, or the
    one proposed), a placement is confirmed.

    Raises:
        ConversationNotFound: the actor takes no part in the room.
        NotAllowed: the actor only observes it.
        TopicSuggestionNotFound: not a suggestion of this room the actor may see.
        SuggestionDecided: already accepted or dismissed.
    """
    row = await _pending(db, actor=actor, conversation_id=conversation_id, suggestion_id=suggestion_id)
    thread_id = row.thread_id
    if row.kind == "new":
        _, thread = await messaging_service.do_create_thread(
            db,
            actor=actor,
            conversation_id=conversation_id,
            thread=messaging_service.CreateThread(title=title or row.title, category=row.category),
        )
        thread_id = thread.id
    decided = (
        await db.execute(
            update(sg)
            .where(sg.c.id == suggestion_id)
            .values(state="accepted", thread_id=thread_id, decided_by=actor.user_id, decided_at=func.now())
            .returning(sg)
        )
    ).one()
    await _announce(db, decided, actor_id=actor.user_id, type="coparenting.topic.accepted")
    return _suggestion(decided)


async def do_dismiss_suggestion(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, suggestion_id: UUID
) -> s.TopicSuggestionOut:
    """Dismiss a suggestion: a proposed topic is not made, a placement is undone.

    Raises:
        ConversationNotFound, NotAllowed, TopicSuggestionNotFound, SuggestionDecided: see do_accept_suggestion.
    """
    row = await _pending(db, actor=actor, conversation_id=conversation_id, suggestion_id=suggestion_id)
    if row.kind == "place":
        await _take_out(db, actor=actor, conversation_id=conversation_id, row=row)
    decided = (
        await db.execute(
            update(sg)
            .where(sg.c.id == suggestion_id)
            .values(state="dismissed", decided_by=actor.user_id, decided_at=func.now())
            .returning(sg)
        )
    ).one()
    await _announce(db, decided, actor_id=actor.user_id, type="coparenting.topic.dismissed")
    return _suggestion(decided)


async def _take_out(db: AsyncConnection, *, actor: Actor, conversation_id: UUID, row: Any) -> None:
    """A dismissed placement: the message leaves the thread the organiser put it in,
    unless someone has moved it elsewhere since, or it is gone."""
    try:
        message = orjson.loads(
            await messaging_service.get_message(
                db, actor=actor, conversation_id=conversation_id, message_id=row.message_id
            )
        )
    except NotFound:
        return
    if not message["is_deleted"] and message["thread_id"] == str(row.thread_id):
        await messaging_service.do_move_to_thread(
            db, actor=actor, conversation_id=conversation_id, message_id=row.message_id, thread_id=None
        )


async def _announce(db: AsyncConnection, row: Any, *, actor_id: UUID | None, type: str) -> None:
    await publish(
        db,
        scope=Scope.conversation(row.conversation_id),
        type=type,
        payload={
            "suggestion_id": str(row.id),
            "message_id": str(row.message_id),
            "kind": row.kind,
            "thread_id": str(row.thread_id) if row.thread_id else None,
        },
        actor_id=actor_id,
    )


# --- the organiser -------------------------------------------------------------------

_ROOMS = text(
    "SELECT conversation_id, created_at FROM coparenting.topic_rooms WHERE conversation_id = ANY(CAST(:ids AS uuid[]))"
)


async def _threads(db: AsyncConnection, *, as_of: Actor, conversation_id: UUID) -> list[Thread]:
    page = await messaging_service.list_threads(
        db, actor=as_of, conversation_id=conversation_id, include_archived=False, limit=_THREADS, cursor=None
    )
    return [Thread(t.id, vocabulary(t.title, t.category)) for t in page.items if t.title is not None]


async def _organise_message(db: AsyncConnection, event: Event) -> bool:
    payload = event.payload
    if payload.get("thread_id") or not payload.get("sender_id"):
        # Already in a thread, or said by no one (system notices): nothing to organise.
        return False
    sender = Actor(user_id=UUID(payload["sender_id"]))
    conversation_id, message_id = event.scope_id, UUID(payload["message_id"])
    try:
        message = orjson.loads(
            await messaging_service.get_message(
                db, actor=sender, conversation_id=conversation_id, message_id=message_id
            )
        )
        threads = await _threads(db, as_of=sender, conversation_id=conversation_id)
    except NotFound:
        # The sender left, or the message went, before the organiser came to it.
        return False
    # An end-to-end encrypted message has no text here to organise (its content is empty).
    if (
        message["type"] not in _ORGANISED_TYPES
        or message["is_deleted"]
        or message.get("content_encrypted")
        or not message["content"]
    ):
        return False
    found = match(terms_of(message["content"]), threads)
    if found is None:
        return False
    if found.kind == "new" and await _proposed(db, conversation_id=conversation_id, category=found.category):
        return False
    if found.kind == "place":
        # In the thread for real: its count, its page of messages and everyone's stream
        # (`message.threaded`) show it there; dismissing the suggestion takes it out.
        try:
            await messaging_service.do_move_to_thread(
                db, actor=sender, conversation_id=conversation_id, message_id=message_id, thread_id=found.thread_id
            )
        except RapportError:
            # The sender no longer takes part, or the thread was archived meanwhile.
            return False
    made = (
        await db.execute(
            insert(sg)
            .values(
                id=uuid7(),
                conversation_id=conversation_id,
                message_id=message_id,
                sender_id=sender.user_id,
                kind=found.kind,
                thread_id=found.thread_id,
                title=found.title,
                category=found.category,
                terms=found.terms,
                score=found.score,
                state="placed" if found.kind == "place" else "pending",
            )
            .on_conflict_do_nothing(index_elements=[sg.c.conversation_id, sg.c.message_id])
            .returning(sg)
        )
    ).one_or_none()
    if made is None:
        return False
    await _announce(db, made, actor_id=None, type="coparenting.topic.suggested")
    return True


async def _proposed(db: AsyncConnection, *, conversation_id: UUID, category: str | None) -> bool:
    """Whether this topic is already proposed in the room and waiting for an answer."""
    found = await db.execute(
        select(sg.c.id).where(
            sg.c.conversation_id == conversation_id,
            sg.c.kind == "new",
            sg.c.state == "pending",
            sg.c.category == category,
        )
    )
    return found.first() is not None


async def _organise(db: AsyncConnection, events: list[Event]) -> int:
    """Each new message of an organised room (sent since it was organised) placed or
    proposed; how many suggestions were made."""
    rooms = {
        row.conversation_id: row.created_at
        for row in await db.execute(_ROOMS, {"ids": list({event.scope_id for event in events})})
    }
    made = 0
    for event in events:
        since = rooms.get(event.scope_id)
        if since is not None and event.created_at >= since and await _organise_message(db, event):
            made += 1
    return made


# Its cursor, lock ("topics" in ASCII) and loop are rapport.kernel.outbox's. A first start
# reads the outbox from its beginning: only messages of organised rooms sent since they
# were organised count, so nothing older is touched.
READER = CursorReader(
    name="coparenting-topics",
    cursor_table="coparenting.topic_cursor",
    cursor="topics",
    lock_key=0x746F70696373,
    types=("message.created",),
    handle=_organise,
)


async def organise_topics(engine: SystemEngine, *, limit: int = READER.batch) -> tuple[int, int | None]:
    """One batch of the organiser: the new messages after its cursor (up to `limit`),
    each of an organised room placed or proposed, and the cursor moved, all in one
    system transaction. Returns how many suggestions it made and the position it reached
    (None when another process holds the organiser's lock and did the batch)."""
    return await READER.read_batch(engine, limit=limit)


async def organise_all(engine: SystemEngine) -> int:
    """Batches until the organiser has read past every message committed when it was
    called; how many suggestions it made."""
    return await READER.read_all(engine)


class TopicOrganiser(ReaderLoop):
    """The organiser's loop beside the job worker (rapport.kernel.outbox.ReaderLoop)."""

    def __init__(self, engine: SystemEngine) -> None:
        super().__init__(READER, engine)
