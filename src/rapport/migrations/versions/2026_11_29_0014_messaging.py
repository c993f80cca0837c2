"""Messaging: conversations, participants, messages, threads, reactions, read state.

Why: every product Rapport serves is, at heart, people sending each other messages. The
cost model is the design (docs/decisions/0013): a message costs O(1) row writes whatever
the conversation's size (a per-conversation sequence number; unread counts are the last
sequence minus a participant's read marker; receipts are derived from markers), sending is
one statement, and messages are range-partitioned by month.

Revision ID: 2026_11_29_0014
Revises: 2026_11_29_0013
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0014"
down_revision = "2026_11_29_0013"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


TABLES = """
CREATE SCHEMA messaging;
COMMENT ON SCHEMA messaging IS 'Conversations, participants, messages, threads, reactions, read state.';
GRANT USAGE ON SCHEMA messaging TO rapport_app, rapport_worker;

-- The creation time of a UUIDv7, to the millisecond. Messages are made with
-- created_at = messaging.id_time(id), so a lookup by id names its partition.
CREATE FUNCTION messaging.id_time(id uuid) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$
        SELECT to_timestamp((('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint) / 1000.0)
    $$;
COMMENT ON FUNCTION messaging.id_time(uuid) IS 'The millisecond a UUIDv7 was made at.';

CREATE TABLE messaging.conversations (
    id uuid NOT NULL,
    type text NOT NULL,
    name text,
    description text,
    avatar_url text,
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    status text NOT NULL DEFAULT 'active',
    is_public boolean NOT NULL DEFAULT false,
    is_encrypted boolean NOT NULL DEFAULT false,
    max_participants integer,
    parent_id uuid,
    creator_id uuid,
    direct_low uuid,
    direct_high uuid,
    member_count integer NOT NULL DEFAULT 0,
    last_seq bigint NOT NULL DEFAULT 0,
    last_message_id uuid,
    last_message_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT pk_conversations PRIMARY KEY (id),
    CONSTRAINT fk_conversations_parent_id_conversations FOREIGN KEY (parent_id)
        REFERENCES messaging.conversations (id) ON DELETE SET NULL,
    CONSTRAINT fk_conversations_creator_id_users FOREIGN KEY (creator_id)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_conversations_type CHECK (type IN ('direct', 'group', 'channel', 'broadcast', 'support')),
    CONSTRAINT ck_conversations_status CHECK (status IN ('active', 'archived', 'closed')),
    CONSTRAINT ck_conversations_name CHECK (length(name) BETWEEN 1 AND 200),
    CONSTRAINT ck_conversations_description CHECK (length(description) <= 4000),
    CONSTRAINT ck_conversations_avatar_url CHECK (length(avatar_url) <= 2000),
    CONSTRAINT ck_conversations_settings CHECK (jsonb_typeof(settings) = 'object' AND octet_length(settings::text) <= 8000),
    CONSTRAINT ck_conversations_max_participants CHECK (max_participants BETWEEN 2 AND 100000),
    CONSTRAINT ck_conversations_direct CHECK (
        (type = 'direct') = (direct_low IS NOT NULL AND direct_high IS NOT NULL AND direct_low < direct_high)),
    CONSTRAINT ck_conversations_public CHECK (NOT is_public OR type = 'channel')
) WITH (fillfactor = 80);
COMMENT ON TABLE messaging.conversations IS
    'A place where people talk: direct (two people), group, channel (public: findable, joinable), '
    'broadcast (only admins post) or support. Seeds: 004 conversations, 003 chat_rooms, 000 rooms.';
COMMENT ON COLUMN messaging.conversations.last_seq IS
    'The sequence number of the newest message; each message takes the next one (set by '
    'messaging.sequence_message, under this row''s lock, so sequences are gapless). '
    'Unread counts are this minus a participant''s read marker.';
COMMENT ON COLUMN messaging.conversations.direct_low IS
    'For a direct conversation, the smaller of its two people''s ids (with direct_high the larger): '
    'at most one direct conversation per pair.';
COMMENT ON COLUMN messaging.conversations.last_message_at IS
    'When the newest message was made: the list''s order, and the partition its last message is in.';
-- Serves rapport.messaging._conversations.do_open_direct: at most one direct conversation per pair of people.
CREATE UNIQUE INDEX uq_conversations_direct_pair ON messaging.conversations (direct_low, direct_high)
    WHERE type = 'direct' AND deleted_at IS NULL;
-- Serves the foreign key's ON DELETE SET NULL and listing sub-conversations.
CREATE INDEX ix_conversations_parent_id ON messaging.conversations (parent_id) WHERE parent_id IS NOT NULL;
-- Serves the foreign key's ON DELETE SET NULL when an account goes.
CREATE INDEX ix_conversations_creator_id ON messaging.conversations (creator_id);
-- Serves rapport.messaging._conversations.list_public_channels: public channels, newest first.
CREATE INDEX ix_conversations_public ON messaging.conversations (id DESC) WHERE is_public AND deleted_at IS NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE OF type, name, description, avatar_url, settings, status, is_public,
    max_participants, parent_id, deleted_at ON messaging.conversations
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE messaging.participants (
    conversation_id uuid NOT NULL,
    user_id uuid NOT NULL,
    role text NOT NULL DEFAULT 'member',
    status text NOT NULL DEFAULT 'active',
    can_send boolean NOT NULL DEFAULT true,
    can_invite boolean NOT NULL DEFAULT false,
    can_see_history boolean NOT NULL DEFAULT true,
    history_from_seq bigint NOT NULL DEFAULT 0,
    left_seq bigint,
    joined_position bigint NOT NULL DEFAULT 0,
    left_position bigint,
    read_seq bigint NOT NULL DEFAULT 0,
    delivered_seq bigint NOT NULL DEFAULT 0,
    read_at timestamptz,
    is_muted boolean NOT NULL DEFAULT false,
    is_pinned boolean NOT NULL DEFAULT false,
    nickname text,
    invited_by uuid,
    joined_at timestamptz NOT NULL DEFAULT now(),
    left_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_participants PRIMARY KEY (conversation_id, user_id),
    CONSTRAINT fk_participants_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_participants_user_id_users FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_participants_invited_by_users FOREIGN KEY (invited_by)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_participants_role CHECK (role IN ('owner', 'admin', 'moderator', 'member', 'observer', 'guest')),
    CONSTRAINT ck_participants_status CHECK (status IN ('active', 'muted', 'removed', 'left')),
    CONSTRAINT ck_participants_nickname CHECK (length(nickname) BETWEEN 1 AND 100),
    CONSTRAINT ck_participants_gone CHECK ((status NOT IN ('active', 'muted')) = (left_seq IS NOT NULL))
) WITH (fillfactor = 80);
COMMENT ON TABLE messaging.participants IS
    'Who takes part in a conversation, with their role, permissions and read state. Seeds: 004 '
    'conversation_participants, 003 room_participants, 000 room_members (readonly = observer). '
    'Joining, leaving and role changes go through the definer functions below.';
COMMENT ON COLUMN messaging.participants.status IS
    'active; muted (silenced by a moderator: reads, cannot send); removed or left (sees the history '
    'up to left_seq, nothing after).';
COMMENT ON COLUMN messaging.participants.history_from_seq IS
    'Messages with a sequence above this are visible: 0, or the last sequence at joining when '
    'can_see_history is false.';
COMMENT ON COLUMN messaging.participants.read_seq IS
    'The read marker: every message up to this sequence is read. The sender''s own messages move it.';
COMMENT ON COLUMN messaging.participants.delivered_seq IS 'Every message up to this sequence reached a device.';
COMMENT ON COLUMN messaging.participants.joined_position IS
    'The outbox position of the transaction that (re)joined: events of the conversation from here on are theirs.';
COMMENT ON COLUMN messaging.participants.left_position IS 'The outbox position at leaving: no event after it is theirs.';
COMMENT ON COLUMN messaging.participants.is_muted IS 'The person''s own mute: no notifications from this conversation.';
-- Serves messaging.list_conversations and rapport.messaging._sync.get_memberships: one person's conversations.
CREATE INDEX ix_participants_user_id ON messaging.participants (user_id, conversation_id);
-- Serves the foreign key's ON DELETE SET NULL when an account goes.
CREATE INDEX ix_participants_invited_by ON messaging.participants (invited_by) WHERE invited_by IS NOT NULL;

CREATE TABLE messaging.threads (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    root_message_id uuid,
    title text,
    category text,
    parent_thread_id uuid,
    creator_id uuid,
    message_count integer NOT NULL DEFAULT 0,
    last_message_id uuid,
    last_message_at timestamptz,
    archived_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_threads PRIMARY KEY (id),
    CONSTRAINT fk_threads_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_threads_parent_thread_id_threads FOREIGN KEY (parent_thread_id)
        REFERENCES messaging.threads (id) ON DELETE SET NULL,
    CONSTRAINT fk_threads_creator_id_users FOREIGN KEY (creator_id)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_threads_title CHECK (length(title) BETWEEN 1 AND 200),
    CONSTRAINT ck_threads_category CHECK (length(category) BETWEEN 1 AND 100),
    CONSTRAINT ck_threads_kind CHECK (root_message_id IS NOT NULL OR title IS NOT NULL)
);
COMMENT ON TABLE messaging.threads IS
    'Replies grouped under a root message (root_message_id), or a topic thread with a title, category '
    'and parent thread (seed 000 threads). Counts are kept by messaging.sequence_message.';
-- Serves messaging._threads.do_create_thread: at most one thread per root message, and a root''s reply count.
CREATE UNIQUE INDEX uq_threads_root_message_id ON messaging.threads (conversation_id, root_message_id)
    WHERE root_message_id IS NOT NULL;
-- Serves messaging._threads.list_threads: a conversation''s threads by latest activity.
CREATE INDEX ix_threads_conversation_id ON messaging.threads (conversation_id, last_message_at DESC NULLS LAST, id);
-- Serves the foreign keys' ON DELETE SET NULL.
CREATE INDEX ix_threads_parent_thread_id ON messaging.threads (parent_thread_id) WHERE parent_thread_id IS NOT NULL;
CREATE INDEX ix_threads_creator_id ON messaging.threads (creator_id);
CREATE TRIGGER set_updated_at BEFORE UPDATE OF title, category, parent_thread_id, archived_at ON messaging.threads
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE messaging.messages (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    seq bigint NOT NULL DEFAULT 0,
    sender_id uuid,
    type text NOT NULL DEFAULT 'text',
    content text NOT NULL DEFAULT '',
    content_metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    client_message_id text,
    reply_to_id uuid,
    forwarded_from_id uuid,
    thread_id uuid,
    mentions uuid[] NOT NULL DEFAULT '{}'::uuid[],
    moderation_flagged boolean NOT NULL DEFAULT false,
    edited_at timestamptz,
    deleted_at timestamptz,
    deleted_by uuid,
    search tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, content)) STORED,
    created_at timestamptz NOT NULL,
    CONSTRAINT pk_messages PRIMARY KEY (conversation_id, seq, created_at),
    CONSTRAINT uq_messages_id_created_at UNIQUE (id, created_at),
    CONSTRAINT fk_messages_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_messages_sender_id_users FOREIGN KEY (sender_id)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_messages_type CHECK (type IN (
        'text', 'image', 'file', 'audio', 'video', 'location', 'system', 'bot', 'ai', 'graph')),
    CONSTRAINT ck_messages_content CHECK (length(content) <= 10000),
    CONSTRAINT ck_messages_content_metadata CHECK (
        jsonb_typeof(content_metadata) = 'object' AND octet_length(content_metadata::text) <= 16000),
    CONSTRAINT ck_messages_client_message_id CHECK (length(client_message_id) BETWEEN 1 AND 100),
    CONSTRAINT ck_messages_created_at CHECK (created_at = messaging.id_time(id)),
    CONSTRAINT ck_messages_mentions CHECK (cardinality(mentions) <= 50)
) PARTITION BY RANGE (created_at);
COMMENT ON TABLE messaging.messages IS
    'Messages, range-partitioned by month on created_at (kernel.monthly_partitions makes them ahead). '
    'Seeds: 004 messages, 003 messages, 000 messages, 002 messages. Every statement names conversation_id.';
COMMENT ON COLUMN messaging.messages.seq IS
    'The message''s place in its conversation, gapless from 1: set by messaging.sequence_message.';
COMMENT ON COLUMN messaging.messages.created_at IS
    'messaging.id_time(id): a lookup by id names the partition to read.';
COMMENT ON COLUMN messaging.messages.content IS 'The text; emptied when the message is deleted for everyone.';
COMMENT ON COLUMN messaging.messages.moderation_flagged IS
    'A blocked term matched (messaging.moderation), or a moderator flagged it (seed 002).';
COMMENT ON COLUMN messaging.messages.search IS 'Full-text search over the content (language-neutral).';
-- The primary key serves history (messaging.read_history): a conversation''s messages by sequence.
-- Serves lookups by id (edit, delete, reply, react), pruned to one partition by id_time(id).
-- (uq_messages_id_created_at)
-- Serves messaging search_messages: full-text matches.
CREATE INDEX ix_messages_search ON messaging.messages USING gin (search);
-- Serves the foreign key's ON DELETE SET NULL when an account goes, and search by sender.
CREATE INDEX ix_messages_sender_id ON messaging.messages (sender_id, created_at);
-- Serves messaging._threads.list_thread_messages: a thread's messages, newest first (thread messages only).
CREATE INDEX ix_messages_thread ON messaging.messages (conversation_id, thread_id, seq DESC) WHERE thread_id IS NOT NULL;
INSERT INTO kernel.monthly_partitions (parent) VALUES ('messaging.messages');
SELECT kernel.ensure_partitions();

CREATE TABLE messaging.client_messages (
    conversation_id uuid NOT NULL,
    sender_id uuid NOT NULL,
    client_message_id text NOT NULL,
    message_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_client_messages PRIMARY KEY (conversation_id, sender_id, client_message_id),
    CONSTRAINT fk_client_messages_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_client_messages_sender_id_users FOREIGN KEY (sender_id)
        REFERENCES auth.users (id) ON DELETE CASCADE
);
COMMENT ON TABLE messaging.client_messages IS
    'Which message a sender''s client_message_id made: a retried send returns it instead of sending '
    'twice, also when two retries race (the second waits on the first''s key, then finds it).';
-- Serves the foreign key's ON DELETE CASCADE when an account goes.
CREATE INDEX ix_client_messages_sender_id ON messaging.client_messages (sender_id);

CREATE TABLE messaging.mentions (
    user_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    seq bigint NOT NULL,
    message_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_mentions PRIMARY KEY (user_id, conversation_id, seq),
    CONSTRAINT fk_mentions_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_mentions_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE
);
COMMENT ON TABLE messaging.mentions IS
    'One row per person mentioned (a participant), written by messaging.sequence_message: unread '
    'mentions are the rows above the read marker.';
-- The primary key serves the unread-mention count. This serves ON DELETE CASCADE of a conversation.
CREATE INDEX ix_mentions_conversation_id ON messaging.mentions (conversation_id, seq);

CREATE TABLE messaging.retractions (
    conversation_id uuid NOT NULL,
    seq bigint NOT NULL,
    message_id uuid NOT NULL,
    retracted_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_retractions PRIMARY KEY (conversation_id, seq),
    CONSTRAINT fk_retractions_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE
);
COMMENT ON TABLE messaging.retractions IS
    'The sequences of messages deleted for everyone: unread counts leave them out without reading '
    'the partitioned messages. Written by messaging.guard_message_update.';

CREATE TABLE messaging.hidden_messages (
    user_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    seq bigint NOT NULL,
    message_id uuid NOT NULL,
    hidden_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_hidden_messages PRIMARY KEY (user_id, conversation_id, seq),
    CONSTRAINT fk_hidden_messages_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_hidden_messages_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE
);
COMMENT ON TABLE messaging.hidden_messages IS 'Messages a person hid for themself ("delete for me").';
-- Serves ON DELETE CASCADE of a conversation.
CREATE INDEX ix_hidden_messages_conversation_id ON messaging.hidden_messages (conversation_id);

CREATE TABLE messaging.message_history (
    id bigint GENERATED ALWAYS AS IDENTITY,
    conversation_id uuid NOT NULL,
    message_id uuid NOT NULL,
    operation text NOT NULL,
    content text NOT NULL,
    content_metadata jsonb NOT NULL,
    changed_by uuid,
    changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_message_history PRIMARY KEY (id),
    CONSTRAINT fk_message_history_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT ck_message_history_operation CHECK (operation IN ('edit', 'delete'))
);
COMMENT ON TABLE messaging.message_history IS
    'Each earlier version of a message, written by trigger when it is edited or deleted (seeds: 004 '
    'message_edits, 003 messages_history). Participants read the versions of messages still there; '
    'a deleted message''s versions stay for the audit rules and are readable by system work only.';
-- Serves messaging._messages.list_edits: one message''s versions.
CREATE INDEX ix_message_history_message ON messaging.message_history (conversation_id, message_id, id);

CREATE TABLE messaging.reactions (
    conversation_id uuid NOT NULL,
    message_id uuid NOT NULL,
    user_id uuid NOT NULL,
    emoji text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_reactions PRIMARY KEY (conversation_id, message_id, user_id, emoji),
    CONSTRAINT fk_reactions_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_reactions_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_reactions_emoji CHECK (length(emoji) BETWEEN 1 AND 32)
);
COMMENT ON TABLE messaging.reactions IS 'One per emoji per person per message (seed 004 message_reactions).';
-- Serves the foreign key's ON DELETE CASCADE when an account goes.
CREATE INDEX ix_reactions_user_id ON messaging.reactions (user_id);

CREATE TABLE messaging.pins (
    conversation_id uuid NOT NULL,
    message_id uuid NOT NULL,
    pinned_by uuid,
    pinned_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_pins PRIMARY KEY (conversation_id, message_id),
    CONSTRAINT fk_pins_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_pins_pinned_by_users FOREIGN KEY (pinned_by) REFERENCES auth.users (id) ON DELETE SET NULL
);
COMMENT ON TABLE messaging.pins IS 'Pinned messages of a conversation (seed 004 pinned_messages).';
-- Serves the foreign key's ON DELETE SET NULL when an account goes.
CREATE INDEX ix_pins_pinned_by ON messaging.pins (pinned_by);

CREATE TABLE messaging.drafts (
    user_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    content text NOT NULL,
    reply_to_id uuid,
    thread_id uuid,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_drafts PRIMARY KEY (user_id, conversation_id),
    CONSTRAINT fk_drafts_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_drafts_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT ck_drafts_content CHECK (length(content) <= 10000)
);
COMMENT ON TABLE messaging.drafts IS 'One unsent draft per person per conversation (seed 004 drafts).';
-- Serves ON DELETE CASCADE of a conversation.
CREATE INDEX ix_drafts_conversation_id ON messaging.drafts (conversation_id);

CREATE TABLE messaging.invites (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    created_by uuid,
    expires_at timestamptz,
    max_uses integer,
    uses integer NOT NULL DEFAULT 0,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_invites PRIMARY KEY (id),
    CONSTRAINT uq_invites_token_hash UNIQUE (token_hash),
    CONSTRAINT fk_invites_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_invites_created_by_users FOREIGN KEY (created_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_invites_max_uses CHECK (max_uses BETWEEN 1 AND 100000),
    CONSTRAINT ck_invites_uses CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses))
);
COMMENT ON TABLE messaging.invites IS
    'Invite links to a conversation, with expiry and a use limit; the token is stored as SHA-256 only.';
