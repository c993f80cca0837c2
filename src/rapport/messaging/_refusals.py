"""Where messaging's SQL refusals (RM codes, rapport.messaging.errors.refusal_of) become
Rapport's errors: one block for any statement, on either driver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import Executable
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.messaging.errors import refusal_of


@asynccontextmanager
async def refusals() -> AsyncIterator[None]:
    """Turns the refusals messaging's functions and triggers raise into Rapport's errors;
    any other database error stays what it is (a bug)."""
    try:
        yield
    except (DBAPIError, asyncpg.PostgresError) as error:
        refusal = refusal_of(error)
        if refusal is None:
            raise
        raise refusal from None


async def execute(db: AsyncConnection, statement: Executable, params: dict[str, Any] | None = None) -> Any:
    """Run a statement whose functions or triggers may refuse, as the refusal's error."""
    async with refusals():
        return await db.execute(statement, params)
