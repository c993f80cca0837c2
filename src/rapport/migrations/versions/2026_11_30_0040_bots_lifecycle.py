"""bots_lifecycle.

Bots through their whole life: who may put one in a conversation, what guests never learn
of their messages, streams they abandon, a webhook secret that can be replaced without
losing deliveries, and what was delivered to them kept only for a while.

Why: the gaps left by 2026_11_30_0037 and 2026_11_30_0038 (issue 16, seed 003).
- Unread counts: a guest's counted the messages hidden from guests, which they can never
  read. `messaging.unread_count` and the conversation list now count, for a participant of
  role guest only, the messages of their unread stretch that they may read; everyone
  else's count is the same arithmetic as before (last sequence minus marker, less
  retractions and their own hidden marks) and costs nothing more than a look at the role.
- Files: a guest could read a file attached to a message hidden from guests by its id.
  `media.may_read_file_itself` (rule 2) and the attachments' read policy now lend a guest
  only what a message they may see carries.
- Adding a bot: anyone who could see a bot's profile could add it to a conversation, and
  so make it hear that conversation at its owner's expense. `messaging.add_participant`
  now adds a bot only for whoever manages it (its owner; platform administrators any bot)
  or holds the new permission `chat:robot:add` for the conversation (`bots.may_be_added`);
  a bot may still come in by itself (a public channel, an invitation link).
- Abandoned streams: a bot that opened a streamed message and never ended it left it
  `streaming` for ever. `bots.fail_abandoned_streams` (system work, the job
  `bots.expire_streams`) ends those opened before a moment as `failed`; a small partial
  index finds the few messages still open.
- Webhook secrets: `bots.bots` keeps the previous secret and until when it still signs
  (`previous_webhook_secret`, `previous_webhook_secret_until`), so that after a rotation
  each delivery carries a signature under both and a receiver can switch secrets without
  refusing one. The audit never records either secret.
- Retention: `bots.robot_interactions` (copies of messages) is indexed by age for the
  retention policy `bot_interactions` (rapport.compliance._policies).

Revision ID: 2026_11_30_0040
Revises: 2026_11_30_0039
Create Date: 2026-11-30
"""

from importlib import import_module

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0040"
down_revision = "2026_11_30_0039"
branch_labels = None
depends_on = None

# The functions as earlier migrations left them: this one changes them by parts, and its
# downgrade puts them back as they were.
_CORE = import_module("rapport.migrations.versions.2026_11_29_0014_messaging")
_MEDIA = import_module("rapport.migrations.versions.2026_11_30_0020_media")
_STREAMS = import_module("rapport.migrations.versions.2026_11_30_0037_messaging_streams")


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


def _replaced(script: str, *changes: tuple[str, str]) -> str:
    """`script` with each (before, after) replaced, each found exactly once."""
    for before, after in changes:
        assert script.count(before) == 1, (script.count(before), before)
        script = script.replace(before, after)
    return script


def _function(script: str, name: str) -> str:
    """One `CREATE FUNCTION` of an earlier migration's script, as CREATE OR REPLACE."""
    start = script.index(f"CREATE FUNCTION {name}(")
    end = script.index("$$;", start) + len("$$;")
    return "CREATE OR REPLACE" + script[start + len("CREATE") : end] + "\n"


def _comment(script: str, signature: str) -> str:
    """The `COMMENT ON FUNCTION` of an earlier migration's script for that function."""
    start = script.index(f"COMMENT ON FUNCTION {signature} IS")
    end = script.index("';\n", start) + len("';\n")
    return script[start:end]


# -- unread counts: guests ---------------------------------------------------------------------


def _guest_unread(*, conversation: str, reader: str, lo: str, hi: str) -> str:
    """The unread messages of a guest: those of the stretch (lo, hi] they may read (not
    hidden from guests, not deleted for everyone, not hidden by them). Read from the
    messages themselves, so that it holds under the guest's own row-level security too."""
    return f"""(SELECT count(*) FROM messaging.messages m
                WHERE m.conversation_id = {conversation} AND m.seq > {lo} AND m.seq <= {hi}
                  AND NOT m.hidden_from_guests
                  AND NOT EXISTS (SELECT 1 FROM messaging.retractions r
                                   WHERE r.conversation_id = m.conversation_id AND r.seq = m.seq)
                  AND NOT EXISTS (SELECT 1 FROM messaging.hidden_messages h
                                   WHERE h.user_id = {reader} AND h.conversation_id = m.conversation_id
                                     AND h.seq = m.seq))"""


