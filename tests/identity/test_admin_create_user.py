"""`rapport admin create-user`: an operator makes an active, verified account, with a
mobile number when asked, and is told plainly when the address or number is taken or the
number is not one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL

from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn
from tests.support import PASSWORD, rapport_env

ROOT = Path(__file__).resolve().parents[2]


def create_user(admin_url: URL, database: DatabaseUrls, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rapport", "admin", "create-user", "--password", PASSWORD, *args],
        env=rapport_env(admin_url, database, COLUMNS="200"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def account(database: DatabaseUrls, email: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(asyncpg_dsn(database.admin.set(database=database.app.database)))
    try:
        query = "SELECT status, email_verified_at, phone_number, phone_verified_at FROM auth.users WHERE email = $1"
        return await conn.fetchrow(query, email)
    finally:
        await conn.close()


async def test_an_account_is_made_with_its_number_verified(admin_url: URL, database: DatabaseUrls) -> None:
    made = create_user(admin_url, database, "--email", "Ops@Example.com", "--phone", "+33 6 12 34 56 78")

    assert made.returncode == 0, made.stderr
    assert "created ops@example.com, +33612345678" in made.stdout
    row = await account(database, "ops@example.com")
    assert row is not None
    assert row["status"] == "active" and row["email_verified_at"] is not None
    assert (row["phone_number"], row["phone_verified_at"] is not None) == ("+33612345678", True)


async def test_a_number_taken_or_not_a_number_is_refused_and_nothing_is_made(
    admin_url: URL, database: DatabaseUrls
) -> None:
    assert create_user(admin_url, database, "--email", "first@example.com", "--phone", "+33612345678").returncode == 0

    taken = create_user(admin_url, database, "--email", "second@example.com", "--phone", "+33 6 12 34 56 78")
    assert taken.returncode == 1
    assert "phone number already exists" in taken.stderr
    not_a_number = create_user(admin_url, database, "--email", "third@example.com", "--phone", "0800 123 456")
    assert not_a_number.returncode == 2
    assert "--phone" in not_a_number.stderr
    assert await account(database, "second@example.com") is None
    assert await account(database, "third@example.com") is None
