"""Messaging for support rooms and bots: escalated rooms, streamed messages, bot messages
hidden from guests, and the history of rooms and participants.

Why: issue 16 (seed 003).
- `conversations.type` gains `escalated` (a support room raised to a higher level, below
  its source as parent). The support desk opens support and escalated rooms as system
  work, through `messaging.admit_participant` / `messaging.dismiss_participant`, which
  carry none of `add_participant`'s rules about who may add whom.
- `messages.delivery_status` (seed 003): NULL for an ordinary message, which is delivered
  as it always was. A message sent with `streaming` starts `streaming` and grows in place
  through `messaging.stream_message` (only its sender, only while streaming, never past
  the length limit) until it is `delivered` or `failed`. Its steps are events
  (`message.stream.started`, `message.streamed`, `message.stream.ended`); everything that
  reads `message.created` (notifications, bots, topics) hears it once, when it is
  delivered, with all its text. An append makes no version in message_history: a stream
  is not an edit.
- `messages.hidden_from_guests` (seed 003 `is_robot_visible_to_guests`, inverted): set at
  the send from the sender. Only an API-key send can be a bot's (bots have no sessions), so
  a person's send in their session pays nothing for it; a bot's message is hidden unless
  its owner made its messages visible (`bots.is_visible_to_guests`, once that exists).
  Participants of role `guest` never read such a message: not in history, the list's last
  message, search, a single read (`messages_read`), nor in the events sync and the stream
  deliver (their payload says `hidden_from_guests`).
- `conversation_history` and `participant_history` (seed 003 `messages_history`, for rooms
  and participants): the previous row of every change to a room or to someone's place in
  it, by trigger, readable by holders of `supervisor:chat:observe` (access.has_permission,
  migration 2026_11_30_0036). Only the columns a room or membership change can change fire
  them: a send's counters and read markers never do, so the hot paths are untouched.

Revision ID: 2026_11_30_0037
Revises: 2026_11_30_0036
Create Date: 2026-11-30
"""

from importlib import import_module

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0037"
down_revision = "2026_11_30_0036"
branch_labels = None
depends_on = None

# The functions as earlier migrations left them: this one changes them by parts (0021's
# way), and its downgrade restores them as they were.
_CORE = import_module("rapport.migrations.versions.2026_11_29_0014_messaging")
_HOT = import_module("rapport.migrations.versions.2026_11_29_0017_hot_definers")
_FILES = import_module("rapport.migrations.versions.2026_11_30_0021_message_attachments")
_SEARCH = import_module("rapport.migrations.versions.2026_11_30_0026_search_by_day")

MAX_CONTENT = 10_000
# An append travels whole in its event (kernel.events payloads are at most 4000 bytes).
MAX_APPEND_JSON_BYTES = 3500


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


def _replaced(script: str, *changes: tuple[str, str], count: int = 1) -> str:
    """`script` with each (before, after) replaced, each found exactly `count` times."""
    for before, after in changes:
        assert script.count(before) == count, (script.count(before), before)
        script = script.replace(before, after)
    return script


def _function(script: str, name: str) -> str:
    """One `CREATE FUNCTION` of an earlier migration's script, as CREATE OR REPLACE."""
    start = script.index(f"CREATE FUNCTION {name}(")
    end = script.index("$$;", start) + len("$$;")
    return "CREATE OR REPLACE" + script[start + len("CREATE") : end] + "\n"


COLUMNS = """
ALTER TABLE messaging.conversations DROP CONSTRAINT ck_conversations_type,
    ADD CONSTRAINT ck_conversations_type
        CHECK (type IN ('direct', 'group', 'channel', 'broadcast', 'support', 'escalated'));
COMMENT ON TABLE messaging.conversations IS
    'A place where people talk: direct (two people), group, channel (public: findable, joinable), '
    'broadcast (only admins post), support or escalated (a support room raised a level, its source as '
    'parent). Seeds: 004 conversations, 003 chat_rooms, 000 rooms.';

-- NOT VALID: the column is new, NULL in every existing row, so there is nothing to check,
-- and checking would read every partition under this lock (seconds at millions of rows).
-- Every row written from now on is checked.
ALTER TABLE messaging.messages
    ADD COLUMN delivery_status text,
    ADD COLUMN hidden_from_guests boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT ck_messages_delivery_status
        CHECK (delivery_status IN ('streaming', 'batch-delay', 'delivered', 'failed')) NOT VALID;
COMMENT ON COLUMN messaging.messages.delivery_status IS
    'Seed 003: NULL for an ordinary message; streaming while its sender appends to it (messaging.stream_message), '
    'then delivered or failed for good. batch-delay: open like streaming, its steps not announced one by one.';
COMMENT ON COLUMN messaging.messages.hidden_from_guests IS
    'Participants of role guest never read it: a bot''s message unless the bot is visible to guests '
    '(seed 003 is_robot_visible_to_guests). Set at the send; never changes.';
"""

