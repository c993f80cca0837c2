"""Hot paths without per-row policy work, and events announced after commit instead of
NOTIFYed inside it (docs/decisions/0015).

Why:
- `kernel.events_position` NOTIFYed every event. PostgreSQL serialises the commits of
  notifying transactions (a database-wide lock held through the WAL flush, so that
  notifications queue in commit order), so every send committed one after the other:
  at 16 concurrent senders the one statement of a send ran at 509/s with it and 608/s
  without, and the HTTP send was capped likewise. The trigger now only numbers the event;
  the process that committed announces it (rapport.kernel.outbox.wakeup), and readers
  also read on a timer, so an announcement lost to a crash only delays delivery.
- `messaging.send_message` becomes SECURITY DEFINER. It already checks, explicitly and
  first, everything the policies would (the session, then the caller's own participation:
  status, role, can_send, the conversation's type and state, blocks in a direct
  conversation, the reply and the thread being in the conversation); as the invoker it
  paid for the same checks again in `messages_send`, `conversations_read`,
  `client_messages_sender` and `events_publish` on every row it touched.
- `messaging.list_conversations` becomes SECURITY DEFINER and reads only the caller's own
  participations (`status IN ('active', 'muted')`, the conversation not deleted: what
  `conversations_read` admits for a participant) and the last message above their
  `history_from_seq` (what `messages_read` admits). As the invoker, each of a person's
  conversations passed `conversations_read`, an EXISTS on participants, before the page
  was sorted: 1,000 probes for a person in 1,000 conversations. The unread counts and
  mentions, per-row SQL functions before, are written into the statement.
- `messaging.read_history` becomes SECURITY DEFINER in the same way (the caller's own
  participation bounds every row; an anchor outside it is not found, as under the
  policy), and the message JSON of history and the list is written into their
  statements (`message_json`, of which `messaging.render_message` is now made): called
  as a function per row, it cost more than the rest of the page.
- `messaging.search_messages` checks its time budget after every slice whatever the
  words' frequency, with a first slice sized to be cheap.
- `events_definer`: definer functions publish events as the owner.

Revision ID: 2026_11_29_0017
Revises: 2026_11_29_0016
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0017"
down_revision = "2026_11_29_0016"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


def events_position(*, notify: bool) -> str:
    """The numbering trigger's function: as migration 2026_11_29_0011 made it (`notify`),
    or without its NOTIFY."""
    announce = "        PERFORM pg_notify('kernel_events', NEW.position::text);\n" if notify else ""
    return (
        r"""
CREATE OR REPLACE FUNCTION kernel.events_position() RETURNS trigger
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
"""
        + announce
        + """        RETURN NEW;
    END
    $$;
"""
    )


# Definer functions check their caller themselves and publish as the owner.
EVENTS = (
    events_position(notify=False)
    + r"""
COMMENT ON FUNCTION kernel.events_position() IS
    'BEFORE INSERT trigger on kernel.events: sets the position from the transaction id and the '
    'event''s ordinal in it. Readers hear of new events from the committing process, not from here.';
