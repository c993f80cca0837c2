"""Who a bearer token is: identity's side of the kernel's request dependencies.

`authenticate` is put on the Runtime when the app is built; the kernel's `get_caller`
calls it once per request (docs/decisions/0011). An access token is decoded there, once;
an API key is looked up in the transaction it opens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from rapport.identity import tokens
from rapport.identity._api_keys import authenticate_api_key, looks_like_api_key
from rapport.identity._sessions import session_is_live
from rapport.identity.errors import SessionRequired
from rapport.kernel.actor import Acting, Actor, Credential
from rapport.kernel.db import system_transaction
from rapport.kernel.errors import InvalidToken
from rapport.kernel.runtime import Runtime


@dataclass(frozen=True)
class _AccessToken:
    """A signed-in session: the token's signature and expiry are checked, its session is
    checked in the transaction (revocation takes effect at once, not at expiry)."""

    runtime: Runtime
    claims: tokens.AccessClaims

    async def actor(self) -> Actor:
        return Actor(user_id=self.claims.user_id, session_id=self.claims.session_id)

    @asynccontextmanager
    async def transaction(self, *, session_required: bool, tolerate_lag: bool = False) -> AsyncIterator[Acting]:
        actor = Actor(user_id=self.claims.user_id, session_id=self.claims.session_id)
        async with self.runtime.reads.transaction(actor.user_id, tolerate_lag=tolerate_lag) as db:
            if not await session_is_live(db, session_id=self.claims.session_id):
                raise InvalidToken("The session has ended. Sign in again.")
            yield Acting(db, actor)


@dataclass(frozen=True)
class _ApiKey:
    """An API key: who it belongs to is known only once it is looked up."""

    runtime: Runtime
    key: str

    async def actor(self) -> Actor:
        async with system_transaction(self.runtime.system_engine) as db:
            return await authenticate_api_key(db, key=self.key)

    @asynccontextmanager
    async def transaction(self, *, session_required: bool, tolerate_lag: bool = False) -> AsyncIterator[Acting]:
        # The key is looked up as system work on the system pool; the request's own work
        # then runs on the user pool as the key's owner, never on a connection whose role
        # could switch system work back on (docs/decisions/0001).
        async with system_transaction(self.runtime.system_engine) as db:
            actor = await authenticate_api_key(db, key=self.key)
        # Account security, health and money are not for bots and scripts: a leaked
        # key must not reach them. A key that does not work is told so first (401).
        if session_required:
            raise SessionRequired()
        async with self.runtime.reads.transaction(actor.user_id, tolerate_lag=tolerate_lag) as db:
            yield Acting(db, actor)


def authenticate(runtime: Runtime, token: str) -> Credential:
    """The credential a bearer token stands for.

    Raises:
        InvalidToken: an access token that is malformed, forged or expired.
    """
    if looks_like_api_key(token):
        return _ApiKey(runtime=runtime, key=token)
    return _AccessToken(runtime=runtime, claims=tokens.verify_access_token(runtime.keyring, token))
