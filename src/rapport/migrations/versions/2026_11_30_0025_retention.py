"""Retention policies and the database's integrity checks.

Why: issue 12. What Rapport keeps only for a while goes by itself (rapport.compliance,
`rapport retention run`), each policy's horizon configurable per deployment in
`compliance.retention_policies`; and `rapport db check [--fix]` finds, and where it is safe
repairs, rows that disagree with each other.

- Messages past a deployment-wide horizon go a whole monthly partition at a time
  (`compliance.expire_message_partitions`): the partition is dropped, never emptied row by
  row. A conversation's own horizon (`settings.message_retention_days`) deletes within
  that conversation (`compliance.expire_conversation_messages`). Either way the rows that
  hang on the removed messages go with them (mentions, retractions, hidden marks,
  reactions, pins, earlier versions, idempotency keys, attachments, reports, the reply
  threads they root), thread counts drop by what went, and every participant's markers
  (history start, read and delivered) move up to the last sequence removed, so unread
  counts stay exact (docs/decisions/0013: unread is the last sequence minus the marker),
  also if history is shown again later. Sequences are never reused: `last_seq` stays.
- Sign-in history and security events are append-only for the server; system work may now
  delete them (retention runs as rapport_worker).
- Counters only triggers and definer functions may write are repaired by small definer
  functions, one fault at a time, for `rapport db check --fix`.

Every function here is system work: it refuses any caller but a system transaction
(rapport.kernel.db.system_transaction), and only rapport_worker may execute it.

Revision ID: 2026_11_30_0025
Revises: 2026_11_30_0024
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0025"
down_revision = "2026_11_30_0024"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


# Tables whose rows retention removes from definer functions, which run as rapport_owner:
# row-level security is forced on them and gave the owner no DELETE until now.
OWNER_DELETES = (
    "messaging.messages",
    "messaging.message_history",
    "messaging.threads",
    "messaging.reports",
    "media.attachments",
)

# The tables whose rows belong to one message, named by (conversation_id, message_id), and
# which go with it; media.attachments too, named by its own columns.
REMAINS = (
    "messaging.mentions",
    "messaging.retractions",
    "messaging.hidden_messages",
    "messaging.reactions",
    "messaging.pins",
    "messaging.message_history",
    "messaging.client_messages",
    "messaging.reports",
)

SYSTEM_ONLY = """
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'retention and repairs are system work' USING ERRCODE = 'insufficient_privilege';
        END IF;"""


def _remove_remains(condition: str, *, counted: bool = False) -> str:
    """DELETE statements for every dependent row of the removed messages: `condition` on
    alias `d`; with `counted`, each adds its row count to the variable `removed`."""
    count = " GET DIAGNOSTICS counted = ROW_COUNT; removed := removed + counted;" if counted else ""
    statements = [f"DELETE FROM {table} d WHERE {condition};{count}" for table in REMAINS]
    return "\n        ".join(statements)


TABLES = """
CREATE TABLE compliance.retention_policies (
    name text NOT NULL,
    keep interval,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_retention_policies PRIMARY KEY (name),
    CONSTRAINT ck_retention_policies_name CHECK (name ~ '^[a-z][a-z_]{0,62}$'),
    CONSTRAINT ck_retention_policies_keep CHECK (keep >= interval '1 day')
);
COMMENT ON TABLE compliance.retention_policies IS
    'This deployment''s horizons for the retention policies of rapport.compliance._policies: a row '
    'overrides the policy''s default; no row, the default applies. Written by `rapport retention set`.';
COMMENT ON COLUMN compliance.retention_policies.keep IS
    'How long rows are kept (calendar arithmetic: ''10 years'' is ten years to the day); NULL keeps them forever.';

ALTER TABLE compliance.retention_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE compliance.retention_policies FORCE ROW LEVEL SECURITY;
CREATE POLICY retention_policies_system ON compliance.retention_policies TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON compliance.retention_policies TO rapport_worker;

