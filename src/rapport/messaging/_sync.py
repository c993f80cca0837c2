"""Sync: every event a person may receive after a position, in position order
(docs/decisions/0014).

The outbox stores one row per event whatever its audience (docs/decisions/0012); who
receives a conversation's event is decided here, when it is read, by membership at the
event's position: each participation records the outbox position of the transaction that
(re)joined (`joined_position`) and of the one that ended it (`left_position`), so one row
per person and conversation answers for every event of that conversation.

Reading takes two transactions, in this order: the person's participations under their
own row-level security (`get_memberships`), then the events on the worker's role, the
only one that may read `kernel.events` (`list_sync_events`). The first also takes the
barrier of its own snapshot, below which every membership change has ended and is seen;
sync never returns an event, nor a resume position, at or past it, so a join or a leave
that commits between the two transactions cannot make a reader skip an event of theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.outbox import ORDINAL_BITS, Event, Scope, read_after

DEFAULT_SYNC_LIMIT = 100
MAX_SYNC_LIMIT = 1000

# The largest position a client may send back: kernel.events.position is a bigint.
MAX_POSITION = 2**63 - 1

# How many outbox reads one sync may make when membership filters events out of a full
# batch (a conversation's events from before the caller joined it). Past this, the answer
# says `more` and the client asks again at once: a request's work stays bounded.
MAX_READS = 5

# One statement, hence one snapshot: the barrier is that snapshot's, so every transaction
# below it has ended and its membership changes are among the rows read. The caller's own
# rows are visible in any status (the policy participants_read), ended ones included.
_MEMBERSHIPS = text(
    """
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << :bits AS known_below,
           p.conversation_id, p.joined_position, p.left_position, p.role = 'guest' AS guest
      FROM (VALUES (1)) AS one (x)
      LEFT JOIN messaging.participants p ON p.user_id = :user_id
    """
)


@dataclass(frozen=True)
class Window:
    """The stretch of the outbox that is a participant's: from the transaction that
    (re)joined them to the one that ended their participation, both included. A guest's
    leaves out the events of messages hidden from guests."""

    joined: int
    left: int | None
    guest: bool = False

    @property
    def last(self) -> int | None:
        """The last position that is theirs: the last event the leaving transaction could
        publish (so the leaver hears that they left), or None while they take part."""
        if self.left is None:
            return None
        return (((self.left >> ORDINAL_BITS) + 1) << ORDINAL_BITS) - 1

    def holds(self, position: int) -> bool:
        last = self.last
        return self.joined <= position and (last is None or position <= last)


def hidden_from_guests(event: Event) -> bool:
    """Whether the event is about a message hidden from guests (its payload says so)."""
    return event.payload.get("hidden_from_guests") is True


@dataclass(frozen=True)
class Memberships:
    """What a person may receive: their own user scope, and each conversation's events
    within their window of it. Exact for every position below `known_below`."""

    user_id: UUID
    known_below: int
    windows: Mapping[UUID, Window]

    def scopes(self, *, after: int) -> list[Scope]:
        """The scopes to read after a position: their own, and every conversation whose
        window has not ended by then."""
        conversations = [
            Scope.conversation(conversation_id)
            for conversation_id, window in self.windows.items()
            if window.last is None or window.last > after
        ]
        return [Scope.user(self.user_id), *conversations]

    def receives(self, event: Event) -> bool:
        """Whether the event is theirs, by its scope and their membership at its position (a
        guest's leaves out messages hidden from guests)."""
        if event.scope_kind == "user":
            return event.scope_id == self.user_id
        window = self.windows.get(event.scope_id)
        return window is not None and window.holds(event.position) and not (window.guest and hidden_from_guests(event))


@dataclass(frozen=True)
class SyncBatch:
    """Events a person may receive, in position order, and where the next sync resumes.

    `position` is what the outbox reads reached, not the last event delivered: events
    that membership filtered out are passed, never read again. `more` says the answer
    stopped short of the newest events (the batch is full, the read budget ran out, or
    the membership barrier cut it): ask again at once. `resync` says the events after the
    asked position are no longer all kept: the client must reload its state first."""

    events: list[Event]
    position: int
    more: bool
    resync: bool = False


async def get_memberships(db: AsyncConnection, *, actor: Actor) -> Memberships:
    """The actor's participations, in any status, with the barrier of the snapshot they
    were read in. Run it in the actor's own transaction (row-level security applies)."""
    rows = (await db.execute(_MEMBERSHIPS, {"bits": ORDINAL_BITS, "user_id": actor.user_id})).all()
    windows = {
        row.conversation_id: Window(joined=row.joined_position, left=row.left_position, guest=bool(row.guest))
        for row in rows
        if row.conversation_id is not None
    }
    return Memberships(user_id=actor.user_id, known_below=rows[0].known_below, windows=windows)


async def list_sync_events(db: AsyncConnection, *, memberships: Memberships, since: int, limit: int) -> SyncBatch:
    """The events after `since` that `memberships` may receive, up to `limit`, and the
    position to resume from. Run it on the worker's role (kernel.events is unreadable to
    the server's), after `get_memberships`.

    Nothing is skipped: the outbox read never passes a transaction that may still commit
    (`read_after`), and this never passes the memberships' barrier, below which every
    join and leave is known. The position never goes backwards: a `since` ahead of both
    comes back as it was.

    Raises:
        ValueError: `limit` is not between 1 and MAX_SYNC_LIMIT.
    """
    if not 1 <= limit <= MAX_SYNC_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_SYNC_LIMIT}")
    # The last position whose membership is known: nothing past it is read or passed.
    horizon = memberships.known_below - 1
    scopes = memberships.scopes(after=since)
    delivered: list[Event] = []
    position = since
    size = limit
    for _ in range(MAX_READS):
        if position >= horizon:
            return SyncBatch(delivered, position, more=False)
        batch = await read_after(db, position=position, scopes=scopes, limit=size)
        for event in batch.events:
            if event.position > horizon:
                return SyncBatch(delivered, horizon, more=True)
            if memberships.receives(event):
                delivered.append(event)
                if len(delivered) == limit:
                    return SyncBatch(delivered, event.position, more=True)
        position = min(batch.position, horizon)
        if len(batch.events) < size:
            # read_after reached its safe position: nothing more is there for now.
            return SyncBatch(delivered, position, more=False)
        # Membership filtered some of a full batch: read on, in larger steps.
        size = MAX_SYNC_LIMIT
    return SyncBatch(delivered, position, more=True)
