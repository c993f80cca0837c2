"""What the compliance tests of consents, administrators, breaches and the audit share: a
platform administrator persona."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from tests.support import Persona


async def make_admin(runtime: Runtime, persona: Persona) -> Persona:
    """Make a persona a platform administrator, as an operator would (system work)."""
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("UPDATE auth.users SET is_admin = true WHERE id = :id"), {"id": UUID(persona.user_id)})
    return persona


@pytest.fixture(name="admin")
async def admin_persona(make_persona: Callable[[str], Awaitable[Persona]], runtime: Runtime) -> Persona:
    """Ada, a platform administrator."""
    return await make_admin(runtime, await make_persona("ada"))
