"""support_permissions: the support desk's catalogue permissions mean what they say.

Why: issue 16 (audit). Six permissions of the catalogue were never asked. Now:
- `chat:message:send` and `chat:file:upload`: in a support or escalated room, someone who
  is not its customer, a guest or a bot (an agent) sends only with chat:message:send
  there, and attaches files only with chat:file:upload too (`support.missing_to_post`,
  asked by `messaging.send_message`). Other conversations are unchanged.
- `chat:robot:invoke`, `chat:room:join` and `chat:message:read` are asked by the desk's
  service (bringing a bot one manages into a room; joining a room; a supervisor reading
  one), needing nothing here. The support roles now hold chat:robot:invoke and
  chat:file:upload.
- `chat:room:create` leaves the catalogue: opening a room is no privilege (anyone opens a
  conversation or their own support room; an escalated room is opened by an escalation,
  which needs chat:escalation:create). No role held it.
- `bot` messages are bots' own: a person's would pass for a bot's answer.
- `support.rooms.max_participants`: the room's limit as the desk set it; the room's
  conversation enforces it (`messaging.conversations.max_participants`).

Revision ID: 2026_12_01_0050
Revises: 2026_12_01_0049
Create Date: 2026-12-01
"""

from importlib import import_module

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_12_01_0050"
down_revision = "2026_12_01_0049"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


def _once(script: str, old: str, new: str) -> str:
    assert script.count(old) == 1, old
    return script.replace(old, new)


_COPARENTING = import_module("rapport.migrations.versions.2026_11_30_0043_coparenting_rooms")
_ENCRYPTION = import_module("rapport.migrations.versions.2026_11_30_0048_encryption")

# The catalogue's row-level security binds its owner too and lets no one write it: the
# owner lifts it for these statements; the ALTERs' locks keep every other transaction out
# until the migration commits with it back in force.
CATALOGUE = """
ALTER TABLE access.permissions NO FORCE ROW LEVEL SECURITY;
ALTER TABLE access.role_permissions NO FORCE ROW LEVEL SECURITY;
DELETE FROM access.role_permissions WHERE permission = 'chat:room:create';
DELETE FROM access.permissions WHERE name = 'chat:room:create';
UPDATE access.permissions SET description = 'Bring a bot into a support room' WHERE name = 'chat:robot:invoke';
UPDATE access.permissions SET description = 'Send messages in a support room one is not the customer of'
 WHERE name = 'chat:message:send';
UPDATE access.permissions SET description = 'Attach files in a support room one is not the customer of'
 WHERE name = 'chat:file:upload';
UPDATE access.permissions SET description = 'Read the messages of support rooms one observes'
 WHERE name = 'chat:message:read';
UPDATE access.permissions SET description = 'Join a support room of one''s level' WHERE name = 'chat:room:join';
INSERT INTO access.role_permissions (role_id, permission)
SELECT r.id, p.permission FROM access.roles r CROSS JOIN (VALUES ('chat:robot:invoke'), ('chat:file:upload')) AS p (permission)
 WHERE r.name IN ('support-t1', 'support-t2', 'support-t3', 'support-manager')
    ON CONFLICT DO NOTHING;
ALTER TABLE access.permissions FORCE ROW LEVEL SECURITY;
ALTER TABLE access.role_permissions FORCE ROW LEVEL SECURITY;
"""

CATALOGUE_UNDONE = """
ALTER TABLE access.permissions NO FORCE ROW LEVEL SECURITY;
ALTER TABLE access.role_permissions NO FORCE ROW LEVEL SECURITY;
DELETE FROM access.role_permissions rp USING access.roles r
 WHERE rp.role_id = r.id AND rp.permission IN ('chat:robot:invoke', 'chat:file:upload')
   AND r.name IN ('support-t1', 'support-t2', 'support-t3', 'support-manager');
INSERT INTO access.permissions (name, domain, action, description) VALUES
    ('chat:room:create', 'chat:room', 'create', 'Open a room');
UPDATE access.permissions SET description = 'Call on a bot' WHERE name = 'chat:robot:invoke';
UPDATE access.permissions SET description = 'Send messages' WHERE name = 'chat:message:send';
UPDATE access.permissions SET description = 'Upload files' WHERE name = 'chat:file:upload';
UPDATE access.permissions SET description = 'Read messages' WHERE name = 'chat:message:read';
UPDATE access.permissions SET description = 'Join a room one is not invited to' WHERE name = 'chat:room:join';
ALTER TABLE access.permissions FORCE ROW LEVEL SECURITY;
ALTER TABLE access.role_permissions FORCE ROW LEVEL SECURITY;
"""

# -- posting in a support room ---------------------------------------------------------------