CREATE TABLE compliance.retention_runs (
    id uuid NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    removed jsonb NOT NULL DEFAULT '{}'::jsonb,
    error text,
    CONSTRAINT pk_retention_runs PRIMARY KEY (id),
    CONSTRAINT ck_retention_runs_removed CHECK (jsonb_typeof(removed) = 'object'),
    CONSTRAINT ck_retention_runs_error CHECK (length(error) <= 2000)
);
COMMENT ON TABLE compliance.retention_runs IS
    'Each run of the retention policies (not the dry runs): when, and how many rows each policy removed. '
    'The schedule runs again once a day has passed since the last start, whatever the restarts between.';
COMMENT ON COLUMN compliance.retention_runs.started_at IS 'The clock the run applied its horizons to.';
COMMENT ON COLUMN compliance.retention_runs.removed IS 'Rows removed per policy: {"sessions": 12, ...}.';
-- Serves rapport.compliance._retention: when the last run started.
CREATE INDEX ix_retention_runs_started_at ON compliance.retention_runs (started_at DESC);

ALTER TABLE compliance.retention_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE compliance.retention_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY retention_runs_system ON compliance.retention_runs TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON compliance.retention_runs TO rapport_worker;

-- Serves rapport.compliance._retention: the conversations that set their own horizon.
CREATE INDEX ix_conversations_message_retention ON messaging.conversations (id)
    WHERE settings ? 'message_retention_days';

-- Sign-in history and security events stay append-only for the server; system work (the
-- retention policies) removes the old ones. Their copies in audit.auth_events follow the
-- audit's own horizon.
GRANT DELETE ON auth.login_history, auth.security_events TO rapport_worker;
"""


def _owner_delete_policies() -> str:
    parts = []
    for table in OWNER_DELETES:
        name = table.split(".")[1]
        parts.append(
            f"CREATE POLICY {name}_retention ON {table} FOR DELETE TO rapport_owner USING (true);\n"
            f"COMMENT ON POLICY {name}_retention ON {table} IS\n"
            "    'Retention and repairs (the compliance schema''s definer functions, run as rapport_owner) delete here.';"
        )
    return "\n".join(parts)


MESSAGES = f"""
-- Drops the oldest partition of messaging.messages that ends at or before `older_than`,
-- with what hangs on its messages, and answers it (none: nothing to drop); with dry_run,
-- answers every such partition and changes nothing. Markers move up, per conversation, to
-- the last sequence removed before the first one kept: a message numbered across the
-- month's turn a moment after a later-made one stays counted rather than a kept one hidden.
CREATE FUNCTION compliance.expire_message_partitions(older_than timestamptz, dry_run boolean)
    RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz, messages bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- Dropping a partition locks the whole table for a moment: never queue behind a long
    -- reader (and hold every send up behind this one meanwhile); the next run tries again.
    SET lock_timeout = '10s'
    AS $$
    DECLARE
        part record;
        lo timestamptz;
        hi timestamptz;
    BEGIN{SYSTEM_ONLY}
        -- One run at a time: two would drop the same partition.
        PERFORM pg_advisory_xact_lock('messaging.messages'::regclass::oid::integer, 1);
        FOR part IN
            SELECT n.nspname, c.relname, b[1]::timestamptz AS lo, b[2]::timestamptz AS hi
              FROM pg_inherits h
              JOIN pg_class c ON c.oid = h.inhrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                              'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS b
             WHERE h.inhparent = 'messaging.messages'::regclass AND b IS NOT NULL
               AND b[2]::timestamptz <= older_than
             ORDER BY 3
        LOOP
            lo := part.lo;
            hi := part.hi;
            partition_name := part.nspname || '.' || part.relname;
            range_start := lo;
            range_end := hi;
            SELECT count(*) INTO messages FROM messaging.messages m WHERE m.created_at >= lo AND m.created_at < hi;
            IF NOT dry_run THEN
                WITH gone AS (
                    SELECT m.conversation_id, max(m.seq) AS top
                      FROM messaging.messages m WHERE m.created_at >= lo AND m.created_at < hi
                     GROUP BY m.conversation_id
                ), bound AS (
                    SELECT g.conversation_id,
                           least(g.top, coalesce((SELECT min(k.seq) - 1 FROM messaging.messages k
                                                   WHERE k.conversation_id = g.conversation_id AND k.created_at >= hi),
                                                 g.top)) AS upto
                      FROM gone g
                )
                UPDATE messaging.participants p
                   SET history_from_seq = greatest(p.history_from_seq, f.upto),
                       read_seq = greatest(p.read_seq, f.upto),
                       delivered_seq = greatest(p.delivered_seq, f.upto)
                  FROM bound f
                 WHERE p.conversation_id = f.conversation_id
                   AND least(p.history_from_seq, p.read_seq, p.delivered_seq) < f.upto;
                UPDATE messaging.threads t SET message_count = greatest(t.message_count - g.n, 0)
                  FROM (SELECT m.conversation_id, m.thread_id, count(*) AS n FROM messaging.messages m
                         WHERE m.created_at >= lo AND m.created_at < hi AND m.thread_id IS NOT NULL
                         GROUP BY m.conversation_id, m.thread_id) g
                 WHERE t.id = g.thread_id AND t.conversation_id = g.conversation_id;
                -- A reply thread is seen with its root (threads_read): without it, it goes.
                DELETE FROM messaging.threads t
                 WHERE t.root_message_id IS NOT NULL
                   AND messaging.id_time(t.root_message_id) >= lo AND messaging.id_time(t.root_message_id) < hi;
                {_remove_remains("messaging.id_time(d.message_id) >= lo AND messaging.id_time(d.message_id) < hi")}
                DELETE FROM media.attachments a WHERE a.message_created_at >= lo AND a.message_created_at < hi;
                EXECUTE format('DROP TABLE %I.%I', part.nspname, part.relname);
                -- The drop holds the messages table's lock until this transaction ends:
                -- one partition per call, so that sends wait for one commit, not for the
                -- next partition's rows.
                RETURN NEXT;
                RETURN;
            END IF;
            RETURN NEXT;
        END LOOP;
    END
    $$;
