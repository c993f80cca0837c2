"""support_lifecycle: guest links keyed by the server, supervisors kept to support rooms,
a support room's conversation always a support one, and the command line's access changes
in the audit.

Why: issue 16, what the support desk still lacked.
- Guest link tokens were kept as their bare SHA-256: anyone holding a copy of
  support.guest_links could test guessed tokens offline. They are now kept as an
  HMAC-SHA256 under a key derived from the server's secret (purpose `support-guest-link`,
  rapport.kernel.crypto.Keyring), which the database never holds. The column keeps its
  name and its 32 bytes. Links made before this revision no longer open (their hash is not
  the one looked up): a link lives a week at most, so they are revoked here rather than
  carried over, and whoever made one makes a new one.
- A supervisor granted `supervisor:chat:observe` platform-wide could read the history of
  any conversation (messaging.conversation_history and participant_history, through
  messaging.observes), direct and group chats included. A platform-wide grant now reaches
  support and escalated rooms only; any other conversation's history is read by a
  supervisor granted it for that conversation itself (access.has_permission_in) and by
  platform administrators. support.rooms now refuses a conversation that is not of type
  support or escalated, so that everything a supervisor reads through the desk
  (support.observe_messages, the rooms, their escalations and guests) is a support room's.
- `rapport access grant|revoke` change grants as the system at an operator's command:
  audit.record_admin_action records those access actions with no administrator (admin_id
  NULL), for system work alone.

Revision ID: 2026_11_30_0041
Revises: 2026_11_30_0040
Create Date: 2026-11-30
"""

from importlib import import_module

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0041"
down_revision = "2026_11_30_0040"
branch_labels = None
depends_on = None

# audit.record_admin_action as 2026_11_30_0036 left it: the downgrade restores it.
_ACCESS = import_module("rapport.migrations.versions.2026_11_30_0036_access")


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


OBSERVE = "'supervisor:chat:observe'"

# Links hashed the other way open nothing after the change (either way): they are revoked.
# The table's row-level security binds its owner too and lets system work alone write it,
# so the owner lifts it for this one statement; the ALTER's lock keeps every other
# transaction out until the migration commits with it back in force.
REVOKE_OPEN_LINKS = """
ALTER TABLE support.guest_links NO FORCE ROW LEVEL SECURITY;
UPDATE support.guest_links SET revoked_at = now() WHERE revoked_at IS NULL;
ALTER TABLE support.guest_links FORCE ROW LEVEL SECURITY;
"""

GUEST_LINKS = f"""
{REVOKE_OPEN_LINKS}
COMMENT ON TABLE support.guest_links IS
    'Links that let someone without an account join one support room as a guest: expiring, for a number of '
    'uses (one by default). The token is shown once; only its HMAC under a key of the server''s is kept.';
COMMENT ON COLUMN support.guest_links.token_hash IS
    'HMAC-SHA256 of the token under a key derived from the server''s secret (purpose support-guest-link): '
    'a copy of the table does not let anyone test guessed tokens.';
"""

GUEST_LINKS_UNDONE = f"""
{REVOKE_OPEN_LINKS}
COMMENT ON TABLE support.guest_links IS
    'Links that let someone without an account join one support room as a guest: expiring, for a number of '
    'uses (one by default). The token is shown once; only its SHA-256 is kept.';
COMMENT ON COLUMN support.guest_links.token_hash IS NULL;
"""

ROOM_CONVERSATION = """
-- Supervisors read every support room (support.may_see_room, support.observe_messages):
-- a row here must never make another kind of conversation one.
CREATE FUNCTION support.guard_room_conversation() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM messaging.conversations c
                        WHERE c.id = NEW.conversation_id AND c.type IN ('support', 'escalated')) THEN
            RAISE EXCEPTION 'a support room''s conversation is of type support or escalated'
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION support.guard_room_conversation() IS
    'BEFORE INSERT OR UPDATE trigger of rooms: its conversation is a support or an escalated one.';
REVOKE ALL ON FUNCTION support.guard_room_conversation() FROM PUBLIC;
CREATE TRIGGER guard_room_conversation BEFORE INSERT OR UPDATE OF conversation_id ON support.rooms
    FOR EACH ROW EXECUTE FUNCTION support.guard_room_conversation();
"""

ROOM_CONVERSATION_UNDONE = """
DROP TRIGGER guard_room_conversation ON support.rooms;
DROP FUNCTION support.guard_room_conversation();
"""