# Invoker rights, called by messaging.send_message (a definer, so it reads every room):
# granted to no one else, so that it tells no one who a room's customer is.
MISSING_TO_POST = """
CREATE FUNCTION support.missing_to_post(conversation uuid, attaching boolean) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT CASE
                 -- The customer: the desk's room says who; a support conversation the desk
                 -- keeps no room for is its creator's.
                 WHEN auth.current_user_id() = coalesce(
                          (SELECT r.customer_id FROM support.rooms r WHERE r.conversation_id = conversation),
                          (SELECT c.creator_id FROM messaging.conversations c
                            WHERE c.id = conversation AND c.type = 'support'))
                   OR EXISTS (SELECT 1 FROM auth.users u
                               WHERE u.id = auth.current_user_id() AND u.kind IN ('guest', 'bot')) THEN NULL
                 WHEN NOT access.has_permission('chat:message:send', conversation) THEN 'chat:message:send'
                 WHEN attaching AND NOT access.has_permission('chat:file:upload', conversation) THEN 'chat:file:upload'
               END
    $$;
COMMENT ON FUNCTION support.missing_to_post(uuid, boolean) IS
    'The permission the acting user lacks to post (chat:message:send) or to attach files (chat:file:upload) in '
    'a support room, or NULL: its customer, guests and bots need none.';
REVOKE ALL ON FUNCTION support.missing_to_post(uuid, boolean) FROM PUBLIC;
"""

# The send as migration 0048 left it (0043's, with the encryption flag in its answer).
[_SEND_BEFORE] = [after for before, after in _ENCRYPTION.READERS if before == _COPARENTING._SEND_AFTER]
_SEND_CHECKED = _once(
    _SEND_BEFORE,
    "        hidden boolean;\n    BEGIN\n",
    "        hidden boolean;\n        missing text;\n    BEGIN\n",
)
_SEND_CHECKED = _once(
    _SEND_CHECKED,
    "        IF message_type IN ('system', 'ai') THEN\n"
    "            RAISE EXCEPTION 'cannot-send' USING ERRCODE = 'RM403';\n"
    "        END IF;\n",
    "        IF message_type IN ('system', 'ai') THEN\n"
    "            RAISE EXCEPTION 'cannot-send' USING ERRCODE = 'RM403';\n"
    "        END IF;\n"
    "        -- A bot's answer is a bot's: a person's would pass for one.\n"
    "        IF message_type = 'bot' AND NOT EXISTS (\n"
    "            SELECT 1 FROM auth.users u WHERE u.id = acting_user AND u.kind = 'bot') THEN\n"
    "            RAISE EXCEPTION 'bot-type-reserved' USING ERRCODE = 'RM403';\n"
    "        END IF;\n",
)
_SEND_AFTER = _once(
    _SEND_CHECKED,
    "           OR (c_type = 'direct' AND social.is_blocked(c_low, c_high)) THEN\n"
    "            RAISE EXCEPTION 'cannot-send' USING ERRCODE = 'RM403';\n"
    "        END IF;\n",
    "           OR (c_type = 'direct' AND social.is_blocked(c_low, c_high)) THEN\n"
    "            RAISE EXCEPTION 'cannot-send' USING ERRCODE = 'RM403';\n"
    "        END IF;\n"
    "        -- In a support room an agent posts with chat:message:send, and attaches with\n"
    "        -- chat:file:upload; its customer, guests and bots need neither.\n"
    "        IF c_type IN ('support', 'escalated') THEN\n"
    "            missing := support.missing_to_post(conversation, files > 0);\n"
    "            IF missing IS NOT NULL THEN\n"
    "                RAISE EXCEPTION 'permission-required:%', missing USING ERRCODE = 'RM403';\n"
    "            END IF;\n"
    "        END IF;\n",
)

# -- a support room's limit ------------------------------------------------------------------

LIMIT = """
ALTER TABLE support.rooms ADD COLUMN max_participants integer,
    ADD CONSTRAINT ck_rooms_max_participants CHECK (max_participants BETWEEN 2 AND 100000);
COMMENT ON COLUMN support.rooms.max_participants IS
    'How many people may take part in the room (NULL: no limit), as the desk set it; its conversation''s '
    'max_participants, which messaging enforces, says the same.';
"""
LIMIT_UNDONE = "ALTER TABLE support.rooms DROP COLUMN max_participants;"


def upgrade() -> None:
    run_sql(CATALOGUE)
    run_sql(MISSING_TO_POST)
    run_sql(_SEND_AFTER)
    run_sql(LIMIT)


def downgrade() -> None:
    run_sql(LIMIT_UNDONE)
    run_sql(_SEND_BEFORE)
    run_sql("DROP FUNCTION support.missing_to_post(uuid, boolean);")
    run_sql(CATALOGUE_UNDONE)
