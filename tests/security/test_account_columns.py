"""A user's own row is theirs to read and to change the password of, not to promote."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from rapport.kernel.db import system_transaction, user_transaction

pytestmark = pytest.mark.module_database


@pytest.mark.parametrize(
    "assignment",
    [
        "is_admin = true",
        "status = 'active', email_verified_at = NULL",
        "email = 'someone-else@example.com'",
        "failed_login_attempts = 0, locked_until = NULL, deleted_at = now()",
    ],
)
async def test_mallory_cannot_raise_her_own_privileges_as_rapport_app(app_engine, mallory, assignment):
    with pytest.raises(DBAPIError, match="only system work"):
        async with user_transaction(app_engine, mallory.user_id) as db:
            await db.execute(text(f"UPDATE auth.users SET {assignment} WHERE id = :id"), {"id": mallory.user_id})


async def test_a_user_may_change_their_own_password_hash(app_engine, alice):
    async with user_transaction(app_engine, alice.user_id) as db:
        changed = await db.execute(
            text("UPDATE auth.users SET password_hash = 'x' WHERE id = :id"), {"id": alice.user_id}
        )
    assert changed.rowcount == 1


async def test_system_work_may_change_status(runtime, alice):
    async with system_transaction(runtime.system_engine) as db:
        changed = await db.execute(
            text("UPDATE auth.users SET status = 'suspended' WHERE id = :id"), {"id": alice.user_id}
        )
    assert changed.rowcount == 1
