"""Locations: where a person has been (their devices' GPS, Wi-Fi and cell fixes, and the
places of their sign-ins' addresses), the sign-ins flagged as impossible travel or from
a risky address, geofences and the entering and leaving of them. Each person reads only
their own."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import Page
from rapport.location import schemas as s
from rapport.location import service

router = APIRouter(prefix="/v1", tags=["location"])


@router.post("/me/locations", response_model=s.LocationRecorded, status_code=status.HTTP_201_CREATED)
async def add_location(body: s.LocationIn, caller: CallerDep) -> s.LocationRecorded:
    """Add a location your device measured (`gps`, `wifi` or `cell_tower`, with its
    accuracy in metres). The answer holds it, measured from your previous location
    (distance by haversine, time, speed, whether you are moving or in a new country), and
    the geofences it entered or left (also sent to your devices as `location.geofence`).

    Errors: 422 `validation-error` (coordinates out of range, `ip_based`) or
    `captured-at-out-of-range`."""
    async with caller.transaction() as (db, actor):
        return await service.do_add_location(db, actor=actor, body=body)


@router.get("/me/locations", response_model=Page[s.LocationOut])
async def list_locations(caller: CallerDep, page: PageDep) -> Page[s.LocationOut]:
    """Your locations, newest first: those your devices sent and those of your sign-ins."""
    async with caller.transaction() as (db, actor):
        return await service.list_locations(db, actor=actor, page=page)


@router.get("/me/locations/suspicious", response_model=Page[s.SuspiciousLocationOut])
async def list_suspicious(caller: CallerDep, page: PageDep) -> Page[s.SuspiciousLocationOut]:
    """Your sign-ins flagged as impossible travel or from a risky address, newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_suspicious(db, actor=actor, page=page)


@router.get("/me/location-events", response_model=Page[s.LocationEventOut])
async def list_location_events(caller: CallerDep, page: PageDep) -> Page[s.LocationEventOut]:
    """Your entering and leaving of geofences, newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_events(db, actor=actor, page=page)


@router.get("/geofences", response_model=Page[s.GeofenceOut])
async def list_geofences(caller: CallerDep, page: PageDep) -> Page[s.GeofenceOut]:
    """Your geofences and the platform's active ones (administrators: every platform one)."""
    async with caller.transaction() as (db, actor):
        return await service.list_geofences(db, actor=actor, page=page)


@router.post("/geofences", response_model=s.GeofenceOut, status_code=status.HTTP_201_CREATED)
async def create_geofence(body: s.GeofenceIn, caller: CallerDep) -> s.GeofenceOut:
    """Make a geofence: a circle (`center` [lat, lon] and `radius_m`) or a polygon
    (`polygon`, three [lat, lon] points or more), yours or, with `platform: true`,
    everyone's (administrators only). Your next locations are tested against it.

    Errors: 403 `platform-admin-required`; 422 `validation-error`."""
    async with caller.transaction() as (db, actor):
        return await service.do_create_geofence(db, actor=actor, body=body)


@router.patch("/geofences/{geofence_id}", response_model=s.GeofenceOut)
async def update_geofence(geofence_id: UUID, body: s.GeofenceUpdate, caller: CallerDep) -> s.GeofenceOut:
    """Rename a geofence of yours (administrators: a platform one), or switch it off or on.

    Errors: 404 `geofence-not-found`."""
    async with caller.transaction() as (db, actor):
        return await service.do_update_geofence(db, actor=actor, geofence_id=geofence_id, changes=body)


@router.delete("/geofences/{geofence_id}", **NO_CONTENT)
async def delete_geofence(geofence_id: UUID, caller: CallerDep) -> None:
    """Delete a geofence of yours (administrators: a platform one), with its events.

    Errors: 404 `geofence-not-found`."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_geofence(db, actor=actor, geofence_id=geofence_id)
