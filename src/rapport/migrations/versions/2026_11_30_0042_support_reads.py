"""support_reads: a level's queue read in one definer function, its reader checked once; a
supervisor's page rendered inline.

Why: seed 003 asks for participant lookups under 50 ms, and bench/support_room.py found
the queue of a level spending about 0.35 ms per room in row-level security: the read
policy of support.rooms (support.may_see_room) asks access.has_permission up to five
times for every room it reads, and the escalations' policy as much for every escalation,
though whoever may read a level's queue may see every room and escalation in it. Who may
is decided once, up front, as the service decided it before (an agent of the level or
higher, platform-wide, or a supervisor), and the rows are then read as the owner.

support.observe_messages rendered each message by calling messaging.render_message, a SQL
function PostgreSQL does not inline here, so its body was planned again for every page:
about 7 ms of a 10,000-message room's page against 1 ms for history's, which writes the
same JSON inline. It now writes it inline too (migration 0037's message JSON).

Revision ID: 2026_11_30_0042
Revises: 2026_11_30_0041
Create Date: 2026-11-30
"""

from importlib import import_module

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0042"
down_revision = "2026_11_30_0041"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


_SUPPORT = import_module("rapport.migrations.versions.2026_11_30_0039_support")
_STREAMS = import_module("rapport.migrations.versions.2026_11_30_0037_messaging_streams")

OPEN_ESCALATION = "'created', 'assigned', 'in_progress'"


def _function(script: str, name: str) -> str:
    """One `CREATE FUNCTION` of an earlier migration's script, as CREATE OR REPLACE."""
    start = script.index(f"CREATE FUNCTION {name}(")
    end = script.index("$$;", start) + len("$$;")
    return "CREATE OR REPLACE" + script[start + len("CREATE") : end] + "\n"


_OBSERVE_BEFORE = _function(_SUPPORT.FUNCTIONS, "support.observe_messages")
_RENDER = "messaging.render_message(m, viewer)"
assert _OBSERVE_BEFORE.count(_RENDER) == 1
OBSERVE = _OBSERVE_BEFORE.replace(_RENDER, _STREAMS.message_json("m", "viewer"))

UPGRADE = f"""
CREATE FUNCTION support.queue_page(
    at_level text, breached_only boolean, after_priority integer, after_since timestamptz, after_id uuid,
    page_size integer
) RETURNS TABLE (kind text, id uuid, room_id uuid, priority integer, state text, waiting_since timestamptz,
                 due_at timestamptz, breached boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF auth.current_user_id() IS NULL OR page_size IS NULL OR page_size < 1
           OR NOT (support.works_at(at_level) OR access.has_permission('supervisor:chat:observe', NULL)) THEN
            RETURN;
        END IF;
        RETURN QUERY
            SELECT q.kind, q.id, q.room_id, q.priority::integer, q.state, q.waiting_since, q.due_at,
                   q.due_at < now()
              FROM (
                SELECT 'room'::text AS kind, r.conversation_id AS id, r.conversation_id AS room_id, r.priority,
                       'unanswered'::text AS state, r.opened_at AS waiting_since,
                       r.opened_at + s.first_response_minutes * interval '1 minute' AS due_at
                  FROM support.rooms r
                  JOIN support.sla s ON s.priority = r.priority
                 WHERE r.level = at_level AND r.status = 'open' AND r.first_response_at IS NULL
                   AND NOT EXISTS (
                        SELECT 1 FROM support.escalations e
                         WHERE e.source_room_id = r.conversation_id AND e.target_room_id IS NULL
                           AND e.status IN ({OPEN_ESCALATION}))
                   AND NOT EXISTS (
                        SELECT 1 FROM support.escalations e
                         WHERE e.target_room_id = r.conversation_id AND e.status IN ({OPEN_ESCALATION}))
                UNION ALL
                SELECT 'escalation', e.id, coalesce(e.target_room_id, e.source_room_id), e.priority,
                       e.status, e.created_at,
                       e.created_at + CASE WHEN e.status = 'created' THEN s.first_response_minutes
                                           ELSE s.resolution_minutes END * interval '1 minute'
                  FROM support.escalations e
                  JOIN support.sla s ON s.priority = e.priority
                 WHERE e.to_level = at_level AND e.status IN ({OPEN_ESCALATION})
              ) q
             WHERE (NOT breached_only OR q.due_at < now())
               AND (after_priority IS NULL
                    OR (q.priority, q.waiting_since, q.id) > (after_priority, after_since, after_id))
             ORDER BY q.priority, q.waiting_since, q.id
             LIMIT least(page_size, 201);
    END
    $$;
COMMENT ON FUNCTION support.queue_page(text, boolean, integer, timestamptz, uuid, integer) IS
    'A page of a level''s queue (unanswered rooms and open escalations, most urgent first) for an agent of the '
    'level or higher, platform-wide, or a supervisor; nothing for anyone else.';
REVOKE ALL ON FUNCTION support.queue_page(text, boolean, integer, timestamptz, uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION support.queue_page(text, boolean, integer, timestamptz, uuid, integer) TO rapport_app;
"""

DOWNGRADE = (
    _OBSERVE_BEFORE
    + """
DROP FUNCTION support.queue_page(text, boolean, integer, timestamptz, uuid, integer);
"""
)


def upgrade() -> None:
    run_sql(UPGRADE + OBSERVE)


def downgrade() -> None:
    run_sql(DOWNGRADE)
