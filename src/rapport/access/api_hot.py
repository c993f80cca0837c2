"""Access's hot route in the app's hot lane (rapport.kernel.hot_routes): what the caller
may do (GET /v1/permissions/me), which clients ask on every start and agents' desks on
every view.

The handler does what the FastAPI route (rapport.access.api) does, with the same service
and response model, for a request that is plainly well formed: a bearer token, no query
and no body. For any other it returns None and the FastAPI route answers, errors
included.
"""

from __future__ import annotations

from rapport.access import service
from rapport.kernel.hot_routes import HotAnswer, HotRequest, HotRoute
from rapport.kernel.runtime import Runtime


async def get_my_permissions(request: HotRequest) -> HotAnswer | None:
    token = request.bearer()
    if token is None or request.query() != {} or request.body:
        return None
    runtime: Runtime = request.app_state.runtime
    # As kernel.deps.get_caller, then the route's transaction as the caller.
    credential = runtime.authenticate(runtime, token)
    async with credential.transaction(session_required=False) as (db, actor):
        mine = await service.get_my_permissions(db, actor=actor)
    # As FastAPI writes the route's response model.
    return HotAnswer(200, mine.model_dump_json(by_alias=True).encode())


HOT_ROUTES = (HotRoute("GET", "/v1/permissions/me", get_my_permissions),)
