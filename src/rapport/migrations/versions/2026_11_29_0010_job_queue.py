"""A durable job queue on PostgreSQL: kernel.jobs.

Why: mail (and later every background task) must leave only if the change that asked for
it commits, and must not be lost when a process dies; a job row inserted in the same
transaction as the change gives both (docs/decisions/0010).

Revision ID: 2026_11_29_0010
Revises: 2026_11_29_0009
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0010"
down_revision = "2026_11_29_0009"
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
        CREATE TABLE kernel.jobs (
            id uuid NOT NULL,
            queue text NOT NULL,
            task text NOT NULL,
            payload jsonb NOT NULL DEFAULT '{}'::jsonb,
            status text NOT NULL DEFAULT 'queued',
            run_at timestamptz NOT NULL DEFAULT now(),
            attempts integer NOT NULL DEFAULT 0,
            max_attempts integer NOT NULL,
            locked_at timestamptz,
            locked_by text,
            last_error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_jobs PRIMARY KEY (id),
            CONSTRAINT ck_jobs_status CHECK (status IN ('queued', 'running', 'dead')),
            CONSTRAINT ck_jobs_attempts CHECK (attempts >= 0 AND max_attempts >= 1),
            CONSTRAINT ck_jobs_lock CHECK ((status = 'running') = (locked_at IS NOT NULL AND locked_by IS NOT NULL)),
            CONSTRAINT ck_jobs_names CHECK (length(queue) BETWEEN 1 AND 100 AND length(task) BETWEEN 1 AND 200)
        );
        COMMENT ON TABLE kernel.jobs IS
            'Background jobs (rapport.kernel.jobs). A job is inserted in the transaction that asks for it, '
            'claimed by one worker with FOR UPDATE SKIP LOCKED, deleted when it succeeds and kept as '
            '''dead'' when its attempts are spent. System-only: payloads hold e-mail addresses and codes.';
        COMMENT ON COLUMN kernel.jobs.queue IS 'Workers claim jobs of the queues they serve.';
        COMMENT ON COLUMN kernel.jobs.task IS 'The registered task that runs the job (rapport.kernel.jobs.TaskRegistry).';
        COMMENT ON COLUMN kernel.jobs.status IS
            'queued: waits for run_at; running: claimed by locked_by; dead: attempts spent, kept for inspection.';
        COMMENT ON COLUMN kernel.jobs.run_at IS 'Not claimed before then: the backoff after a failed attempt.';
        COMMENT ON COLUMN kernel.jobs.attempts IS 'Attempts started, counted when claimed, so a crash counts too.';
        COMMENT ON COLUMN kernel.jobs.locked_at IS
            'When the worker claimed the job or last said it is still running it; a lock older than the '
            'workers'' lock timeout belongs to a worker that died, and the job is queued again.';
        COMMENT ON COLUMN kernel.jobs.last_error IS 'Why the latest attempt failed.';

        -- Serves rapport.kernel.jobs claims: the due jobs of some queues, oldest first.
        CREATE INDEX ix_jobs_due ON kernel.jobs (queue, run_at, id) WHERE status = 'queued';
        -- Serves the workers' heartbeat and the reaper of locks left by dead workers.
        CREATE INDEX ix_jobs_running ON kernel.jobs (locked_at) WHERE status = 'running';
        -- Serves listing dead jobs, newest first, and purging old ones.
        CREATE INDEX ix_jobs_dead ON kernel.jobs (updated_at DESC) WHERE status = 'dead';

        CREATE TRIGGER jobs_updated_at BEFORE UPDATE ON kernel.jobs
            FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

        -- Wakes listening workers. PostgreSQL delivers a NOTIFY only when the inserting
        -- transaction commits, so a rolled-back job wakes nobody; the notification carries
        -- no payload (the row holds the data, and only the worker may read it).
        CREATE FUNCTION kernel.notify_jobs() RETURNS trigger
            LANGUAGE plpgsql
            SET search_path = pg_catalog, pg_temp
            AS $$
            BEGIN
                PERFORM pg_notify('kernel_jobs', '');
                RETURN NULL;
            END
            $$;
        COMMENT ON FUNCTION kernel.notify_jobs() IS
            'AFTER INSERT statement trigger on kernel.jobs: NOTIFY kernel_jobs, without a payload.';
        CREATE TRIGGER jobs_notify AFTER INSERT ON kernel.jobs
            FOR EACH STATEMENT EXECUTE FUNCTION kernel.notify_jobs();

        -- The server only adds jobs: no SELECT, so a request (or an injected statement)
        -- cannot read the codes waiting in other people's mail. The worker role runs them.
        ALTER TABLE kernel.jobs ENABLE ROW LEVEL SECURITY;
        ALTER TABLE kernel.jobs FORCE ROW LEVEL SECURITY;
        CREATE POLICY jobs_enqueue ON kernel.jobs FOR INSERT TO rapport_app
            WITH CHECK (status = 'queued' AND attempts = 0 AND locked_at IS NULL AND locked_by IS NULL);
        CREATE POLICY jobs_worker ON kernel.jobs TO rapport_worker USING (true) WITH CHECK (true);
        GRANT INSERT ON kernel.jobs TO rapport_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON kernel.jobs TO rapport_worker;
        """
    )


def downgrade() -> None:
    run_sql(
        """
        DROP TABLE kernel.jobs;
        DROP FUNCTION kernel.notify_jobs();
        """
    )
