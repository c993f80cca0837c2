"""What `Client.stream()` yields: one frozen dataclass per kind of server frame.

`Event` carries an outbox event and its position; `Typing` and `Presence` are never
stored and carry none; `Resync` says that events were not all kept and the caller should
reload its state (conversations, history) before relying on the stream again.
`Connected` and `CaughtUp` mark each (re)connection and the end of its replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from rapport.client.models import EventScope, SyncEvent


@dataclass(frozen=True, slots=True)
class Connected:
    """The socket is open and authenticated; events after `position` follow."""

    user_id: UUID
    position: int


@dataclass(frozen=True, slots=True)
class Event:
    """An outbox event: a message created, a reaction, a read marker, a contact request…"""

    position: int
    type: str
    scope: EventScope
    payload: dict[str, Any]
    actor_id: UUID | None
    created_at: datetime

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Event:
        event = SyncEvent.model_validate({**frame["event"], "position": frame["position"]})
        return cls(
            position=event.position,
            type=event.type,
            scope=event.scope,
            payload=event.payload,
            actor_id=event.actor_id,
            created_at=event.created_at,
        )


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """Everything missed since the requested position has been delivered: live from here."""

    position: int


@dataclass(frozen=True, slots=True)
class Resync:
    """Events after the last position are no longer all kept (or this client fell too far
    behind): reload state; the stream goes on from `position`."""

    position: int
    detail: str


@dataclass(frozen=True, slots=True)
class Typing:
    conversation_id: UUID
    user_id: UUID
    typing: bool
    expires_in_ms: int


@dataclass(frozen=True, slots=True)
class Presence:
    user_id: UUID
    status: str
    """`online`, `away`, `busy` or `offline`."""
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class ServerProblem:
    """An error frame that answers no request of this client (a frame it could not
    read): the server's problem+json, for logging."""

    problem: dict[str, Any] = field(default_factory=dict)


StreamEvent = Connected | Event | CaughtUp | Resync | Typing | Presence | ServerProblem


def parse_typing(frame: dict[str, Any]) -> Typing:
    return Typing(
        conversation_id=UUID(frame["conversation_id"]),
        user_id=UUID(frame["user_id"]),
        typing=bool(frame["typing"]),
        expires_in_ms=int(frame.get("expires_in_ms", 0)),
    )


def parse_presence(frame: dict[str, Any]) -> Presence:
    seen = frame.get("last_seen_at")
    return Presence(
        user_id=UUID(frame["user_id"]),
        status=str(frame["status"]),
        last_seen_at=datetime.fromisoformat(seen) if seen else None,
    )
