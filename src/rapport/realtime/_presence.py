"""Presence: what this process knows of everyone's status, and who may see it.

A person's status is the most present of their devices' (online > busy > away >
invisible > offline), over every process: each process counts the devices connected to
it (sockets, and sessions that said their status over HTTP, for a while) and tells the
others its count per person on the bus, when it changes and again every heartbeat. What a
process heard from another lapses unless a heartbeat refreshes it, so the people a dead
process held go offline within the TTL. `invisible` is shown to everyone else as
`offline`.

`last_seen_at` is the last moment someone was visibly present (online, away or busy). The
process holding their device writes it at most once a minute while they are present and
once more when they leave (realtime.presence); the others hear the moment they left on
the bus. Who may see what is decided in PostgreSQL from the person's privacy settings and
blocks (migration 2026_11_29_0018): `presence_visibility` for a viewer asking,
`presence_audience` for who hears a change live.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args
from uuid import UUID

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

Status = Literal["online", "away", "busy", "invisible", "offline"]
STATUSES: frozenset[str] = frozenset(get_args(Status))
# How present each status is: a person's status is their most present device's.
RANK: dict[Status, int] = {"offline": 0, "invisible": 1, "away": 2, "busy": 3, "online": 4}
VISIBLE: frozenset[Status] = frozenset({"online", "away", "busy"})
# People whose last seen this process keeps in memory; beyond it the database answers.
LAST_SEEN_KEPT = 100_000


def most_present(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=RANK.__getitem__, default="offline")


def shown(status: Status) -> Status:
    """What others see of a status."""
    return "offline" if status == "invisible" else status


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """A timestamp as the API writes one (pydantic's form: `...Z`)."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def presence_frame(user_id: UUID, status: Status, last_seen_at: datetime | None) -> dict[str, Any]:
    """The protocol's `presence` frame, as others see it (never `invisible`)."""
    seen = shown(status)
    return {
        "type": "presence",
        "user_id": str(user_id),
        "status": seen,
        "last_seen_at": iso(last_seen_at) if seen == "offline" else None,
    }


@dataclass
class _Timed:
    status: Status
    until: float


class PresenceBook:
    """This process's knowledge: its own devices, what the other processes said, the
    status last worked out for each person, and last-seen moments. Pure memory; the
    caller says what time it is (`time.monotonic()`), so tests need not wait."""

    def __init__(self) -> None:
        self.sockets: dict[UUID, dict[str, Status]] = {}
        self.timed: dict[UUID, dict[str, _Timed]] = {}
        # process token -> person -> (their status on that process, when last heard)
        self.remote: dict[str, dict[UUID, tuple[Status, float]]] = {}
        # The status last worked out per person; absent means offline.
        self.current: dict[UUID, Status] = {}
        self.last_seen: dict[UUID, datetime] = {}

    def local(self, user_id: UUID, *, now: float) -> Status:
        """The person's status from this process's devices alone."""
        sockets = self.sockets.get(user_id, {}).values()
        timed = (t.status for t in self.timed.get(user_id, {}).values() if t.until > now)
        return most_present([*sockets, *timed])

    def status(self, user_id: UUID, *, now: float) -> Status:
        """The person's status over every process."""
        heard = (entry[0] for entry in (p.get(user_id) for p in self.remote.values()) if entry is not None)
        return most_present([self.local(user_id, now=now), *heard])

    def local_people(self) -> set[UUID]:
        return set(self.sockets) | set(self.timed)

    def connected(self) -> set[UUID]:
        """The people with a socket here (those a delivery can reach)."""
        return set(self.sockets)

    def connect(self, user_id: UUID, device_id: str) -> None:
        self.sockets.setdefault(user_id, {})[device_id] = "online"

    def disconnect(self, user_id: UUID, device_id: str) -> None:
        devices = self.sockets.get(user_id)
        if devices is not None:
            devices.pop(device_id, None)
            if not devices:
                del self.sockets[user_id]

    def set_socket_status(self, user_id: UUID, device_id: str, status: Status) -> bool:
        """False when no such socket is connected here."""
        devices = self.sockets.get(user_id)
        if devices is None or device_id not in devices:
            return False
        devices[device_id] = status
        return True

    def set_timed(self, user_id: UUID, device_id: str, status: Status, *, until: float) -> None:
        if status == "offline":
            self.drop_timed(user_id, device_id)
            return
        self.timed.setdefault(user_id, {})[device_id] = _Timed(status, until)

    def drop_timed(self, user_id: UUID, device_id: str) -> bool:
        devices = self.timed.get(user_id)
        if devices is None or devices.pop(device_id, None) is None:
            return False
        if not devices:
            del self.timed[user_id]
        return True

    def expire_timed(self, *, now: float) -> set[UUID]:
        """Forget the HTTP statuses that lapsed; the people they belonged to."""
        lapsed = set()
        for user_id in list(self.timed):
            devices = self.timed[user_id]
            for device_id in [d for d, t in devices.items() if t.until <= now]:
                del devices[device_id]
                lapsed.add(user_id)
            if not devices:
                del self.timed[user_id]
        return lapsed

    def heard(self, process: str, user_id: UUID, status: Status, *, now: float) -> None:
        people = self.remote.setdefault(process, {})
        if status == "offline":
            people.pop(user_id, None)
            if not people:
                del self.remote[process]
        else:
            people[user_id] = (status, now)

    def forget_process(self, process: str) -> set[UUID]:
        return set(self.remote.pop(process, {}))

    def expire_remote(self, *, older_than: float) -> set[UUID]:
        """Forget what other processes said and did not repeat since `older_than`."""
        lapsed = set()
        for process in list(self.remote):
            people = self.remote[process]
            for user_id in [u for u, (_, at) in people.items() if at < older_than]:
                del people[user_id]
                lapsed.add(user_id)
            if not people:
                del self.remote[process]
        return lapsed

    def saw(self, user_id: UUID, moment: datetime) -> None:
        """Keep the latest last-seen moment of someone, within LAST_SEEN_KEPT people."""
        known = self.last_seen.get(user_id)
        if known is None or moment > known:
            self.last_seen.pop(user_id, None)  # re-inserted last: the dict's order is its age
            self.last_seen[user_id] = moment
            if len(self.last_seen) > LAST_SEEN_KEPT:
                del self.last_seen[next(iter(self.last_seen))]

    def beats(self, *, now: float, per_signal: int = 100) -> Iterator[dict[str, Status]]:
        """This process's people and statuses, in chunks small enough for one signal each."""
        chunk: dict[str, Status] = {}
        for user_id in self.local_people():
            status = self.local(user_id, now=now)
            if status == "offline":
                continue
            chunk[str(user_id)] = status
            if len(chunk) >= per_signal:
                yield chunk
                chunk = {}
        if chunk:
            yield chunk


def monotonic() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class Visibility:
    sees_status: bool
    sees_last_seen: bool
    last_seen_at: datetime | None


_VISIBILITY = text(
    "SELECT user_id, sees_status, sees_last_seen, last_seen_at FROM realtime.presence_visibility(:subjects)"
).bindparams(bindparam("subjects", type_=ARRAY(PG_UUID(as_uuid=True))))
_AUDIENCE = text("SELECT user_id, sees_last_seen FROM realtime.presence_audience(:subject)")
_RECORD = text("SELECT realtime.record_last_seen(:users, :seen)").bindparams(
    bindparam("users", type_=ARRAY(PG_UUID(as_uuid=True))),
    bindparam("seen", type_=ARRAY(TIMESTAMP(timezone=True))),
)


async def get_visibility(db: AsyncConnection, *, user_ids: list[UUID]) -> dict[UUID, Visibility]:
    """What the acting user may see of each of these people (accounts only); run it in the
    viewer's own transaction."""
    rows = (await db.execute(_VISIBILITY, {"subjects": user_ids})).all()
    return {row.user_id: Visibility(row.sees_status, row.sees_last_seen, row.last_seen_at) for row in rows}


async def get_audience(db: AsyncConnection, *, user_id: UUID) -> dict[UUID, bool]:
    """Who hears this person's status change live, each with whether they may see the
    last seen; run it as system work."""
    rows = (await db.execute(_AUDIENCE, {"subject": user_id})).all()
    return {row.user_id: row.sees_last_seen for row in rows}


async def record_last_seen(db: AsyncConnection, *, seen: dict[UUID, datetime]) -> None:
    """Store last-seen moments (a later one is kept over an earlier); run it as system work."""
    if seen:
        users = list(seen)
        await db.execute(_RECORD, {"users": users, "seen": [seen[u] for u in users]})