UNREAD_BEFORE = _function(_CORE.HOT_PATHS, "messaging.unread_count")
UNREAD = _replaced(
    UNREAD_BEFORE,
    (
        "        SELECT CASE WHEN hi <= lo THEN 0 ELSE\n",
        "        SELECT CASE WHEN hi <= lo THEN 0\n"
        "            WHEN p.role = 'guest' THEN "
        + _guest_unread(conversation="p.conversation_id", reader="p.user_id", lo="lo", hi="hi")
        + "\n            ELSE\n",
    ),
) + (
    "COMMENT ON FUNCTION messaging.unread_count(messaging.participants, bigint) IS\n"
    "    'Exact unread messages: last sequence minus read marker, less retractions and hidden ones above it; '\n"
    "    'for a guest, the messages above it they may read (none hidden from guests).';\n"
)
UNREAD_UNDONE = UNREAD_BEFORE + (
    "COMMENT ON FUNCTION messaging.unread_count(messaging.participants, bigint) IS\n"
    "    'Exact unread messages: last sequence minus read marker, less retractions and hidden ones above it.';\n"
)

# The list's page: the same, written into the statement.
LIST = _replaced(
    _STREAMS.LIST,
    (
        "                       'unread_count', CASE WHEN x.hi <= x.lo THEN 0 ELSE\n",
        "                       'unread_count', CASE WHEN x.hi <= x.lo THEN 0\n"
        "                           WHEN (x.p).role = 'guest' THEN "
        + _guest_unread(conversation="(x.c).id", reader="acting_user", lo="x.lo", hi="x.hi")
        + "\n                           ELSE\n",
    ),
)

# -- files of messages hidden from guests ------------------------------------------------------

_RULE_2_BEFORE = """                     WHERE a.file_id = f.id AND p.status IN ('active', 'muted') AND a.seq > p.history_from_seq
                       AND NOT EXISTS (SELECT 1 FROM messaging.retractions r
                                        WHERE r.conversation_id = a.conversation_id AND r.seq = a.seq))"""
_RULE_2_AFTER = """                     WHERE a.file_id = f.id AND p.status IN ('active', 'muted') AND a.seq > p.history_from_seq
                       AND NOT EXISTS (SELECT 1 FROM messaging.retractions r
                                        WHERE r.conversation_id = a.conversation_id AND r.seq = a.seq)
                       -- A guest only through a message they may see: none hidden from guests.
                       AND (p.role <> 'guest' OR EXISTS (
                            SELECT 1 FROM messaging.messages m
                             WHERE m.conversation_id = a.conversation_id AND m.id = a.message_id
                               AND m.created_at = a.message_created_at AND NOT m.hidden_from_guests)))"""
_FILE_RULES_COMMENT = (
    "'Rules 1-4 of media.may_read_file: the owner (until deleted); a participant who may see a live '\n"
    "    'message carrying it; anyone"
)
FILE_RULES_BEFORE = _function(_MEDIA.FUNCTIONS, "media.may_read_file_itself") + _comment(
    _MEDIA.FUNCTIONS, "media.may_read_file_itself(uuid)"
)
FILE_RULES = _replaced(
    FILE_RULES_BEFORE,
    (_RULE_2_BEFORE, _RULE_2_AFTER),
    (
        _FILE_RULES_COMMENT,
        _FILE_RULES_COMMENT.replace("carrying it;", "carrying it (a guest: none hidden from guests);"),
    ),
)

_ATTACHMENTS_READ = """
DROP POLICY attachments_read ON media.attachments;
CREATE POLICY attachments_read ON media.attachments FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR EXISTS (
        SELECT 1 FROM messaging.participants p
         WHERE p.conversation_id = attachments.conversation_id AND p.user_id = auth.current_user_id()
           AND attachments.seq > p.history_from_seq AND (p.left_seq IS NULL OR attachments.seq <= p.left_seq){guests}));
"""
# A guest's EXISTS asks for the message as they may read it: their own policy (messages_read)
# already leaves out what is hidden from guests, and the condition says so for any reader.
ATTACHMENTS_READ = _ATTACHMENTS_READ.format(
    guests="""
           AND (p.role <> 'guest' OR EXISTS (
                SELECT 1 FROM messaging.messages m
                 WHERE m.conversation_id = attachments.conversation_id AND m.id = attachments.message_id
                   AND m.created_at = attachments.message_created_at AND NOT m.hidden_from_guests))"""
)
ATTACHMENTS_READ_BEFORE = _ATTACHMENTS_READ.format(guests="")

