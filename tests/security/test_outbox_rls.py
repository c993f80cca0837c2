"""kernel.events holds what happened in everyone's conversations: the server's role may add
an event as the user it acts for, in that user's transaction, and nothing more; only the
worker's role, on which the reader runs, reads events."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rapport.kernel import outbox
from rapport.kernel.db import user_transaction
from rapport.kernel.ids import uuid7


def _refused(error: DBAPIError) -> bool:
    return isinstance(error.orig.__cause__, asyncpg.exceptions.InsufficientPrivilegeError)


async def _positions(runtime) -> list[int]:
    """The positions of the events these tests publish (signing the personas in publishes
    identity's own)."""
    async with runtime.system_engine.engine.connect() as db:
        query = "SELECT position FROM kernel.events WHERE type LIKE 'test.%' ORDER BY position"
        return list((await db.execute(text(query))).scalars())


async def test_mallory_cannot_read_change_or_delete_alices_events(runtime, app_engine, alice, mallory):
    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        await outbox.publish(
            db,
            scope=outbox.Scope.user(UUID(alice.user_id)),
            type="test.secret",
            payload={"code": "1"},
            actor_id=UUID(alice.user_id),
        )

    refused = []
    for statement in (
        "SELECT payload FROM kernel.events",
        "UPDATE kernel.events SET payload = '{}'",
        "DELETE FROM kernel.events",
    ):
        with pytest.raises(DBAPIError) as caught:
            async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
                await db.execute(text(statement))
        refused.append(_refused(caught.value))

    async with app_engine.connect() as db:
        table = (
            await db.execute(
                text("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'kernel.events'::regclass")
            )
        ).one()
    assert refused == [True] * 3
    assert tuple(table) == (True, True)
    assert len(await _positions(runtime)) == 1


async def test_mallory_cannot_publish_as_alice(app_engine, alice, mallory):
    with pytest.raises(DBAPIError) as caught:
        async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
            await outbox.publish(
                db,
                scope=outbox.Scope.conversation(uuid7()),
                type="test.forged",
                payload={},
                actor_id=UUID(alice.user_id),
            )

    assert _refused(caught.value)


async def test_a_writer_cannot_choose_its_position(runtime, app_engine, mallory):
    async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
        await db.execute(
            text(
                "INSERT INTO kernel.events (position, scope_kind, scope_id, type)"
                " VALUES (9223372036854775807, 'user', :id, 'test.forged')"
            ),
            {"id": UUID(mallory.user_id)},
        )

    [position] = await _positions(runtime)
    assert position != 9223372036854775807
    assert position >> outbox.ORDINAL_BITS > 0