# Whether what an account sends is hidden from guests: a bot's, unless its owner made it
# visible. bots.is_visible_to_guests comes with the bots' own migration, after this one:
# looked up when called, and until it exists every bot is hidden. Not granted to anyone:
# messaging's definer functions call it.
HIDES = """
CREATE FUNCTION messaging.hides_from_guests(sender uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM auth.users u WHERE u.id = sender AND u.kind = 'bot') THEN
            RETURN false;
        END IF;
        IF to_regprocedure('bots.is_visible_to_guests(uuid)') IS NULL THEN
            RETURN true;
        END IF;
        RETURN NOT coalesce(bots.is_visible_to_guests(sender), false);
    END
    $$;
COMMENT ON FUNCTION messaging.hides_from_guests(uuid) IS
    'Whether the messages this account sends are hidden from guests: a bot''s, unless it is visible to them.';
REVOKE ALL ON FUNCTION messaging.hides_from_guests(uuid) FROM PUBLIC;
"""

# -- triggers on messages ----------------------------------------------------------------

_GUEST_MENTIONS = (
    "AND p.status IN ('active', 'muted') AND p.user_id IS DISTINCT FROM NEW.sender_id",
    "AND p.status IN ('active', 'muted') AND p.user_id IS DISTINCT FROM NEW.sender_id\n"
    "                   AND NOT (NEW.hidden_from_guests AND p.role = 'guest')",
)

# Mentions: a guest is never told of a message hidden from them.
SEQUENCE = _replaced(_function(_CORE.FUNCTIONS, "messaging.sequence_message"), _GUEST_MENTIONS)

_IDENTITY_BEFORE = """           OR NEW.thread_id IS DISTINCT FROM OLD.thread_id THEN
            RAISE EXCEPTION 'a message''s identity, place and sender never change' USING ERRCODE = 'RM403';
        END IF;
        IF NEW.sender_id IS DISTINCT FROM OLD.sender_id THEN"""
_IDENTITY_AFTER = """           OR NEW.thread_id IS DISTINCT FROM OLD.thread_id OR NEW.hidden_from_guests <> OLD.hidden_from_guests THEN
            RAISE EXCEPTION 'a message''s identity, place and sender never change' USING ERRCODE = 'RM403';
        END IF;
        IF NEW.sender_id IS DISTINCT FROM OLD.sender_id THEN"""
_STATUS_BEFORE = """        IF OLD.deleted_at IS NOT NULL THEN
            RAISE EXCEPTION 'message-not-found' USING ERRCODE = 'RM404';
        END IF;
"""
_STATUS_AFTER = """        IF OLD.deleted_at IS NOT NULL THEN
            RAISE EXCEPTION 'message-not-found' USING ERRCODE = 'RM404';
        END IF;
        -- A streamed message closes once, by its sender, as delivered or failed; an
        -- ordinary one never takes a status.
        IF NEW.delivery_status IS DISTINCT FROM OLD.delivery_status THEN
            IF OLD.delivery_status IS NULL OR OLD.delivery_status NOT IN ('streaming', 'batch-delay')
               OR NEW.delivery_status IS NULL OR NEW.delivery_status NOT IN ('delivered', 'failed') THEN
                RAISE EXCEPTION 'message-not-streaming' USING ERRCODE = 'RM409';
            END IF;
            IF NOT (coalesce(OLD.sender_id = actor, false) OR auth.is_system()) THEN
                RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
            END IF;
        END IF;
"""
_VERSION_BEFORE = """            -- A version is what was said; changing only whom it mentions makes none.
            IF NEW.content <> OLD.content OR NEW.content_metadata <> OLD.content_metadata THEN"""
_VERSION_AFTER = """            -- While it streams, a message only grows: an append is no edit and makes no
            -- version (it is not what was said yet); anything else waits for its end.
            IF OLD.delivery_status IN ('streaming', 'batch-delay') THEN
                IF NOT starts_with(NEW.content, OLD.content) OR NEW.content_metadata <> OLD.content_metadata THEN
                    RAISE EXCEPTION 'message-streaming' USING ERRCODE = 'RM409';
                END IF;
                NEW.moderation_flagged := NEW.moderation_flagged OR messaging.flags(NEW.content);
            -- A version is what was said; changing only whom it mentions makes none.
            ELSIF NEW.content <> OLD.content OR NEW.content_metadata <> OLD.content_metadata THEN"""
_GUARD_MENTIONS = (
    "AND p.status IN ('active', 'muted') AND p.user_id IS DISTINCT FROM NEW.sender_id",
    "AND p.status IN ('active', 'muted') AND p.user_id IS DISTINCT FROM NEW.sender_id\n"
    "                       AND NOT (NEW.hidden_from_guests AND p.role = 'guest')",
)