CREATE POLICY events_definer ON kernel.events FOR INSERT TO rapport_owner WITH CHECK (true);
"""
)

SEND = r"""
-- Sending, in one statement: who acts and whether their session holds, whether they may
-- send here, the idempotency key, the message (numbered by its trigger), and its event.
-- Returns whether it was made now (false: the key's earlier message) and the message.
-- A definer: every check the policies would make is made here, on the caller's own rows.
CREATE OR REPLACE FUNCTION messaging.send_message(
    acting_user uuid, session uuid, api_key uuid, conversation uuid, client_message_id text,
    message_type text, content text, content_metadata jsonb, reply_to uuid, thread uuid,
    forwarded_from uuid, mentions uuid[]
) RETURNS TABLE (created boolean, message text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        new_id uuid := kernel.uuid7_like();
        found_id uuid;
        p_status text;
        p_role text;
        p_can_send boolean;
        c_type text;
        c_status text;
        c_low uuid;
        c_high uuid;
        m messaging.messages;
    BEGIN
        -- Who acts, checked before anything is read: every later check is on their rows.
        PERFORM auth.act_for_request(acting_user, session, api_key);
        SELECT p.status, p.role, p.can_send, c.type, c.status, c.direct_low, c.direct_high
          INTO p_status, p_role, p_can_send, c_type, c_status, c_low, c_high
          FROM messaging.participants p JOIN messaging.conversations c ON c.id = p.conversation_id
         WHERE p.conversation_id = conversation AND p.user_id = acting_user AND c.deleted_at IS NULL;
        IF NOT FOUND OR p_status IN ('removed', 'left') THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF send_message.client_message_id IS NOT NULL THEN
            -- A racing retry waits here for the first to commit, then finds its key.
            INSERT INTO messaging.client_messages AS k (conversation_id, sender_id, client_message_id, message_id)
            VALUES (conversation, acting_user, send_message.client_message_id, new_id)
            ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                SELECT k.message_id INTO found_id FROM messaging.client_messages k
                 WHERE k.conversation_id = conversation AND k.sender_id = acting_user
                   AND k.client_message_id = send_message.client_message_id;
                RETURN QUERY
                    SELECT false, messaging.render_message(x, acting_user)::text FROM messaging.messages x
                     WHERE x.conversation_id = conversation AND x.id = found_id
                       AND x.created_at = messaging.id_time(found_id);
                RETURN;
            END IF;
        END IF;
        IF c_status <> 'active' THEN
            RAISE EXCEPTION 'conversation-not-active' USING ERRCODE = 'RM409';
        END IF;
        IF p_status <> 'active' OR NOT p_can_send OR p_role = 'observer'
           OR (c_type = 'broadcast' AND p_role NOT IN ('owner', 'admin'))
           OR (c_type = 'direct' AND social.is_blocked(c_low, c_high)) THEN
            RAISE EXCEPTION 'cannot-send' USING ERRCODE = 'RM403';
        END IF;
        IF reply_to IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM messaging.messages r
             WHERE r.conversation_id = conversation AND r.id = reply_to
               AND r.created_at = messaging.id_time(reply_to) AND r.deleted_at IS NULL) THEN
            RAISE EXCEPTION 'reply-not-found' USING ERRCODE = 'RM422';
        END IF;
        IF thread IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM messaging.threads t
             WHERE t.id = thread AND t.conversation_id = conversation AND t.archived_at IS NULL) THEN
            RAISE EXCEPTION 'thread-not-found' USING ERRCODE = 'RM422';
        END IF;
        INSERT INTO messaging.messages (
            id, conversation_id, sender_id, type, content, content_metadata, client_message_id,
            reply_to_id, forwarded_from_id, thread_id, mentions, moderation_flagged, created_at)
        VALUES (
            new_id, conversation, acting_user, message_type, content, content_metadata,
            send_message.client_message_id, reply_to, forwarded_from, thread, coalesce(mentions, '{}'::uuid[]),
            false, messaging.id_time(new_id))
        RETURNING * INTO m;
        INSERT INTO kernel.events (position, scope_kind, scope_id, type, payload, actor_id)
        VALUES (NULL, 'conversation', conversation, 'message.created',
                jsonb_build_object('message_id', m.id, 'seq', m.seq, 'sender_id', acting_user,
                                   'thread_id', m.thread_id, 'mentions', to_jsonb(m.mentions)),
                acting_user);
        -- render_message's shape, built here: a message just made has no reactions and
        -- roots no thread, and this runs while the conversation's row is locked.
        RETURN QUERY SELECT true, jsonb_build_object(
            'id', m.id, 'conversation_id', m.conversation_id, 'seq', m.seq, 'sender_id', m.sender_id,
            'type', m.type, 'content', m.content, 'content_metadata', m.content_metadata,
            'client_message_id', m.client_message_id, 'reply_to_id', m.reply_to_id,
            'forwarded_from_id', m.forwarded_from_id, 'thread_id', m.thread_id,
            'mentions', to_jsonb(m.mentions), 'moderation_flagged', m.moderation_flagged,
            'is_edited', false, 'edited_at', NULL, 'is_deleted', false, 'deleted_at', NULL,
            'created_at', m.created_at, 'reactions', '[]'::jsonb, 'thread', NULL)::text;
    END
    $$;

COMMENT ON FUNCTION messaging.send_message(uuid, uuid, uuid, uuid, text, text, text, jsonb, uuid, uuid, uuid, uuid[]) IS
    'The send hot path in one statement (docs/decisions/0013). Raises RA401, RM403, RM404, RM409, RM422.';