-- Serves messaging list_invites: a conversation''s links, newest first.
CREATE INDEX ix_invites_conversation_id ON messaging.invites (conversation_id, id DESC);
-- Serves the foreign key's ON DELETE SET NULL when an account goes.
CREATE INDEX ix_invites_created_by ON messaging.invites (created_by);

CREATE TABLE messaging.blocked_terms (
    id uuid NOT NULL,
    term text NOT NULL,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_blocked_terms PRIMARY KEY (id),
    CONSTRAINT fk_blocked_terms_created_by_users FOREIGN KEY (created_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_blocked_terms_term CHECK (length(term) BETWEEN 1 AND 200 AND term = lower(term))
);
COMMENT ON TABLE messaging.blocked_terms IS
    'Platform-wide terms that flag a message for moderators (moderation_flagged, seed 002); kept by '
    'platform admins. messaging.moderation holds them compiled into one pattern.';
CREATE UNIQUE INDEX uq_blocked_terms_term ON messaging.blocked_terms (term);
-- Serves the foreign key's ON DELETE SET NULL when an account goes.
CREATE INDEX ix_blocked_terms_created_by ON messaging.blocked_terms (created_by);

CREATE TABLE messaging.moderation (
    id boolean NOT NULL DEFAULT true,
    pattern text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_moderation PRIMARY KEY (id),
    CONSTRAINT ck_moderation_one_row CHECK (id)
);
COMMENT ON TABLE messaging.moderation IS
    'One row: the blocked terms as one case-insensitive regular expression (NULL with none), rebuilt '
    'by trigger, so a send tests one pattern PostgreSQL keeps compiled.';
INSERT INTO messaging.moderation (id, pattern) VALUES (true, NULL);
"""


FUNCTIONS = r"""
-- The acting user's role in a conversation they actively take part in, or NULL. A definer
-- function so that the participants' own policy can ask it without recursing into itself.
CREATE FUNCTION messaging.participant_role(conversation uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT p.role FROM messaging.participants p
         WHERE p.conversation_id = conversation AND p.user_id = auth.current_user_id()
           AND p.status IN ('active', 'muted')
    $$;
COMMENT ON FUNCTION messaging.participant_role(uuid) IS
    'The acting user''s role in the conversation while they take part in it (active or muted), else NULL.';

-- Numbers a new message and keeps the O(1) counters, under the conversation row's lock,
-- taken as the last step of a send so that senders to one conversation queue only for
-- the insert. A definer trigger: nobody else may move counters, and a message cannot be
-- inserted with a sequence of its maker's choosing.
CREATE FUNCTION messaging.sequence_message() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        UPDATE messaging.conversations
           SET last_seq = last_seq + 1, last_message_id = NEW.id, last_message_at = NEW.created_at
         WHERE id = NEW.conversation_id
        RETURNING last_seq INTO NEW.seq;
        IF NEW.seq IS NULL THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF NEW.sender_id IS NOT NULL THEN
            -- Sending says the sender has read everything up to their own message.
            UPDATE messaging.participants
               SET read_seq = NEW.seq, delivered_seq = greatest(delivered_seq, NEW.seq), read_at = now()
             WHERE conversation_id = NEW.conversation_id AND user_id = NEW.sender_id;
        END IF;
        IF NEW.thread_id IS NOT NULL THEN
            UPDATE messaging.threads
               SET message_count = message_count + 1, last_message_id = NEW.id, last_message_at = NEW.created_at
             WHERE id = NEW.thread_id AND conversation_id = NEW.conversation_id;
        END IF;
        -- However the row was written, a blocked term flags it (a flag already set stays).
        NEW.moderation_flagged := NEW.moderation_flagged OR messaging.flags(NEW.content);
        IF cardinality(NEW.mentions) > 0 THEN
            -- Only participants can be mentioned; anyone else named is left out.
            NEW.mentions := ARRAY(
                SELECT p.user_id FROM messaging.participants p
                 WHERE p.conversation_id = NEW.conversation_id AND p.user_id = ANY(NEW.mentions)
                   AND p.status IN ('active', 'muted') AND p.user_id IS DISTINCT FROM NEW.sender_id
                 ORDER BY p.user_id);
            INSERT INTO messaging.mentions (user_id, conversation_id, seq, message_id)
            SELECT unnest(NEW.mentions), NEW.conversation_id, NEW.seq, NEW.id;
        END IF;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION messaging.sequence_message() IS
    'BEFORE INSERT on messages: the next sequence, the conversation''s last message, the sender''s read '
    'marker, the thread''s count and the mention rows. O(1) rows whatever the conversation''s size.';
CREATE TRIGGER sequence_message BEFORE INSERT ON messaging.messages
    FOR EACH ROW EXECUTE FUNCTION messaging.sequence_message();

-- Edits and deletes: who may do which, the earlier version kept, the counters that depend
-- on a message being there. Edits are the sender's; deleting for everyone is the sender's
-- or a moderator's and above; flags are moderators'.
CREATE FUNCTION messaging.guard_message_update() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        actor uuid := auth.current_user_id();
        moderator boolean := auth.is_system() OR messaging.is_platform_admin() OR EXISTS (
            SELECT 1 FROM messaging.participants p
             WHERE p.conversation_id = OLD.conversation_id AND p.user_id = actor
               AND p.status IN ('active', 'muted') AND p.role IN ('owner', 'admin', 'moderator'));
    BEGIN
        IF NEW.id <> OLD.id OR NEW.conversation_id <> OLD.conversation_id OR NEW.seq <> OLD.seq
           OR NEW.created_at <> OLD.created_at OR NEW.type <> OLD.type
           OR NEW.thread_id IS DISTINCT FROM OLD.thread_id THEN
            RAISE EXCEPTION 'a message''s identity, place and sender never change' USING ERRCODE = 'RM403';
        END IF;
        IF NEW.sender_id IS DISTINCT FROM OLD.sender_id THEN
            -- Only the foreign key's ON DELETE SET NULL, once the sender's account is gone:
            -- their messages stay, and nothing else about them changes with it.
            IF NEW.sender_id IS NOT NULL OR EXISTS (SELECT 1 FROM auth.users u WHERE u.id = OLD.sender_id) THEN
                RAISE EXCEPTION 'a message''s identity, place and sender never change' USING ERRCODE = 'RM403';
            END IF;
            RETURN NEW;
        END IF;
        IF OLD.deleted_at IS NOT NULL THEN
            RAISE EXCEPTION 'message-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF NEW.moderation_flagged <> OLD.moderation_flagged AND NOT moderator THEN
            RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
        END IF;
        IF NEW.deleted_at IS NOT NULL THEN
            -- coalesce: a message whose sender's account is gone is a moderator's to delete.
            IF NOT (coalesce(OLD.sender_id = actor, false) OR moderator) THEN
                RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
            END IF;
            INSERT INTO messaging.message_history (conversation_id, message_id, operation, content, content_metadata, changed_by)
            VALUES (OLD.conversation_id, OLD.id, 'delete', OLD.content, OLD.content_metadata, actor);
            INSERT INTO messaging.retractions (conversation_id, seq, message_id)
            VALUES (OLD.conversation_id, OLD.seq, OLD.id);
            DELETE FROM messaging.mentions m
             WHERE m.user_id = ANY(OLD.mentions) AND m.conversation_id = OLD.conversation_id AND m.seq = OLD.seq;
            DELETE FROM messaging.pins WHERE conversation_id = OLD.conversation_id AND message_id = OLD.id;
            DELETE FROM messaging.reactions WHERE conversation_id = OLD.conversation_id AND message_id = OLD.id;
            NEW.content := '';
            NEW.content_metadata := '{}'::jsonb;
            NEW.mentions := '{}'::uuid[];
            NEW.deleted_by := actor;
            RETURN NEW;
        END IF;
        IF NEW.content <> OLD.content OR NEW.content_metadata <> OLD.content_metadata
           OR NEW.mentions <> OLD.mentions THEN
            -- The sender, while they may still send: silencing stops edits as well.
            IF OLD.sender_id IS DISTINCT FROM actor OR NOT EXISTS (
                SELECT 1 FROM messaging.participants p
                 WHERE p.conversation_id = OLD.conversation_id AND p.user_id = actor
                   AND p.status = 'active' AND p.can_send AND p.role <> 'observer') THEN
                RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
            END IF;
            -- A version is what was said; changing only whom it mentions makes none.
            IF NEW.content <> OLD.content OR NEW.content_metadata <> OLD.content_metadata THEN
                INSERT INTO messaging.message_history (conversation_id, message_id, operation, content, content_metadata, changed_by)
                VALUES (OLD.conversation_id, OLD.id, 'edit', OLD.content, OLD.content_metadata, actor);
                NEW.edited_at := now();
                -- An edit cannot slip a blocked term past the check a send makes; a flag stays.
                NEW.moderation_flagged := NEW.moderation_flagged OR messaging.flags(NEW.content);
            END IF;
            IF NEW.mentions <> OLD.mentions THEN
                NEW.mentions := ARRAY(
                    SELECT p.user_id FROM messaging.participants p
                     WHERE p.conversation_id = NEW.conversation_id AND p.user_id = ANY(NEW.mentions)
                       AND p.status IN ('active', 'muted') AND p.user_id IS DISTINCT FROM NEW.sender_id
                     ORDER BY p.user_id);
                DELETE FROM messaging.mentions m
                 WHERE m.user_id = ANY(OLD.mentions) AND m.conversation_id = OLD.conversation_id AND m.seq = OLD.seq;
                INSERT INTO messaging.mentions (user_id, conversation_id, seq, message_id)
                SELECT unnest(NEW.mentions), NEW.conversation_id, NEW.seq, NEW.id;
            END IF;
        END IF;
        IF NEW.edited_at IS DISTINCT FROM OLD.edited_at AND NEW.content = OLD.content
           AND NEW.content_metadata = OLD.content_metadata THEN
            NEW.edited_at := OLD.edited_at;
        END IF;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION messaging.guard_message_update() IS
    'BEFORE UPDATE on messages: only the sender edits (the earlier version goes to message_history); '
    'the sender or a moderator deletes for everyone (content emptied, the version kept, mentions, '
    'pins and reactions removed, the sequence recorded in retractions); only moderators flag; an edit '
    'that brings a blocked term flags; the sender becomes NULL only when their account goes.';
CREATE TRIGGER guard_message_update BEFORE UPDATE ON messaging.messages
    FOR EACH ROW EXECUTE FUNCTION messaging.guard_message_update();

-- member_count follows the participants who take part (active or muted).
CREATE FUNCTION messaging.count_members() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        was integer := CASE WHEN TG_OP <> 'INSERT' AND OLD.status IN ('active', 'muted') THEN 1 ELSE 0 END;
        now_in integer := CASE WHEN TG_OP <> 'DELETE' AND NEW.status IN ('active', 'muted') THEN 1 ELSE 0 END;
    BEGIN
        IF now_in <> was THEN
            UPDATE messaging.conversations SET member_count = member_count + now_in - was
             WHERE id = coalesce(NEW.conversation_id, OLD.conversation_id);
        END IF;
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION messaging.count_members() IS 'AFTER trigger on participants keeping conversations.member_count.';
CREATE TRIGGER count_members AFTER INSERT OR DELETE OR UPDATE OF status ON messaging.participants
    FOR EACH ROW EXECUTE FUNCTION messaging.count_members();

-- A person's own row: only their personal settings and read state change through a plain
-- UPDATE (the column grants); markers never move past the conversation's last message.
CREATE FUNCTION messaging.guard_participant_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NEW.read_seq <> OLD.read_seq OR NEW.delivered_seq <> OLD.delivered_seq THEN
            IF NEW.read_seq < 0 OR NEW.delivered_seq < 0 THEN
                RAISE EXCEPTION 'markers are not negative' USING ERRCODE = 'RM422';
            END IF;
            -- Definer code (a send moving the sender's marker) sets them right itself.
            IF NOT kernel.in_definer() THEN
                IF greatest(NEW.read_seq, NEW.delivered_seq) > (
                    SELECT c.last_seq FROM messaging.conversations c WHERE c.id = NEW.conversation_id) THEN
                    RAISE EXCEPTION 'markers-past-the-last-message' USING ERRCODE = 'RM422';
                END IF;
            END IF;
        END IF;
        NEW.updated_at := now();
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION messaging.guard_participant_update() IS 'BEFORE UPDATE on participants: sane markers, updated_at.';
CREATE TRIGGER guard_participant_update BEFORE UPDATE ON messaging.participants
    FOR EACH ROW EXECUTE FUNCTION messaging.guard_participant_update();

CREATE FUNCTION messaging.compile_blocked_terms() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        -- An upsert: the one row is back if it was ever removed.
        INSERT INTO messaging.moderation AS m (id, pattern, updated_at)
        VALUES (true, (SELECT string_agg(regexp_replace(term, '([.\\+*?\[^\]$(){}=!<>|:\-#/])', '\\\1', 'g'), '|')
                         FROM messaging.blocked_terms), now())
        ON CONFLICT (id) DO UPDATE SET pattern = EXCLUDED.pattern, updated_at = EXCLUDED.updated_at;
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION messaging.compile_blocked_terms() IS
    'AFTER trigger on blocked_terms: rebuilds messaging.moderation.pattern, each term matched literally.';
CREATE TRIGGER compile_blocked_terms AFTER INSERT OR UPDATE OR DELETE ON messaging.blocked_terms
    FOR EACH STATEMENT EXECUTE FUNCTION messaging.compile_blocked_terms();
"""


POLICIES = """
ALTER TABLE messaging.conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.conversations FORCE ROW LEVEL SECURITY;
-- Seen by those who take part, and public channels by anyone (to find and join them).
CREATE POLICY conversations_read ON messaging.conversations FOR SELECT
    USING (kernel.in_definer() OR auth.is_system()
           OR (deleted_at IS NULL AND (is_public OR EXISTS (
                SELECT 1 FROM messaging.participants p
                 WHERE p.conversation_id = conversations.id AND p.user_id = auth.current_user_id()
                   AND p.status IN ('active', 'muted')))));
-- Made by its creator (who becomes its owner through messaging.add_participant); a direct
-- conversation only by one of its two people, so that nobody claims another pair's.
CREATE POLICY conversations_create ON messaging.conversations FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system()
                OR (creator_id = auth.current_user_id() AND last_seq = 0 AND member_count = 0
                    AND (type <> 'direct' OR creator_id IN (direct_low, direct_high))));
-- Changed by its owners and admins (the columns granted below); counters only by triggers.
CREATE POLICY conversations_update ON messaging.conversations FOR UPDATE
    USING (kernel.in_definer() OR auth.is_system() OR messaging.participant_role(id) IN ('owner', 'admin'))
    WITH CHECK (kernel.in_definer() OR auth.is_system() OR messaging.participant_role(id) IN ('owner', 'admin'));
GRANT SELECT ON messaging.conversations TO rapport_app, rapport_worker;
GRANT INSERT (id, type, name, description, avatar_url, settings, status, is_public, is_encrypted,
              max_participants, parent_id, creator_id, direct_low, direct_high)
    ON messaging.conversations TO rapport_app, rapport_worker;
GRANT UPDATE (name, description, avatar_url, settings, status, is_public, max_participants, parent_id, deleted_at)
    ON messaging.conversations TO rapport_app, rapport_worker;

ALTER TABLE messaging.participants ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.participants FORCE ROW LEVEL SECURITY;
-- A person sees their own rows (also after leaving) and, while they take part, the others'.
CREATE POLICY participants_read ON messaging.participants FOR SELECT
    USING (user_id = auth.current_user_id() OR kernel.in_definer() OR auth.is_system()
           OR messaging.participant_role(conversation_id) IS NOT NULL);
-- Joining, roles and removals go through the definer functions; a person changes only
-- their own personal columns (granted below).
CREATE POLICY participants_own ON messaging.participants FOR UPDATE
    USING (user_id = auth.current_user_id() OR kernel.in_definer() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR kernel.in_definer() OR auth.is_system());
CREATE POLICY participants_definer ON messaging.participants FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system());
CREATE POLICY participants_definer_delete ON messaging.participants FOR DELETE
    USING (kernel.in_definer() OR auth.is_system());
GRANT SELECT ON messaging.participants TO rapport_app, rapport_worker;
GRANT UPDATE (read_seq, delivered_seq, read_at, is_muted, is_pinned, nickname)
    ON messaging.participants TO rapport_app, rapport_worker;

ALTER TABLE messaging.messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.messages FORCE ROW LEVEL SECURITY;
-- Read by participants within their window: from their history start (all of it, or from
-- joining) up to their leaving. The EXISTS is a semi-join on the participants' key.
CREATE POLICY messages_read ON messaging.messages FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR EXISTS (
        SELECT 1 FROM messaging.participants p
         WHERE p.conversation_id = messages.conversation_id AND p.user_id = auth.current_user_id()
           AND messages.seq > p.history_from_seq AND (p.left_seq IS NULL OR messages.seq <= p.left_seq)));
