"""Monthly partitions made ahead by the database: kernel.monthly_partitions and
kernel.ensure_partitions().

Why: messages (and later other large, time-ordered tables) are range-partitioned by month;
a row whose month has no partition cannot be written, so the partitions must exist before
their month begins, made by one function every caller shares (migrations, every server
start, a daily repeat, `rapport db maintain`) rather than by each domain's own code.

A domain registers a table in its migration and makes its first partitions there:

    INSERT INTO kernel.monthly_partitions (parent) VALUES ('messaging.messages');
    SELECT kernel.ensure_partitions();

Revision ID: 2026_11_29_0012
Revises: 2026_11_29_0011
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0012"
down_revision = "2026_11_29_0011"
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
        CREATE TABLE kernel.monthly_partitions (
            parent regclass NOT NULL,
            months_ahead integer NOT NULL DEFAULT 3,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_monthly_partitions PRIMARY KEY (parent),
            CONSTRAINT ck_monthly_partitions_months_ahead CHECK (months_ahead BETWEEN 1 AND 24)
        );
        COMMENT ON TABLE kernel.monthly_partitions IS
            'The tables range-partitioned by month on a timestamptz column for which '
            'kernel.ensure_partitions() keeps partitions ahead. A domain''s migration registers its '
            'table here, then calls the function; its downgrade deletes the row before dropping the table.';
        COMMENT ON COLUMN kernel.monthly_partitions.parent IS
            'The partitioned table (PARTITION BY RANGE on one timestamptz column).';
        COMMENT ON COLUMN kernel.monthly_partitions.months_ahead IS
            'Partitions exist from the current month (UTC) through this many months after it: the '
            'slack left if the daily upkeep stops running.';

        -- Holds no one's data, but its rows decide which tables get new partitions, so
        -- only the owner (migrations, and the definer function below) writes it. The
        -- worker may read it, for an operator's look at what is kept ahead.
        ALTER TABLE kernel.monthly_partitions ENABLE ROW LEVEL SECURITY;
        ALTER TABLE kernel.monthly_partitions FORCE ROW LEVEL SECURITY;
        CREATE POLICY monthly_partitions_owner ON kernel.monthly_partitions TO rapport_owner
            USING (true) WITH CHECK (true);
        CREATE POLICY monthly_partitions_worker_read ON kernel.monthly_partitions FOR SELECT TO rapport_worker
            USING (true);
        GRANT SELECT ON kernel.monthly_partitions TO rapport_worker;

        -- Runs as rapport_owner, who owns the partitioned tables (only a table's owner may
        -- attach partitions to it), for system work and migrations only. Each partition is
        -- reached through its parent alone: the parent's grants and policies apply to rows
        -- read or written through it, so the partition itself grants nothing (whatever
        -- default privileges a schema has) and forces row-level security with no policy,
        -- which shuts out even its owner when addressed directly.
        CREATE FUNCTION kernel.ensure_partitions() RETURNS integer
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS $$
            DECLARE
                first_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
                registered record;
                month_start date;
                partition_name text;
                existing regclass;
                created integer := 0;
            BEGIN
                -- session_user, not current_user: inside this function current_user is its
                -- owner, while session_user is the role that connected (see auth.is_system()).
                IF NOT (auth.is_system() OR session_user = 'rapport_owner') THEN
                    RAISE EXCEPTION 'only system work and migrations may make partitions'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                -- Two callers at once (several server processes starting together) would
                -- both find a partition missing and the second CREATE would fail: one at a time.
                PERFORM pg_advisory_xact_lock('kernel.monthly_partitions'::regclass::oid::integer, 0);

                -- A table dropped without deleting its registration leaves a number that a
                -- later table could one day reuse: forget it.
                DELETE FROM kernel.monthly_partitions AS mp
                 WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = mp.parent);

                FOR registered IN
                    SELECT mp.parent, mp.months_ahead, n.nspname, c.relname,
                           pt.partstrat = 'r' AND pt.partnatts = 1 AND pt.partattrs[0] <> 0
                               AND a.atttypid = 'timestamptz'::regtype AS by_time_range
                      FROM kernel.monthly_partitions mp
                      JOIN pg_class c ON c.oid = mp.parent
                      JOIN pg_namespace n ON n.oid = c.relnamespace
                      LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
                      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
                     ORDER BY n.nspname, c.relname
                LOOP
                    IF NOT coalesce(registered.by_time_range, false) THEN
                        RAISE EXCEPTION '% is not partitioned by range on one timestamptz column', registered.parent
                            USING ERRCODE = 'wrong_object_type';
                    END IF;
                    FOR ahead IN 0 .. registered.months_ahead LOOP
                        month_start := (first_month + make_interval(months => ahead))::date;
                        partition_name := registered.relname || '_p' || to_char(month_start, 'YYYYMM');
                        existing := to_regclass(format('%I.%I', registered.nspname, partition_name));
                        IF existing IS NOT NULL THEN
                            IF NOT EXISTS (SELECT FROM pg_inherits
                                            WHERE inhrelid = existing AND inhparent = registered.parent) THEN
                                RAISE EXCEPTION '% exists but is not a partition of %', existing, registered.parent
                                    USING ERRCODE = 'duplicate_table';
                            END IF;
                            CONTINUE;
                        END IF;
                        EXECUTE format(
                            'CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES FROM (%L) TO (%L)',
                            registered.nspname, partition_name, registered.nspname, registered.relname,
                            to_char(month_start, 'YYYY-MM-DD') || ' 00:00+00',
                            to_char(month_start + interval '1 month', 'YYYY-MM-DD') || ' 00:00+00');
                        EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY',
                                       registered.nspname, partition_name);
                        EXECUTE format('REVOKE ALL ON TABLE %I.%I FROM PUBLIC, rapport_app, rapport_worker',
                                       registered.nspname, partition_name);
                        EXECUTE format(
                            'COMMENT ON TABLE %I.%I IS %L', registered.nspname, partition_name,
                            format('The rows of %s of %s (UTC), made by kernel.ensure_partitions(); '
                                   'reached through the parent only.',
                                   registered.parent, to_char(month_start, 'YYYY-MM')));
                        created := created + 1;
                    END LOOP;
                END LOOP;
                RETURN created;
            END
            $$;
        COMMENT ON FUNCTION kernel.ensure_partitions() IS
            'Make the missing monthly partitions of every table in kernel.monthly_partitions, from the '
            'current month (UTC) through its months_ahead, named <table>_pYYYYMM beside it, with '
            'row-level security forced and no grants; returns how many it made. For system work '
            '(rapport.kernel.partitions: every start, daily, rapport db maintain) and migrations only.';
        REVOKE ALL ON FUNCTION kernel.ensure_partitions() FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION kernel.ensure_partitions() TO rapport_worker;
        """
    )


def downgrade() -> None:
    # Partitions already made belong to their parents, which the domains' downgrades drop.
    run_sql(
        """
        DROP FUNCTION kernel.ensure_partitions();
        DROP TABLE kernel.monthly_partitions;
        """
    )
