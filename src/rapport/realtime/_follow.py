"""Following the stream from a position: catch up from the database, then live, with no
gap and no duplicate (docs/REALTIME.md, "Resume").

1. The hub starts keeping, for this follower, every event the feed dispatches from now on
   (`Hub.begin`): all of them, since which conversations are the follower's is not known yet.
2. Memberships are read as the follower, under row-level security; their barrier is taken
   after step 1, so they are exact for everything the feed had dispatched before it.
3. The events after the asked position are read from the database exactly as
   `GET /v1/sync` reads them, until it says there are no more: the position reached is
   then at or past where the kept events begin.
4. The hub replays the kept events beyond that position through the follower's windows,
   and routes live events to it from then on (`Hub.go_live`), in one step of the loop.
   If it kept too many meanwhile, it catches up again from where the database read reached.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from rapport.kernel.actor import Credential
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from rapport.messaging import service as messaging
from rapport.realtime._connection import Connection, Delivery, Frame
from rapport.realtime._hub import Hub
from rapport.realtime.errors import InvalidPosition

RETENTION_DETAIL = "Events after this position are no longer kept: reload your state, then follow from `position`."


@dataclass(frozen=True)
class Ready:
    """Authenticated and registered: the follower starts after `position`."""

    position: int


def parse_position(value: str | None) -> int | None:
    """A position from a query parameter or a `Last-Event-ID` header; None when absent.

    Raises:
        InvalidPosition: not an integer between 0 and the largest position.
    """
    if value is None or value == "":
        return None
    try:
        position = int(value)
    except ValueError:
        raise InvalidPosition("A position is a non-negative integer, as the stream gave it.") from None
    if not 0 <= position <= messaging.MAX_POSITION:
        raise InvalidPosition("A position is a non-negative integer, as the stream gave it.")
    return position


async def follow(
    connection: Connection, *, credential: Credential, runtime: Runtime, hub: Hub, since: int | None
) -> AsyncIterator[Ready | Delivery | Frame]:
    """Ready, then every event after `since` (or after now) the follower may receive, read
    from the database; then `caught_up`, once the follower is live on the hub.

    Raises:
        InvalidToken: the session or API key no longer holds.
    """
    hub.begin(connection)
    ready = False
    while True:
        async with credential.transaction(session_required=False) as (db, actor):
            memberships = await messaging.get_memberships(db, actor=actor)
        if not ready:
            ready = True
            # Absent, `since` is now: everything below the memberships' barrier has
            # committed, whatever the client did before connecting included.
            position = since if since is not None else memberships.known_below - 1
            yield Ready(position)
        while True:
            async with system_transaction(runtime.system_engine) as db:
                batch = await messaging.list_sync_events(
                    db, memberships=memberships, since=position, limit=messaging.MAX_SYNC_LIMIT
                )
            if batch.resync:
                yield Frame.of({"type": "resync", "position": batch.position, "detail": RETENTION_DETAIL})
            for event in batch.events:
                yield Delivery(event)
            position = batch.position
            if not batch.more:
                break
        if hub.go_live(connection, memberships=memberships, caught_up_to=position):
            yield Frame.of({"type": "caught_up", "position": position})
            return
        hub.begin(connection)