-- Sent as oneself, by a participant allowed to send: active (not silenced), can_send, not
-- an observer, and in a broadcast only owners and admins.
CREATE POLICY messages_send ON messaging.messages FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system() OR (
        sender_id = auth.current_user_id() AND type <> 'system' AND EXISTS (
            SELECT 1 FROM messaging.participants p JOIN messaging.conversations c ON c.id = p.conversation_id
             WHERE p.conversation_id = messages.conversation_id AND p.user_id = auth.current_user_id()
               AND p.status = 'active' AND p.can_send AND p.role <> 'observer'
               AND c.status = 'active'
               AND (c.type <> 'broadcast' OR p.role IN ('owner', 'admin'))
               AND (c.type <> 'direct' OR NOT social.is_blocked(c.direct_low, c.direct_high)))));
-- Edits, deletes and flags: messaging.guard_message_update says who may do which.
CREATE POLICY messages_change ON messaging.messages FOR UPDATE
    USING (kernel.in_definer() OR auth.is_system() OR messaging.participant_role(conversation_id) IS NOT NULL)
    WITH CHECK (kernel.in_definer() OR auth.is_system() OR messaging.participant_role(conversation_id) IS NOT NULL);
GRANT SELECT ON messaging.messages TO rapport_app, rapport_worker;
GRANT INSERT (id, conversation_id, sender_id, type, content, content_metadata, client_message_id, reply_to_id,
              forwarded_from_id, thread_id, mentions, moderation_flagged, created_at)
    ON messaging.messages TO rapport_app, rapport_worker;