"""


def message_json(m: str, viewer: str) -> str:
    """The JSON of message `m` for `viewer` as an SQL expression: reactions counted with the
    viewer's own marked, the thread it roots. `messaging.render_message` is made of it, and
    the hot functions write it into their statements, where a call of that function per row
    cost more than the rest of the page (measured at 10M messages: the conversation list's
    50 last messages took 36 to 107 ms through the function, 16 ms written in)."""
    return f"""jsonb_build_object(
            'id', {m}.id, 'conversation_id', {m}.conversation_id, 'seq', {m}.seq, 'sender_id', {m}.sender_id,
            'type', {m}.type, 'content', {m}.content, 'content_metadata', {m}.content_metadata,
            'client_message_id', CASE WHEN {m}.sender_id = {viewer} THEN {m}.client_message_id END,
            'reply_to_id', {m}.reply_to_id, 'forwarded_from_id', {m}.forwarded_from_id, 'thread_id', {m}.thread_id,
            'mentions', to_jsonb({m}.mentions), 'moderation_flagged', {m}.moderation_flagged,
            'is_edited', {m}.edited_at IS NOT NULL, 'edited_at', {m}.edited_at,
            'is_deleted', {m}.deleted_at IS NOT NULL, 'deleted_at', {m}.deleted_at, 'created_at', {m}.created_at,
            'reactions', coalesce((
                SELECT jsonb_agg(jsonb_build_object('emoji', r.emoji, 'count', r.n, 'reacted', r.mine) ORDER BY r.first)
                  FROM (SELECT reaction.emoji, count(*) AS n, bool_or(reaction.user_id = {viewer}) AS mine,
                               min(reaction.created_at) AS first
                          FROM messaging.reactions reaction
                         WHERE reaction.conversation_id = {m}.conversation_id AND reaction.message_id = {m}.id
                         GROUP BY reaction.emoji) r), '[]'::jsonb),
            'thread', (SELECT jsonb_build_object('id', t.id, 'message_count', t.message_count,
                                                 'last_message_at', t.last_message_at)
                         FROM messaging.threads t
                        WHERE t.conversation_id = {m}.conversation_id AND t.root_message_id = {m}.id))"""


RENDER = f"""
CREATE OR REPLACE FUNCTION messaging.render_message(m messaging.messages, viewer uuid) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
        SELECT {message_json("m", "viewer")}
    $$;