GUARD = _replaced(
    _function(_CORE.FUNCTIONS, "messaging.guard_message_update"),
    (_IDENTITY_BEFORE, _IDENTITY_AFTER),
    (_STATUS_BEFORE, _STATUS_AFTER),
    (_VERSION_BEFORE, _VERSION_AFTER),
    _GUARD_MENTIONS,
)

# -- the hot paths -------------------------------------------------------------------------


def message_json(m: str, viewer: str) -> str:
    """Migration 0021's message JSON with the message's delivery status."""
    return _replaced(
        _FILES.message_json(m, viewer),
        (f"'created_at', {m}.created_at,", f"'created_at', {m}.created_at, 'delivery_status', {m}.delivery_status,"),
    )


def _with_status(script: str, *rows: tuple[str, str]) -> str:
    """`script` with each (row, viewer) message JSON of 0021 replaced by this one's."""
    for m, viewer in rows:
        old = _FILES.message_json(m, viewer)
        assert old in script, (m, viewer)
        script = script.replace(old, message_json(m, viewer))
    return script


RENDER = f"""
CREATE OR REPLACE FUNCTION messaging.render_message(m messaging.messages, viewer uuid) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
        SELECT {message_json("m", "viewer")}
    $$;
"""

# History: a guest's window leaves out what is hidden from guests (anchors too).
HISTORY = _replaced(
    _with_status(_FILES.HISTORY, ("x", "acting_user")),
    ("        more boolean;\n", "        more boolean;\n        guest boolean;\n"),
    (
        "SELECT p.history_from_seq, coalesce(p.left_seq, 9223372036854775807) INTO lo, hi",
        "SELECT p.history_from_seq, coalesce(p.left_seq, 9223372036854775807), p.role = 'guest' INTO lo, hi, guest",
    ),
    (
        "AND m.created_at = messaging.id_time(anchor_id) AND m.seq > lo AND m.seq <= hi;",
        "AND m.created_at = messaging.id_time(anchor_id) AND m.seq > lo AND m.seq <= hi\n"
        "               AND NOT (guest AND m.hidden_from_guests);",
    ),
)
HISTORY = _replaced(
    HISTORY,
    (
        "AND h.conversation_id = conversation AND h.seq = m.seq)",
        "AND h.conversation_id = conversation AND h.seq = m.seq)\n"
        "                       AND NOT (guest AND m.hidden_from_guests)",
    ),
    count=4,
)

# The list: a guest's last message is the newest one they may see.
_LAST_BEFORE = f"""                       'last_message', (
                           SELECT {message_json("m", "acting_user")} FROM messaging.messages m
                            WHERE m.conversation_id = (x.c).id AND m.seq = (x.c).last_seq
                              AND m.created_at = (x.c).last_message_at AND m.seq > (x.p).history_from_seq))"""
_LAST_AFTER = f"""                       'last_message', CASE WHEN (x.p).role = 'guest' THEN (
                           SELECT {message_json("m", "acting_user")} FROM messaging.messages m
                            WHERE m.conversation_id = (x.c).id AND m.seq <= (x.c).last_seq
                              AND m.seq > (x.p).history_from_seq AND NOT m.hidden_from_guests
                            ORDER BY m.seq DESC LIMIT 1) ELSE (
                           SELECT {message_json("m", "acting_user")} FROM messaging.messages m
                            WHERE m.conversation_id = (x.c).id AND m.seq = (x.c).last_seq
                              AND m.created_at = (x.c).last_message_at AND m.seq > (x.p).history_from_seq) END)"""
LIST = _replaced(_with_status(_FILES.LIST, ("m", "acting_user")), (_LAST_BEFORE, _LAST_AFTER))

# Search: a message hidden from a guest reader is left out of their page's items, as a
# message gone since is (it still counts for the cursor).
_PAGE_JOIN = """                  LEFT JOIN messaging.messages m
                    ON m.conversation_id = p.conversation_id AND m.id = p.message_id AND m.created_at = p.created_at"""
SEARCH_PAGE = _replaced(
    _function(_SEARCH.PAGE, "messaging.search_page"),
    (
        _PAGE_JOIN,
        _PAGE_JOIN
        + """
                   AND (NOT m.hidden_from_guests OR NOT EXISTS (
                        SELECT 1 FROM messaging.participants g
                         WHERE g.conversation_id = m.conversation_id AND g.user_id = acting_user AND g.role = 'guest'))""",
    ),
)

_SEND_OLD = _FILES._NEW_SIGNATURE
_SEND_NEW = _SEND_OLD + ", boolean"


def _send_of_0021() -> str:
    """0021's send, without its DROP of 0017's: the function this migration replaces."""
    made = _FILES._send()
    drop = f"DROP FUNCTION messaging.send_message({_FILES._OLD_SIGNATURE});"
    return _replaced(made, (drop, ""))


