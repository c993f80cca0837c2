"""What the access tests share: grants made as system work, a platform administrator,
and the outbox and audit rows read back as the owner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import text

from rapport.access import service
from rapport.kernel.db import system_transaction
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from rapport.kernel.runtime import Runtime
from tests.compliance.admin_support import make_admin
from tests.support import Persona


async def grant(runtime: Runtime, persona: Persona, role: str, conversation_id: UUID | None = None) -> UUID:
    """Grant a role as system work (as the demo and the command line do); the grant's id."""
    async with system_transaction(runtime.system_engine) as db:
        return await service.grant_role_system(db, UUID(persona.user_id), role, conversation_id)


async def revoke(runtime: Runtime, persona: Persona, role: str, conversation_id: UUID | None = None) -> bool:
    async with system_transaction(runtime.system_engine) as db:
        return await service.revoke_role_system(db, UUID(persona.user_id), role, conversation_id)


async def superuser_fetch(database: DatabaseUrls, query: str, *args: object) -> list[asyncpg.Record]:
    """Rows read or changed as the superuser, whom no policy binds (as an operator would)."""
    conn = await asyncpg.connect(asyncpg_dsn(database.admin.set(database=database.app.database)))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def grant_events(runtime: Runtime) -> list[tuple[str, str, str, dict[str, str | None]]]:
    """The access events in the outbox, in order: (type, scope kind, scope id, payload), as
    its readers see them."""
    async with system_transaction(runtime.system_engine) as db:
        rows = await db.execute(
            text(
                "SELECT type, scope_kind, scope_id::text AS scope_id, payload FROM kernel.events"
                " WHERE type LIKE 'access.%' ORDER BY position"
            )
        )
        return [(row.type, row.scope_kind, row.scope_id, row.payload) for row in rows]


async def admin_actions(database: DatabaseUrls) -> list[asyncpg.Record]:
    """audit.admin_actions, oldest first."""
    return await superuser_fetch(database, "SELECT * FROM audit.admin_actions ORDER BY id")


@pytest.fixture(name="admin")
async def admin_persona(make_persona: Callable[[str], Awaitable[Persona]], runtime: Runtime) -> Persona:
    """Ada, a platform administrator."""
    return await make_admin(runtime, await make_persona("ada"))
