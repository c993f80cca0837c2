"""Geofences (a circle or a polygon, a person's own or platform-wide) and the events of
entering and leaving them.

Whether a point is inside is PostgreSQL's to say (`location.in_geofence`: haversine
distance for a circle, ray casting for a polygon, migration 2026_11_30_0047): when a new
location arrives, one statement tests it and the previous location against every active
geofence the person is subject to (their own and the platform's) and writes an `enter`
where only the new one is inside, an `exit` where only the previous one was."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import bindparam, delete, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import PlatformAdminRequired
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.location.errors import GeofenceNotFound
from rapport.location.models import geofences, location_events
from rapport.location.schemas import GeofenceIn, GeofenceOut, GeofenceUpdate, LocationEventOut, LocationOut

_IS_ADMIN = text("SELECT access.is_platform_admin()")

_DETECT = text(
    """
    WITH fences AS (
        SELECT g.id,
               location.in_geofence(g.shape, g.center_latitude, g.center_longitude, g.radius_m, g.polygon,
                                    :latitude, :longitude) AS inside_now,
               coalesce(location.in_geofence(g.shape, g.center_latitude, g.center_longitude, g.radius_m, g.polygon,
                                             p.latitude, p.longitude), false) AS inside_before
          FROM location.geofences g
          LEFT JOIN location.user_locations p ON p.id = :previous_id
         WHERE g.is_active AND (g.owner_id = :user_id OR g.owner_id IS NULL)
    )
    INSERT INTO location.location_events
           (id, user_id, geofence_id, user_location_id, event_type, latitude, longitude, occurred_at)
    SELECT kernel.uuid7_like(), :user_id, f.id, :location_id,
           CASE WHEN f.inside_now THEN 'enter' ELSE 'exit' END, :latitude, :longitude, :occurred_at
      FROM fences f
     WHERE f.inside_now <> f.inside_before
     ORDER BY f.id
    RETURNING id, geofence_id, user_location_id, event_type, latitude, longitude, occurred_at, created_at
    """
).bindparams(
    bindparam("user_id", type_=PG_UUID(as_uuid=True)),
    bindparam("previous_id", type_=PG_UUID(as_uuid=True)),
    bindparam("location_id", type_=PG_UUID(as_uuid=True)),
)


async def detect_events(db: AsyncConnection, *, user_id: UUID, placed: LocationOut) -> list[LocationEventOut]:
    """The geofences a new location of the person's entered or left, written as events."""
    rows = await db.execute(
        _DETECT,
        {
            "user_id": user_id,
            "previous_id": placed.previous_location_id,
            "location_id": placed.id,
            "latitude": placed.latitude,
            "longitude": placed.longitude,
            "occurred_at": placed.captured_at,
        },
    )
    return [LocationEventOut.model_validate(dict(row._mapping)) for row in rows]


def geofence_out(row: AnyRow) -> GeofenceOut:
    center = (
        [row.center_latitude, row.center_longitude]
        if row.center_latitude is not None and row.center_longitude is not None
        else None
    )
    return GeofenceOut(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        shape=row.shape,
        center=center,
        radius_m=row.radius_m,
        polygon=row.polygon,
        is_active=row.is_active,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def do_create_geofence(db: AsyncConnection, *, actor: Actor, body: GeofenceIn) -> GeofenceOut:
    """Make a geofence: the actor's own, or platform-wide (administrators only).

    Raises:
        PlatformAdminRequired: `platform` asked by someone who is not an administrator.
    """
    if body.platform and not (await db.execute(_IS_ADMIN)).scalar_one():
        raise PlatformAdminRequired("Only platform administrators make platform-wide geofences.")
    values: dict[str, Any] = {
        "id": uuid7(),
        "owner_id": None if body.platform else actor.user_id,
        "created_by": actor.user_id,
        "name": body.name,
        "shape": body.shape,
    }
    if body.shape == "circle":
        assert body.center is not None
        values.update(center_latitude=body.center[0], center_longitude=body.center[1], radius_m=body.radius_m)
    else:
        values["polygon"] = orjson.loads(orjson.dumps(body.polygon))
    row = (await db.execute(insert(geofences).values(**values).returning(*geofences.c))).one()
    return geofence_out(row)


async def list_geofences(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[GeofenceOut]:
    """The actor's geofences and the platform's (administrators also see inactive ones), newest first."""
    query = keyset(
        select(geofences).where(or_(geofences.c.owner_id == actor.user_id, geofences.c.owner_id.is_(None))),
        geofences.c.id,
        page,
    )
    return make_page([geofence_out(row) for row in (await db.execute(query)).all()], page)


async def do_update_geofence(
    db: AsyncConnection, *, actor: Actor, geofence_id: UUID, changes: GeofenceUpdate
) -> GeofenceOut:
    """Rename a geofence the actor may change, or switch it off or on.

    Raises:
        GeofenceNotFound: missing, or neither theirs nor (for an administrator) the platform's.
    """
    values = changes.model_dump(exclude_unset=True)
    query = update(geofences).where(geofences.c.id == geofence_id)
    row = (await db.execute(query.values(**values).returning(*geofences.c))).one_or_none() if values else None
    if row is None:
        row = (await db.execute(select(geofences).where(geofences.c.id == geofence_id))).one_or_none()
        # Seeing a platform geofence is not changing it: the update's policy said no.
        if row is None or values:
            raise GeofenceNotFound()
    return geofence_out(row)


async def do_delete_geofence(db: AsyncConnection, *, actor: Actor, geofence_id: UUID) -> None:
    """Delete a geofence the actor may change; its events go with it.

    Raises:
        GeofenceNotFound: missing, or neither theirs nor (for an administrator) the platform's.
    """
    result = await db.execute(delete(geofences).where(geofences.c.id == geofence_id).returning(geofences.c.id))
    if result.first() is None:
        raise GeofenceNotFound()


async def list_events(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[LocationEventOut]:
    """The actor's geofence events, newest first."""
    query = keyset(
        select(location_events).where(location_events.c.user_id == actor.user_id), location_events.c.id, page
    )
    rows = (await db.execute(query)).all()
    return make_page([LocationEventOut.model_validate(dict(row._mapping)) for row in rows], page)