# The send: `streaming` opens a streamed message (announced as message.stream.started, not
# created yet), and a bot's message is hidden from guests. Ordinary sends in a session
# take the same path as before: `session IS NULL` is false and no event changes shape.
_SEND_CHANGES = (
    (
        "    forwarded_from uuid, mentions uuid[], attachments uuid[]\n) RETURNS TABLE (created boolean, message text)",
        "    forwarded_from uuid, mentions uuid[], attachments uuid[], streaming boolean DEFAULT false\n"
        ") RETURNS TABLE (created boolean, message text)",
    ),
    (
        "        files integer := coalesce(cardinality(attachments), 0);\n",
        "        files integer := coalesce(cardinality(attachments), 0);\n        hidden boolean;\n",
    ),
    (
        "            RAISE EXCEPTION 'attachment-not-found' USING ERRCODE = 'RM422';\n        END IF;\n",
        "            RAISE EXCEPTION 'attachment-not-found' USING ERRCODE = 'RM422';\n        END IF;\n"
        "        -- Bots send with API keys: a send in a session is a person's.\n"
        "        hidden := session IS NULL AND messaging.hides_from_guests(acting_user);\n",
    ),
    (
        "reply_to_id, forwarded_from_id, thread_id, mentions, moderation_flagged, attachment_count, created_at)",
        "reply_to_id, forwarded_from_id, thread_id, mentions, moderation_flagged, attachment_count, created_at,\n"
        "            hidden_from_guests, delivery_status)",
    ),
    (
        "            false, files, messaging.id_time(new_id))",
        "            false, files, messaging.id_time(new_id), hidden, CASE WHEN streaming THEN 'streaming' END)",
    ),
    (
        """        VALUES (NULL, 'conversation', conversation, 'message.created',
                jsonb_build_object('message_id', m.id, 'seq', m.seq, 'sender_id', acting_user,
                                   'thread_id', m.thread_id, 'mentions', to_jsonb(m.mentions)),
                acting_user);""",
        """        VALUES (NULL, 'conversation', conversation,
                CASE WHEN streaming THEN 'message.stream.started' ELSE 'message.created' END,
                CASE WHEN streaming OR hidden THEN
                    jsonb_build_object('message_id', m.id, 'seq', m.seq, 'sender_id', acting_user,
                                       'thread_id', m.thread_id, 'mentions', to_jsonb(m.mentions))
                    || CASE WHEN streaming THEN jsonb_build_object('delivery_status', m.delivery_status)
                            ELSE '{}'::jsonb END
                    || CASE WHEN hidden THEN jsonb_build_object('hidden_from_guests', true) ELSE '{}'::jsonb END
                ELSE
                    jsonb_build_object('message_id', m.id, 'seq', m.seq, 'sender_id', acting_user,
                                       'thread_id', m.thread_id, 'mentions', to_jsonb(m.mentions))
                END,
                acting_user);""",
    ),
    (
        "'is_edited', false, 'edited_at', NULL, 'is_deleted', false, 'deleted_at', NULL,\n"
        "            'created_at', m.created_at,",
        "'is_edited', false, 'edited_at', NULL, 'is_deleted', false, 'deleted_at', NULL,\n"
        "            'created_at', m.created_at, 'delivery_status', m.delivery_status,",
    ),
)
SEND = f"DROP FUNCTION messaging.send_message({_SEND_OLD});\n" + _replaced(
    _replaced(_send_of_0021(), *_SEND_CHANGES),
    (f"send_message({_SEND_OLD})", f"send_message({_SEND_NEW})"),
    count=3,
)

# -- streaming -----------------------------------------------------------------------------

