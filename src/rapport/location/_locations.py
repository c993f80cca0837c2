"""A person's locations: each measured from the one captured just before it (distance by
`location.calculate_distance`, time, speed, movement flags), then tested against the
geofences they are subject to.

Devices add theirs in the person's own transaction (`do_add_location`); sign-ins add an
`ip_based` one as system work (rapport.location._signins)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.location._geofences import detect_events
from rapport.location.errors import CapturedAtOutOfRange
from rapport.location.models import suspicious_locations, user_locations
from rapport.location.schemas import (
    LocationIn,
    LocationOut,
    LocationRecorded,
    LocationType,
    SuspiciousLocationOut,
)

# Faster than walking pace, farther than both accuracies: moving.
MOVING_KMH = 5.0
# A device may send what it measured while offline, up to a week late.
OLDEST = timedelta(days=7)
# Clocks differ a little.
CLOCK_SKEW = timedelta(minutes=5)

_PREVIOUS = text(
    """
    SELECT l.id, l.accuracy_m, l.captured_at, l.country_code,
           CAST(location.calculate_distance(l.latitude, l.longitude, :latitude, :longitude) AS double precision)
               AS distance_km
      FROM location.user_locations l
     WHERE l.user_id = :user_id AND l.captured_at <= :captured_at
     ORDER BY l.captured_at DESC, l.id DESC
     LIMIT 1
    """
).bindparams(bindparam("user_id", type_=PG_UUID(as_uuid=True)))


@dataclass(frozen=True)
class Previous:
    """The location before a new one, and how far and how long ago it was."""

    id: UUID
    accuracy_m: float | None
    captured_at: datetime
    country_code: str | None
    distance_km: float


@dataclass(frozen=True)
class Placed:
    location: LocationOut
    previous: Previous | None


async def previous_location(
    db: AsyncConnection, *, user_id: UUID, latitude: float, longitude: float, captured_at: datetime
) -> Previous | None:
    """The person's last location captured at or before `captured_at`, with its distance
    to the new point."""
    row = (
        await db.execute(
            _PREVIOUS, {"user_id": user_id, "latitude": latitude, "longitude": longitude, "captured_at": captured_at}
        )
    ).one_or_none()
    if row is None:
        return None
    return Previous(row.id, row.accuracy_m, row.captured_at, row.country_code, float(row.distance_km))


async def place_location(
    db: AsyncConnection,
    *,
    user_id: UUID,
    location_type: LocationType,
    latitude: float,
    longitude: float,
    accuracy_m: float | None,
    captured_at: datetime,
    country_code: str | None = None,
    region: str | None = None,
    city: str | None = None,
    ip_address: str | None = None,
) -> Placed:
    """Record a location measured from the previous one (in whichever transaction may
    write it: the person's, or system work for a sign-in)."""
    previous = await previous_location(
        db, user_id=user_id, latitude=latitude, longitude=longitude, captured_at=captured_at
    )
    distance = seconds = speed = None
    moving = new_country = False
    if previous is not None:
        distance = previous.distance_km
        seconds = (captured_at - previous.captured_at).total_seconds()
        speed = distance / (seconds / 3600) if seconds > 0 else None
        allowance_km = ((previous.accuracy_m or 0) + (accuracy_m or 0)) / 1000
        moving = distance > allowance_km and speed is not None and speed > MOVING_KMH
        new_country = None not in (country_code, previous.country_code) and country_code != previous.country_code
    row = (
        await db.execute(
            insert(user_locations)
            .values(
                id=uuid7(),
                user_id=user_id,
                location_type=location_type,
                latitude=latitude,
                longitude=longitude,
                accuracy_m=accuracy_m,
                country_code=country_code,
                region=region,
                city=city,
                ip_address=ip_address,
                previous_location_id=previous.id if previous else None,
                distance_km=distance,
                seconds_since_previous=seconds,
                speed_kmh=speed,
                is_moving=moving,
                is_new_country=new_country,
                captured_at=captured_at,
            )
            .returning(*user_locations.c)
        )
    ).one()
    return Placed(location=location_out(row), previous=previous)


def location_out(row: AnyRow) -> LocationOut:
    data = dict(row._mapping)
    data["ip_address"] = str(data["ip_address"]) if data.get("ip_address") is not None else None
    return LocationOut.model_validate(data)


async def do_add_location(db: AsyncConnection, *, actor: Actor, body: LocationIn) -> LocationRecorded:
    """Add a location a device of the actor's measured, with the geofences it entered or
    left (each also published to the person's devices as `location.geofence`).

    Raises:
        CapturedAtOutOfRange: measured in the future or more than a week ago.
    """
    now = datetime.now(UTC)
    captured_at = body.captured_at or now
    if captured_at.tzinfo is None:
        captured_at = captured_at.replace(tzinfo=UTC)
    if captured_at > now + CLOCK_SKEW or captured_at < now - OLDEST:
        raise CapturedAtOutOfRange(
            f"captured_at {captured_at.isoformat()} is not within the last week "
            f"(the server's time is {now.isoformat()})"
        )
    placed = await place_location(
        db,
        user_id=actor.user_id,
        location_type=body.location_type,
        latitude=body.latitude,
        longitude=body.longitude,
        accuracy_m=body.accuracy_m,
        captured_at=captured_at,
    )
    events = await detect_events(db, user_id=actor.user_id, placed=placed.location)
    for event in events:
        await publish(
            db,
            scope=Scope.user(actor.user_id),
            type="location.geofence",
            payload={"event_id": str(event.id), "geofence_id": str(event.geofence_id), "event_type": event.event_type},
            actor_id=actor.user_id,
        )
    return LocationRecorded(location=placed.location, events=events)


async def list_locations(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[LocationOut]:
    """The actor's locations, newest first (by when they were recorded)."""
    query = keyset(select(user_locations).where(user_locations.c.user_id == actor.user_id), user_locations.c.id, page)
    rows = (await db.execute(query)).all()
    return make_page([location_out(row) for row in rows], page)


async def list_suspicious(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[SuspiciousLocationOut]:
    """The actor's sign-ins flagged as impossible travel or from a risky address, newest first."""
    query = keyset(
        select(suspicious_locations).where(suspicious_locations.c.user_id == actor.user_id),
        suspicious_locations.c.id,
        page,
    )
    items = []
    for row in (await db.execute(query)).all():
        data = dict(row._mapping)
        data["ip_address"] = str(data["ip_address"])
        items.append(SuspiciousLocationOut.model_validate(data))
    return make_page(items, page)