# -- adding a bot ------------------------------------------------------------------------------

# The catalogue's row-level security binds its owner too and lets no one write permissions:
# the owner lifts it for the one statement; the ALTER's lock keeps every other transaction
# out until the migration commits with it back in force.
MAY_ADD = """
ALTER TABLE access.permissions NO FORCE ROW LEVEL SECURITY;
INSERT INTO access.permissions (name, domain, action, description) VALUES
    ('chat:robot:add', 'chat:robot', 'add', 'Add to a conversation a bot one does not manage');
ALTER TABLE access.permissions FORCE ROW LEVEL SECURITY;

-- Whether the acting user may put an account in a conversation as far as bots go: anyone
-- who is no bot; a bot by its owner, by a platform administrator, or by whoever holds
-- chat:robot:add for the conversation (or platform-wide). Called by
-- messaging.add_participant, a definer, which reads every bot; granted to no one else, so
-- that it tells no one who owns which bot.
CREATE FUNCTION bots.may_be_added(member uuid, conversation uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT NOT EXISTS (SELECT 1 FROM auth.users u WHERE u.id = member AND u.kind = 'bot')
            OR EXISTS (SELECT 1 FROM bots.bots b WHERE b.id = member AND b.owner_id = auth.current_user_id())
            OR access.has_permission('chat:robot:add', conversation)
    $$;
COMMENT ON FUNCTION bots.may_be_added(uuid, uuid) IS
    'Whether the acting user may add this account to the conversation as far as bots go: true for a '
    'person; for a bot, its owner, a platform administrator or a holder of chat:robot:add there.';
REVOKE ALL ON FUNCTION bots.may_be_added(uuid, uuid) FROM PUBLIC;
"""
MAY_ADD_UNDONE = """
DROP FUNCTION bots.may_be_added(uuid, uuid);
ALTER TABLE access.role_permissions NO FORCE ROW LEVEL SECURITY;
ALTER TABLE access.permissions NO FORCE ROW LEVEL SECURITY;
DELETE FROM access.role_permissions WHERE permission = 'chat:robot:add';
DELETE FROM access.permissions WHERE name = 'chat:robot:add';
ALTER TABLE access.permissions FORCE ROW LEVEL SECURITY;
ALTER TABLE access.role_permissions FORCE ROW LEVEL SECURITY;
"""

_ALREADY = """        IF FOUND AND existing.status IN ('active', 'muted') THEN
            RETURN 'already';
        END IF;
"""
ADD_BEFORE = _function(_CORE.MEMBERSHIP, "messaging.add_participant")
ADD = _replaced(
    ADD_BEFORE,
    (
        _ALREADY,
        _ALREADY
        + """        -- A bot hears what is said where it takes part: it comes in by itself, or by
        -- the hand of whoever manages it or holds chat:robot:add here.
        IF member <> actor AND NOT bots.may_be_added(member, conversation) THEN
            RAISE EXCEPTION 'bot-add-not-allowed' USING ERRCODE = 'RM403';
        END IF;
""",
    ),
)

# -- abandoned streams -------------------------------------------------------------------------

STREAMS = """
-- Serves bots.fail_abandoned_streams: the few messages still open, oldest first.
CREATE INDEX ix_messages_open_streams ON messaging.messages (created_at)
    WHERE delivery_status IN ('streaming', 'batch-delay');

-- Ends as failed up to `max_rows` streamed messages of bots opened before `opened_before`
-- and still open, oldest first, and returns them for their events (message.stream.ended,
-- published by the caller in the same transaction). A step of the bot's under way holds
-- its message: that one is passed over until the next call.
CREATE FUNCTION bots.fail_abandoned_streams(opened_before timestamptz, max_rows integer)
    RETURNS TABLE (conversation uuid, message uuid, message_seq bigint, content_length integer, hidden boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'ending abandoned streams is system work' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN QUERY
        WITH open AS (
            SELECT m.conversation_id, m.seq, m.created_at
              FROM messaging.messages m
             WHERE m.delivery_status IN ('streaming', 'batch-delay') AND m.created_at < opened_before
               AND m.deleted_at IS NULL
               AND EXISTS (SELECT 1 FROM auth.users u WHERE u.id = m.sender_id AND u.kind = 'bot')
             ORDER BY m.created_at
             LIMIT max_rows
               FOR UPDATE OF m SKIP LOCKED
        ), ended AS (
            UPDATE messaging.messages x SET delivery_status = 'failed'
              FROM open o
             WHERE x.conversation_id = o.conversation_id AND x.seq = o.seq AND x.created_at = o.created_at
            RETURNING x.conversation_id, x.id, x.seq, length(x.content), x.hidden_from_guests
        )
        SELECT * FROM ended;
    END
    $$;
COMMENT ON FUNCTION bots.fail_abandoned_streams(timestamptz, integer) IS
    'System work (the job bots.expire_streams): bots'' streamed messages opened before the moment and still '
    'open end as failed, at most max_rows, oldest first. Returns them.';
REVOKE ALL ON FUNCTION bots.fail_abandoned_streams(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bots.fail_abandoned_streams(timestamptz, integer) TO rapport_worker;
"""
STREAMS_UNDONE = """
DROP FUNCTION bots.fail_abandoned_streams(timestamptz, integer);
DROP INDEX messaging.ix_messages_open_streams;
"""

