"""Request and response shapes of presence (`/v1/presence`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from rapport.kernel.schemas import Strict

# What a device may say of itself; `invisible` is shown to others as `offline`.
DeviceStatus = Literal["online", "away", "busy", "invisible"]
# What others see: never `invisible`.
ShownStatus = Literal["online", "away", "busy", "offline"]
# What a person sees of themself.
OwnStatus = Literal["online", "away", "busy", "invisible", "offline"]


class PresenceUpdate(Strict):
    """A status for the caller's session while it holds no socket. It lasts
    `HTTP_PRESENCE_TTL_S` seconds unless sent again; `offline` ends it at once."""

    status: OwnStatus


class PresenceOut(BaseModel):
    user_id: UUID
    status: OwnStatus
    # Only for someone offline, and only when their last-seen setting lets the caller see it.
    last_seen_at: datetime | None


class PresenceList(BaseModel):
    items: list[PresenceOut]
