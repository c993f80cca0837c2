"""Kernel: the shared schemas, functions, grants and the generic audit trigger.

Why: every domain's policies call `auth.current_user_id()`, every table keeps
`updated_at` by one trigger, and every monitored table writes `audit.record_changes`
through one function.

Revision ID: 2026_11_21_0001
Revises:
Create Date: 2026-11-21
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_21_0001"
down_revision = None
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
        CREATE SCHEMA kernel;
        COMMENT ON SCHEMA kernel IS 'Functions every domain shares.';
        CREATE SCHEMA auth;
        COMMENT ON SCHEMA auth IS 'Identity: accounts, credentials, sessions, tokens.';
        CREATE SCHEMA audit;
        COMMENT ON SCHEMA audit IS 'Change and access records for compliance.';

        GRANT USAGE ON SCHEMA kernel, auth, audit TO rapport_app, rapport_worker;

        -- The acting user of the current transaction, as set by
        -- rapport.kernel.db.user_transaction; NULL when none is set.
        CREATE FUNCTION auth.current_user_id() RETURNS uuid
            LANGUAGE sql STABLE PARALLEL SAFE
            AS $$ SELECT nullif(current_setting('rapport.user_id', true), '')::uuid $$;
        COMMENT ON FUNCTION auth.current_user_id() IS
            'The user the current transaction acts for (rapport.user_id), or NULL.';

        -- True inside rapport.kernel.db.system_transaction: work no single user owns.
        CREATE FUNCTION auth.is_system() RETURNS boolean
            LANGUAGE sql STABLE PARALLEL SAFE
            AS $$ SELECT coalesce(current_setting('rapport.system', true), '') = 'on' $$;
        COMMENT ON FUNCTION auth.is_system() IS
            'Whether the current transaction does system work (rapport.system = on).';

        CREATE FUNCTION kernel.set_updated_at() RETURNS trigger
            LANGUAGE plpgsql
            AS $$
            BEGIN
                NEW.updated_at := now();
                RETURN NEW;
            END
            $$;
        COMMENT ON FUNCTION kernel.set_updated_at() IS
            'BEFORE UPDATE trigger keeping updated_at current.';

        CREATE TABLE audit.record_changes (
            id bigint GENERATED ALWAYS AS IDENTITY,
            schema_name text NOT NULL,
            table_name text NOT NULL,
            operation text NOT NULL,
            old_data jsonb,
            new_data jsonb,
            changed_fields text[],
            acting_user_id uuid,
            transaction_id bigint NOT NULL,
            occurred_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_record_changes PRIMARY KEY (id),
            CONSTRAINT ck_record_changes_operation CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE'))
        );
        COMMENT ON TABLE audit.record_changes IS
            'Every change to a monitored table, written by audit.record_change().';
        COMMENT ON COLUMN audit.record_changes.changed_fields IS
            'For UPDATE: the columns whose value changed, redacted ones included by name.';
        COMMENT ON COLUMN audit.record_changes.transaction_id IS
            'txid_current(): rows with the same value changed together.';
        -- Serves audit queries of one table's history, newest first.
        CREATE INDEX ix_record_changes_table ON audit.record_changes (schema_name, table_name, id DESC);
        -- Serves "what did this user change" in compliance exports.
        CREATE INDEX ix_record_changes_acting_user ON audit.record_changes (acting_user_id, id DESC)
            WHERE acting_user_id IS NOT NULL;

        ALTER TABLE audit.record_changes ENABLE ROW LEVEL SECURITY;
        ALTER TABLE audit.record_changes FORCE ROW LEVEL SECURITY;
        -- Written only through the SECURITY DEFINER trigger (the app holds no INSERT
        -- grant); read only by system work such as compliance exports.
        CREATE POLICY record_changes_insert ON audit.record_changes FOR INSERT WITH CHECK (true);
        CREATE POLICY record_changes_system_read ON audit.record_changes FOR SELECT
            USING (auth.is_system());
        GRANT SELECT ON audit.record_changes TO rapport_app, rapport_worker;

        -- The generic audit trigger. Arguments name columns whose values must never be
        -- copied into the log (password hashes, secrets); their names still appear in
        -- changed_fields so that "the password changed" stays visible.
        CREATE FUNCTION audit.record_change() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            DECLARE
                redacted text[] := coalesce(TG_ARGV::text[], '{}');
                old_row jsonb;
                new_row jsonb;
                changed text[];
            BEGIN
                IF TG_OP IN ('UPDATE', 'DELETE') THEN
                    old_row := to_jsonb(OLD);
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    new_row := to_jsonb(NEW);
                END IF;
                IF TG_OP = 'UPDATE' THEN
                    SELECT array_agg(n.key ORDER BY n.key) INTO changed
                      FROM jsonb_each(new_row) AS n
                      JOIN jsonb_each(old_row) AS o USING (key)
                     WHERE n.value IS DISTINCT FROM o.value AND n.key <> 'updated_at';
                    IF changed IS NULL THEN
                        RETURN NULL;
                    END IF;
                END IF;
                INSERT INTO audit.record_changes
                    (schema_name, table_name, operation, old_data, new_data, changed_fields,
                     acting_user_id, transaction_id)
                VALUES
                    (TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP, old_row - redacted, new_row - redacted,
                     changed, nullif(current_setting('rapport.user_id', true), '')::uuid,
                     txid_current());
                RETURN NULL;
            END
            $$;
        COMMENT ON FUNCTION audit.record_change() IS
            'AFTER ROW trigger: records the change in audit.record_changes; '
            'trigger arguments name columns to redact.';
        REVOKE ALL ON FUNCTION audit.record_change() FROM PUBLIC;
        """
    )


def downgrade() -> None:
    run_sql(
        """
        DROP FUNCTION audit.record_change();
        DROP TABLE audit.record_changes;
        DROP FUNCTION kernel.set_updated_at();
        DROP FUNCTION auth.is_system();
        DROP FUNCTION auth.current_user_id();
        DROP SCHEMA audit;
        DROP SCHEMA auth;
        DROP SCHEMA kernel;
        """
    )