GRANT UPDATE (content, content_metadata, mentions, moderation_flagged, edited_at, deleted_at)
    ON messaging.messages TO rapport_app, rapport_worker;

ALTER TABLE messaging.client_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.client_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY client_messages_sender ON messaging.client_messages
    USING (sender_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (sender_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT ON messaging.client_messages TO rapport_app;
GRANT SELECT, INSERT, DELETE ON messaging.client_messages TO rapport_worker;

ALTER TABLE messaging.mentions ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.mentions FORCE ROW LEVEL SECURITY;
CREATE POLICY mentions_own ON messaging.mentions FOR SELECT
    USING (user_id = auth.current_user_id() OR kernel.in_definer() OR auth.is_system());
CREATE POLICY mentions_definer ON messaging.mentions FOR ALL
    USING (kernel.in_definer() OR auth.is_system()) WITH CHECK (kernel.in_definer() OR auth.is_system());
GRANT SELECT ON messaging.mentions TO rapport_app, rapport_worker;

ALTER TABLE messaging.retractions ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.retractions FORCE ROW LEVEL SECURITY;
CREATE POLICY retractions_read ON messaging.retractions FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR EXISTS (
        SELECT 1 FROM messaging.participants p
         WHERE p.conversation_id = retractions.conversation_id AND p.user_id = auth.current_user_id()
           AND retractions.seq > p.history_from_seq AND (p.left_seq IS NULL OR retractions.seq <= p.left_seq)));
CREATE POLICY retractions_definer ON messaging.retractions FOR ALL
    USING (kernel.in_definer() OR auth.is_system()) WITH CHECK (kernel.in_definer() OR auth.is_system());
GRANT SELECT ON messaging.retractions TO rapport_app, rapport_worker;

ALTER TABLE messaging.hidden_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.hidden_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY hidden_messages_own ON messaging.hidden_messages
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() AND EXISTS (
        SELECT 1 FROM messaging.messages m
         WHERE m.conversation_id = hidden_messages.conversation_id AND m.id = hidden_messages.message_id
           AND m.created_at = messaging.id_time(hidden_messages.message_id) AND m.seq = hidden_messages.seq));