"""


# History: a definer, so that each of a page's rows is not checked again by
# `messages_read` (an EXISTS on participants per row); it applies that policy's window
# itself (above history_from_seq, up to left_seq) and answers a message outside it, as
# an anchor, as not found, as the policy made it. Each row's JSON is written into the
# statement.
HISTORY = f"""
CREATE OR REPLACE FUNCTION messaging.read_history(
    acting_user uuid, session uuid, api_key uuid, conversation uuid,
    before_id uuid, after_id uuid, around_id uuid, page_size integer
) RETURNS TABLE (items text, next uuid)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        lo bigint;
        hi bigint;
        anchor bigint;
        anchor_id uuid := coalesce(before_id, after_id, around_id);
        found_rows jsonb[];
        ids uuid[];
        more boolean;
    BEGIN
        -- Who acts, checked before anything is read; their participation bounds every row.
        PERFORM auth.act_for_request(acting_user, session, api_key);
        SELECT p.history_from_seq, coalesce(p.left_seq, 9223372036854775807) INTO lo, hi
          FROM messaging.participants p
         WHERE p.conversation_id = conversation AND p.user_id = acting_user;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF anchor_id IS NOT NULL THEN
            SELECT m.seq INTO anchor FROM messaging.messages m
             WHERE m.conversation_id = conversation AND m.id = anchor_id
               AND m.created_at = messaging.id_time(anchor_id) AND m.seq > lo AND m.seq <= hi;
            IF anchor IS NULL THEN
                RAISE EXCEPTION 'message-not-found' USING ERRCODE = 'RM404';
            END IF;
        END IF;
        IF after_id IS NOT NULL THEN
            SELECT array_agg({message_json("x", "acting_user")} ORDER BY x.seq), array_agg(x.id ORDER BY x.seq)
              INTO found_rows, ids
              FROM (SELECT m.* FROM messaging.messages m
                     WHERE m.conversation_id = conversation AND m.seq > anchor AND m.seq > lo AND m.seq <= hi
                       AND NOT EXISTS (SELECT 1 FROM messaging.hidden_messages h WHERE h.user_id = acting_user
                                          AND h.conversation_id = conversation AND h.seq = m.seq)
                     ORDER BY m.seq LIMIT page_size + 1) x;
        ELSIF around_id IS NOT NULL THEN
            SELECT array_agg({message_json("x", "acting_user")} ORDER BY x.seq DESC),
                   array_agg(x.id ORDER BY x.seq DESC)
              INTO found_rows, ids
              FROM ((SELECT m.* FROM messaging.messages m
                      WHERE m.conversation_id = conversation AND m.seq > anchor AND m.seq <= hi
                        AND NOT EXISTS (SELECT 1 FROM messaging.hidden_messages h WHERE h.user_id = acting_user
                                           AND h.conversation_id = conversation AND h.seq = m.seq)
                      ORDER BY m.seq LIMIT page_size / 2)
                    UNION ALL
                    (SELECT m.* FROM messaging.messages m
                      WHERE m.conversation_id = conversation AND m.seq <= anchor AND m.seq > lo
                        AND NOT EXISTS (SELECT 1 FROM messaging.hidden_messages h WHERE h.user_id = acting_user
                                           AND h.conversation_id = conversation AND h.seq = m.seq)
                      ORDER BY m.seq DESC LIMIT page_size - page_size / 2 + 1)) x;
        ELSE
            SELECT array_agg({message_json("x", "acting_user")} ORDER BY x.seq DESC),
                   array_agg(x.id ORDER BY x.seq DESC)
              INTO found_rows, ids
              FROM (SELECT m.* FROM messaging.messages m
                     WHERE m.conversation_id = conversation AND m.seq > lo AND m.seq <= hi
                       AND (anchor IS NULL OR m.seq < anchor)
                       AND NOT EXISTS (SELECT 1 FROM messaging.hidden_messages h WHERE h.user_id = acting_user
                                          AND h.conversation_id = conversation AND h.seq = m.seq)
                     ORDER BY m.seq DESC LIMIT page_size + 1) x;
        END IF;
        more := coalesce(cardinality(found_rows), 0) > page_size;
        IF more THEN
            found_rows := found_rows[1:page_size];
            ids := ids[1:page_size];
        END IF;
        RETURN QUERY SELECT coalesce(array_to_json(found_rows)::text, '[]'),
                            CASE WHEN more THEN ids[page_size] END;
    END
    $$;
COMMENT ON FUNCTION messaging.read_history(uuid, uuid, uuid, uuid, uuid, uuid, uuid, integer) IS
    'The history hot path in one statement: a page of messages within the reader''s window.';