STREAM = f"""
-- One step of a streamed message, in one statement: who acts (their session or key), the
-- message as they may read it, locked (steps of one message queue), the checks, the
-- append and the step's events. Only the sender, only while it is open; appends need the
-- right to send, closing it only that they still take part. A definer, as the send.
CREATE FUNCTION messaging.stream_message(
    acting_user uuid, session uuid, api_key uuid, conversation uuid, message uuid,
    addition text, finish text
) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        p_status text;
        p_role text;
        p_can_send boolean;
        p_from bigint;
        c_status text;
        m messaging.messages;
        was text;
        guarded jsonb;
    BEGIN
        PERFORM auth.act_for_request(acting_user, session, api_key);
        IF finish IS NOT NULL AND finish NOT IN ('delivered', 'failed') THEN
            RAISE EXCEPTION 'a stream ends delivered or failed' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT x.status, x.role, x.can_send, x.history_from_seq, c.status
          INTO p_status, p_role, p_can_send, p_from, c_status
          FROM messaging.participants x JOIN messaging.conversations c ON c.id = x.conversation_id
         WHERE x.conversation_id = conversation AND x.user_id = acting_user AND c.deleted_at IS NULL
           AND x.status IN ('active', 'muted');
        IF NOT FOUND THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        SELECT * INTO m FROM messaging.messages x
         WHERE x.conversation_id = conversation AND x.id = message AND x.created_at = messaging.id_time(message)
           AND x.seq > p_from AND NOT (p_role = 'guest' AND x.hidden_from_guests)
           FOR UPDATE;
        IF NOT FOUND OR m.deleted_at IS NOT NULL THEN
            RAISE EXCEPTION 'message-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF m.sender_id IS DISTINCT FROM acting_user THEN
            RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
        END IF;
        IF m.delivery_status IS NULL OR m.delivery_status NOT IN ('streaming', 'batch-delay') THEN
            RAISE EXCEPTION 'message-not-streaming' USING ERRCODE = 'RM409';
        END IF;
        IF addition <> '' THEN
            IF c_status <> 'active' THEN
                RAISE EXCEPTION 'conversation-not-active' USING ERRCODE = 'RM409';
            END IF;
            IF p_status <> 'active' OR NOT p_can_send OR p_role = 'observer' THEN
                RAISE EXCEPTION 'cannot-send' USING ERRCODE = 'RM403';
            END IF;
            IF octet_length(to_jsonb(addition)::text) > {MAX_APPEND_JSON_BYTES} THEN
                RAISE EXCEPTION 'append-too-long' USING ERRCODE = 'RM422';
            END IF;
            IF length(m.content) + length(addition) > {MAX_CONTENT} THEN
                RAISE EXCEPTION 'message-too-long' USING ERRCODE = 'RM422';
            END IF;
        END IF;
        was := m.delivery_status;
        UPDATE messaging.messages x
           SET content = x.content || addition, delivery_status = coalesce(finish, x.delivery_status)
         WHERE x.conversation_id = conversation AND x.seq = m.seq AND x.created_at = m.created_at
        RETURNING * INTO m;
        guarded := CASE WHEN m.hidden_from_guests THEN jsonb_build_object('hidden_from_guests', true)
                        ELSE '{{}}'::jsonb END;
        IF addition <> '' AND was = 'streaming' THEN
            INSERT INTO kernel.events (position, scope_kind, scope_id, type, payload, actor_id)
            VALUES (NULL, 'conversation', conversation, 'message.streamed',
                    jsonb_build_object('message_id', m.id, 'seq', m.seq, 'append', addition,
                                       'length', length(m.content)) || guarded,
                    acting_user);
        END IF;
        IF finish IS NOT NULL THEN
            INSERT INTO kernel.events (position, scope_kind, scope_id, type, payload, actor_id)
            VALUES (NULL, 'conversation', conversation, 'message.stream.ended',
                    jsonb_build_object('message_id', m.id, 'seq', m.seq, 'delivery_status', m.delivery_status,
                                       'length', length(m.content)) || guarded,
                    acting_user);
        END IF;
        IF finish = 'delivered' THEN
            -- Now it is said: what reads message.created hears of it once, whole.
            INSERT INTO kernel.events (position, scope_kind, scope_id, type, payload, actor_id)
            VALUES (NULL, 'conversation', conversation, 'message.created',
                    jsonb_build_object('message_id', m.id, 'seq', m.seq, 'sender_id', acting_user,
                                       'thread_id', m.thread_id, 'mentions', to_jsonb(m.mentions)) || guarded,
                    acting_user);
        END IF;
        RETURN jsonb_build_object('id', m.id, 'conversation_id', m.conversation_id, 'seq', m.seq,
                                  'delivery_status', m.delivery_status, 'length', length(m.content))::text;
    END
    $$;
COMMENT ON FUNCTION messaging.stream_message(uuid, uuid, uuid, uuid, uuid, text, text) IS
    'One step of a streamed message: append (and close it delivered or failed), with its events. '
    'Raises RA401, RM403, RM404, RM409, RM422.';
REVOKE ALL ON FUNCTION messaging.stream_message(uuid, uuid, uuid, uuid, uuid, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION messaging.stream_message(uuid, uuid, uuid, uuid, uuid, text, text) TO rapport_app;
"""

# -- reading: guests ------------------------------------------------------------------------

_MESSAGES_READ = """
CREATE POLICY messages_read ON messaging.messages FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR EXISTS (
        SELECT 1 FROM messaging.participants p
         WHERE p.conversation_id = messages.conversation_id AND p.user_id = auth.current_user_id()
           AND messages.seq > p.history_from_seq AND (p.left_seq IS NULL OR messages.seq <= p.left_seq){guests}));
"""
# Read by participants within their window, a guest never what is hidden from guests.
MESSAGES_READ = "DROP POLICY messages_read ON messaging.messages;" + _MESSAGES_READ.format(
    guests="\n           AND NOT (messages.hidden_from_guests AND p.role = 'guest')"
)
MESSAGES_READ_BEFORE = "DROP POLICY messages_read ON messaging.messages;" + _MESSAGES_READ.format(guests="")

# -- support rooms -------------------------------------------------------------------------

