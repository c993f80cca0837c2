"""FastAPI dependencies that tell who is calling: every domain's routers use these."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import tokens
from rapport.identity._api_keys import authenticate_api_key, looks_like_api_key
from rapport.identity._sessions import session_is_live
from rapport.identity.errors import SessionRequired
from rapport.kernel.actor import Actor, Client
from rapport.kernel.db import act_as, user_transaction
from rapport.kernel.db import system_transaction as _system_transaction
from rapport.kernel.errors import InvalidToken, Unauthenticated
from rapport.kernel.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="An access token, or an API key (rk_...).")


# Async, though they await nothing: FastAPI runs plain functions in its thread pool,
# a hop that measurably costs on every request.
async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def get_client(request: Request) -> Client:
    return Client(
        ip=request.client.host if request.client else None,
        user_agent=(request.headers.get("user-agent") or "")[:512] or None,
    )


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ClientDep = Annotated[Client, Depends(get_client)]


@dataclass
class Caller:
    """An authenticated request. Its `transaction()` acts as the caller, after checking
    in the same transaction that the session is still live (revocation takes effect at
    once, not when the access token expires)."""

    runtime: Runtime
    token: str
    client: Client
    # Decoded once by get_caller; None for an API key, which is looked up in the database.
    claims: tokens.AccessClaims | None = None
    actor: Actor | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        if self.claims is None:
            async with _system_transaction(self.runtime.engine) as db:
                self.actor = await authenticate_api_key(db, key=self.token)
                await act_as(db, self.actor.user_id)
                yield db
            return
        claims = self.claims
        self.actor = Actor(user_id=claims.user_id, session_id=claims.session_id)
        async with user_transaction(self.runtime.engine, claims.user_id) as db:
            if not await session_is_live(db, session_id=claims.session_id):
                raise InvalidToken("The session has ended. Sign in again.")
            yield db

    def require_session(self) -> Actor:
        """The actor, who must have signed in (not an API key): for account security."""
        assert self.actor is not None, "call inside transaction()"
        if self.actor.session_id is None:
            raise SessionRequired()
        return self.actor


async def get_caller(
    runtime: RuntimeDep,
    client: ClientDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("Send `Authorization: Bearer <access token or API key>`.")
    token = credentials.credentials
    claims = None if looks_like_api_key(token) else tokens.verify_access_token(runtime.keyring, token)
    return Caller(runtime=runtime, token=token, client=client, claims=claims)


CallerDep = Annotated[Caller, Depends(get_caller)]
