"""`GET /v1/sync`: catch up on everything that happened since a position (docs/decisions/0014)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from rapport.kernel.db import system_transaction
from rapport.kernel.deps import CallerDep, RuntimeDep
from rapport.messaging import service
from rapport.messaging.schemas_sync import SyncEvent, SyncPage

router = APIRouter(tags=["sync"])


@router.get("/sync", response_model=SyncPage)
async def sync(
    caller: CallerDep,
    runtime: RuntimeDep,
    since: Annotated[
        int,
        Query(
            ge=0,
            le=service.MAX_POSITION,
            description="The `position` of the previous answer; 0 for everything from the start.",
        ),
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=service.MAX_SYNC_LIMIT, description="Events at most.")] = (
        service.DEFAULT_SYNC_LIMIT
    ),
) -> SyncPage:
    """Every event the caller may receive after `since`, oldest first: their own (contact
    requests, blocks they made, their read markers kept private) and those of the
    conversations they take part in, each decided by membership at the event's position
    (from the change that brought them in to the one that ended it, which they hear of).

    Resume from the `position` answered: nothing is missed and nothing comes twice, even
    an event whose change committed late. While `more` is true, ask again at once.
    """
    # Membership first, as the caller under row-level security; then the events, on the
    # worker's role: the server's role may publish events but never read them.
    async with caller.transaction() as (db, actor):
        memberships = await service.get_memberships(db, actor=actor)
    async with system_transaction(runtime.system_engine) as db:
        batch = await service.list_sync_events(db, memberships=memberships, since=since, limit=limit)
    return SyncPage(
        events=[SyncEvent.of(event) for event in batch.events],
        position=batch.position,
        more=batch.more,
        resync=batch.resync,
    )