ROOMS = """
-- The support desk's system work: someone takes part in a room because the desk says so
-- (a customer in their room, an agent who joined, a guest through their link), not
-- because a participant invited them, so none of add_participant's rules apply. A
-- participant already there takes the role given.
CREATE FUNCTION messaging.admit_participant(
    conversation uuid, member uuid, member_role text, see_history boolean DEFAULT true
) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        c messaging.conversations;
        existing messaging.participants;
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'admitting participants is system work' USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF member_role NOT IN ('owner', 'admin', 'moderator', 'member', 'observer', 'guest') THEN
            RAISE EXCEPTION 'invalid-role' USING ERRCODE = 'RM422';
        END IF;
        SELECT * INTO c FROM messaging.conversations WHERE id = conversation AND deleted_at IS NULL FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF c.type = 'direct' THEN
            RAISE EXCEPTION 'direct-conversation-is-two' USING ERRCODE = 'RM409';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM auth.users u WHERE u.id = member AND u.status = 'active') THEN
            RAISE EXCEPTION 'user-not-found' USING ERRCODE = 'RM404';
        END IF;
        SELECT * INTO existing FROM messaging.participants p WHERE p.conversation_id = conversation AND p.user_id = member;
        IF FOUND AND existing.status IN ('active', 'muted') THEN
            IF existing.role = member_role THEN
                RETURN 'already';
            END IF;
            UPDATE messaging.participants p
               SET role = member_role, can_send = member_role <> 'observer',
                   can_invite = member_role IN ('owner', 'admin')
             WHERE p.conversation_id = conversation AND p.user_id = member;
            RETURN 'changed';
        END IF;
        IF c.max_participants IS NOT NULL AND c.member_count >= c.max_participants THEN
            RAISE EXCEPTION 'conversation-full' USING ERRCODE = 'RM409';
        END IF;
        INSERT INTO messaging.participants AS p (
            conversation_id, user_id, role, status, can_send, can_invite, can_see_history, history_from_seq,
            read_seq, delivered_seq, joined_position, joined_at)
        VALUES (conversation, member, member_role, 'active', member_role <> 'observer', member_role IN ('owner', 'admin'),
                see_history, CASE WHEN see_history THEN 0 ELSE c.last_seq END, c.last_seq, c.last_seq,
                messaging.current_position(), now())
        ON CONFLICT (conversation_id, user_id) DO UPDATE
           SET role = EXCLUDED.role, status = 'active', can_send = EXCLUDED.can_send,
               can_invite = EXCLUDED.can_invite, can_see_history = EXCLUDED.can_see_history,
               history_from_seq = CASE WHEN EXCLUDED.can_see_history THEN 0 ELSE c.last_seq END,
               left_seq = NULL, left_position = NULL, left_at = NULL, read_seq = greatest(p.read_seq, c.last_seq),
               joined_position = EXCLUDED.joined_position, invited_by = NULL, joined_at = now();
        RETURN CASE WHEN existing.user_id IS NULL THEN 'added' ELSE 'rejoined' END;
    END
    $$;
COMMENT ON FUNCTION messaging.admit_participant(uuid, uuid, text, boolean) IS
    'System work (the support desk): someone takes part in a room, or takes the role given. '
    'Returns added, rejoined, changed or already.';

CREATE FUNCTION messaging.dismiss_participant(conversation uuid, member uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        newest bigint;
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'dismissing participants is system work' USING ERRCODE = 'insufficient_privilege';
        END IF;
        SELECT c.last_seq INTO newest FROM messaging.conversations c
         WHERE c.id = conversation AND c.deleted_at IS NULL FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        UPDATE messaging.participants p
           SET status = 'removed', left_seq = newest, left_position = messaging.current_position(), left_at = now()
         WHERE p.conversation_id = conversation AND p.user_id = member AND p.status IN ('active', 'muted');
        RETURN FOUND;
    END
    $$;
COMMENT ON FUNCTION messaging.dismiss_participant(uuid, uuid) IS
    'System work (the support desk): someone no longer takes part in a room (removed). Whether they did.';

REVOKE ALL ON FUNCTION messaging.admit_participant(uuid, uuid, text, boolean),
    messaging.dismiss_participant(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION messaging.admit_participant(uuid, uuid, text, boolean),
    messaging.dismiss_participant(uuid, uuid) TO rapport_worker;
"""

# -- room and participant history ------------------------------------------------------------

_ROOM_COLUMNS = (
    "type",
    "name",
    "description",
    "avatar_url",
    "settings",
    "status",
    "is_public",
    "is_encrypted",
    "max_participants",
    "parent_id",
    "deleted_at",
)
_PLACE_COLUMNS = ("role", "status", "can_send", "can_invite", "can_see_history")


def _old_row(columns: tuple[str, ...]) -> str:
    return "jsonb_build_object(" + ", ".join(f"'{column}', OLD.{column}" for column in columns) + ")"


