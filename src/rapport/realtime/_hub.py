"""The hub of a process: which follower receives which event, decided once per event by
an in-memory index, never by a database query per follower.

- `_users`: user id -> that user's followers (user-scoped events, presence).
- `_conversations`: conversation id -> the followers with a window of it (its events,
  typing); each event goes to those whose window holds its position.

Windows come from the database once, when a follower connects (messaging's memberships,
exact below their `known_below`), and then change with the membership events that pass
through the feed, applied before the events of their transaction are delivered: a join
opens a window at the joining transaction (the person hears that transaction's events,
their own `participant.joined` included), a leave or a removal ends it with the leaving
transaction (they hear that they left, nothing after), a deleted conversation ends
everyone's. This is the rule `GET /v1/sync` applies (docs/decisions/0014), so a follower
receives live exactly what it would have read from the database.

Everything here runs in the event loop without awaiting: the feed's dispatch of a batch,
a follower's registration and its switch to live are each atomic.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol
from uuid import UUID

from rapport.kernel.outbox import Event
from rapport.realtime._connection import (
    SESSION_REVOKED,
    Connection,
    Delivery,
    Frame,
    Span,
    transaction_of,
    transaction_start,
)

# Events a follower keeps while it catches up from the database; past it, it catches up
# again from where the database read reached, instead of holding more.
PENDING_LIMIT = 10_000

_JOINED = "participant.joined"
_LEFT = "participant.left"
_CHANGED = "participant.changed"
_DELETED = "conversation.deleted"
_SESSION_REVOKED = "session.revoked"
_API_KEY_REVOKED = "api_key.revoked"
_MEMBERSHIP = frozenset({_JOINED, _LEFT, _CHANGED, _DELETED})
# What messaging's events about a message hidden from guests say in their payload.
_HIDDEN_FROM_GUESTS = "hidden_from_guests"


class WindowLike(Protocol):
    """A window as messaging's memberships give it."""

    @property
    def joined(self) -> int: ...

    @property
    def left(self) -> int | None: ...


class MembershipsLike(Protocol):
    """What the hub reads of messaging's `Memberships`."""

    @property
    def known_below(self) -> int: ...

    @property
    def windows(self) -> Mapping[UUID, WindowLike]: ...


def by_transaction(events: list[Event]) -> Iterator[list[Event]]:
    """Events in runs of one transaction each (they arrive in position order)."""
    run: list[Event] = []
    for event in events:
        if run and transaction_of(run[-1].position) != transaction_of(event.position):
            yield run
            run = []
        run.append(event)
    if run:
        yield run


def _member(event: Event) -> UUID | None:
    user_id = event.payload.get("user_id")
    try:
        return UUID(user_id) if isinstance(user_id, str) else None
    except ValueError:
        return None


def _change_window(connection: Connection, event: Event) -> bool:
    """Apply a membership event to one follower's windows; whether it changed them."""
    if event.scope_kind != "conversation" or event.position < connection.known_below:
        return False  # the database read that gave the windows already holds it
    conversation_id = event.scope_id
    if event.type == _DELETED:
        span = connection.spans.get(conversation_id)
        if span is None or span.left is not None:
            return False
        span.left = transaction_start(event.position)
        return True
    if _member(event) != connection.user_id:
        return False
    if event.type == _JOINED:
        guest = event.payload.get("role") == "guest"
        connection.spans[conversation_id] = Span(joined=transaction_start(event.position), guest=guest)
        return True
    span = connection.spans.get(conversation_id)
    if span is None:
        return False
    if event.type == _CHANGED:
        # A new role: a guest no longer, or now one; the window itself stays.
        changes = event.payload.get("changes")
        if isinstance(changes, dict) and "role" in changes:
            span.guest = changes["role"] == "guest"
        return False
    span.left = transaction_start(event.position)
    return True


def _revocation(connection: Connection, event: Event) -> str | None:
    """The close reason when this event revokes what the connection signed in with."""
    if event.scope_kind != "user":
        return None
    actor = connection.actor
    if event.type == _SESSION_REVOKED and actor.session_id is not None:
        return "session-revoked" if event.payload.get("session_id") == str(actor.session_id) else None
    if event.type == _API_KEY_REVOKED and actor.api_key_id is not None:
        return "api-key-revoked" if event.payload.get("api_key_id") == str(actor.api_key_id) else None
    return None


def _receives(connection: Connection, event: Event) -> bool:
    if event.position <= connection.read_through:
        return False  # it came from the database, in the catch-up
    if event.scope_kind == "user":
        return event.scope_id == connection.user_id
    span = connection.spans.get(event.scope_id)
    return (
        span is not None
        and span.holds(event.position)
        and not (span.guest and event.payload.get(_HIDDEN_FROM_GUESTS) is True)
    )


