"""What the stream asks of presence and typing, which are never stored and do not pass
through the outbox.

Client frames `typing` and `presence`, and each follower's arrival and departure, go to a
`Signals`; whatever implements it sends its own frames back through the hub
(`Hub.to_conversation` for typing, `Hub.to_users` for presence), deciding itself who may
see them (participants, the typing setting, presence privacy).
"""

from __future__ import annotations

from typing import Literal, Protocol
from uuid import UUID

from rapport.kernel.actor import Actor

PresenceStatus = Literal["online", "away", "busy", "invisible"]


class Signals(Protocol):
    async def typing(self, actor: Actor, *, conversation_id: UUID, typing: bool) -> None:
        """The actor started or stopped typing. Refused silently when they take no part
        in the conversation or their typing setting is off."""

    async def presence(self, actor: Actor, *, status: PresenceStatus, connection_id: UUID | None = None) -> None:
        """The actor set their status on one of their devices (the follower
        `connection_id`; without it, every device of theirs in this process)."""

    async def connected(self, actor: Actor, *, connection_id: UUID) -> None:
        """A device of the actor started following the stream."""

    async def disconnected(self, actor: Actor, *, connection_id: UUID) -> None:
        """That device stopped (closed, dropped, or the server is stopping)."""


class NoSignals:
    """Presence and typing switched off: frames are accepted and go nowhere."""

    async def typing(self, actor: Actor, *, conversation_id: UUID, typing: bool) -> None:
        return None

    async def presence(self, actor: Actor, *, status: PresenceStatus, connection_id: UUID | None = None) -> None:
        return None

    async def connected(self, actor: Actor, *, connection_id: UUID) -> None:
        return None

    async def disconnected(self, actor: Actor, *, connection_id: UUID) -> None:
        return None