COMMENT ON FUNCTION compliance.expire_message_partitions(timestamptz, boolean) IS
    'System work: drop the oldest partition of messaging.messages that ends at or before the time given '
    '(one a call), with the rows that hang on its messages, moving participants'' markers past them; with '
    'dry_run, only say which partitions would go and how many messages they hold.';

-- Deletes the oldest messages of one conversation, up to the last one made before
-- `older_than` (a prefix of its sequence: the first message kept is the oldest made at or
-- after it), at most max_messages a call; returns how many went (with dry_run, how many
-- would, however many that is).
CREATE FUNCTION compliance.expire_conversation_messages(
    conversation uuid, older_than timestamptz, dry_run boolean, max_messages integer DEFAULT 10000
) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        lowest bigint;
        upto bigint;
        ids uuid[];
        thread_ids uuid[];
    BEGIN{SYSTEM_ONLY}
        IF max_messages IS NULL OR max_messages < 1 THEN
            RAISE EXCEPTION 'max_messages must be positive' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT min(m.seq) INTO lowest FROM messaging.messages m WHERE m.conversation_id = conversation;
        IF lowest IS NULL THEN
            RETURN 0;
        END IF;
        SELECT coalesce((SELECT min(m.seq) - 1 FROM messaging.messages m
                          WHERE m.conversation_id = conversation AND m.created_at >= older_than),
                        (SELECT max(m.seq) FROM messaging.messages m WHERE m.conversation_id = conversation))
          INTO upto;
        IF upto < lowest THEN
            RETURN 0;
        END IF;
        IF dry_run THEN
            RETURN (SELECT count(*) FROM messaging.messages m WHERE m.conversation_id = conversation AND m.seq <= upto);
        END IF;
        upto := least(upto, lowest + max_messages - 1);
        WITH gone AS (
            DELETE FROM messaging.messages m WHERE m.conversation_id = conversation AND m.seq <= upto
            RETURNING m.id, m.thread_id
        )
        SELECT array_agg(g.id), array_agg(g.thread_id) FILTER (WHERE g.thread_id IS NOT NULL) INTO ids, thread_ids
          FROM gone g;
        IF ids IS NULL THEN
            RETURN 0;
        END IF;
        {_remove_remains("d.conversation_id = conversation AND d.message_id = ANY(ids)")}
        DELETE FROM media.attachments a WHERE a.conversation_id = conversation AND a.seq <= upto;
        UPDATE messaging.threads t SET message_count = greatest(t.message_count - g.n, 0)
          FROM (SELECT x AS thread_id, count(*) AS n FROM unnest(thread_ids) AS x GROUP BY x) g
         WHERE t.id = g.thread_id AND t.conversation_id = conversation;
        DELETE FROM messaging.threads t WHERE t.conversation_id = conversation AND t.root_message_id = ANY(ids);
        UPDATE messaging.participants p
           SET history_from_seq = greatest(p.history_from_seq, upto),
               read_seq = greatest(p.read_seq, upto),
               delivered_seq = greatest(p.delivered_seq, upto)
         WHERE p.conversation_id = conversation AND least(p.history_from_seq, p.read_seq, p.delivered_seq) < upto;
        RETURN cardinality(ids);
    END
    $$;
