"""What the messaging security tests share: running a statement as `rapport_app` in one
person's context (or in nobody's) and saying why PostgreSQL refused it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from rapport.kernel.db import user_transaction
from tests.support import Persona

DENIED = "permission denied"  # no privilege on the table, the column or the function
POLICY = "row-level security"  # a policy's WITH CHECK refused the row


def why(error: DBAPIError) -> str:
    """Why PostgreSQL refused: DENIED, POLICY, or the SQLSTATE and slug a messaging
    function or trigger raised (`RM403 not-allowed`)."""
    cause = error.orig.__cause__ if error.orig is not None else None
    if isinstance(cause, asyncpg.exceptions.InsufficientPrivilegeError):
        return POLICY if "row-level security" in str(cause) else DENIED
    if isinstance(cause, asyncpg.PostgresError) and str(cause.sqlstate).startswith("RM"):
        return f"{cause.sqlstate} {cause}"
    return type(cause).__name__


async def attempt(engine: AsyncEngine, who: Persona | None, statement: str, **params: Any) -> Any:
    """The first column of the first row the statement returns (None for no row), run as
    `who` or naming no user; or why PostgreSQL refused it."""
    try:
        if who is None:
            async with engine.begin() as db:
                result = await db.execute(text(statement), params)
                return result.scalar() if result.returns_rows else None
        async with user_transaction(engine, UUID(who.user_id)) as db:
            result = await db.execute(text(statement), params)
            return result.scalar() if result.returns_rows else None
    except DBAPIError as error:
        return why(error)


async def changed(engine: AsyncEngine, who: Persona, statement: str, **params: Any) -> Any:
    """How many rows an UPDATE or DELETE (ending in RETURNING 1) changed, or why it was refused."""
    return await attempt(engine, who, f"WITH done AS ({statement}) SELECT count(*) FROM done", **params)
