"""What `GET /v1/sync` answers: the events a person may receive after a position, and
where to resume (docs/decisions/0012 and 0014)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from rapport.kernel.outbox import Event, ScopeKind


class EventScope(BaseModel):
    kind: ScopeKind = Field(description="`conversation`: its participants receive it; `user`: that person alone.")
    id: UUID = Field(description="The conversation's or the person's id.")


class SyncEvent(BaseModel):
    """One change, as every device of the people it concerns receives it."""

    position: int = Field(
        description="Its place in the stream: grows from one event to the next, with gaps. "
        "An opaque, ordered token (a 64-bit integer), never a count."
    )
    type: str = Field(description="What happened, e.g. `message.created`; the payload's shape follows it.")
    scope: EventScope
    payload: dict[str, Any] = Field(description="Small: ids and changed fields; fetch the rest if needed.")
    actor_id: UUID | None = Field(description="Whose action it was; null for Rapport's own work.")
    created_at: datetime

    @classmethod
    def of(cls, event: Event) -> SyncEvent:
        return cls(
            position=event.position,
            type=event.type,
            scope=EventScope(kind=event.scope_kind, id=event.scope_id),
            payload=event.payload,
            actor_id=event.actor_id,
            created_at=event.created_at,
        )


class SyncPage(BaseModel):
    """Events after `since`, oldest first, and where to resume."""

    events: list[SyncEvent]
    position: int = Field(
        description="Send it back as `since` next time. It may be past the last event here (events that "
        "are not yours are passed over) and never goes backwards; nothing that commits later is ever "
        "numbered at or below it."
    )
    more: bool = Field(description="More events are waiting: ask again at once from `position`.")
    resync: bool = Field(
        description="Events after `since` are no longer all kept (the outbox's retention passed it): "
        "reload state (conversations, history) before following the stream again from `position`. "
        "Always false while Rapport keeps every event."
    )
