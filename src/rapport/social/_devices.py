"""Devices a person uses Rapport on (seed 004 users.devices): registered by name, listed,
removed. Push tokens join them with notifications."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow, delete_owned
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.social.errors import DeviceNotFound, TooManyDevices
from rapport.social.models_parts import devices
from rapport.social.schemas_parts import DeviceOut, DeviceRegisterRequest

# Far more than anyone uses; a bound keeps a script from filling the table.
MAX_DEVICES = 50


async def do_register_device(
    db: AsyncConnection, *, actor: Actor, device: DeviceRegisterRequest
) -> tuple[DeviceOut, bool]:
    """Register a device, or update the one of the same name (regardless of case) and
    mark it seen now. Returns the device and whether it is new.

    Raises:
        TooManyDevices: the actor has MAX_DEVICES devices and this name is new.
    """
    existing = (
        await db.execute(
            select(func.count())
            .select_from(devices)
            .where(devices.c.user_id == actor.user_id, func.lower(devices.c.name) != func.lower(device.name))
        )
    ).scalar_one()
    if existing >= MAX_DEVICES:
        raise TooManyDevices(f"An account may register at most {MAX_DEVICES} devices.")
    values = device.model_dump()
    upsert = insert(devices).values(id=uuid7(), user_id=actor.user_id, **values)
    row = (
        await db.execute(
            upsert.on_conflict_do_update(
                index_elements=[devices.c.user_id, func.lower(devices.c.name)],
                set_={**{name: upsert.excluded[name] for name in values}, "last_seen_at": func.now()},
            ).returning(devices, (literal_column("xmax") == 0).label("inserted"))
        )
    ).one()
    return _out(row), row.inserted


async def list_devices(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[DeviceOut]:
    query = keyset(select(devices).where(devices.c.user_id == actor.user_id), devices.c.id, page)
    return make_page([_out(row) for row in (await db.execute(query)).all()], page)


async def access_device(db: AsyncConnection, *, actor: Actor, device_id: UUID) -> DeviceOut:
    """One of the actor's devices.

    Raises:
        DeviceNotFound: no device with this id belongs to the actor.
    """
    row = (
        await db.execute(select(devices).where(devices.c.id == device_id, devices.c.user_id == actor.user_id))
    ).one_or_none()
    if row is None:
        raise DeviceNotFound
    return _out(row)


async def do_remove_device(db: AsyncConnection, *, actor: Actor, device_id: UUID) -> None:
    """Forget one of the actor's devices.

    Raises:
        DeviceNotFound: no device with this id belongs to the actor.
    """
    if not await delete_owned(db, devices, row_id=device_id, user_id=actor.user_id):
        raise DeviceNotFound


def _out(row: AnyRow) -> DeviceOut:
    return DeviceOut(
        id=row.id,
        name=row.name,
        device_type=row.device_type,
        platform=row.platform,
        app_version=row.app_version,
        os_version=row.os_version,
        last_seen_at=row.last_seen_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