class Hub:
    """The followers of this process and the index that routes events to them."""

    def __init__(self) -> None:
        # The position through which the feed has dispatched every event.
        self.position = 0
        self._users: dict[UUID, set[Connection]] = {}
        self._conversations: dict[UUID, set[Connection]] = {}
        self._pending: set[Connection] = set()
        # How many followers ever began: lets the feed see that one began while it waited.
        self.begun = 0

    @property
    def followers(self) -> int:
        return sum(len(connections) for connections in self._users.values()) + len(self._pending)

    # Following: begin (buffer), catch up from the database, go live.

    def begin(self, connection: Connection) -> int:
        """Start keeping every event dispatched from now on for a follower about to catch
        up from the database; returns the position they all come after."""
        connection.pending = []
        connection.pending_overflowed = False
        self._pending.add(connection)
        self.begun += 1
        return self.position

    def go_live(self, connection: Connection, *, memberships: MembershipsLike, caught_up_to: int) -> bool:
        """After the follower was sent everything through `caught_up_to` from the database
        with these memberships, queue what the feed dispatched meanwhile beyond it and
        route live events to it from now on. False if it kept too much meanwhile: it
        must catch up again from `caught_up_to` (begin, then read)."""
        kept = connection.pending
        self._pending.discard(connection)
        connection.pending = None
        if kept is None or connection.pending_overflowed:
            return False
        connection.known_below = memberships.known_below
        connection.spans = {
            # A guest's window (messaging's, migration 2026_11_30_0037) leaves out what is hidden from guests.
            conversation_id: Span(joined=window.joined, left=window.left, guest=getattr(window, "guest", False))
            for conversation_id, window in memberships.windows.items()
        }
        connection.sent = connection.read_through = caught_up_to
        for run in by_transaction([event for event in kept if event.position > caught_up_to]):
            for event in run:
                if event.type in _MEMBERSHIP:
                    _change_window(connection, event)
            for event in run:
                if _receives(connection, event) and not self._give(connection, event):
                    return True  # closed as a slow consumer; nothing more to route
                self._after_delivery(connection, event)
            self._drop_ended(connection, run[-1].position)
        if connection.closed:
            return True
        self._users.setdefault(connection.user_id, set()).add(connection)
        for conversation_id, span in connection.spans.items():
            if not span.ended_by(max(caught_up_to, self.position) + 1):
                self._conversations.setdefault(conversation_id, set()).add(connection)
        return True

    def leave(self, connection: Connection) -> None:
        """Forget a follower (closed, or gone)."""
        self._pending.discard(connection)
        connection.pending = None
        same_user = self._users.get(connection.user_id)
        if same_user is not None:
            same_user.discard(connection)
            if not same_user:
                del self._users[connection.user_id]
        for conversation_id in connection.spans:
            self._unsubscribe(conversation_id, connection)

    # The feed's side.

    def dispatch(self, events: list[Event], position: int) -> None:
        """Route a batch the feed read (position order), then note how far it reached."""
        for run in by_transaction(events):
            changed = self._change_memberships(run)
            for event in run:
                self._deliver(event)
            for connection in changed:
                self._drop_ended(connection, run[-1].position)
        for connection in list(self._pending):
            assert connection.pending is not None
            if len(connection.pending) + len(events) > PENDING_LIMIT:
                connection.pending.clear()
                connection.pending_overflowed = True
            elif not connection.pending_overflowed:
                connection.pending.extend(events)
        self.position = max(self.position, position)

    # Signals that are not stored (typing, presence): the other realtime modules call these.

    def to_conversation(self, conversation_id: UUID, body: dict[str, Any]) -> None:
        """Send a frame to the followers that take part in a conversation now."""
        frame = Frame.of(body)
        for connection in list(self._conversations.get(conversation_id, ())):
            span = connection.spans.get(conversation_id)
            if span is not None and span.left is None:
                self.offer(connection, frame)

    def to_users(self, user_ids: Iterable[UUID], body: dict[str, Any]) -> None:
        """Send a frame to every follower of these users."""
        frame = Frame.of(body)
        for user_id in user_ids:
            for connection in list(self._users.get(user_id, ())):
                self.offer(connection, frame)

    def close_all(self, code: int, reason: str) -> None:
        for connection in [*self._pending, *(c for group in self._users.values() for c in group)]:
            connection.close(code, reason)
            self.leave(connection)

    # Inside.

    def _change_memberships(self, run: list[Event]) -> list[Connection]:
        changed: list[Connection] = []
        for event in run:
            if event.type not in _MEMBERSHIP or event.scope_kind != "conversation":
                continue
            if event.type == _DELETED:
                affected: Iterable[Connection] = list(self._conversations.get(event.scope_id, ()))
            else:
                member = _member(event)
                affected = list(self._users.get(member, ())) if member is not None else ()
            for connection in affected:
                if _change_window(connection, event):
                    changed.append(connection)
                    self._conversations.setdefault(event.scope_id, set()).add(connection)
        return changed

    def _deliver(self, event: Event) -> None:
        if event.scope_kind == "user":
            audience = self._users.get(event.scope_id, ())
        else:
            audience = self._conversations.get(event.scope_id, ())
        if not audience:
            return
        delivery = Delivery(event)
        for connection in list(audience):
            if _receives(connection, event):
                self._give(connection, event, delivery)
                self._after_delivery(connection, event)

    def _give(self, connection: Connection, event: Event, delivery: Delivery | None = None) -> bool:
        return self.offer(connection, delivery or Delivery(event))

    def offer(self, connection: Connection, item: Delivery | Frame) -> bool:
        """Queue an item for one follower; False when it was full (then it is closed as a
        slow consumer and forgotten)."""
        if connection.offer(item):
            return True
        self.leave(connection)
        return False

    def _after_delivery(self, connection: Connection, event: Event) -> None:
        # A revoked session or API key hears that it was revoked, then its sockets close.
        reason = _revocation(connection, event)
        if reason is not None:
            connection.close(SESSION_REVOKED, reason)
            self.leave(connection)

    def _drop_ended(self, connection: Connection, position: int) -> None:
        """Unsubscribe a follower from the conversations whose window ended at or before
        the transaction of `position`: nothing after it is theirs."""
        for conversation_id, span in list(connection.spans.items()):
            if span.left is not None and transaction_of(span.left) <= transaction_of(position):
                del connection.spans[conversation_id]
                self._unsubscribe(conversation_id, connection)

    def _unsubscribe(self, conversation_id: UUID, connection: Connection) -> None:
        subscribed = self._conversations.get(conversation_id)
        if subscribed is not None:
            subscribed.discard(connection)
            if not subscribed:
                del self._conversations[conversation_id]
