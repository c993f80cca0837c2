"""Row-level security on the `auth` schema, through SQL as `rapport_app`, the role the
server connects as. Whatever bug a query might have, PostgreSQL itself shows mallory none
of alice's rows, lets her change none, and shows nothing to a transaction that names no
user (in any schema). That every table forces row-level security is checked once, for
every schema, in test_every_table.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pyotp
import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from rapport.identity import models as m
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.ids import uuid7

pytestmark = pytest.mark.module_database

# Every auth table holding one user's rows, with the column naming that user.
OWNED = {
    m.users: m.users.c.id,
    m.identities: m.identities.c.user_id,
    m.sessions: m.sessions.c.user_id,
    m.refresh_tokens: m.refresh_tokens.c.user_id,
    m.otp_verifications: m.otp_verifications.c.user_id,
    m.totp_credentials: m.totp_credentials.c.user_id,
    m.recovery_codes: m.recovery_codes.c.user_id,
    m.api_keys: m.api_keys.c.user_id,
    m.login_history: m.login_history.c.user_id,
    m.security_events: m.security_events.c.user_id,
}
ALL_AUTH_TABLES = [*OWNED, m.login_throttle]


@pytest.fixture
async def alice_everywhere(client, runtime, alice, mallory):
    """Alice with a row in every auth table, and sign-in failures in the throttle."""
    headers = alice.headers
    secret = (await client.post("/v1/auth/totp", headers=headers)).json()["secret"]
    confirmed = await client.post("/v1/auth/totp/confirm", headers=headers, json={"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200, confirmed.text
    assert (await client.post("/v1/auth/api-keys", headers=headers, json={"name": "bot"})).status_code == 201
    assert (await client.post("/v1/auth/password/forgot", json={"email": alice.email})).status_code == 202
    wrong = await client.post("/v1/auth/login", json={"email": alice.email, "password": "not the password"})
    assert wrong.status_code == 401
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            insert(m.identities).values(
                id=uuid7(),
                user_id=UUID(alice.user_id),
                provider="google",
                subject="alice-google-subject",
                email=alice.email,
            )
        )
        for table, owner in OWNED.items():
            count = (
                await db.execute(select(func.count()).select_from(table).where(owner == UUID(alice.user_id)))
            ).scalar_one()
            assert count > 0, f"alice has no row in {table.fullname}: the test would prove nothing"
        assert (await db.execute(select(func.count()).select_from(m.login_throttle))).scalar_one() > 0
    return alice


# Every table of a schema (or of every schema Rapport owns), found in the catalogue rather
# than listed here: a table added later is checked without anyone remembering to add it. `user_id` names the owner
# (`id` for auth.users); a table without one (auth.login_throttle) is system-only.
_TABLES_OF_SCHEMA = text(
    """
    SELECT format('%I.%I', n.nspname, c.relname) AS name,
           CASE WHEN n.nspname = 'auth' AND c.relname = 'users' THEN 'id'
                WHEN EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                              AND a.attname = 'user_id' AND NOT a.attisdropped) THEN 'user_id'
           END AS owner_column
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspowner = 'rapport_owner'::regrole AND n.nspname = coalesce(CAST(:schema AS text), n.nspname)
       AND c.relkind IN ('r', 'p') AND NOT c.relispartition
     ORDER BY 1
    """
)


async def _tables(db, schema: str | None) -> list:
    """The tables of one schema, or of every schema Rapport owns (None)."""
    return (await db.execute(_TABLES_OF_SCHEMA, {"schema": schema})).all()


async def test_mallory_sees_none_of_alices_rows(app_engine, alice_everywhere, mallory):
    mallory_id = UUID(mallory.user_id)
    owners_seen: dict[str, set[UUID]] = {}
    unowned_rows: dict[str, int] = {}

    async with user_transaction(app_engine, mallory_id) as db:
        for table in await _tables(db, "auth"):
            if table.owner_column:
                owners = await db.execute(text(f"SELECT DISTINCT {table.owner_column} FROM {table.name}"))
                owners_seen[table.name] = set(owners.scalars())
            else:
                unowned_rows[table.name] = (await db.execute(text(f"SELECT count(*) FROM {table.name}"))).scalar_one()
        by_id = (
            await db.execute(select(m.sessions.c.id).where(m.sessions.c.id == UUID(alice_everywhere.session_id)))
        ).all()

    assert set(owners_seen) >= {table.fullname for table in OWNED}
    assert {name: owners - {mallory_id} for name, owners in owners_seen.items()} == {n: set() for n in owners_seen}
    assert unowned_rows == dict.fromkeys(unowned_rows, 0)
    assert by_id == []
    # She does see her own: the policies filter, they do not merely hide everything.
    assert owners_seen["auth.users"] == {mallory_id}
    assert owners_seen["auth.sessions"] == {mallory_id}


async def test_mallory_updates_and_deletes_none_of_alices_rows(app_engine, runtime, alice_everywhere, mallory):
    alice_id = UUID(alice_everywhere.user_id)
    counts = {}

    async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
        for table in (m.sessions, m.api_keys, m.totp_credentials, m.recovery_codes, m.refresh_tokens):
            owner = OWNED[table]
            touched = await db.execute(update(table).where(owner == alice_id).values(user_id=alice_id))
            counts[f"update {table.fullname}"] = touched.rowcount
            gone = await db.execute(delete(table).where(owner == alice_id))
            counts[f"delete {table.fullname}"] = gone.rowcount
        revoked = await db.execute(
            update(m.sessions)
            .where(m.sessions.c.id == UUID(alice_everywhere.session_id))
            .values(revoked_at=func.now(), revoked_reason="revoked")
        )
        counts["revoke alice's session"] = revoked.rowcount

    assert counts == dict.fromkeys(counts, 0)
    async with system_transaction(runtime.system_engine) as db:
        live = (
            await db.execute(
                select(m.sessions.c.revoked_at).where(m.sessions.c.id == UUID(alice_everywhere.session_id))
            )
        ).scalar_one()
    assert live is None


def _rows_for(user_id: UUID, session_id: UUID) -> dict:
    """One insertable row per owned table, all naming `user_id`."""
    soon = datetime.now(UTC) + timedelta(days=1)
    return {
        m.users: {
            "id": uuid7(),
            "email": "forged@example.com",
            "status": "active",
            "is_admin": True,
            "failed_login_attempts": 0,
        },
        m.identities: {"id": uuid7(), "user_id": user_id, "provider": "google", "subject": "forged"},
        m.sessions: {"id": uuid7(), "user_id": user_id, "expires_at": soon},
        m.refresh_tokens: {
            "id": uuid7(),
            "session_id": session_id,
            "user_id": user_id,
            "token_hash": b"\0" * 32,
            "expires_at": soon,
        },
        m.otp_verifications: {
            "id": uuid7(),
            "user_id": user_id,
            "purpose": "password_reset",
            "identifier": "alice@example.com",
            "code_hash": b"\0" * 32,
            "max_attempts": 5,
            "expires_at": soon,
        },
        m.totp_credentials: {"user_id": user_id, "secret_encrypted": b"forged"},
        m.recovery_codes: {"id": uuid7(), "user_id": user_id, "code_hash": b"\0" * 32},
        m.api_keys: {
            "id": uuid7(),
            "user_id": user_id,
            "name": "forged",
            "prefix": "rk_forged",
            "key_hash": b"\1" * 32,
        },
        m.login_history: {"id": uuid7(), "user_id": user_id, "method": "password", "succeeded": True},
        m.security_events: {"id": uuid7(), "user_id": user_id, "event_type": "forged", "details": {}},
    }


def _is_rls_violation(error: DBAPIError) -> bool:
    cause = error.orig.__cause__
    return isinstance(cause, asyncpg.exceptions.InsufficientPrivilegeError) and "row-level security" in str(cause)


async def test_mallory_cannot_insert_rows_naming_alice(app_engine, alice, mallory):
    refused = {}

    for table, values in _rows_for(UUID(alice.user_id), UUID(alice.session_id)).items():
        with pytest.raises(DBAPIError) as caught:
            async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
                await db.execute(insert(table).values(**values))
        refused[table.fullname] = _is_rls_violation(caught.value)

    assert refused == dict.fromkeys(refused, True)


async def test_mallory_cannot_hand_her_rows_to_alice(app_engine, alice, mallory):
    with pytest.raises(DBAPIError) as caught:
        async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
            await db.execute(
                update(m.sessions)
                .where(m.sessions.c.user_id == UUID(mallory.user_id))
                .values(user_id=UUID(alice.user_id))
            )

    assert _is_rls_violation(caught.value)


async def test_mallory_cannot_write_the_append_only_records(app_engine, mallory):
    for statement in (
        update(m.login_history).values(succeeded=True),
        delete(m.security_events),
    ):
        with pytest.raises(DBAPIError) as caught:
            async with user_transaction(app_engine, UUID(mallory.user_id)) as db:
                await db.execute(statement)
        assert isinstance(caught.value.orig.__cause__, asyncpg.exceptions.InsufficientPrivilegeError)


async def _rows_seen(db, table: str) -> int | str:
    """How many rows of `table` the transaction sees, or "refused" when its role may not
    read the table at all (a grant held back: stronger than a policy)."""
    try:
        async with db.begin_nested():
            return (await db.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
    except DBAPIError as error:
        if isinstance(error.orig.__cause__, asyncpg.exceptions.InsufficientPrivilegeError):
            return "refused"
        raise


async def test_a_transaction_naming_no_user_sees_nothing(app_engine, alice_everywhere):
    async with app_engine.begin() as db:
        tables = [t.name for t in await _tables(db, None)]
        seen = {name: await _rows_seen(db, name) for name in tables}

    assert set(seen) >= {table.fullname for table in ALL_AUTH_TABLES} | {"audit.record_changes"}
    assert {name: rows for name, rows in seen.items() if rows not in (0, "refused")} == {}


async def test_audit_log_is_read_only_in_system_context(app_engine, runtime, alice_everywhere):
    count = text("SELECT count(*) FROM audit.record_changes")
    async with user_transaction(app_engine, UUID(alice_everywhere.user_id)) as db:
        as_alice = (await db.execute(count)).scalar_one()
    async with system_transaction(runtime.system_engine) as db:
        as_system = (await db.execute(count)).scalar_one()

    assert as_alice == 0
    assert as_system > 0


async def test_system_work_cannot_rewrite_the_audit_log(runtime):
    statements = [
        "INSERT INTO audit.record_changes (schema_name, table_name, operation, transaction_id) "
        "VALUES ('auth', 'users', 'DELETE', 1)",
        "UPDATE audit.record_changes SET new_data = NULL",
        "DELETE FROM audit.record_changes",
    ]

    for statement in statements:
        with pytest.raises(DBAPIError) as caught:
            async with system_transaction(runtime.system_engine) as db:
                await db.execute(text(statement))
        assert isinstance(caught.value.orig.__cause__, asyncpg.exceptions.InsufficientPrivilegeError), statement


async def test_app_role_is_neither_superuser_nor_bypassrls(app_engine):
    async with app_engine.connect() as db:
        role = (
            await db.execute(
                text(
                    "SELECT rolname, rolsuper, rolbypassrls, "
                    "       pg_has_role(current_user, 'rapport_owner', 'MEMBER') AS owner_member "
                    "  FROM pg_roles WHERE rolname = current_user"
                )
            )
        ).one()

    assert role.rolname == "rapport_app"
    assert (role.rolsuper, role.rolbypassrls, role.owner_member) == (False, False, False)


async def test_audit_records_alices_account_without_her_password_hash(runtime, client, alice):
    changed = await client.post(
        "/v1/auth/password/change",
        headers=alice.headers,
        json={"current_password": alice.password, "new_password": "a new long passphrase"},
    )
    assert changed.status_code == 204, changed.text

    async with system_transaction(runtime.system_engine) as db:
        rows = (
            await db.execute(
                text(
                    "SELECT operation, old_data, new_data, changed_fields, acting_user_id "
                    "  FROM audit.record_changes "
                    " WHERE schema_name = 'auth' AND table_name = 'users' "
                    "   AND coalesce(new_data, old_data) ->> 'id' = :id ORDER BY id"
                ),
                {"id": alice.user_id},
            )
        ).all()

    inserted, password_changed = rows[0], rows[-1]
    assert inserted.operation == "INSERT"
    assert inserted.old_data is None
    assert inserted.new_data["email"] == alice.email
    assert "password_hash" not in inserted.new_data
    assert password_changed.operation == "UPDATE"
    assert password_changed.changed_fields == ["password_hash"]
    assert "password_hash" not in password_changed.old_data
    assert "password_hash" not in password_changed.new_data
    assert str(password_changed.acting_user_id) == alice.user_id
    assert all("argon2" not in str(row.old_data) + str(row.new_data) for row in rows)


async def test_audit_redacts_totp_secrets_and_api_key_hashes(runtime, alice_everywhere):
    async with system_transaction(runtime.system_engine) as db:
        rows = (
            await db.execute(
                text(
                    "SELECT table_name, new_data FROM audit.record_changes "
                    " WHERE table_name IN ('totp_credentials', 'api_keys') AND operation = 'INSERT'"
                )
            )
        ).all()

    assert {row.table_name for row in rows} == {"totp_credentials", "api_keys"}
    assert all("secret_encrypted" not in row.new_data and "key_hash" not in row.new_data for row in rows)