COMMENT ON FUNCTION compliance.expire_conversation_messages(uuid, timestamptz, boolean, integer) IS
    'System work: delete one conversation''s messages made before the time given (a prefix of its '
    'sequence, at most max_messages a call) with what hangs on them; returns how many went, or with '
    'dry_run how many would.';
"""


REPAIRS = f"""
-- A conversation's counters from its rows: member_count from the participants who take
-- part, last_seq raised to its highest message, the last message from the one at last_seq
-- (left as it is when that message is gone, as retention leaves it).
CREATE FUNCTION compliance.repair_conversation_counters(conversation uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        newest bigint;
        last_id uuid;
        last_at timestamptz;
    BEGIN{SYSTEM_ONLY}
        -- The lock a send takes: no message is numbered meanwhile.
        PERFORM 1 FROM messaging.conversations c WHERE c.id = conversation FOR UPDATE;
        UPDATE messaging.conversations c
           SET member_count = (SELECT count(*) FROM messaging.participants p
                                WHERE p.conversation_id = c.id AND p.status IN ('active', 'muted')),
               last_seq = greatest(c.last_seq, coalesce((SELECT max(m.seq) FROM messaging.messages m
                                                          WHERE m.conversation_id = c.id), 0))
         WHERE c.id = conversation
        RETURNING c.last_seq INTO newest;
        SELECT m.id, m.created_at INTO last_id, last_at FROM messaging.messages m
         WHERE m.conversation_id = conversation AND m.seq = newest;
        IF FOUND THEN
            UPDATE messaging.conversations c SET last_message_id = last_id, last_message_at = last_at
             WHERE c.id = conversation
               AND (c.last_message_id IS DISTINCT FROM last_id OR c.last_message_at IS DISTINCT FROM last_at);
        END IF;
    END
    $$;
COMMENT ON FUNCTION compliance.repair_conversation_counters(uuid) IS
    'System work (rapport db check --fix): member_count, last_seq and the last message of one conversation '
    'recomputed from its rows.';

-- A message's attachment_count from its attachments (a message deleted for everyone shows
-- none whatever the count, and the guard refuses changes to it: left alone).
CREATE FUNCTION compliance.repair_attachment_count(conversation uuid, message uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN{SYSTEM_ONLY}
        UPDATE messaging.messages m
           SET attachment_count = (SELECT count(*) FROM media.attachments a
                                    WHERE a.conversation_id = m.conversation_id AND a.message_id = m.id)
         WHERE m.conversation_id = conversation AND m.id = message AND m.created_at = messaging.id_time(message)
           AND m.deleted_at IS NULL;
    END
    $$;
COMMENT ON FUNCTION compliance.repair_attachment_count(uuid, uuid) IS
    'System work (rapport db check --fix): a message''s attachment_count recomputed from media.attachments.';

CREATE FUNCTION compliance.repair_thread_count(thread uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN{SYSTEM_ONLY}
        UPDATE messaging.threads t
           SET message_count = (SELECT count(*) FROM messaging.messages m
                                 WHERE m.conversation_id = t.conversation_id AND m.thread_id = t.id)
         WHERE t.id = thread;
    END
    $$;
COMMENT ON FUNCTION compliance.repair_thread_count(uuid) IS
    'System work (rapport db check --fix): a thread''s message_count recomputed from its messages.';

-- What still hangs on a message that is gone (rows have no foreign key to the partitioned
-- messages table). Refuses a message that is there.
CREATE FUNCTION compliance.remove_message_remains(conversation uuid, message uuid) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        ids uuid[] := ARRAY[message];
        removed bigint := 0;
        counted bigint;
    BEGIN{SYSTEM_ONLY}
        IF EXISTS (SELECT 1 FROM messaging.messages m
                    WHERE m.conversation_id = conversation AND m.id = message
                      AND m.created_at = messaging.id_time(message)) THEN
            RAISE EXCEPTION 'message % is there: its rows are not remains', message
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        {_remove_remains("d.conversation_id = conversation AND d.message_id = ANY(ids)", counted=True)}
        DELETE FROM media.attachments a WHERE a.conversation_id = conversation AND a.message_id = message;
        GET DIAGNOSTICS counted = ROW_COUNT;
        removed := removed + counted;
        RETURN removed;
    END
    $$;
COMMENT ON FUNCTION compliance.remove_message_remains(uuid, uuid) IS
    'System work (rapport db check --fix): delete the mentions, retractions, hidden marks, reactions, pins, '
    'versions, idempotency keys, reports and attachments of a message that is gone.';

-- A reply thread whose root message is gone: nobody sees it (threads_read shows a reply
-- thread with its root), and nobody can post in it.
CREATE FUNCTION compliance.remove_orphan_thread(thread uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN{SYSTEM_ONLY}
        DELETE FROM messaging.threads t
         WHERE t.id = thread AND t.root_message_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM messaging.messages m
                            WHERE m.conversation_id = t.conversation_id AND m.id = t.root_message_id
                              AND m.created_at = messaging.id_time(t.root_message_id));
        RETURN FOUND;
    END
    $$;
COMMENT ON FUNCTION compliance.remove_orphan_thread(uuid) IS
    'System work (rapport db check --fix): delete a reply thread whose root message is gone.';
"""

FUNCTIONS = [
    "compliance.expire_message_partitions(timestamptz, boolean)",
    "compliance.expire_conversation_messages(uuid, timestamptz, boolean, integer)",
    "compliance.repair_conversation_counters(uuid)",
    "compliance.repair_attachment_count(uuid, uuid)",
    "compliance.repair_thread_count(uuid)",
    "compliance.remove_message_remains(uuid, uuid)",
    "compliance.remove_orphan_thread(uuid)",
]

GRANTS = "\n".join(
    f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC;\nGRANT EXECUTE ON FUNCTION {function} TO rapport_worker;"
    for function in FUNCTIONS
)


def upgrade() -> None:
    run_sql(TABLES)
    run_sql(_owner_delete_policies())
    run_sql(MESSAGES)
    run_sql(REPAIRS)
    run_sql(GRANTS)


def downgrade() -> None:
    drops = [f"DROP FUNCTION {function};" for function in FUNCTIONS]
    drops += [f"DROP POLICY {table.split('.')[1]}_retention ON {table};" for table in OWNER_DELETES]
    drops.append(
        """
        REVOKE DELETE ON auth.login_history, auth.security_events FROM rapport_worker;
        DROP INDEX messaging.ix_conversations_message_retention;
        DROP TABLE compliance.retention_runs;
        DROP TABLE compliance.retention_policies;
        """
    )
    run_sql("\n".join(drops))
