"""Who is acting, and from where."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class Client:
    """The device side of a request: kept with sessions, sign-in history and events."""

    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Actor:
    """An authenticated user, through a session (access token) or an API key."""

    user_id: UUID
    session_id: UUID | None = None
    api_key_id: UUID | None = None