"""

# The conversation list: the caller's own participations only, sorted on the
# conversations' activity, then for the page's rows the exact unread count (the
# conversation's last sequence minus the read marker, within the caller's window, less
# what was deleted for everyone or hidden for them), the unread mentions and the last
# message they may see: the same arithmetic as messaging.unread_count and
# unread_mentions, written into the statement so that it is planned once per call.
LIST = f"""
CREATE OR REPLACE FUNCTION messaging.list_conversations(
    acting_user uuid, session uuid, api_key uuid,
    after_pinned boolean, after_activity timestamptz, after_id uuid, page_size integer
) RETURNS TABLE (items text, next_pinned boolean, next_activity timestamptz, next_id uuid)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        -- Who acts, checked before anything is read; everything below is their own rows.
        PERFORM auth.act_for_request(acting_user, session, api_key);
        RETURN QUERY
        WITH page AS (
            SELECT p, c, coalesce(c.last_message_at, c.created_at) AS activity,
                   row_number() OVER (ORDER BY p.is_pinned DESC, coalesce(c.last_message_at, c.created_at) DESC,
                                               c.id DESC) AS i
              FROM messaging.participants p
              JOIN messaging.conversations c ON c.id = p.conversation_id
             WHERE p.user_id = acting_user AND p.status IN ('active', 'muted') AND c.deleted_at IS NULL
               AND (after_id IS NULL
                    OR (p.is_pinned, coalesce(c.last_message_at, c.created_at), c.id) < (after_pinned, after_activity, after_id))
             ORDER BY p.is_pinned DESC, coalesce(c.last_message_at, c.created_at) DESC, c.id DESC
             LIMIT page_size + 1
        ), shown AS (
            SELECT x.*, b.lo, b.hi FROM page x
             CROSS JOIN LATERAL (
                 SELECT greatest((x.p).read_seq, (x.p).history_from_seq) AS lo,
                        least((x.c).last_seq, coalesce((x.p).left_seq, (x.c).last_seq)) AS hi) b
             WHERE x.i <= page_size
        )
        SELECT coalesce((
                   SELECT json_agg(jsonb_build_object(
                       'id', (x.c).id, 'type', (x.c).type, 'name', (x.c).name, 'description', (x.c).description,
                       'avatar_url', (x.c).avatar_url, 'status', (x.c).status, 'is_public', (x.c).is_public,
                       'member_count', (x.c).member_count, 'last_seq', (x.c).last_seq,
                       'last_activity_at', x.activity, 'created_at', (x.c).created_at,
                       'role', (x.p).role, 'participant_status', (x.p).status, 'is_muted', (x.p).is_muted,
                       'is_pinned', (x.p).is_pinned, 'nickname', (x.p).nickname, 'read_seq', (x.p).read_seq,
                       'unread_count', CASE WHEN x.hi <= x.lo THEN 0 ELSE
                           x.hi - x.lo
                           - (SELECT count(*) FROM messaging.retractions r
                               WHERE r.conversation_id = (x.c).id AND r.seq > x.lo AND r.seq <= x.hi)
                           - (SELECT count(*) FROM messaging.hidden_messages h
                               WHERE h.user_id = acting_user AND h.conversation_id = (x.c).id
                                 AND h.seq > x.lo AND h.seq <= x.hi
                                 AND NOT EXISTS (SELECT 1 FROM messaging.retractions r
                                                  WHERE r.conversation_id = h.conversation_id AND r.seq = h.seq))
                           END,
                       'unread_mentions', (
                           SELECT count(*) FROM messaging.mentions m
                            WHERE m.user_id = acting_user AND m.conversation_id = (x.c).id
                              AND m.seq > x.lo AND ((x.p).left_seq IS NULL OR m.seq <= (x.p).left_seq)),
                       'last_message', (
                           SELECT {message_json("m", "acting_user")} FROM messaging.messages m
                            WHERE m.conversation_id = (x.c).id AND m.seq = (x.c).last_seq
                              AND m.created_at = (x.c).last_message_at AND m.seq > (x.p).history_from_seq))
                       ORDER BY x.i)::text
                     FROM shown x), '[]'),
               tail.pinned, tail.activity, tail.id
          FROM (SELECT count(*) AS total FROM page) t
          LEFT JOIN LATERAL (
              SELECT (x.p).is_pinned AS pinned, x.activity, (x.c).id AS id FROM page x
               WHERE x.i = page_size AND t.total > page_size) tail ON true;
    END
    $$;
COMMENT ON FUNCTION messaging.list_conversations(uuid, uuid, uuid, boolean, timestamptz, uuid, integer) IS
    'The conversation-list hot path in one statement: a page and the keys to continue after.';
