"""The kernel outbox: kernel.events, with positions a reader can resume from.

Why: realtime delivery, notifications and webhooks must hear of every committed change
exactly once and in order, without a reader that has reached position P ever missing an
event that commits later below P (docs/decisions/0012).

Revision ID: 2026_11_29_0011
Revises: 2026_11_29_0010
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0011"
down_revision = "2026_11_29_0010"
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
        CREATE TABLE kernel.events (
            position bigint NOT NULL,
            scope_kind text NOT NULL,
            scope_id uuid NOT NULL,
            type text NOT NULL,
            payload jsonb NOT NULL DEFAULT '{}'::jsonb,
            actor_id uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_events PRIMARY KEY (position),
            CONSTRAINT ck_events_scope_kind CHECK (scope_kind IN ('conversation', 'user')),
            CONSTRAINT ck_events_type CHECK (length(type) BETWEEN 1 AND 100),
            CONSTRAINT ck_events_payload CHECK (jsonb_typeof(payload) = 'object' AND octet_length(payload::text) <= 4000)
        );
        COMMENT ON TABLE kernel.events IS
            'The outbox (rapport.kernel.outbox): one row per state change a client could want to hear '
            'about, written in the transaction of the change, whatever the number of recipients. '
            'The server''s role only adds events; readers run as rapport_worker (docs/decisions/0012).';
        COMMENT ON COLUMN kernel.events.position IS
            'The writing transaction''s id (xid8) shifted left 16 bits, plus the event''s ordinal in that '
            'transaction: set by kernel.events_position(), never by the writer. Positions follow the order '
            'in which transactions took their ids, so everything below the oldest running transaction''s '
            'position is final (the safe position readers stop at).';
        COMMENT ON COLUMN kernel.events.scope_kind IS
            'What scope_id names: a conversation (its participants may receive the event) or the one user '
            'the event concerns.';
        COMMENT ON COLUMN kernel.events.type IS 'What happened, e.g. message.created; the payload''s shape follows it.';
        COMMENT ON COLUMN kernel.events.payload IS 'Small: ids and changed fields, never whole documents.';
        COMMENT ON COLUMN kernel.events.actor_id IS 'The user whose action it was; NULL for system work.';

        -- Serves rapport.kernel.outbox.read_after: the events of some scopes after a position, in order.
        CREATE INDEX ix_events_scope_position ON kernel.events (scope_kind, scope_id, position);

        -- Numbers each event and announces it. The position comes from the transaction's id,
        -- taken here, so that its order is the order of ids (see the column's comment); the
        -- ordinal lives in a transaction-local setting, undone with a rolled-back savepoint
        -- together with the rows it numbered. PostgreSQL delivers a NOTIFY only on commit,
        -- and the notification carries the position alone: the row holds the data, which
        -- only readers entitled to it may see.
        CREATE FUNCTION kernel.events_position() RETURNS trigger
            LANGUAGE plpgsql
            SET search_path = pg_catalog, pg_temp
            AS $$
            DECLARE
                ordinal integer := coalesce(nullif(current_setting('rapport.events_ordinal', true), ''), '0')::integer;
                transaction_id bigint := pg_current_xact_id()::text::bigint;
            BEGIN
                IF ordinal > 65535 THEN
                    RAISE EXCEPTION 'a transaction may publish at most 65536 events';
                END IF;
                -- 2^47 transaction ids: centuries at thousands of transactions a second.
                IF transaction_id >= 140737488355328 THEN
                    RAISE EXCEPTION 'transaction ids no longer fit kernel.events positions';
                END IF;
                NEW.position := (transaction_id << 16) | ordinal;
                PERFORM set_config('rapport.events_ordinal', (ordinal + 1)::text, true);
                PERFORM pg_notify('kernel_events', NEW.position::text);
                RETURN NEW;
            END
            $$;
        COMMENT ON FUNCTION kernel.events_position() IS
            'BEFORE INSERT trigger on kernel.events: sets the position from the transaction id and the '
            'event''s ordinal in it, and NOTIFYs kernel_events with the position only.';
        CREATE TRIGGER events_position BEFORE INSERT ON kernel.events
            FOR EACH ROW EXECUTE FUNCTION kernel.events_position();

        -- The server's role adds events as the user it acts for (or as no one), and reads
        -- none: which events a person may receive depends on membership at each position,
        -- decided by the reader on the worker's role. No UPDATE or DELETE for it either:
        -- an event once committed is what readers saw.
        ALTER TABLE kernel.events ENABLE ROW LEVEL SECURITY;
        ALTER TABLE kernel.events FORCE ROW LEVEL SECURITY;
        CREATE POLICY events_publish ON kernel.events FOR INSERT TO rapport_app
            WITH CHECK (actor_id IS NULL OR actor_id = auth.current_user_id());
        CREATE POLICY events_worker ON kernel.events TO rapport_worker USING (true) WITH CHECK (true);
        GRANT INSERT ON kernel.events TO rapport_app;
        GRANT SELECT, INSERT, DELETE ON kernel.events TO rapport_worker;
        """
    )


def downgrade() -> None:
    run_sql(
        """
        DROP TABLE kernel.events;
        DROP FUNCTION kernel.events_position();
        """
    )
