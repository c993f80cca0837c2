"""What every domain's routers share: the FastAPI dependencies that tell who is calling,
from where, and which page they ask for, and the options of a route that answers 204.

This is the kernel's HTTP edge, at the routers' level: the rest of the kernel, like every
service below the routers, imports no FastAPI. Who a bearer token is, is identity's
business: the kernel calls the authenticator identity puts on the Runtime when the app is
built (docs/decisions/0011), so it never imports a domain.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, TypedDict

from fastapi import Depends, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rapport.kernel.actor import Acting, Actor, Client, Credential
from rapport.kernel.errors import Unauthenticated
from rapport.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest, decode_cursor
from rapport.kernel.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="An access token, or an API key (rk_...).")


class RouteOptions(TypedDict):
    status_code: int
    response_class: type[Response]


# `@router.delete(path, **NO_CONTENT)`: the answer is 204 with no body, and OpenAPI says so.
NO_CONTENT: RouteOptions = {"status_code": status.HTTP_204_NO_CONTENT, "response_class": Response}


# Async, though they await nothing: FastAPI runs plain functions in its thread pool,
# a hop that measurably costs on every request.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_client(request: Request) -> Client:
    return Client(
        ip=request.client.host if request.client else None,
        user_agent=(request.headers.get("user-agent") or "")[:512] or None,
    )


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ClientDep = Annotated[Client, Depends(get_client)]


@dataclass(frozen=True)
class Caller:
    """An authenticated request: its token passed every check that needs no database."""

    runtime: Runtime
    client: Client
    credential: Credential

    def transaction(
        self, *, session_required: bool = False, tolerate_lag: bool = False
    ) -> AbstractAsyncContextManager[Acting]:
        """A transaction acting as the caller, after checking in it that the session or
        API key is still live (revocation takes effect at once, not when the access token
        expires): `async with caller.transaction() as (db, actor):`.

        `session_required` refuses API keys, for account security and sensitive data.
        `tolerate_lag` lets work that only reads run on the replica, once it has replayed
        everything committed before the request began (rapport.kernel.replica).

        Raises:
            InvalidToken: the session or key has ended.
            SessionRequired: `session_required` and the caller uses an API key.
        """
        return self.credential.transaction(session_required=session_required, tolerate_lag=tolerate_lag)

    async def actor(self) -> Actor:
        """Who calls, for a hot path whose one statement checks the session itself.

        Raises:
            InvalidToken: an API key that does not hold.
        """
        return await self.credential.actor()


async def get_caller(
    runtime: RuntimeDep,
    client: ClientDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("Send `Authorization: Bearer <access token or API key>`.")
    credential = runtime.authenticate(runtime, credentials.credentials)
    return Caller(runtime=runtime, client=client, credential=credential)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=64, description="The `next` value of the previous page.")] = None,
) -> PageRequest:
    """`limit` and `cursor` from the query string."""
    return PageRequest(limit=limit, after_id=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageRequest, Depends(get_page_request)]