"""


# Search, as migration 2026_11_29_0016 made it, with slices bounded by the time budget
# whatever the way: a first slice by the words' postings sized from the expected
# matches (it was a calendar month, which for a word in a few percent of messages read
# tens of thousands of postings before the budget was first checked), and a first slice
# by the caller's rows of an hour (it was a day). Both grow with the pace, as before.
SEARCH = r"""
CREATE OR REPLACE FUNCTION messaging.search_messages(
    query tsquery,
    in_conversation uuid DEFAULT NULL,
    from_sender uuid DEFAULT NULL,
    since timestamptz DEFAULT NULL,
    until timestamptz DEFAULT NULL,
    of_type text DEFAULT NULL,
    max_rows integer DEFAULT 21,
    after_rank real DEFAULT NULL,
    after_id uuid DEFAULT NULL,
    candidates integer DEFAULT 300,
    budget interval DEFAULT '30 milliseconds'
) RETURNS TABLE (conversation_ids uuid[], message_ids uuid[], created_ats timestamptz[], ranks real[],
                 searched_from timestamptz, older_until timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- A search plans and runs in milliseconds: compiling it, or starting workers, costs more;
    -- and a bitmap of a month's matches that outgrows work_mem turns lossy, and every row on
    -- its pages is read again.
    SET jit = off
    SET max_parallel_workers_per_gather = 0
    SET work_mem = '32MB'
    AS $fn$
    #variable_conflict use_column
    DECLARE
        -- Up to this many matches: read by the words' postings alone (each is a row read,
        -- mostly someone else's). Counted when the planner expects fewer than `probed`.
        rare constant integer := 2000;
        probed constant real := 20000;
        -- From this share of the range's messages on: read by the caller's conversations.
        common constant real := 0.04;
        -- Up to this many conversations, never by the words' postings alone.
        few constant integer := 50;
        caller uuid := auth.current_user_id();
        conversations uuid[];
        -- The windows that are not the whole conversation (joined without the history, or
        -- left), by conversation id: usually few or none.
        lows jsonb;
        highs jsonb;
        window_sql text := '';
        oldest timestamptz;
        newest timestamptz;
        messages_in_range real;
        matches_in_range real;
        plan json;
        way text;
        slice_start timestamptz;
        slice_end timestamptz;
        width interval := interval '1 hour';
        started timestamptz;
        slice_started timestamptz;
        rare_enough boolean := false;
        found_conversations uuid[] := '{}';
        found_ids uuid[] := '{}';
        found_times timestamptz[] := '{}';
        found_ranks real[] := '{}';
        slice record;
        -- One statement for the three ways: %1$s is how it finds the words, %2$s how it
        -- keeps the caller's conversations, %3$s their windows as in messages_read. Each
        -- is one of the constant texts below: nothing typed by anyone.
        candidates_sql constant text := $q$
            SELECT array_agg(x.conversation_id ORDER BY x.created_at DESC, x.id DESC) AS conversations,
                   array_agg(x.id ORDER BY x.created_at DESC, x.id DESC) AS ids,
                   array_agg(x.created_at ORDER BY x.created_at DESC, x.id DESC) AS times,
                   array_agg(ts_rank_cd(x.search, $4, 1 | 32) ORDER BY x.created_at DESC, x.id DESC) AS ranks
              FROM (SELECT m.conversation_id, m.id, m.created_at, m.search
                      FROM messaging.messages m
                     WHERE %1$s AND %2$s %3$s
                       AND m.created_at >= $5 AND m.created_at <= $6
                       AND m.deleted_at IS NULL
                       AND ($7::uuid IS NULL OR m.sender_id = $7)
                       AND ($8::text IS NULL OR m.type = $8)
                       AND NOT EXISTS (SELECT FROM messaging.hidden_messages h
                                        WHERE h.user_id = $9 AND h.conversation_id = m.conversation_id
                                          AND h.seq = m.seq)
                     ORDER BY m.created_at DESC, m.id DESC
                     LIMIT $10) AS x
        $q$;
        by_words constant text := 'm.search @@ $4';
        -- ts_match_vq() is @@ in a form no index serves: the primary key has to.
        by_rows constant text := 'ts_match_vq(m.search, $4)';
        -- The ids as values: the planner weighs the primary key's bitmap against the words'.
        in_conversations constant text := 'm.conversation_id = ANY ($1)';
        -- The ids through an InitPlan: planned without weighing each id.
        in_conversations_planned_fast constant text := 'm.conversation_id = ANY (CAST((SELECT $1) AS uuid[]))';
        -- The ids as a hashed set, never an index: for the rows the words' postings found.
        among_conversations constant text := 'm.conversation_id IN (SELECT unnest($1))';
    BEGIN
        -- No caller, no words, or only negated ones (which no index can serve): nothing.
        IF caller IS NULL OR query IS NULL OR querytree(query) IN ('', 'T') THEN
            RETURN;
        END IF;
        max_rows := least(greatest(coalesce(max_rows, 21), 1), 201);
        candidates := least(greatest(coalesce(candidates, 300), 1), 2000);

        -- The caller's conversations and windows, as in messages_read: above
        -- history_from_seq, up to left_seq. Deleting a conversation empties everyone's
        -- window (messaging.delete_conversation), so it drops out here, as from history.
        SELECT array_agg(p.conversation_id ORDER BY p.conversation_id),
               jsonb_object_agg(p.conversation_id, p.history_from_seq) FILTER (WHERE p.history_from_seq > 0),
               jsonb_object_agg(p.conversation_id, p.left_seq) FILTER (WHERE p.left_seq IS NOT NULL)
          INTO conversations, lows, highs
          FROM messaging.participants p
         WHERE p.user_id = caller AND (p.left_seq IS NULL OR p.left_seq > p.history_from_seq)
           AND (in_conversation IS NULL OR p.conversation_id = in_conversation);
        IF conversations IS NULL THEN
            RETURN;
        END IF;
        IF lows IS NOT NULL THEN
            window_sql := ' AND m.seq > coalesce(($2::jsonb ->> m.conversation_id::text)::bigint, 0)';
        END IF;
        IF highs IS NOT NULL THEN
            window_sql := window_sql || ' AND m.seq <= coalesce(($3::jsonb ->> m.conversation_id::text)::bigint, m.seq)';
        END IF;

        -- The range: no message is older than the oldest partition, or newer than now.
        SELECT min(b.bound[1]::timestamptz) INTO oldest
          FROM pg_inherits i
          JOIN pg_class r ON r.oid = i.inhrelid,
               LATERAL regexp_match(pg_get_expr(r.relpartbound, r.oid), 'FROM \(''([^'']+)''\)') AS b(bound)
         WHERE i.inhparent = 'messaging.messages'::regclass;
        oldest := greatest(oldest, since);
        newest := least(coalesce(until, 'infinity'), clock_timestamp());
        IF oldest IS NULL OR newest < oldest THEN
            RETURN;
        END IF;

        -- How many messages the range holds, and how many hold the words: the planner's
        -- estimates, from the statistics.
        EXECUTE format('EXPLAIN (FORMAT JSON) SELECT FROM messaging.messages m'
                       ' WHERE m.created_at >= %L AND m.created_at <= %L', oldest, newest) INTO plan;
        messages_in_range := (plan -> 0 -> 'Plan' ->> 'Plan Rows')::real;
        EXECUTE format('EXPLAIN (FORMAT JSON) SELECT FROM messaging.messages m'
                       ' WHERE m.search @@ %L::tsquery AND m.created_at >= %L AND m.created_at <= %L',
                       query, oldest, newest) INTO plan;
        matches_in_range := (plan -> 0 -> 'Plan' ->> 'Plan Rows')::real;
        -- By the words' matches alone: that is what their postings cost to read, whatever
        -- the filters then leave. A handful of conversations: the planner weighs their
        -- bitmaps against the words' at little cost, month by month.
        -- Below the statistics' smallest frequency the planner guesses half of it, for a word
        -- in no message as for one in thousands: then the postings are counted (an index-only
        -- count, where pages are all-visible), up to `rare`. Not for a phrase: each posting
        -- of its words would be a row read, to check their order.
        IF matches_in_range < probed AND cardinality(conversations) > few AND strpos(query::text, '<') = 0 THEN
            SELECT count(*) <= rare INTO rare_enough
              FROM (SELECT FROM messaging.messages m WHERE m.search @@ query LIMIT rare + 1) AS posting;
        END IF;
        way := CASE WHEN matches_in_range >= common * messages_in_range THEN 'rows'
                    WHEN rare_enough THEN 'words'
                    ELSE 'months' END;

        -- The first slice: by the words' postings, as long as should hold about twice the
        -- candidates wanted, were the matches spread evenly over the range (from an hour to
        -- a month); by the caller's rows, an hour. Later slices grow with the pace (below).
        IF way = 'months' THEN
            width := least(greatest((newest - oldest) * (2 * candidates / greatest(matches_in_range, 1)),
                                    interval '1 hour'), interval '31 days');
        END IF;
        started := clock_timestamp();
        IF way = 'words' THEN
            EXECUTE format(candidates_sql, by_words, among_conversations, window_sql) INTO slice
            USING conversations, lows, highs, query, oldest, newest, from_sender, of_type, caller, candidates;
            IF slice.ids IS NOT NULL THEN
                found_conversations := slice.conversations;
                found_ids := slice.ids;
                found_times := slice.times;
                found_ranks := slice.ranks;
            END IF;
        ELSE
            -- Newest first until there are enough candidates, the range is read, or the
            -- budget is spent: checked after each statement, so the first always runs and
            -- the last may overrun it.
            slice_end := newest;
            LOOP
                slice_start := greatest(slice_end - width, oldest);
                slice_started := clock_timestamp();
                IF way = 'months' THEN
                    EXECUTE format(candidates_sql, by_words, in_conversations, window_sql) INTO slice
                    USING conversations, lows, highs, query, slice_start, slice_end, from_sender, of_type, caller,
                          candidates - cardinality(found_ids);
                ELSE
                    EXECUTE format(candidates_sql, by_rows, in_conversations_planned_fast, window_sql) INTO slice
                    USING conversations, lows, highs, query, slice_start, slice_end, from_sender, of_type, caller,
                          candidates - cardinality(found_ids);
                END IF;
                -- Twice as wide next time, or as wide as what is left of the budget allows
                -- at this slice's pace: the time a slice takes grows with its width.
                width := width * least(2, CASE WHEN budget IS NULL THEN 2 ELSE
                    greatest(extract(epoch FROM budget - (clock_timestamp() - started)), 0)
                    / greatest(extract(epoch FROM clock_timestamp() - slice_started), 0.0001) END);
                IF slice.ids IS NOT NULL THEN
                    found_conversations := found_conversations || slice.conversations;
                    found_ids := found_ids || slice.ids;
                    found_times := found_times || slice.times;
                    found_ranks := found_ranks || slice.ranks;
                END IF;
                slice_end := slice_start - interval '1 microsecond';
                EXIT WHEN slice_end < oldest OR cardinality(found_ids) >= candidates
                          OR clock_timestamp() - started >= budget;
            END LOOP;
            -- Stopped before the start of the range: later pages read down to here again
            -- (and no further, whatever their own time), so they see the same candidates.
            IF slice_end >= oldest THEN
                searched_from := slice_end + interval '1 microsecond';
                older_until := slice_end;
            END IF;
        END IF;
        -- Older matches than the candidates: from the oldest candidate (included) down.
        IF cardinality(found_ids) >= candidates THEN
            older_until := found_times[cardinality(found_times)];
        END IF;

        RETURN QUERY
            SELECT array_agg(f.conversation_id ORDER BY f.rank DESC, f.message_id DESC),
                   array_agg(f.message_id ORDER BY f.rank DESC, f.message_id DESC),
                   array_agg(f.created_at ORDER BY f.rank DESC, f.message_id DESC),
                   array_agg(f.rank ORDER BY f.rank DESC, f.message_id DESC),
                   searched_from, older_until
              FROM (SELECT f.*
                      FROM unnest(found_conversations, found_ids, found_times, found_ranks)
                           AS f(conversation_id, message_id, created_at, rank)
                     WHERE after_rank IS NULL OR f.rank < after_rank OR (f.rank = after_rank AND f.message_id < after_id)
                     ORDER BY f.rank DESC, f.message_id DESC
                     LIMIT max_rows) AS f;
    END
    $fn$;
"""


def upgrade() -> None:
    run_sql(EVENTS)
    run_sql(RENDER)
    run_sql(SEND)
    run_sql(HISTORY)
    run_sql(LIST)
    run_sql(SEARCH)


def downgrade() -> None:
    # The bodies stay (each does as the invoker what it did before, under the policies);
    # the functions run as their caller again, and the trigger NOTIFYs again.
    run_sql(
        """
        ALTER FUNCTION messaging.send_message(uuid, uuid, uuid, uuid, text, text, text, jsonb, uuid, uuid, uuid, uuid[])
            SECURITY INVOKER;
        ALTER FUNCTION messaging.list_conversations(uuid, uuid, uuid, boolean, timestamptz, uuid, integer)
            SECURITY INVOKER;
        ALTER FUNCTION messaging.read_history(uuid, uuid, uuid, uuid, uuid, uuid, uuid, integer)
            SECURITY INVOKER;
        DROP POLICY events_definer ON kernel.events;
        """
    )
    run_sql(events_position(notify=True))
    run_sql(_search_as_it_was())


def _search_as_it_was() -> str:
    from importlib import import_module

    search: str = import_module("rapport.migrations.versions.2026_11_29_0016_message_search").SEARCH
    made = search[search.index("CREATE FUNCTION messaging.search_messages(") : search.index("COMMENT ON FUNCTION")]
    return made.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