def _changed(columns: tuple[str, ...]) -> str:
    old = ", ".join(f"OLD.{column}" for column in columns)
    new = ", ".join(f"NEW.{column}" for column in columns)
    return f"({old}) IS DISTINCT FROM ({new})"


HISTORY_TABLES = f"""
CREATE TABLE messaging.conversation_history (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    operation text NOT NULL,
    changed_by uuid,
    changed_at timestamptz NOT NULL DEFAULT now(),
    old_row jsonb NOT NULL,
    CONSTRAINT pk_conversation_history PRIMARY KEY (id),
    CONSTRAINT fk_conversation_history_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_conversation_history_changed_by_users FOREIGN KEY (changed_by)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_conversation_history_operation CHECK (operation IN ('edit', 'delete'))
);
COMMENT ON TABLE messaging.conversation_history IS
    'The previous state of a room at each change of what its owners or the system change (seed 003 '
    'messages_history, for rooms): written by trigger, read by supervisors (supervisor:chat:observe).';
COMMENT ON COLUMN messaging.conversation_history.operation IS
    'delete when the change deleted the room (deleted_at set), else edit.';
COMMENT ON COLUMN messaging.conversation_history.old_row IS
    'The room''s changeable columns before the change ({", ".join(_ROOM_COLUMNS)}): never its people''s ids.';
-- Serves rapport.messaging._history.list_room_history: one room's changes, newest first.
CREATE INDEX ix_conversation_history_conversation_id ON messaging.conversation_history (conversation_id, id DESC);
-- Serves the foreign key's ON DELETE SET NULL when an account goes.
CREATE INDEX ix_conversation_history_changed_by ON messaging.conversation_history (changed_by)
    WHERE changed_by IS NOT NULL;

CREATE TABLE messaging.participant_history (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    user_id uuid NOT NULL,
    operation text NOT NULL,
    changed_by uuid,
    changed_at timestamptz NOT NULL DEFAULT now(),
    old_row jsonb NOT NULL,
    CONSTRAINT pk_participant_history PRIMARY KEY (id),
    CONSTRAINT fk_participant_history_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_participant_history_user_id_users FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_participant_history_changed_by_users FOREIGN KEY (changed_by)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_participant_history_operation CHECK (operation IN ('edit', 'delete'))
);
COMMENT ON TABLE messaging.participant_history IS
    'The previous place of someone in a room at each change of their role, status or permissions (seed 003 '
    'messages_history, for participants): written by trigger, read by supervisors (supervisor:chat:observe). '
    'Goes with the account.';
COMMENT ON COLUMN messaging.participant_history.operation IS
    'delete when the change ended their participation (removed or left), else edit.';
COMMENT ON COLUMN messaging.participant_history.old_row IS
    'Their place before the change ({", ".join(_PLACE_COLUMNS)}, joined_at, left_at).';
-- Serves rapport.messaging._history.list_room_history: one room's changes, newest first.
CREATE INDEX ix_participant_history_conversation_id ON messaging.participant_history (conversation_id, id DESC);
-- Serves the foreign keys' ON DELETE when an account goes.
CREATE INDEX ix_participant_history_user_id ON messaging.participant_history (user_id);
CREATE INDEX ix_participant_history_changed_by ON messaging.participant_history (changed_by)
    WHERE changed_by IS NOT NULL;

-- Definer triggers: nobody writes a history row of their own.
CREATE FUNCTION messaging.record_conversation_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        INSERT INTO messaging.conversation_history (id, conversation_id, operation, changed_by, old_row)
        VALUES (kernel.uuid7_like(), OLD.id,
                CASE WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN 'delete' ELSE 'edit' END,
                auth.current_user_id(), {_old_row(_ROOM_COLUMNS)});
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION messaging.record_conversation_change() IS
    'AFTER UPDATE on conversations of what a room change changes: its previous state to conversation_history.';
-- Counters, the last message and the pair of a direct conversation change without it:
-- every send updates its conversation, and that must stay one row written.
CREATE TRIGGER record_conversation_change AFTER UPDATE OF {", ".join(_ROOM_COLUMNS)}
    ON messaging.conversations
    FOR EACH ROW WHEN ({_changed(_ROOM_COLUMNS)})
    EXECUTE FUNCTION messaging.record_conversation_change();

CREATE FUNCTION messaging.record_participant_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        INSERT INTO messaging.participant_history (id, conversation_id, user_id, operation, changed_by, old_row)
        VALUES (kernel.uuid7_like(), OLD.conversation_id, OLD.user_id,
                CASE WHEN OLD.status IN ('active', 'muted') AND NEW.status IN ('removed', 'left')
                     THEN 'delete' ELSE 'edit' END,
                auth.current_user_id(),
                {_old_row(_PLACE_COLUMNS)} || jsonb_build_object('joined_at', OLD.joined_at, 'left_at', OLD.left_at));
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION messaging.record_participant_change() IS
    'AFTER UPDATE on participants of a role, status or permission: their previous place to participant_history.';
-- Read markers, mutes and pins change without it: a send moves its sender's marker.
CREATE TRIGGER record_participant_change AFTER UPDATE OF {", ".join(_PLACE_COLUMNS)}
    ON messaging.participants
    FOR EACH ROW WHEN ({_changed(_PLACE_COLUMNS)})
    EXECUTE FUNCTION messaging.record_participant_change();
REVOKE ALL ON FUNCTION messaging.record_conversation_change(), messaging.record_participant_change() FROM PUBLIC;

ALTER TABLE messaging.conversation_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.conversation_history FORCE ROW LEVEL SECURITY;
CREATE POLICY conversation_history_read ON messaging.conversation_history FOR SELECT
    USING (kernel.in_definer() OR auth.is_system()
           OR access.has_permission('supervisor:chat:observe', conversation_id));
CREATE POLICY conversation_history_write ON messaging.conversation_history FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system());
GRANT SELECT ON messaging.conversation_history TO rapport_app, rapport_worker;

ALTER TABLE messaging.participant_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.participant_history FORCE ROW LEVEL SECURITY;
CREATE POLICY participant_history_read ON messaging.participant_history FOR SELECT
    USING (kernel.in_definer() OR auth.is_system()
           OR access.has_permission('supervisor:chat:observe', conversation_id));
CREATE POLICY participant_history_write ON messaging.participant_history FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system());
GRANT SELECT ON messaging.participant_history TO rapport_app, rapport_worker;

-- Whether the acting user observes a room: supervisor:chat:observe there (or platform-wide),
-- and the room exists, deleted or not (its history outlives it). A definer so that it can
-- tell a room the caller does not take part in from none; it tells only those who observe.
CREATE FUNCTION messaging.observes(conversation uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT access.has_permission('supervisor:chat:observe', conversation)
           AND EXISTS (SELECT 1 FROM messaging.conversations c WHERE c.id = conversation)
    $$;
COMMENT ON FUNCTION messaging.observes(uuid) IS
    'Whether the acting user supervises the conversation (supervisor:chat:observe) and it exists.';
REVOKE ALL ON FUNCTION messaging.observes(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION messaging.observes(uuid) TO rapport_app, rapport_worker;
"""


