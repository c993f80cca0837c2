"""What the analytics report tests share: past months' partitions of analytics.events,
people who signed up on known days, events with known timestamps (inserted directly as
system work, as the rollup reads them), and an administrator."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime

# A Monday long past: its month and the next have no partition until a test makes them.
MONDAY = date(2025, 3, 3)


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A moment of a UTC day."""
    return datetime.combine(day, time(hour, minute, second, micro), tzinfo=UTC)


def days(first: date, n: int) -> list[date]:
    return [first + timedelta(days=k) for k in range(n)]


@dataclass(frozen=True)
class Event:
    name: str
    when: datetime
    user: UUID | None = None
    session: UUID | None = None
    properties: dict[str, Any] = field(default_factory=dict)


async def _superuser(database: DatabaseUrls) -> asyncpg.Connection:
    """The superuser, on the test's database (fixtures only: what no role of Rapport may do)."""
    return await asyncpg.connect(asyncpg_dsn(database.admin.set(database=database.owner.database)))


async def make_months(database: DatabaseUrls, *months: date) -> None:
    """Partitions of analytics.events for past months, made as kernel.ensure_partitions
    makes them (owned by the owner, row-level security forced, no grants)."""
    conn = await _superuser(database)
    try:
        await conn.execute("SET ROLE rapport_owner")
        for month in months:
            start = month.replace(day=1)
            end = (start + timedelta(days=32)).replace(day=1)
            name = f"analytics.events_p{start:%Y%m}"
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF analytics.events"
                f" FOR VALUES FROM ('{start} 00:00+00') TO ('{end} 00:00+00');"
                f" ALTER TABLE {name} ENABLE ROW LEVEL SECURITY; ALTER TABLE {name} FORCE ROW LEVEL SECURITY;"
            )
    finally:
        await conn.close()


async def people_signed_up(database: DatabaseUrls, **signed_up: datetime) -> dict[str, UUID]:
    """Accounts of people made at the given moments (by name), active and verified."""
    ids = {name: uuid7() for name in signed_up}
    conn = await _superuser(database)
    try:
        for name, moment in signed_up.items():
            await conn.execute(
                "INSERT INTO auth.users (id, email, status, email_verified_at, created_at, updated_at)"
                " VALUES ($1, $2, 'active', $3, $3, $3)",
                ids[name],
                f"{name}.{ids[name].hex[:8]}@example.com",
                moment,
            )
    finally:
        await conn.close()
    return ids


_EVENT = text(
    """
    INSERT INTO analytics.events (id, created_at, event_timestamp, user_id, session_id, event_name, source, properties)
    VALUES (:id, :at, :at, :user_id, :session_id, :name, 'client', CAST(:properties AS jsonb))
    """
)


async def add_events(runtime: Runtime, events: Iterable[Event]) -> None:
    """Insert events as system work, each received at its `when`."""
    async with system_transaction(runtime.system_engine) as db:
        for event in events:
            await db.execute(
                _EVENT,
                {
                    "id": uuid7(),
                    "at": event.when,
                    "user_id": event.user,
                    "session_id": event.session,
                    "name": event.name,
                    "properties": orjson.dumps(event.properties).decode(),
                },
            )


async def system_rows(runtime: Runtime, statement: str, **params: Any) -> list[Any]:
    async with system_transaction(runtime.system_engine) as db:
        return list((await db.execute(text(statement), params)).all())


async def rollup(runtime: Runtime, *on: date) -> None:
    async with system_transaction(runtime.system_engine) as db:
        for day in on:
            await db.execute(text("SELECT analytics.rollup_day(:day)"), {"day": day})


async def files_owned(database: DatabaseUrls, owner: UUID, *files: tuple[str, int, datetime]) -> None:
    """Stored files of `owner` as (kind, bytes, made at), with blobs of their own."""
    conn = await _superuser(database)
    try:
        for n, (kind, size, made) in enumerate(files):
            digest = uuid7().bytes * 2
            await conn.execute(
                "INSERT INTO media.blobs (sha256, size_bytes, content_type, storage_provider, storage_key)"
                " VALUES ($1, $2, 'application/octet-stream', 'local', $3)",
                digest,
                size,
                digest.hex(),
            )
            await conn.execute(
                "INSERT INTO media.files (id, owner_id, file_name, content_type, kind, size_bytes, sha256, status,"
                " created_at) VALUES ($1, $2, $3, 'application/octet-stream', $4, $5, $6, 'ready', $7)",
                uuid7(),
                owner,
                f"file-{n}",
                kind,
                size,
                digest,
                made,
            )
    finally:
        await conn.close()
