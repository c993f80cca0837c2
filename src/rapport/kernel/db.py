"""The database engine and the two ways to open a transaction.

Every transaction states who acts, with `set_config(..., true)`: the setting lives only
as long as the transaction, so it cannot leak to the next user of a pooled connection and
it survives PgBouncer in transaction mode. Row-level security policies read it through
`auth.current_user_id()` and `auth.is_system()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from rapport.kernel.errors import RapportError

_SET_USER = text("SELECT set_config('rapport.user_id', :user_id, true)")
_SET_SYSTEM = text("SELECT set_config('rapport.system', 'on', true)")


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        json_serializer=lambda value: orjson.dumps(value).decode(),
        json_deserializer=orjson.loads,
    )


@asynccontextmanager
async def _transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Commits when the block ends normally and rolls back when it raises, except for
    errors that say `keeps_changes`: a wrong password must still count toward a lock."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        except RapportError as error:
            if error.keeps_changes:
                await transaction.commit()
            else:
                await transaction.rollback()
            raise
        except BaseException:
            await transaction.rollback()
            raise
        else:
            await transaction.commit()


@asynccontextmanager
async def user_transaction(engine: AsyncEngine, user_id: UUID) -> AsyncIterator[AsyncConnection]:
    """A transaction acting as one user: row-level security shows only what they may see."""
    async with _transaction(engine) as conn:
        await conn.execute(_SET_USER, {"user_id": str(user_id)})
        yield conn


@asynccontextmanager
async def system_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction for work no single user owns: sign-in before the user is known,
    token lookups, jobs. Policies admit it through `auth.is_system()`.
    """
    async with _transaction(engine) as conn:
        await conn.execute(_SET_SYSTEM)
        yield conn


async def act_as(conn: AsyncConnection, user_id: UUID) -> None:
    """Switch a system transaction to one user's context once that user is known.

    Sign-in starts as system work (the user is unknown until the credentials check
    out) and continues as the user, so what follows is checked by their policies.
    """
    await conn.execute(_SET_USER, {"user_id": str(user_id)})
    await conn.execute(text("SELECT set_config('rapport.system', '', true)"))


async def elevate_to_system(conn: AsyncConnection) -> None:
    """Turn the rest of a user's transaction into system work, after the caller has been
    authorised for it (an administrator granting a badge). Policies then admit it."""
    await conn.execute(_SET_SYSTEM)
