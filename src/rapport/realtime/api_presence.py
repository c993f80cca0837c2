"""The presence API: who is online, for clients that ask rather than follow the stream,
and a status for sessions that hold no socket."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from rapport.kernel.deps import CallerDep
from rapport.kernel.errors import ValidationFailed
from rapport.realtime import schemas_presence as s
from rapport.realtime import service

router = APIRouter(prefix="/v1", tags=["realtime"])


async def get_ephemeral(request: Request) -> service.Ephemeral:
    ephemeral: service.Ephemeral = request.app.state.ephemeral
    return ephemeral


EphemeralDep = Annotated[service.Ephemeral, Depends(get_ephemeral)]


def _user_ids(values: list[str]) -> list[UUID]:
    ids = []
    for value in (part.strip() for item in values for part in item.split(",")):
        if not value:
            continue
        try:
            ids.append(UUID(value))
        except ValueError:
            raise ValidationFailed(f"user_ids: {value[:40]!r} is not a user id.") from None
    if not ids:
        raise ValidationFailed("user_ids: name at least one person.")
    if len(set(ids)) > service.MAX_PRESENCE_IDS:
        raise ValidationFailed(f"user_ids: at most {service.MAX_PRESENCE_IDS} people at a time.")
    return ids


@router.get("/presence", response_model=s.PresenceList)
async def get_presence(
    caller: CallerDep,
    ephemeral: EphemeralDep,
    user_ids: Annotated[
        list[str],
        Query(
            description="The people to ask about: ids separated by commas, or the parameter repeated "
            f"(at most {service.MAX_PRESENCE_IDS} in all).",
        ),
    ],
) -> s.PresenceList:
    """Each person's status and last seen, as their privacy settings let the caller see
    them (`online_status_visibility`, `last_seen_visibility`: everyone, contacts or nobody;
    never across a block). Someone the caller may not see looks `offline` with no last
    seen, exactly like someone who is offline and hides when: the answer never tells the
    two apart. `last_seen_at` is given only for someone offline."""
    wanted = _user_ids(user_ids)
    async with caller.transaction() as (db, actor):
        items = await ephemeral.presence_of(db, viewer=actor, user_ids=wanted)
    return s.PresenceList(items=items)


@router.put("/presence", response_model=s.PresenceOut)
async def put_presence(body: s.PresenceUpdate, caller: CallerDep, ephemeral: EphemeralDep) -> s.PresenceOut:
    """Set the caller's status for this session while it holds no socket (a socket says
    it with a `presence` frame). It lasts a minute unless sent again; `offline` ends it at
    once. A person is online while any of their devices is; `invisible` shows them
    offline to everyone else. Answers the caller's own presence as it now stands."""
    async with caller.transaction() as (db, actor):
        ephemeral.put_status(actor, body.status)
        [mine] = await ephemeral.presence_of(db, viewer=actor, user_ids=[actor.user_id])
    return mine