GRANT SELECT, INSERT, DELETE ON messaging.hidden_messages TO rapport_app, rapport_worker;

ALTER TABLE messaging.message_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.message_history FORCE ROW LEVEL SECURITY;
-- The versions of a message its readers can still read; a deleted message's stay hidden.
CREATE POLICY message_history_read ON messaging.message_history FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR EXISTS (
        SELECT 1 FROM messaging.messages m
         WHERE m.conversation_id = message_history.conversation_id AND m.id = message_history.message_id
           AND m.created_at = messaging.id_time(message_history.message_id) AND m.deleted_at IS NULL));
CREATE POLICY message_history_definer ON messaging.message_history FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system());
GRANT SELECT ON messaging.message_history TO rapport_app, rapport_worker;

ALTER TABLE messaging.threads ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.threads FORCE ROW LEVEL SECURITY;
CREATE POLICY threads_read ON messaging.threads FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR (messaging.participant_role(conversation_id) IS NOT NULL
           AND (root_message_id IS NULL OR EXISTS (
                SELECT 1 FROM messaging.messages m
                 WHERE m.conversation_id = threads.conversation_id AND m.id = threads.root_message_id
                   AND m.created_at = messaging.id_time(threads.root_message_id)))));
CREATE POLICY threads_create ON messaging.threads FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system() OR (
        creator_id = auth.current_user_id() AND message_count = 0
        AND messaging.participant_role(conversation_id) IN ('owner', 'admin', 'moderator', 'member', 'guest')));
-- Renamed, moved or archived by its creator or the conversation's moderators and above.
CREATE POLICY threads_update ON messaging.threads FOR UPDATE
    USING (kernel.in_definer() OR auth.is_system() OR (
        messaging.participant_role(conversation_id) IS NOT NULL AND (creator_id = auth.current_user_id()
            OR messaging.participant_role(conversation_id) IN ('owner', 'admin', 'moderator'))))
    WITH CHECK (kernel.in_definer() OR auth.is_system() OR messaging.participant_role(conversation_id) IS NOT NULL);
GRANT SELECT ON messaging.threads TO rapport_app, rapport_worker;
GRANT INSERT (id, conversation_id, root_message_id, title, category, parent_thread_id, creator_id)
    ON messaging.threads TO rapport_app, rapport_worker;
GRANT UPDATE (title, category, parent_thread_id, archived_at) ON messaging.threads TO rapport_app, rapport_worker;

ALTER TABLE messaging.reactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.reactions FORCE ROW LEVEL SECURITY;
CREATE POLICY reactions_read ON messaging.reactions FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR (messaging.participant_role(conversation_id) IS NOT NULL
           AND EXISTS (SELECT 1 FROM messaging.messages m
                        WHERE m.conversation_id = reactions.conversation_id AND m.id = reactions.message_id
                          AND m.created_at = messaging.id_time(reactions.message_id))));
CREATE POLICY reactions_own ON messaging.reactions FOR INSERT
    WITH CHECK (user_id = auth.current_user_id()
                AND messaging.participant_role(conversation_id) IN ('owner', 'admin', 'moderator', 'member', 'guest'));
CREATE POLICY reactions_remove ON messaging.reactions FOR DELETE
    USING (user_id = auth.current_user_id() OR kernel.in_definer() OR auth.is_system());
GRANT SELECT, INSERT, DELETE ON messaging.reactions TO rapport_app, rapport_worker;

ALTER TABLE messaging.pins ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.pins FORCE ROW LEVEL SECURITY;
CREATE POLICY pins_read ON messaging.pins FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR (messaging.participant_role(conversation_id) IS NOT NULL
           AND EXISTS (SELECT 1 FROM messaging.messages m
                        WHERE m.conversation_id = pins.conversation_id AND m.id = pins.message_id
                          AND m.created_at = messaging.id_time(pins.message_id))));
CREATE POLICY pins_write ON messaging.pins FOR INSERT
    WITH CHECK (pinned_by = auth.current_user_id()
                AND messaging.participant_role(conversation_id) IN ('owner', 'admin', 'moderator', 'member'));
CREATE POLICY pins_remove ON messaging.pins FOR DELETE
    USING (kernel.in_definer() OR auth.is_system()
           OR messaging.participant_role(conversation_id) IN ('owner', 'admin', 'moderator', 'member'));
GRANT SELECT, INSERT, DELETE ON messaging.pins TO rapport_app, rapport_worker;

ALTER TABLE messaging.drafts ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.drafts FORCE ROW LEVEL SECURITY;
CREATE POLICY drafts_own ON messaging.drafts
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() AND messaging.participant_role(conversation_id) IS NOT NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON messaging.drafts TO rapport_app, rapport_worker;

ALTER TABLE messaging.invites ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.invites FORCE ROW LEVEL SECURITY;
-- Invite links are seen and made by those who may invite; joining by one goes through
-- messaging.join_by_invite, which finds it by its token's hash.
CREATE POLICY invites_read ON messaging.invites FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR messaging.may_invite(conversation_id));
CREATE POLICY invites_create ON messaging.invites FOR INSERT
    WITH CHECK (created_by = auth.current_user_id() AND uses = 0 AND messaging.may_invite(conversation_id));
CREATE POLICY invites_revoke ON messaging.invites FOR UPDATE
    USING (kernel.in_definer() OR auth.is_system() OR messaging.may_invite(conversation_id))
    WITH CHECK (kernel.in_definer() OR auth.is_system() OR messaging.may_invite(conversation_id));
GRANT SELECT ON messaging.invites TO rapport_app, rapport_worker;
GRANT INSERT (id, conversation_id, token_hash, created_by, expires_at, max_uses)
    ON messaging.invites TO rapport_app, rapport_worker;
GRANT UPDATE (revoked_at) ON messaging.invites TO rapport_app, rapport_worker;

ALTER TABLE messaging.blocked_terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.blocked_terms FORCE ROW LEVEL SECURITY;
-- Platform admins keep the list; nobody else reads it (knowing it helps get around it).
CREATE POLICY blocked_terms_admin ON messaging.blocked_terms
    USING (auth.is_system() OR kernel.in_definer() OR messaging.is_platform_admin())
    WITH CHECK (auth.is_system() OR messaging.is_platform_admin());
GRANT SELECT, INSERT, DELETE ON messaging.blocked_terms TO rapport_app, rapport_worker;

ALTER TABLE messaging.moderation ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.moderation FORCE ROW LEVEL SECURITY;
CREATE POLICY moderation_definer ON messaging.moderation
    USING (kernel.in_definer() OR auth.is_system()) WITH CHECK (kernel.in_definer() OR auth.is_system());
GRANT SELECT ON messaging.moderation TO rapport_worker;
"""


MEMBERSHIP = """
CREATE FUNCTION messaging.is_platform_admin() RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT coalesce((SELECT u.is_admin FROM auth.users u WHERE u.id = auth.current_user_id()), false)
    $$;
COMMENT ON FUNCTION messaging.is_platform_admin() IS 'Whether the acting user is a platform administrator.';

-- Whether the acting user may invite to a conversation: owners, admins and moderators, and
-- anyone given can_invite.
CREATE FUNCTION messaging.may_invite(conversation uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM messaging.participants p
             WHERE p.conversation_id = conversation AND p.user_id = auth.current_user_id()
               AND p.status = 'active' AND (p.role IN ('owner', 'admin', 'moderator') OR p.can_invite))
    $$;
COMMENT ON FUNCTION messaging.may_invite(uuid) IS 'Whether the acting user may invite people to the conversation.';