# -- webhook secrets ---------------------------------------------------------------------------

SECRETS = """
ALTER TABLE bots.bots
    ADD COLUMN previous_webhook_secret bytea,
    ADD COLUMN previous_webhook_secret_until timestamptz,
    ADD CONSTRAINT ck_bots_previous_webhook_secret
        CHECK ((previous_webhook_secret IS NULL) = (previous_webhook_secret_until IS NULL));
COMMENT ON COLUMN bots.bots.previous_webhook_secret IS
    'The secret replaced by the last rotation, encrypted as webhook_secret is: until '
    'previous_webhook_secret_until each delivery is also signed with it, so that receivers switch without '
    'refusing one.';
COMMENT ON COLUMN bots.bots.previous_webhook_secret_until IS
    'Until when deliveries carry a signature under the previous secret as well (set by a rotation).';

-- Who made, changed or removed a bot, and where its webhook pointed; never its secrets.
DROP TRIGGER tr_bots_audit ON bots.bots;
CREATE TRIGGER tr_bots_audit AFTER INSERT OR DELETE OR UPDATE ON bots.bots
    FOR EACH ROW EXECUTE FUNCTION audit.record_change('webhook_secret', 'previous_webhook_secret');
"""
SECRETS_UNDONE = """
DROP TRIGGER tr_bots_audit ON bots.bots;
CREATE TRIGGER tr_bots_audit AFTER INSERT OR DELETE OR UPDATE ON bots.bots
    FOR EACH ROW EXECUTE FUNCTION audit.record_change('webhook_secret');
ALTER TABLE bots.bots DROP CONSTRAINT ck_bots_previous_webhook_secret,
    DROP COLUMN previous_webhook_secret_until, DROP COLUMN previous_webhook_secret;
"""

# -- retention ---------------------------------------------------------------------------------

_INTERACTIONS_COMMENT = """
COMMENT ON TABLE bots.robot_interactions IS
    'One message delivered to one bot''s webhook (seed 003 robot_interactions), with every attempt. Holds a '
    'copy of the message: readable only by whoever manages the bot; written by system work.{kept}';
"""
RETENTION = """
-- Serves the retention policy bot_interactions (rapport.compliance._policies): the oldest deliveries.
CREATE INDEX ix_robot_interactions_created_at ON bots.robot_interactions (created_at);
""" + _INTERACTIONS_COMMENT.format(kept=" Removed by the retention policy bot_interactions (90 days by default).")
RETENTION_UNDONE = "DROP INDEX bots.ix_robot_interactions_created_at;" + _INTERACTIONS_COMMENT.format(kept="")


def upgrade() -> None:
    run_sql(UNREAD)
    run_sql(LIST)
    run_sql(FILE_RULES)
    run_sql(ATTACHMENTS_READ)
    run_sql(MAY_ADD)
    run_sql(ADD)
    run_sql(STREAMS)
    run_sql(SECRETS)
    run_sql(RETENTION)


def downgrade() -> None:
    run_sql(RETENTION_UNDONE)
    run_sql(SECRETS_UNDONE)
    run_sql(STREAMS_UNDONE)
    run_sql(ADD_BEFORE)
    run_sql(MAY_ADD_UNDONE)
    run_sql(ATTACHMENTS_READ_BEFORE)
    run_sql(FILE_RULES_BEFORE)
    run_sql(_STREAMS.LIST)
    run_sql(UNREAD_UNDONE)
