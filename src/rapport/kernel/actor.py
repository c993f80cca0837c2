"""Who is acting, and from where."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import NamedTuple, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection


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


class Acting(NamedTuple):
    """A transaction opened as an authenticated actor: `async with ... as (db, actor)`."""

    db: AsyncConnection
    actor: Actor


class Credential(Protocol):
    """A bearer credential that passed the checks needing no database (an access token's
    signature and expiry); what remains is checked in the transaction it opens."""

    async def actor(self) -> Actor:
        """Who the credential acts for, for a hot path whose one statement checks the
        session or key itself (`auth.act_for_request`): an access token needs no database
        for it, an API key is looked up.

        Raises:
            InvalidToken: an API key that does not exist, is revoked or expired.
        """
        ...

    def transaction(self, *, session_required: bool, tolerate_lag: bool = False) -> AbstractAsyncContextManager[Acting]:
        """A transaction acting as the credential's user, after checking in it that the
        credential still holds (a revoked session or key fails at once). With
        `tolerate_lag`, work that only reads may run on the replica (rapport.kernel.replica).

        Raises:
            InvalidToken: the session or key has ended.
            Forbidden: `session_required` and the credential is not a signed-in session.
        """
        ...