OBSERVERS = f"""
-- Invoker rights: the acting user reads their own grants (access.grants' policy), and the
-- definer functions that call it read them as the owner; it answers for the acting user alone.
CREATE FUNCTION access.has_permission_in(permission text, conversation uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM access.grants g
              JOIN access.role_permissions rp ON rp.role_id = g.role_id
              JOIN auth.users u ON u.id = g.user_id
             WHERE g.user_id = auth.current_user_id()
               AND g.conversation_id = has_permission_in.conversation
               AND rp.permission = has_permission_in.permission
               AND u.status = 'active' AND u.deleted_at IS NULL)
    $$;
COMMENT ON FUNCTION access.has_permission_in(text, uuid) IS
    'Whether the acting user holds the permission through a grant for this very conversation (a platform-wide '
    'grant does not count, nor does being an administrator).';
REVOKE ALL ON FUNCTION access.has_permission_in(text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access.has_permission_in(text, uuid) TO rapport_app, rapport_worker;

-- A platform-wide supervisor observes the support desk's rooms, not everyone's chats.
CREATE OR REPLACE FUNCTION messaging.observes(conversation uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM messaging.conversations c
             WHERE c.id = conversation
               AND CASE WHEN c.type IN ('support', 'escalated')
                        THEN access.has_permission({OBSERVE}, c.id)
                        ELSE access.is_platform_admin() OR access.has_permission_in({OBSERVE}, c.id) END)
    $$;
COMMENT ON FUNCTION messaging.observes(uuid) IS
    'Whether the acting user supervises the conversation and it exists: a support or escalated room with '
    'supervisor:chat:observe there or platform-wide; any other with it granted for that conversation itself, '
    'or as a platform administrator.';

DROP POLICY conversation_history_read ON messaging.conversation_history;
CREATE POLICY conversation_history_read ON messaging.conversation_history FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR messaging.observes(conversation_id));
DROP POLICY participant_history_read ON messaging.participant_history;
CREATE POLICY participant_history_read ON messaging.participant_history FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR messaging.observes(conversation_id));
"""

OBSERVERS_UNDONE = f"""
DROP POLICY conversation_history_read ON messaging.conversation_history;
CREATE POLICY conversation_history_read ON messaging.conversation_history FOR SELECT
    USING (kernel.in_definer() OR auth.is_system()
           OR access.has_permission({OBSERVE}, conversation_id));
DROP POLICY participant_history_read ON messaging.participant_history;
CREATE POLICY participant_history_read ON messaging.participant_history FOR SELECT
    USING (kernel.in_definer() OR auth.is_system()
           OR access.has_permission({OBSERVE}, conversation_id));
CREATE OR REPLACE FUNCTION messaging.observes(conversation uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT access.has_permission({OBSERVE}, conversation)
           AND EXISTS (SELECT 1 FROM messaging.conversations c WHERE c.id = conversation)
    $$;
COMMENT ON FUNCTION messaging.observes(uuid) IS
    'Whether the acting user supervises the conversation (supervisor:chat:observe) and it exists.';
DROP FUNCTION access.has_permission_in(text, uuid);
"""


def _with_operator(script: str) -> str:
    """Migration 0036's record_admin_action, also recording the system's own changes of
    roles and grants at an operator's command (`rapport access`), with no administrator."""
    changes = (
        ("IF acting IS NULL OR NOT coalesce(", "IF NOT coalesce("),
        (
            "AND access.has_permission('access:admin:manage'))",
            "AND access.has_permission('access:admin:manage'))\n"
            "            -- The system at an operator's command (`rapport access`): no administrator acts.\n"
            f"            OR (acting IS NULL AND auth.is_system() AND record_admin_action.action IN ({_ACCESS.ACCESS_ACTIONS}))",
        ),
    )
    for before, after in changes:
        assert script.count(before) == 1, before
        script = script.replace(before, after)
    return script


AUDIT = f"""
{_with_operator(_ACCESS.record_admin_action(access_administrators=True))}
COMMENT ON FUNCTION audit.record_admin_action(text, text, uuid, text, jsonb, uuid) IS
    'Record a platform administrator''s action with its reason; returns the row''s id. The administrator '
    'records their own, or system work on their behalf; an access administrator records their own actions '
    'on roles and grants; system work records its own changes of roles and grants (an operator''s command) '
    'with no administrator.';
COMMENT ON COLUMN audit.admin_actions.admin_id IS
    'Who acted; NULL for the system itself, at an operator''s command (rapport access).';
"""

AUDIT_UNDONE = f"""
{_ACCESS.record_admin_action(access_administrators=True)}
COMMENT ON FUNCTION audit.record_admin_action(text, text, uuid, text, jsonb, uuid) IS
    'Record a platform administrator''s action with its reason; returns the row''s id. The administrator '
    'records their own, or system work on their behalf; an access administrator records their own actions '
    'on roles and grants.';
COMMENT ON COLUMN audit.admin_actions.admin_id IS NULL;
"""


def upgrade() -> None:
    run_sql(GUEST_LINKS)
    run_sql(ROOM_CONVERSATION)
    run_sql(OBSERVERS)
    run_sql(AUDIT)


def downgrade() -> None:
    # Rows the system recorded with no administrator stay: the audit is never rewritten.
    run_sql(AUDIT_UNDONE)
    run_sql(OBSERVERS_UNDONE)
    run_sql(ROOM_CONVERSATION_UNDONE)
    run_sql(GUEST_LINKS_UNDONE)
