"""The database engines and the two ways to open a transaction.

Every transaction states who acts, with `set_config(..., true)`: the setting lives only
as long as the transaction, so it cannot leak to the next user of a pooled connection and
it survives PgBouncer in transaction mode (with RAPPORT_DATABASE_PGBOUNCER, prepared
statements do too: `pooler_connect_args`). Row-level security policies read it through
`auth.current_user_id()` and `auth.is_system()`.

User work runs on the main pool, connected as `rapport_app`. System work (sign-in before
the user is known, token lookups, jobs) runs on a small pool of its own connected as
`rapport_worker`: `auth.is_system()` is true only for that role, so a statement smuggled
into a user's transaction cannot turn itself into system work by setting a variable
(docs/decisions/0001).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias
from uuid import UUID, uuid4

import orjson
from sqlalchemy import Row, Table, delete, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from rapport.kernel.errors import RapportError
from rapport.kernel.outbox import transaction_ended
from rapport.kernel.provisioning import WORKER_ROLE

_SET_USER = text("SELECT set_config('rapport.user_id', :user_id, true)")
_SET_SYSTEM = text("SELECT set_config('rapport.system', 'on', true)")
_CLEAR_SYSTEM = text("SELECT set_config('rapport.system', '', true)")

# A result row of any shape, read by column name (`row.user_id`): what `select(table)` and
# `text(...)` give. A row mapper takes this, not `Row[Any]` (a row of exactly one column).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


def _statement_name() -> str:
    return f"__rapport_{uuid4().hex}__"


def pooler_connect_args(pgbouncer: bool) -> dict[str, Any]:
    """The asyncpg driver's options for a connection that may go through PgBouncer in
    transaction pooling: a prepared statement lives on one server connection, which the
    next transaction may not get. SQLAlchemy's statements are neither cached nor reused,
    each under a name no other client of that server connection can have taken, and run
    inside the transaction that prepared them; asyncpg's own (type introspection) are
    unnamed, prepared and run in one exchange (SQLAlchemy's recipe for PgBouncer)."""
    if not pgbouncer:
        return {}
    return {
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _statement_name,
        "statement_cache_size": 0,
    }


def create_engine(
    url: URL | str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    pgbouncer: bool = False,
    connect_timeout: float | None = None,
) -> AsyncEngine:
    connect_args = pooler_connect_args(pgbouncer)
    if connect_timeout is not None:
        connect_args["timeout"] = connect_timeout
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_pre_ping=False,
        json_serializer=lambda value: orjson.dumps(value).decode(),
        json_deserializer=orjson.loads,
        connect_args=connect_args,
    )


class SystemEngine:
    """The pool for system work, connected as `rapport_worker`.

    A type of its own so that a system transaction cannot be opened on the user pool by
    mistake: `system_transaction` takes only this, and only `create_system_engine` makes
    one, for a URL naming `rapport_worker`.
    """

    __slots__ = ("engine",)

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_system_engine(url: URL | str, *, pool_size: int = 10, pgbouncer: bool = False) -> SystemEngine:
    """The system pool: sign-in, token refresh and API-key lookups, each holding a
    connection only for a few short statements, and the job worker's claims.

    Raises:
        ValueError: the URL connects as another role than `rapport_worker`.
    """
    parsed = make_url(url)
    if parsed.username != WORKER_ROLE:
        raise ValueError(f"System work connects as {WORKER_ROLE}, not as {parsed.username!r}.")
    # No overflow: an overflow connection is closed as soon as it is returned, so a burst
    # of refreshes beyond the pool would start and end a PostgreSQL backend per request
    # (measured: a third of refresh throughput lost). Short waits for a pooled connection
    # cost far less.
    return SystemEngine(create_engine(parsed, pool_size=pool_size, max_overflow=0, pgbouncer=pgbouncer))


@asynccontextmanager
async def _transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Commits when the block ends normally and rolls back when it raises, except for
    errors that say `keeps_changes`: a wrong password must still count toward a lock."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        # Taken now: once a failed connection is invalidated, reaching it again would reconnect.
        info = conn.info
        try:
            yield conn
        except RapportError as error:
            if error.keeps_changes:
                await transaction.commit()
            else:
                await transaction.rollback()
            transaction_ended(info, committed=error.keeps_changes)
            raise
        except BaseException:
            await transaction.rollback()
            transaction_ended(info, committed=False)
            raise
        else:
            await transaction.commit()
            transaction_ended(info, committed=True)


@asynccontextmanager
async def user_transaction(engine: AsyncEngine, user_id: UUID) -> AsyncIterator[AsyncConnection]:
    """A transaction acting as one user: row-level security shows only what they may see."""
    async with _transaction(engine) as conn:
        await conn.execute(_SET_USER, {"user_id": str(user_id)})
        yield conn


def _system_pool(engine: object) -> AsyncEngine:
    # Checked at run time too: tests, scripts and the CLI are not all type-checked.
    if not isinstance(engine, SystemEngine):
        raise TypeError("A system transaction runs on Runtime.system_engine (rapport_worker), not the user pool.")
    return engine.engine


@asynccontextmanager
async def system_transaction(engine: SystemEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction for work no single user owns: sign-in before the user is known,
    token lookups, jobs. Policies admit it through `auth.is_system()`, which holds only
    on the system pool's role.

    Raises:
        TypeError: `engine` is not the system pool.
    """
    async with _transaction(_system_pool(engine)) as conn:
        await conn.execute(_SET_SYSTEM)
        yield conn


async def act_as(conn: AsyncConnection, user_id: UUID) -> None:
    """Switch a system transaction to one user's context once that user is known.

    Sign-in starts as system work (the user is unknown until the credentials check
    out) and continues as the user, so what follows is checked by their policies. The
    connection is still `rapport_worker`'s: run no request-supplied work on it; a
    request's own work belongs in a `user_transaction` on the user pool.
    """
    await conn.execute(_SET_USER, {"user_id": str(user_id)})
    await conn.execute(_CLEAR_SYSTEM)


async def delete_owned(db: AsyncConnection, table: Table, *, row_id: UUID, user_id: UUID) -> bool:
    """Delete the row of `table` with this `id` if its `user_id` is `user_id`; returns
    whether it did (a row of someone else's and no row at all look the same)."""
    statement = delete(table).where(table.c.id == row_id, table.c.user_id == user_id).returning(table.c.id)
    return (await db.execute(statement)).one_or_none() is not None