def upgrade() -> None:
    run_sql(COLUMNS)
    run_sql(HIDES)
    run_sql(SEQUENCE)
    run_sql(GUARD)
    run_sql(RENDER)
    run_sql(HISTORY)
    run_sql(LIST)
    run_sql(SEARCH_PAGE)
    run_sql(SEND)
    run_sql(STREAM)
    run_sql(MESSAGES_READ)
    run_sql(ROOMS)
    run_sql(HISTORY_TABLES)


def downgrade() -> None:
    run_sql(
        """
        DROP FUNCTION messaging.observes(uuid);
        DROP TABLE messaging.participant_history;
        DROP TABLE messaging.conversation_history;
        DROP TRIGGER record_participant_change ON messaging.participants;
        DROP TRIGGER record_conversation_change ON messaging.conversations;
        DROP FUNCTION messaging.record_participant_change();
        DROP FUNCTION messaging.record_conversation_change();
        DROP FUNCTION messaging.dismiss_participant(uuid, uuid);
        DROP FUNCTION messaging.admit_participant(uuid, uuid, text, boolean);
        DROP FUNCTION messaging.stream_message(uuid, uuid, uuid, uuid, uuid, text, text);
        """
    )
    run_sql(MESSAGES_READ_BEFORE)
    run_sql(f"DROP FUNCTION messaging.send_message({_SEND_NEW});\n" + _send_of_0021())
    run_sql(_function(_SEARCH.PAGE, "messaging.search_page"))
    run_sql(_FILES.LIST)
    run_sql(_FILES.HISTORY)
    run_sql(_FILES.RENDER)
    run_sql(_function(_CORE.FUNCTIONS, "messaging.guard_message_update"))
    run_sql(_function(_CORE.FUNCTIONS, "messaging.sequence_message"))
    run_sql(
        """
        DROP FUNCTION messaging.hides_from_guests(uuid);
        ALTER TABLE messaging.messages DROP CONSTRAINT ck_messages_delivery_status,
            DROP COLUMN hidden_from_guests, DROP COLUMN delivery_status;
        UPDATE messaging.conversations SET type = 'support' WHERE type = 'escalated';
        ALTER TABLE messaging.conversations DROP CONSTRAINT ck_conversations_type,
            ADD CONSTRAINT ck_conversations_type CHECK (type IN ('direct', 'group', 'channel', 'broadcast', 'support'));
        """
    )
    run_sql(
        "COMMENT ON TABLE messaging.conversations IS "
        "'A place where people talk: direct (two people), group, channel (public: findable, joinable), "
        "broadcast (only admins post) or support. Seeds: 004 conversations, 003 chat_rooms, 000 rooms.';"
    )
