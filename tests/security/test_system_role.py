"""System work is a database role of its own, not a setting: as `rapport_app`, switching
`rapport.system` on reaches nobody's rows, and `rapport_app` cannot become
`rapport_worker` (docs/decisions/0001)."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rapport.kernel.db import create_system_engine, system_transaction, user_transaction
from rapport.kernel.provisioning import DatabaseUrls, ProvisioningError, asyncpg_dsn, check_role_separation
from rapport.kernel.runtime import Runtime
from tests.support import Persona

pytestmark = pytest.mark.module_database

SWITCH_ON = text("SELECT set_config('rapport.system', 'on', true)")


def _cause(error: DBAPIError) -> BaseException | None:
    """The asyncpg error under SQLAlchemy's wrapping."""
    return error.orig.__cause__ if error.orig is not None else None


async def _rows_of(db: AsyncConnection, user: Persona) -> dict[str, int]:
    counts = {
        "auth.users": "SELECT count(*) FROM auth.users WHERE id = :id",
        "auth.sessions": "SELECT count(*) FROM auth.sessions WHERE user_id = :id",
        "auth.login_history": "SELECT count(*) FROM auth.login_history WHERE user_id = :id",
        "social.settings": "SELECT count(*) FROM social.settings WHERE user_id = :id",
    }
    return {
        name: (await db.execute(text(sql), {"id": UUID(user.user_id)})).scalar_one() for name, sql in counts.items()
    }


async def test_the_setting_gives_rapport_app_no_system_context(app_engine: AsyncEngine, alice: Persona) -> None:
    async with app_engine.begin() as db:
        await db.execute(SWITCH_ON)
        is_system = (await db.execute(text("SELECT auth.is_system()"))).scalar_one()
        users = (await db.execute(text("SELECT count(*) FROM auth.users"))).scalar_one()
        hashes = (await db.execute(text("SELECT count(password_hash) FROM auth.users"))).scalar_one()

    assert (is_system, users, hashes) == (False, 0, 0)


async def test_mallory_switching_the_setting_on_sees_none_of_alices_rows(
    app_engine: AsyncEngine, alice: Persona, mallory: Persona
) -> None:
    async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
        await db.execute(SWITCH_ON)
        seen = await _rows_of(db, alice)
        everyone = (await db.execute(text("SELECT count(*) FROM auth.users"))).scalar_one()

    assert seen == dict.fromkeys(seen, 0)
    assert everyone == 1  # herself: the policies filter, they do not merely hide everything


async def test_mallory_switching_the_setting_on_changes_none_of_alices_rows(
    app_engine: AsyncEngine, alice: Persona, mallory: Persona
) -> None:
    async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
        await db.execute(SWITCH_ON)
        changed = await db.execute(
            text("UPDATE auth.users SET password_hash = 'x' WHERE id = :id"), {"id": UUID(alice.user_id)}
        )

    assert changed.rowcount == 0


async def test_the_setting_does_not_unlock_the_audit_log(app_engine: AsyncEngine, alice: Persona) -> None:
    async with app_engine.begin() as db:
        await db.execute(SWITCH_ON)
        records = (await db.execute(text("SELECT count(*) FROM audit.record_changes"))).scalar_one()

    assert records == 0


@pytest.mark.personas_sign_in
async def test_system_work_on_the_worker_role_does_see_alice(runtime: Runtime, alice: Persona) -> None:
    async with system_transaction(runtime.system_engine) as db:
        seen = await _rows_of(db, alice)
        who = (await db.execute(text("SELECT session_user, auth.is_system()"))).one()

    assert all(seen.values()), seen
    assert tuple(who) == ("rapport_worker", True)


@pytest.mark.parametrize(
    "statement", ["SET ROLE rapport_worker", "SET SESSION AUTHORIZATION rapport_worker", "SET ROLE rapport_owner"]
)
async def test_rapport_app_cannot_become_another_role(app_engine: AsyncEngine, statement: str) -> None:
    with pytest.raises(DBAPIError) as caught:
        async with app_engine.begin() as db:
            await db.execute(text(statement))

    assert isinstance(_cause(caught.value), asyncpg.exceptions.InsufficientPrivilegeError)


async def test_rapport_app_is_no_member_of_the_worker_role(app_engine: AsyncEngine) -> None:
    async with app_engine.connect() as db:
        member = (await db.execute(text("SELECT pg_has_role('rapport_worker', 'MEMBER')"))).scalar_one()

    assert member is False


async def test_provisioning_refuses_an_app_role_that_can_become_the_worker(database: DatabaseUrls) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database.admin))
    try:
        await check_role_separation(conn)  # as provisioned: fine
        # Roles belong to the whole server: the grant is never committed, so no other
        # test ever sees it.
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("GRANT rapport_worker TO rapport_app")
            with pytest.raises(ProvisioningError, match="member of rapport_worker"):
                await check_role_separation(conn)
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


async def test_a_system_transaction_refuses_the_user_pool(runtime: Runtime) -> None:
    with pytest.raises(TypeError):
        async with system_transaction(runtime.engine):  # type: ignore[arg-type]
            pass


def test_the_system_pool_refuses_another_role(database: DatabaseUrls) -> None:
    with pytest.raises(ValueError, match="rapport_worker"):
        create_system_engine(database.app)


# The verified badge: granted in the administrator's own transaction by a definer function
# that checks who calls it, not by turning a user's transaction into system work.


async def test_a_user_cannot_grant_herself_the_badge_through_sql(app_engine: AsyncEngine, mallory: Persona) -> None:
    with pytest.raises(DBAPIError) as caught:
        async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
            await db.execute(SWITCH_ON)
            await db.execute(text("SELECT * FROM social.set_verified_badge(:id, true)"), {"id": UUID(mallory.user_id)})

    assert isinstance(_cause(caught.value), asyncpg.exceptions.InsufficientPrivilegeError)


async def test_nobody_can_grant_the_badge_with_no_user_set(app_engine: AsyncEngine, alice: Persona) -> None:
    with pytest.raises(DBAPIError) as caught:
        async with app_engine.begin() as db:
            await db.execute(text("SELECT * FROM social.set_verified_badge(:id, true)"), {"id": UUID(alice.user_id)})

    assert isinstance(_cause(caught.value), asyncpg.exceptions.InsufficientPrivilegeError)


async def test_an_administrator_grants_the_badge_in_her_own_transaction(
    app_engine: AsyncEngine, runtime: Runtime, alice: Persona, bob: Persona
) -> None:
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(text("UPDATE auth.users SET is_admin = true WHERE id = :id"), {"id": UUID(alice.user_id)})

    async with user_transaction(app_engine, UUID(alice.user_id)) as db:
        row = (
            await db.execute(text("SELECT * FROM social.set_verified_badge(:id, true)"), {"id": UUID(bob.user_id)})
        ).one()
        is_system = (await db.execute(text("SELECT auth.is_system()"))).scalar_one()

    assert (str(row.user_id), row.is_verified, is_system) == (bob.user_id, True, False)
