"""Kernel and audit objects move to the migrations of their owners.

Why: social's migrations made objects that are not social's: `kernel.in_definer()` and
`kernel.uuid7_like()` (2026_11_21_0003), and the audit schema's record of sensitive reads
and writes, `audit.sensitive_data_access` with `audit.record_sensitive_access()` and
`audit.record_sensitive_write()` (2026_11_21_0004). Every domain's policies and records
use them, so a reader looks for them with the kernel, which owns the `kernel` and `audit`
schemas (2026_11_21_0001), not in one domain's history.

Those two revisions are landed history and keep creating the objects. From this revision
on, the definitions in force are the ones below: each function is restated unchanged
with CREATE OR REPLACE (grants, owner and callers stay as they are), and each object's
COMMENT names its owner. A later change to any of them belongs in a kernel migration,
never in a domain's. The Core definition of `audit.sensitive_data_access` moves from
`rapport.social.models_parts` to `rapport.kernel.models` with it. Ownership in the
database's sense does not change: rapport_owner owns every object, whichever migration
made it.

Revision ID: 2026_11_29_0009
Revises: 2026_11_29_0008
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0009"
down_revision = "2026_11_29_0008"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


def upgrade() -> None:
    run_sql(
        """
        -- True inside a SECURITY DEFINER function owned by rapport_owner. Policies use it so
        -- that the few functions which must look across users (is a block in either
        -- direction? are two people contacts?) can, while rapport_app itself cannot.
        CREATE OR REPLACE FUNCTION kernel.in_definer() RETURNS boolean
            LANGUAGE sql STABLE PARALLEL SAFE
            AS $$ SELECT current_user = 'rapport_owner' $$;
        COMMENT ON FUNCTION kernel.in_definer() IS
            'Whether the current code runs as rapport_owner (a SECURITY DEFINER function). '
            'The kernel''s: every domain''s policies call it.';

        -- UUIDv7 made in SQL, for rows that definer functions insert (the application makes
        -- every other id).
        CREATE OR REPLACE FUNCTION kernel.uuid7_like() RETURNS uuid
            LANGUAGE sql VOLATILE
            AS $$
                SELECT encode(
                    set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                        placing substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                        FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
            $$;
        COMMENT ON FUNCTION kernel.uuid7_like() IS
            'A UUIDv7 (RFC 9562) made by the database. The kernel''s: for any domain''s definer functions.';

        COMMENT ON TABLE audit.sensitive_data_access IS
            'Every read (by the service, through audit.record_sensitive_access) and every write '
            '(by trigger) of sensitive data: whose, by whom, which table and fields. Never values. '
            'The audit schema''s (the kernel''s), for every domain that holds sensitive data.';

        -- Reads of sensitive data cannot be seen by a trigger: the service records each one
        -- through this function, in the transaction that reads. Only the data's owner (or
        -- system work) may record, so nobody can fill another's record with forged rows.
        CREATE OR REPLACE FUNCTION audit.record_sensitive_access(
            subject uuid, table_name text, action text, fields text[] DEFAULT '{}'
        ) RETURNS void
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            DECLARE
                caller uuid := auth.current_user_id();
            BEGIN
                IF NOT auth.is_system() AND (caller IS NULL OR caller <> subject) THEN
                    RAISE EXCEPTION 'only the owner of the data may record access to it'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                INSERT INTO audit.sensitive_data_access (user_id, accessed_by, table_name, action, fields)
                VALUES (subject, caller, record_sensitive_access.table_name, record_sensitive_access.action,
                        coalesce(record_sensitive_access.fields, '{}'));
            END
            $$;
        COMMENT ON FUNCTION audit.record_sensitive_access(uuid, text, text, text[]) IS
            'Record that the acting user read (or wrote) subject''s sensitive data. '
            'The audit schema''s (the kernel''s), for every domain that holds sensitive data.';

        -- Every write of a sensitive table, whatever path it takes: which fields changed,
        -- never their values (audit.record_change would copy them, so it is not used here).
        CREATE OR REPLACE FUNCTION audit.record_sensitive_write() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            DECLARE
                old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
                new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
                changed text[];
            BEGIN
                SELECT coalesce(array_agg(f.key ORDER BY f.key), '{}') INTO changed
                  FROM jsonb_object_keys(coalesce(new_row, old_row)) AS f(key)
                 WHERE f.key NOT IN ('user_id', 'created_at', 'updated_at')
                   AND nullif(new_row -> f.key, 'null') IS DISTINCT FROM nullif(old_row -> f.key, 'null');
                IF TG_OP = 'UPDATE' AND cardinality(changed) = 0 THEN
                    RETURN NULL;
                END IF;
                INSERT INTO audit.sensitive_data_access (user_id, accessed_by, table_name, action, fields)
                VALUES ((coalesce(new_row, old_row) ->> 'user_id')::uuid, auth.current_user_id(),
                        TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
                        CASE TG_OP WHEN 'DELETE' THEN 'delete' ELSE 'write' END, changed);
                RETURN NULL;
            END
            $$;
        COMMENT ON FUNCTION audit.record_sensitive_write() IS
            'AFTER ROW trigger of sensitive tables: records the write and the changed fields. '
            'The audit schema''s (the kernel''s), for every domain that holds sensitive data.';
        """
    )


def downgrade() -> None:
    # The functions were restated unchanged: only their comments go back.
    run_sql(
        """
        COMMENT ON FUNCTION kernel.in_definer() IS
            'Whether the current code runs as rapport_owner (a SECURITY DEFINER function).';
        COMMENT ON FUNCTION kernel.uuid7_like() IS 'A UUIDv7 (RFC 9562) made by the database.';
        COMMENT ON TABLE audit.sensitive_data_access IS
            'Every read (by the service, through audit.record_sensitive_access) and every write '
            '(by trigger) of sensitive data: whose, by whom, which table and fields. Never values.';
        COMMENT ON FUNCTION audit.record_sensitive_access(uuid, text, text, text[]) IS
            'Record that the acting user read (or wrote) subject''s sensitive data.';
        COMMENT ON FUNCTION audit.record_sensitive_write() IS
            'AFTER ROW trigger of sensitive tables: records the write and the changed fields.';
        """
    )
