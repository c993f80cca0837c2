"""kernel: monthly partitions a month behind, for tables that take rows dated in the past.

Why: analytics takes a client's events up to 30 days after they happened
(`rapport.analytics.schemas.MAX_AGE`), each into the partition of the month it happened
in. `kernel.ensure_partitions()` made partitions from the current month on, so in a
database created this month an event of last month found no partition and its batch
failed. `kernel.monthly_partitions.months_behind` (0 to 12, 0 by default) says how many
months before the current one a table keeps; analytics.events keeps one. The function is
otherwise as migration 0012 made it.

Revision ID: 2026_12_01_0049
Revises: 2026_11_30_0048
Create Date: 2026-12-01
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_12_01_0049"
down_revision = "2026_11_30_0048"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


# kernel.ensure_partitions() from its first month: `{first}` is the first month made
# relative to the current one (0 as in migration 0012, or minus the table's months_behind).
ENSURE = """
CREATE OR REPLACE FUNCTION kernel.ensure_partitions() RETURNS integer
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
            SELECT mp.parent, mp.months_ahead, {behind} AS months_behind, n.nspname, c.relname,
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
            FOR ahead IN -registered.months_behind .. registered.months_ahead LOOP
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
    'Make the missing monthly partitions of every table in kernel.monthly_partitions, from '
    '{span}, named <table>_pYYYYMM beside it, with row-level security forced and no grants; '
    'returns how many it made. For system work (rapport.kernel.partitions: every start, daily, '
    'rapport db maintain) and migrations only.';
"""


def upgrade() -> None:
    run_sql(
        """
        ALTER TABLE kernel.monthly_partitions
            ADD COLUMN months_behind integer NOT NULL DEFAULT 0,
            ADD CONSTRAINT ck_monthly_partitions_months_behind CHECK (months_behind BETWEEN 0 AND 12);
        COMMENT ON COLUMN kernel.monthly_partitions.months_behind IS
            'Partitions exist from this many months before the current one (UTC): for a table that '
            'takes rows dated in the past (analytics events up to 30 days old).';
        UPDATE kernel.monthly_partitions SET months_behind = 1 WHERE parent = 'analytics.events'::regclass;
        """
        + ENSURE.format(
            behind="mp.months_behind",
            span="its months_behind before the current month (UTC) through its months_ahead after it",
        )
        + "SELECT kernel.ensure_partitions();"
    )


def downgrade() -> None:
    # Partitions made behind stay: they belong to their parents, and may hold rows.
    run_sql(
        ENSURE.format(behind="0", span="the current month (UTC) through its months_ahead")
        + """
        ALTER TABLE kernel.monthly_partitions DROP COLUMN months_behind;
        """
    )
