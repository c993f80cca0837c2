"""The one linear history upgrades, downgrades and upgrades again, with rows in it."""

from __future__ import annotations

import os

import asyncpg
import pytest
from sqlalchemy import text

from rapport.kernel import migrate, provisioning
from rapport.kernel.db import create_system_engine, system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.provisioning import asyncpg_dsn
from tests.support import make_settings


@pytest.fixture
async def empty_database(admin_url):
    name = f"rapport_migrations_{os.getpid()}"
    settings = make_settings()
    urls = provisioning.urls_for(admin_url, database=name, settings=settings)
    await provisioning.provision(urls, settings)
    yield urls
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _schemas(url) -> set[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname IN ('auth', 'audit', 'kernel')")
        return {row["nspname"] for row in rows}
    finally:
        await conn.close()


async def _insert_account_with_session(url) -> None:
    engine = create_system_engine(url, pool_size=1)
    try:
        async with system_transaction(engine) as db:
            user_id = uuid7()
            await db.execute(
                text("INSERT INTO auth.users (id, email, status) VALUES (:id, :email, 'active')"),
                {"id": user_id, "email": f"{user_id.hex[:8]}@example.com"},
            )
            await db.execute(
                text(
                    "INSERT INTO auth.sessions (id, user_id, expires_at)"
                    " VALUES (:id, :user_id, now() + interval '1 day')"
                ),
                {"id": uuid7(), "user_id": user_id},
            )
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade_with_rows(empty_database):
    urls = empty_database
    await migrate.upgrade(urls.owner)
    assert await migrate.current_revision(urls.owner) == migrate.head_revision()
    await _insert_account_with_session(urls.worker)

    await migrate.downgrade(urls.owner, "base")
    assert await migrate.current_revision(urls.owner) is None
    assert await _schemas(urls.owner) == set()

    await migrate.upgrade(urls.owner)
    assert await migrate.current_revision(urls.owner) == migrate.head_revision()
    await _insert_account_with_session(urls.worker)


async def test_each_step_down_and_up_again_with_rows(empty_database):
    urls = empty_database
    await migrate.upgrade(urls.owner)
    await _insert_account_with_session(urls.worker)
    head = migrate.head_revision()
    await migrate.downgrade(urls.owner, "-1")
    assert await migrate.current_revision(urls.owner) not in (None, head)
    await migrate.upgrade(urls.owner)
    assert await migrate.current_revision(urls.owner) == head


async def test_audit_trigger_records_changes_and_redacts_secrets(empty_database):
    urls = empty_database
    await migrate.upgrade(urls.owner)
    engine = create_system_engine(urls.worker, pool_size=1)
    try:
        user_id = uuid7()
        async with system_transaction(engine) as db:
            await db.execute(
                text(
                    "INSERT INTO auth.users (id, email, password_hash, status)"
                    " VALUES (:id, 'x@example.com', 'secret-hash', 'pending')"
                ),
                {"id": user_id},
            )
        async with system_transaction(engine) as db:
            await db.execute(text("SELECT set_config('rapport.user_id', :id, true)"), {"id": str(user_id)})
            await db.execute(
                text("UPDATE auth.users SET status = 'active', password_hash = 'other-hash' WHERE id = :id"),
                {"id": user_id},
            )
        async with system_transaction(engine) as db:
            rows = (
                await db.execute(
                    text(
                        "SELECT operation, old_data, new_data, changed_fields, acting_user_id, transaction_id "
                        "FROM audit.record_changes WHERE table_name = 'users' ORDER BY id"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    insert, update = rows
    assert insert.operation == "INSERT" and insert.new_data["email"] == "x@example.com"
    assert "password_hash" not in insert.new_data
    assert update.operation == "UPDATE"
    assert update.changed_fields == ["password_hash", "status"]
    assert update.old_data["status"] == "pending" and update.new_data["status"] == "active"
    assert "password_hash" not in update.new_data and "password_hash" not in update.old_data
    assert update.acting_user_id == user_id
    assert update.transaction_id != insert.transaction_id