-- Whether a blocked term occurs in a text. A definer function: the list is the platform
-- admins' and nobody else reads it.
CREATE FUNCTION messaging.flags(content text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        -- Never NULL, also without the moderation row: a send's flag column is NOT NULL.
        SELECT coalesce((SELECT auth.current_user_id() IS NOT NULL AND lower(content) ~ m.pattern
                           FROM messaging.moderation m WHERE m.id), false)
    $$;
COMMENT ON FUNCTION messaging.flags(text) IS 'Whether the text contains a blocked term (messaging.moderation).';

-- Whether a reader shares their read receipts (social.settings), asked only about people
-- who take part in a conversation with the acting user.
CREATE FUNCTION messaging.shares_read_receipts(reader uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT coalesce((SELECT s.read_receipts_enabled FROM social.settings s WHERE s.user_id = reader), true)
           AND (reader = auth.current_user_id() OR auth.is_system() OR EXISTS (
                SELECT 1 FROM messaging.participants mine
                  JOIN messaging.participants theirs ON theirs.conversation_id = mine.conversation_id
                 WHERE mine.user_id = auth.current_user_id() AND theirs.user_id = reader))
    $$;
COMMENT ON FUNCTION messaging.shares_read_receipts(uuid) IS
    'Whether a person shares read receipts, answered only about people in a conversation with the acting user.';

-- How much a role may do, to compare an actor with the person they act on.
CREATE FUNCTION messaging.role_rank(role text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE role WHEN 'owner' THEN 5 WHEN 'admin' THEN 4 WHEN 'moderator' THEN 3
                         WHEN 'member' THEN 2 ELSE 1 END
    $$;
COMMENT ON FUNCTION messaging.role_rank(text) IS 'owner 5, admin 4, moderator 3, member 2, guest and observer 1.';

-- The outbox position of the current transaction's events (kernel.events_position).
CREATE FUNCTION messaging.current_position() RETURNS bigint
    LANGUAGE sql VOLATILE
    AS $$ SELECT pg_current_xact_id()::text::bigint << 16 $$;
COMMENT ON FUNCTION messaging.current_position() IS
    'Where the current transaction''s events start in the outbox: membership changes record it.';

-- Adds a person to a conversation, or brings back one who left. Who may:
--   * the creator of a conversation nobody takes part in yet, as its owner;
--   * either person of a direct conversation, themself or the other, back in the role they
--     had (re-opening it), while neither blocks the other;
--   * anyone, themself, to a public channel, as a member;
--   * a participant who may invite (messaging.may_invite), for anyone they do not block and
--     who does not block them, in a role below their own (owners may add admins; members
--     given can_invite add members).
-- A participant adding themself is told 'already'. Direct conversations hold their two
-- people only; max_participants is a hard limit.
CREATE FUNCTION messaging.add_participant(
    conversation uuid, member uuid, member_role text DEFAULT 'member', see_history boolean DEFAULT true
) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        actor uuid := auth.current_user_id();
        c messaging.conversations;
        actor_role text;
        existing messaging.participants;
    BEGIN
        IF actor IS NULL THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        SELECT * INTO c FROM messaging.conversations WHERE id = conversation AND deleted_at IS NULL FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        SELECT p.role INTO actor_role FROM messaging.participants p
         WHERE p.conversation_id = conversation AND p.user_id = actor AND p.status IN ('active', 'muted');
        IF member_role NOT IN ('owner', 'admin', 'moderator', 'member', 'observer', 'guest') THEN
            RAISE EXCEPTION 'invalid-role' USING ERRCODE = 'RM422';
        END IF;
        IF c.member_count = 0 AND c.creator_id = actor AND member = actor THEN
            member_role := 'owner';
        ELSIF member = actor AND actor_role IS NOT NULL THEN
            RETURN 'already';
        ELSIF c.type = 'direct' AND actor IN (c.direct_low, c.direct_high) THEN
            IF social.is_blocked(c.direct_low, c.direct_high) THEN
                RAISE EXCEPTION 'user-not-found' USING ERRCODE = 'RM404';
            END IF;
            member_role := coalesce((SELECT p.role FROM messaging.participants p
                                      WHERE p.conversation_id = conversation AND p.user_id = member), 'member');
        ELSIF member = actor AND actor_role IS NULL THEN
            IF NOT c.is_public THEN
                RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
            END IF;
            member_role := 'member';
        ELSE
            IF actor_role IS NULL THEN
                RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
            END IF;
            IF NOT messaging.may_invite(conversation) THEN
                RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
            END IF;
            IF member_role = 'owner' OR (messaging.role_rank(member_role) >= messaging.role_rank(actor_role)
                                         AND actor_role <> 'owner'
                                         AND NOT (actor_role = 'member' AND member_role = 'member')) THEN
                RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
            END IF;
            IF member <> actor AND social.is_blocked(actor, member) THEN
                RAISE EXCEPTION 'user-not-found' USING ERRCODE = 'RM404';
            END IF;
        END IF;
        IF c.type = 'direct' AND member NOT IN (c.direct_low, c.direct_high) THEN
            RAISE EXCEPTION 'direct-conversation-is-two' USING ERRCODE = 'RM409';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM auth.users u WHERE u.id = member AND u.status = 'active') THEN
            RAISE EXCEPTION 'user-not-found' USING ERRCODE = 'RM404';
        END IF;
        SELECT * INTO existing FROM messaging.participants p WHERE p.conversation_id = conversation AND p.user_id = member;
        IF FOUND AND existing.status IN ('active', 'muted') THEN
            RETURN 'already';
        END IF;
        -- A person removed by a moderator comes back only by a moderator's hand.
        IF existing.status = 'removed' AND member = actor AND actor_role IS NULL THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF c.max_participants IS NOT NULL AND c.member_count >= c.max_participants THEN
            RAISE EXCEPTION 'conversation-full' USING ERRCODE = 'RM409';
        END IF;
        INSERT INTO messaging.participants AS p (
            conversation_id, user_id, role, status, can_send, can_invite, can_see_history, history_from_seq,
            read_seq, delivered_seq, joined_position, invited_by, joined_at)
        VALUES (conversation, member, member_role, 'active', member_role <> 'observer',
                member_role IN ('owner', 'admin'), see_history,
                CASE WHEN see_history THEN 0 ELSE c.last_seq END, c.last_seq, c.last_seq,
                messaging.current_position(), CASE WHEN member <> actor THEN actor END, now())
        ON CONFLICT (conversation_id, user_id) DO UPDATE
           SET role = EXCLUDED.role, status = 'active', can_send = EXCLUDED.can_send,
               can_invite = EXCLUDED.can_invite, can_see_history = EXCLUDED.can_see_history,
               history_from_seq = CASE WHEN EXCLUDED.can_see_history THEN 0 ELSE c.last_seq END,
               left_seq = NULL, left_position = NULL, left_at = NULL, read_seq = greatest(p.read_seq, c.last_seq),
               joined_position = EXCLUDED.joined_position, invited_by = EXCLUDED.invited_by, joined_at = now();
        RETURN CASE WHEN existing.user_id IS NULL THEN 'added' ELSE 'rejoined' END;
    END
    $$;
COMMENT ON FUNCTION messaging.add_participant(uuid, uuid, text, boolean) IS
    'Adds a person to a conversation (or back): the creator as owner, oneself to a public channel, '
    'or someone by a participant who may invite, in a role below their own. Returns added, rejoined or already.';

-- Changes a participant: the person themself may only leave; others act on people ranked
-- below them. Moderators silence (muted) and remove; admins also set roles up to moderator
-- and permissions; owners also make admins and hand over ownership (becoming admins).
-- The two people of a direct conversation have no power over each other, and either may
-- leave it. Granting can_see_history shows the whole history; withdrawing it hides what
-- was sent before now. NULL arguments leave things as they are.
CREATE FUNCTION messaging.change_participant(
    conversation uuid, member uuid, new_role text, new_status text,
    new_can_send boolean, new_can_invite boolean, new_can_see_history boolean
) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        actor uuid := auth.current_user_id();
        c messaging.conversations;
        me messaging.participants;
        target messaging.participants;
        gone boolean;
    BEGIN
        SELECT * INTO c FROM messaging.conversations WHERE id = conversation AND deleted_at IS NULL FOR UPDATE;
        IF NOT FOUND OR actor IS NULL THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        SELECT * INTO me FROM messaging.participants p
         WHERE p.conversation_id = conversation AND p.user_id = actor AND p.status IN ('active', 'muted');
        IF NOT FOUND THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        SELECT * INTO target FROM messaging.participants p
         WHERE p.conversation_id = conversation AND p.user_id = member AND p.status IN ('active', 'muted')
         FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'participant-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF new_status IS NOT NULL AND new_status NOT IN ('active', 'muted', 'removed', 'left') THEN
            RAISE EXCEPTION 'invalid-status' USING ERRCODE = 'RM422';
        END IF;
        IF new_role IS NOT NULL AND new_role NOT IN ('owner', 'admin', 'moderator', 'member', 'observer', 'guest') THEN
            RAISE EXCEPTION 'invalid-role' USING ERRCODE = 'RM422';
        END IF;
        IF member = actor THEN
            IF new_role IS NOT NULL OR new_can_send IS NOT NULL OR new_can_invite IS NOT NULL
               OR new_can_see_history IS NOT NULL OR new_status IS DISTINCT FROM 'left' THEN
                RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
            END IF;
            IF me.role = 'owner' AND c.type <> 'direct' AND c.member_count > 1 AND NOT EXISTS (
                SELECT 1 FROM messaging.participants p WHERE p.conversation_id = conversation
                   AND p.user_id <> actor AND p.role = 'owner' AND p.status IN ('active', 'muted')) THEN
                RAISE EXCEPTION 'owner-must-hand-over' USING ERRCODE = 'RM409';
            END IF;
        ELSE
            IF c.type = 'direct' OR new_status = 'left'
               OR messaging.role_rank(me.role) <= messaging.role_rank(target.role) THEN
                RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
            END IF;
            IF (new_role IS NOT NULL OR new_can_send IS NOT NULL OR new_can_invite IS NOT NULL
                OR new_can_see_history IS NOT NULL) AND me.role NOT IN ('owner', 'admin') THEN
                RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
            END IF;
            IF new_role IS NOT NULL AND new_role <> target.role THEN
                IF new_role = 'owner' THEN
                    IF me.role <> 'owner' THEN
                        RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
                    END IF;
                    -- Handing over ownership: the one who gives it stays, as an admin.
                    UPDATE messaging.participants SET role = 'admin'
                     WHERE conversation_id = conversation AND user_id = actor;
                ELSIF messaging.role_rank(new_role) >= messaging.role_rank(me.role) THEN
                    RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
                END IF;
            END IF;
        END IF;
        gone := new_status IN ('removed', 'left');
        UPDATE messaging.participants p
           SET role = coalesce(new_role, p.role),
               status = coalesce(new_status, p.status),
               can_send = coalesce(new_can_send, CASE WHEN new_role IS NULL THEN p.can_send ELSE new_role <> 'observer' END),
               can_invite = coalesce(new_can_invite, p.can_invite),
               can_see_history = coalesce(new_can_see_history, p.can_see_history),
               history_from_seq = CASE new_can_see_history WHEN true THEN 0
                                      WHEN false THEN greatest(p.history_from_seq, c.last_seq)
                                      ELSE p.history_from_seq END,
               left_seq = CASE WHEN gone THEN c.last_seq END,
               left_position = CASE WHEN gone THEN messaging.current_position() END,
               left_at = CASE WHEN gone THEN now() END
         WHERE p.conversation_id = conversation AND p.user_id = member;
    END
    $$;
COMMENT ON FUNCTION messaging.change_participant(uuid, uuid, text, text, boolean, boolean, boolean) IS
    'Leaves (oneself), or changes someone ranked below the actor: silence, remove, role, permissions.';

-- Joins the conversation an invite link leads to, counting the use. Found by its token's
-- hash only; an expired, used-up or revoked link is as unknown as a wrong one.
CREATE FUNCTION messaging.join_by_invite(token_hash bytea) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        actor uuid := auth.current_user_id();
        invite messaging.invites;
        result text;
    BEGIN
        SELECT * INTO invite FROM messaging.invites i
         WHERE i.token_hash = join_by_invite.token_hash AND i.revoked_at IS NULL
           AND (i.expires_at IS NULL OR i.expires_at > now()) AND (i.max_uses IS NULL OR i.uses < i.max_uses)
           AND EXISTS (SELECT 1 FROM messaging.conversations c WHERE c.id = i.conversation_id AND c.deleted_at IS NULL)
         FOR UPDATE OF i;
        IF NOT FOUND OR actor IS NULL OR invite.created_by IS NULL THEN
            RAISE EXCEPTION 'invite-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF EXISTS (SELECT 1 FROM messaging.participants p WHERE p.conversation_id = invite.conversation_id
                      AND p.user_id = actor AND p.status IN ('active', 'muted')) THEN
            RETURN invite.conversation_id;
        END IF;
        IF EXISTS (SELECT 1 FROM messaging.participants p WHERE p.conversation_id = invite.conversation_id
                      AND p.user_id = actor AND p.status = 'removed') THEN
            RAISE EXCEPTION 'invite-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF social.is_blocked(actor, invite.created_by) IS NOT DISTINCT FROM true THEN
            RAISE EXCEPTION 'invite-not-found' USING ERRCODE = 'RM404';
        END IF;
        -- Joins as the invite's maker would add them, without their rights to do more.
        PERFORM set_config('rapport.user_id', invite.created_by::text, true);
        BEGIN
            result := messaging.add_participant(invite.conversation_id, actor, 'member', true);
        EXCEPTION
            WHEN SQLSTATE 'RM403' OR SQLSTATE 'RM404' THEN
                -- Its maker may no longer invite (they left, or lost the right): the link is dead.
                PERFORM set_config('rapport.user_id', actor::text, true);
                RAISE EXCEPTION 'invite-not-found' USING ERRCODE = 'RM404';
            WHEN OTHERS THEN
                PERFORM set_config('rapport.user_id', actor::text, true);
                RAISE;
        END;
        PERFORM set_config('rapport.user_id', actor::text, true);
        UPDATE messaging.invites SET uses = uses + 1 WHERE id = invite.id;
        RETURN invite.conversation_id;
    END
    $$;
COMMENT ON FUNCTION messaging.join_by_invite(bytea) IS
    'Joins the conversation of a live invite link (by its token''s SHA-256) and counts the use.';

-- Deletes a conversation (its owners only): soft, so that the audit rules keep its
-- messages, and from then on nobody sees it. Every participation ends with an empty
-- window (history_from_seq = left_seq = the last sequence), so that every reader of
-- messages (history, search, receipts, the policies) loses them at once; the leaving
-- transaction's events, conversation.deleted among them, still reach everyone. A definer
-- function: the row leaves the owner's sight as it changes, which a plain UPDATE under
-- the read policy cannot do.
CREATE FUNCTION messaging.delete_conversation(conversation uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        actor_role text;
        newest bigint;
    BEGIN
        PERFORM 1 FROM messaging.conversations c WHERE c.id = conversation AND c.deleted_at IS NULL FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        SELECT p.role INTO actor_role FROM messaging.participants p
         WHERE p.conversation_id = conversation AND p.user_id = auth.current_user_id()
           AND p.status IN ('active', 'muted');
        IF actor_role IS NULL THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF actor_role <> 'owner' THEN
            RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
        END IF;
        UPDATE messaging.conversations SET deleted_at = now() WHERE id = conversation RETURNING last_seq INTO newest;
        UPDATE messaging.participants p
           SET status = CASE WHEN p.status IN ('removed', 'left') THEN p.status ELSE 'left' END,
               history_from_seq = newest,
               left_seq = least(coalesce(p.left_seq, newest), newest),
               left_position = coalesce(p.left_position, messaging.current_position()),
               left_at = coalesce(p.left_at, now())
         WHERE p.conversation_id = conversation;
    END
    $$;
COMMENT ON FUNCTION messaging.delete_conversation(uuid) IS
    'Soft-deletes a conversation, for its owners only; everyone loses sight of it.';

-- The live direct conversation between the acting user and another person, also when the
-- acting user has left it (and so no longer sees it): re-opening it finds it again.
CREATE FUNCTION messaging.direct_with(other uuid) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT c.id FROM messaging.conversations c
         WHERE c.type = 'direct' AND c.deleted_at IS NULL
           AND c.direct_low = least(auth.current_user_id(), other)
           AND c.direct_high = greatest(auth.current_user_id(), other)
    $$;
COMMENT ON FUNCTION messaging.direct_with(uuid) IS
    'The id of the acting user''s direct conversation with another person, or NULL.';
"""


HOT_PATHS = """
-- A message as every reader receives it. Deleted messages keep their place and lose their
-- content; the client_message_id is the sender's business.
CREATE FUNCTION messaging.render_message(m messaging.messages, viewer uuid) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
        SELECT jsonb_build_object(
            'id', m.id, 'conversation_id', m.conversation_id, 'seq', m.seq, 'sender_id', m.sender_id,
            'type', m.type, 'content', m.content, 'content_metadata', m.content_metadata,
            'client_message_id', CASE WHEN m.sender_id = viewer THEN m.client_message_id END,
            'reply_to_id', m.reply_to_id, 'forwarded_from_id', m.forwarded_from_id, 'thread_id', m.thread_id,
            'mentions', to_jsonb(m.mentions), 'moderation_flagged', m.moderation_flagged,
            'is_edited', m.edited_at IS NOT NULL, 'edited_at', m.edited_at,
            'is_deleted', m.deleted_at IS NOT NULL, 'deleted_at', m.deleted_at, 'created_at', m.created_at,
            'reactions', coalesce((
                SELECT jsonb_agg(jsonb_build_object('emoji', r.emoji, 'count', r.n, 'reacted', r.mine) ORDER BY r.first)
                  FROM (SELECT emoji, count(*) AS n, bool_or(user_id = viewer) AS mine, min(created_at) AS first
                          FROM messaging.reactions
                         WHERE conversation_id = m.conversation_id AND message_id = m.id
                         GROUP BY emoji) r), '[]'::jsonb),
            'thread', (SELECT jsonb_build_object('id', t.id, 'message_count', t.message_count,
                                                 'last_message_at', t.last_message_at)
                         FROM messaging.threads t
                        WHERE t.conversation_id = m.conversation_id AND t.root_message_id = m.id))
    $$;
COMMENT ON FUNCTION messaging.render_message(messaging.messages, uuid) IS
    'The JSON of a message for one viewer: reactions counted with their own marked, the thread it roots.';

-- Unread messages of a participant: the conversation's last sequence minus the read
-- marker, within their window, less what was deleted for everyone or hidden for them.
CREATE FUNCTION messaging.unread_count(p messaging.participants, last_seq bigint) RETURNS bigint
    LANGUAGE sql STABLE
    AS $$
        SELECT CASE WHEN hi <= lo THEN 0 ELSE
            hi - lo
            - (SELECT count(*) FROM messaging.retractions r
                WHERE r.conversation_id = p.conversation_id AND r.seq > lo AND r.seq <= hi)
            - (SELECT count(*) FROM messaging.hidden_messages h
                WHERE h.user_id = p.user_id AND h.conversation_id = p.conversation_id
                  AND h.seq > lo AND h.seq <= hi
                  AND NOT EXISTS (SELECT 1 FROM messaging.retractions r
                                   WHERE r.conversation_id = h.conversation_id AND r.seq = h.seq))
        END
          FROM (SELECT least(last_seq, coalesce(p.left_seq, last_seq)) AS hi,
                       greatest(p.read_seq, p.history_from_seq) AS lo) bounds
    $$;
COMMENT ON FUNCTION messaging.unread_count(messaging.participants, bigint) IS
    'Exact unread messages: last sequence minus read marker, less retractions and hidden ones above it.';

CREATE FUNCTION messaging.unread_mentions(p messaging.participants) RETURNS bigint
    LANGUAGE sql STABLE
    AS $$
        SELECT count(*) FROM messaging.mentions m
         WHERE m.user_id = p.user_id AND m.conversation_id = p.conversation_id
           AND m.seq > greatest(p.read_seq, p.history_from_seq)
           AND (p.left_seq IS NULL OR m.seq <= p.left_seq)
    $$;
COMMENT ON FUNCTION messaging.unread_mentions(messaging.participants) IS 'Mentions of the participant above their read marker.';

-- The seq of a message the acting user can see, by id (the id names its partition).
CREATE FUNCTION messaging.seq_of(conversation uuid, message uuid) RETURNS bigint
    LANGUAGE sql STABLE
    AS $$
        SELECT m.seq FROM messaging.messages m
         WHERE m.conversation_id = conversation AND m.id = message AND m.created_at = messaging.id_time(message)
    $$;
COMMENT ON FUNCTION messaging.seq_of(uuid, uuid) IS 'The sequence of a visible message, or NULL.';

-- Sending, in one statement: who acts and whether their session holds, whether they may
-- send here, the idempotency key, the message (numbered by its trigger), and its event.
-- Returns whether it was made now (false: the key's earlier message) and the message.
CREATE FUNCTION messaging.send_message(
    acting_user uuid, session uuid, api_key uuid, conversation uuid, client_message_id text,
    message_type text, content text, content_metadata jsonb, reply_to uuid, thread uuid,
    forwarded_from uuid, mentions uuid[]
) RETURNS TABLE (created boolean, message text)
    LANGUAGE plpgsql
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

-- History, in one statement: newest first before a message (or from the newest), oldest
-- first after one, or around one; within the reader's window, without what they hid.
CREATE FUNCTION messaging.read_history(
    acting_user uuid, session uuid, api_key uuid, conversation uuid,
    before_id uuid, after_id uuid, around_id uuid, page_size integer
) RETURNS TABLE (items text, next uuid)
    LANGUAGE plpgsql
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
        PERFORM auth.act_for_request(acting_user, session, api_key);
        SELECT p.history_from_seq, coalesce(p.left_seq, 9223372036854775807) INTO lo, hi
          FROM messaging.participants p
         WHERE p.conversation_id = conversation AND p.user_id = acting_user;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF anchor_id IS NOT NULL THEN
            anchor := messaging.seq_of(conversation, anchor_id);
            IF anchor IS NULL THEN
                RAISE EXCEPTION 'message-not-found' USING ERRCODE = 'RM404';
            END IF;
        END IF;
        IF after_id IS NOT NULL THEN
            SELECT array_agg(messaging.render_message(x, acting_user) ORDER BY x.seq), array_agg(x.id ORDER BY x.seq)
              INTO found_rows, ids
              FROM (SELECT m.* FROM messaging.messages m
                     WHERE m.conversation_id = conversation AND m.seq > anchor AND m.seq > lo AND m.seq <= hi
                       AND NOT EXISTS (SELECT 1 FROM messaging.hidden_messages h WHERE h.user_id = acting_user
                                          AND h.conversation_id = conversation AND h.seq = m.seq)
                     ORDER BY m.seq LIMIT page_size + 1) x;
        ELSIF around_id IS NOT NULL THEN
            SELECT array_agg(messaging.render_message(x, acting_user) ORDER BY x.seq DESC),
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
            SELECT array_agg(messaging.render_message(x, acting_user) ORDER BY x.seq DESC),
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
    'The history hot path in one statement: a page of messages and the id to continue from.';

-- The conversation list, in one statement: pinned first, then by last activity, each with
-- the person's exact unread and unread-mention counts and the last message they may see.
CREATE FUNCTION messaging.list_conversations(
    acting_user uuid, session uuid, api_key uuid,
    after_pinned boolean, after_activity timestamptz, after_id uuid, page_size integer
) RETURNS TABLE (items text, next_pinned boolean, next_activity timestamptz, next_id uuid)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
    BEGIN
        PERFORM auth.act_for_request(acting_user, session, api_key);
        RETURN QUERY
        WITH page AS (
            SELECT p, c, coalesce(c.last_message_at, c.created_at) AS activity
              FROM messaging.participants p
              JOIN messaging.conversations c ON c.id = p.conversation_id
             WHERE p.user_id = acting_user AND p.status IN ('active', 'muted') AND c.deleted_at IS NULL
               AND (after_id IS NULL
                    OR (p.is_pinned, coalesce(c.last_message_at, c.created_at), c.id) < (after_pinned, after_activity, after_id))
             ORDER BY p.is_pinned DESC, coalesce(c.last_message_at, c.created_at) DESC, c.id DESC
             LIMIT page_size + 1
        ), numbered AS (
            SELECT page.*, row_number() OVER (ORDER BY (page.p).is_pinned DESC, page.activity DESC, (page.c).id DESC) AS i
              FROM page
        )
        SELECT coalesce((
                   SELECT json_agg(jsonb_build_object(
                       'id', (x.c).id, 'type', (x.c).type, 'name', (x.c).name, 'description', (x.c).description,
                       'avatar_url', (x.c).avatar_url, 'status', (x.c).status, 'is_public', (x.c).is_public,
                       'member_count', (x.c).member_count, 'last_seq', (x.c).last_seq,
                       'last_activity_at', x.activity, 'created_at', (x.c).created_at,
                       'role', (x.p).role, 'participant_status', (x.p).status, 'is_muted', (x.p).is_muted,
                       'is_pinned', (x.p).is_pinned, 'nickname', (x.p).nickname, 'read_seq', (x.p).read_seq,
                       'unread_count', messaging.unread_count(x.p, (x.c).last_seq),
                       'unread_mentions', messaging.unread_mentions(x.p),
                       'last_message', (
                           SELECT messaging.render_message(m, acting_user) FROM messaging.messages m
                            WHERE m.conversation_id = (x.c).id AND m.seq = (x.c).last_seq
                              AND m.created_at = (x.c).last_message_at AND m.seq > (x.p).history_from_seq))
                       ORDER BY x.i)::text
                     FROM numbered x WHERE x.i <= page_size), '[]'),
               tail.pinned, tail.activity, tail.id
          FROM (SELECT count(*) AS total FROM numbered) t
          LEFT JOIN LATERAL (
              SELECT (x.p).is_pinned AS pinned, x.activity, (x.c).id AS id FROM numbered x
               WHERE x.i = page_size AND t.total > page_size) tail ON true;
    END
    $$;
COMMENT ON FUNCTION messaging.list_conversations(uuid, uuid, uuid, boolean, timestamptz, uuid, integer) IS
    'The conversation-list hot path in one statement: a page and the keys to continue after.';

-- Moves the read marker to a message (never backwards), or just before it (mark unread).
-- The receipt goes to the conversation when the reader shares read receipts, else only to
-- their own devices.
CREATE FUNCTION messaging.mark_read(
    acting_user uuid, session uuid, api_key uuid, conversation uuid, message uuid, unread boolean
) RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        anchor bigint;
        p messaging.participants;
        newest bigint;
        shares boolean;
    BEGIN
        PERFORM auth.act_for_request(acting_user, session, api_key);
        anchor := messaging.seq_of(conversation, message);
        IF anchor IS NULL THEN
            RAISE EXCEPTION 'message-not-found' USING ERRCODE = 'RM404';
        END IF;
        UPDATE messaging.participants x
           SET read_seq = CASE WHEN unread THEN anchor - 1 ELSE greatest(x.read_seq, anchor) END,
               delivered_seq = greatest(x.delivered_seq, anchor),
               read_at = now()
         WHERE x.conversation_id = conversation AND x.user_id = acting_user AND x.status IN ('active', 'muted')
        RETURNING * INTO p;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
        END IF;
        SELECT c.last_seq INTO newest FROM messaging.conversations c WHERE c.id = conversation;
        shares := messaging.shares_read_receipts(acting_user);
        INSERT INTO kernel.events (position, scope_kind, scope_id, type, payload, actor_id)
        VALUES (NULL, CASE WHEN shares THEN 'conversation' ELSE 'user' END,
                CASE WHEN shares THEN conversation ELSE acting_user END, 'receipt.read',
                jsonb_build_object('conversation_id', conversation, 'user_id', acting_user,
                                   'read_seq', p.read_seq, 'delivered_seq', p.delivered_seq),
                acting_user);
        RETURN jsonb_build_object('conversation_id', conversation, 'read_seq', p.read_seq,
                                  'delivered_seq', p.delivered_seq,
                                  'unread_count', messaging.unread_count(p, newest),
                                  'unread_mentions', messaging.unread_mentions(p))::text;
    END
    $$;
COMMENT ON FUNCTION messaging.mark_read(uuid, uuid, uuid, uuid, uuid, boolean) IS
    'Mark read up to a message, or unread from it; returns the new marker and counts.';

-- "Read by": receipts derived from each participant's markers, so a receipt costs no row
-- per message. A reader who does not share read receipts shows as delivered only.
CREATE VIEW messaging.message_receipts WITH (security_invoker = true) AS
SELECT m.conversation_id, m.id AS message_id, m.seq, p.user_id,
       CASE WHEN p.read_seq >= m.seq AND messaging.shares_read_receipts(p.user_id) THEN 'read' ELSE 'delivered' END
           AS status,
       CASE WHEN p.read_seq >= m.seq AND messaging.shares_read_receipts(p.user_id) THEN p.read_at END AS read_at,
       m.created_at
  FROM messaging.messages m
  JOIN messaging.participants p ON p.conversation_id = m.conversation_id
 WHERE p.user_id IS DISTINCT FROM m.sender_id AND p.delivered_seq >= m.seq AND m.seq > p.history_from_seq
   AND (p.left_seq IS NULL OR m.seq <= p.left_seq);
COMMENT ON VIEW messaging.message_receipts IS
    'Delivery and read receipts per message and participant (seed 004 message_receipts), derived from '
    'markers: read_at is when the reader''s marker last moved. Rows follow the reader''s row-level security.';
GRANT SELECT ON messaging.message_receipts TO rapport_app, rapport_worker;
"""

GRANTS = """
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA messaging FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA messaging TO rapport_app, rapport_worker;
-- Trigger functions fire whoever changes the row; nobody calls them.
REVOKE EXECUTE ON FUNCTION messaging.sequence_message(), messaging.guard_message_update(),
    messaging.count_members(), messaging.guard_participant_update(), messaging.compile_blocked_terms()
    FROM rapport_app, rapport_worker;
"""


def upgrade() -> None:
    run_sql(TABLES)
    run_sql(FUNCTIONS)
    run_sql(MEMBERSHIP)
    run_sql(HOT_PATHS)
    run_sql(POLICIES)
    run_sql(GRANTS)


def downgrade() -> None:
    run_sql(
        """
        DELETE FROM kernel.monthly_partitions WHERE parent = 'messaging.messages'::regclass;
        DROP SCHEMA messaging CASCADE;
        """
    )
