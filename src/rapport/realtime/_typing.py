"""Typing indicators: who may signal, how often, and the frame a socket receives.

Never stored: a signal lives in memory and on the bus, and expires by itself. A client
sends `typing: true` again every few seconds while its person types; receivers drop an
indicator `expires_in_ms` after it arrived unless a newer one came; `typing: false`, or a
message from that person, ends it. Refusals are silent (no error, no signal): telling
someone why their typing was not shown would tell them about a setting or a membership.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.errors import NotFound
from rapport.messaging import service as messaging_service
from rapport.social import service as social_service

# How long receivers show an indicator without a newer signal (clients re-send every ~3 s).
TYPING_TTL_MS = 6000
# The same state repeated is forwarded at most once per this many seconds.
REPEAT_INTERVAL_S = 1.0
# Changes of state (start, stop) forwarded in a burst, then one per second.
BURST = 3.0


@dataclass
class _Gate:
    typing: bool  # the state last forwarded
    at: float  # when
    tokens: float
    refilled: float  # when `tokens` was last brought up to date


class TypingLimiter:
    """Per person and conversation, in this process's memory: a repeated state passes at
    most once a second, changes of state at most BURST at once then one a second, so a
    client flapping true/false cannot flood a conversation."""

    def __init__(self) -> None:
        self._gates: dict[UUID, dict[UUID, _Gate]] = {}

    def admit(self, user_id: UUID, conversation_id: UUID, typing: bool, *, now: float) -> bool:
        """Whether to forward this signal; if so it is taken as the state now shown."""
        gates = self._gates.setdefault(user_id, {})
        gate = gates.get(conversation_id)
        if gate is None:
            if not typing:
                return False  # nothing shown from here to stop
            gates[conversation_id] = _Gate(typing=True, at=now, tokens=BURST - 1, refilled=now)
            return True
        gate.tokens, gate.refilled = min(BURST, gate.tokens + (now - gate.refilled)), now
        if gate.typing == typing and now - gate.at < REPEAT_INTERVAL_S:
            return False
        if gate.tokens < 1:
            return False
        gate.tokens -= 1
        gate.typing, gate.at = typing, now
        return True

    def forget(self, user_id: UUID, conversation_id: UUID) -> None:
        gates = self._gates.get(user_id)
        if gates is not None:
            gates.pop(conversation_id, None)
            if not gates:
                del self._gates[user_id]

    def stop(self, user_id: UUID, conversation_id: UUID | None = None, *, now: float) -> list[UUID]:
        """The conversations (this one, or all) where `user_id` was shown typing from here
        and is not any more: each now needs a `typing: false`."""
        gates = self._gates.get(user_id, {})
        chosen = [conversation_id] if conversation_id is not None else list(gates)
        stopped = []
        for conversation in chosen:
            gate = gates.get(conversation)
            if gate is not None and gate.typing and now - gate.at < TYPING_TTL_MS / 1000:
                gate.typing, gate.at = False, now
                stopped.append(conversation)
        return stopped

    def prune(self, *, now: float) -> None:
        """Forget the gates whose last signal has expired anyway (memory stays bounded)."""
        horizon = max(TYPING_TTL_MS / 1000, BURST)
        for user_id in list(self._gates):
            gates = self._gates[user_id]
            for conversation_id in [c for c, gate in gates.items() if now - gate.at > horizon]:
                del gates[conversation_id]
            if not gates:
                del self._gates[user_id]

    def __len__(self) -> int:
        return sum(len(gates) for gates in self._gates.values())


async def may_signal_typing(db: AsyncConnection, *, actor: Actor, conversation_id: UUID) -> bool:
    """Whether the actor's typing may be shown in the conversation: they take part in it,
    actively and allowed to send (not muted, not left), it is open, and their own
    typing-indicator setting is on. Run it in the actor's own transaction."""
    try:
        conversation = await messaging_service.access_conversation(db, actor=actor, conversation_id=conversation_id)
    except NotFound:
        return False
    if conversation.status != "active" or conversation.my_status != "active" or not conversation.my_can_send:
        return False
    settings = await social_service.get_settings(db, actor=actor)
    return settings.typing_indicators_enabled


def typing_frame(*, conversation_id: UUID, user_id: UUID, typing: bool, expires_in_ms: int) -> dict[str, Any]:
    """The protocol's `typing` frame (docs: realtime protocol v1)."""
    return {
        "type": "typing",
        "conversation_id": str(conversation_id),
        "user_id": str(user_id),
        "typing": typing,
        "expires_in_ms": expires_in_ms,
    }


def wall_ms() -> int:
    """Milliseconds since the epoch: signals carry it between nodes to be dropped once stale."""
    return int(time.time() * 1000)
