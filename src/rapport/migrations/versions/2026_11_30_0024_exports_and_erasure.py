"""Exports of everything held about a person, account deletion with a grace period, and erasure.

Why: issue 12.
- `compliance.exports`: a person asks for an archive of their data; a job builds it into
  the media storage (content-addressed, like every stored byte) and it can be downloaded
  until it expires. Only the person reads their exports; platform administrators read the
  requests, never the archives.
- `compliance.deletion_requests`: deleting an account (DELETE /v1/me) disables it
  (`compliance.schedule_deletion`: `auth.users.status = 'deleted'`, the address still
  taken; the service then revokes its sessions) and names the moment it will be erased.
  Signing in again before then restores it: identity asks
  `compliance.deletion_pending` whether a disabled account may still sign in, and
  `compliance.cancel_deletion` when it does (identity imports nothing of compliance).
- Erasure (rapport.compliance._erase) deletes the account row, which takes every row it
  owns with it, and removes what remains elsewhere: the messaging part is
  `compliance.erase_messages`, a definer function because the worker's role may not
  rewrite messages. What the person said keeps its place in others' conversations (sequence,
  times, replies and threads) without its content, its edits or its sender; copies others
  forwarded lose their content too; their mentions of others and others' mentions of them
  go; a direct conversation keeps the other person's side and is closed; a conversation
  no one else ever took part in goes whole.
- A message's guard (messaging.guard_message_update) lets nobody but its sender change
  what it says. During erasure, and only there (system work that set `rapport.erasing`),
  `compliance.guard_message_erasure` stands in for it: content and mentions may change,
  a message's identity and place still may not.

Revision ID: 2026_11_30_0024
Revises: 2026_11_30_0023
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0024"
down_revision = "2026_11_30_0023"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


TABLES = r"""
CREATE TABLE compliance.exports (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    requested_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    expires_at timestamptz,
    size_bytes bigint,
    sha256 bytea,
    storage_key text,
    sections jsonb NOT NULL DEFAULT '{}'::jsonb,
    error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_exports PRIMARY KEY (id),
    CONSTRAINT fk_exports_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_exports_status CHECK (status IN ('pending', 'running', 'completed', 'failed', 'expired')),
    CONSTRAINT ck_exports_completed CHECK (
        status <> 'completed'
        OR (completed_at IS NOT NULL AND expires_at IS NOT NULL AND size_bytes IS NOT NULL
            AND sha256 IS NOT NULL AND storage_key IS NOT NULL)),
    CONSTRAINT ck_exports_size_bytes CHECK (size_bytes >= 0),
    CONSTRAINT ck_exports_sha256 CHECK (octet_length(sha256) = 32),
    CONSTRAINT ck_exports_sections CHECK (jsonb_typeof(sections) = 'object'),
    CONSTRAINT ck_exports_error CHECK (length(error) <= 2000)
);
COMMENT ON TABLE compliance.exports IS
    'Archives of everything Rapport holds about a person, asked for by them (POST /v1/me/exports), built '
    'by the job compliance.build_export and kept in the media storage until they expire.';
COMMENT ON COLUMN compliance.exports.storage_key IS
    'Where the archive''s bytes are in the media storage (content-addressed by sha256); the bytes go '
    'when the export expires or the account is erased.';
COMMENT ON COLUMN compliance.exports.sections IS 'Rows per file of the archive, as its manifest lists them.';
-- Serves rapport.compliance._exports: one person's exports, newest first.
CREATE INDEX ix_exports_user_id ON compliance.exports (user_id, id DESC);
-- One export in the making per person: asking again answers with that one.
CREATE UNIQUE INDEX ux_exports_in_progress ON compliance.exports (user_id)
    WHERE status IN ('pending', 'running');
-- Serves rapport.compliance._exports.expire_exports: completed exports past their time.
CREATE INDEX ix_exports_expires_at ON compliance.exports (expires_at) WHERE status = 'completed';
CREATE TRIGGER tr_exports_updated_at BEFORE UPDATE ON compliance.exports
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE compliance.deletion_requests (
    user_id uuid NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    erase_after timestamptz NOT NULL,
    confirmed_by text NOT NULL,
    CONSTRAINT pk_deletion_requests PRIMARY KEY (user_id),
    CONSTRAINT fk_deletion_requests_user_id_users FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_deletion_requests_confirmed_by CHECK (confirmed_by IN ('password', 'recent_sign_in')),
    CONSTRAINT ck_deletion_requests_erase_after CHECK (erase_after >= requested_at)
);
COMMENT ON TABLE compliance.deletion_requests IS
    'Accounts whose deletion was asked for (DELETE /v1/me): disabled now, erased once erase_after has '
    'passed unless their owner signs in again before. A row goes when the account is restored or erased.';
COMMENT ON COLUMN compliance.deletion_requests.confirmed_by IS
    'How the request was confirmed: the current password, or a sign-in recent enough.';
-- Serves rapport.compliance._erase.erase_due_accounts: accounts whose grace has ended, oldest first.
CREATE INDEX ix_deletion_requests_erase_after ON compliance.deletion_requests (erase_after);

ALTER TABLE compliance.exports ENABLE ROW LEVEL SECURITY;
ALTER TABLE compliance.exports FORCE ROW LEVEL SECURITY;
-- The person reads their own; platform administrators read the requests (the archives
-- are served only to the person, by the API); system work builds and expires them.
CREATE POLICY exports_read ON compliance.exports FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system() OR compliance.is_platform_admin());
CREATE POLICY exports_request ON compliance.exports FOR INSERT
    WITH CHECK (auth.is_system() OR (
        user_id = auth.current_user_id() AND status = 'pending' AND started_at IS NULL
        AND completed_at IS NULL AND storage_key IS NULL AND sha256 IS NULL));
CREATE POLICY exports_system ON compliance.exports FOR UPDATE
    USING (auth.is_system()) WITH CHECK (auth.is_system());
CREATE POLICY exports_system_delete ON compliance.exports FOR DELETE USING (auth.is_system());
GRANT SELECT, INSERT ON compliance.exports TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON compliance.exports TO rapport_worker;

ALTER TABLE compliance.deletion_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE compliance.deletion_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY deletion_requests_read ON compliance.deletion_requests FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system() OR compliance.is_platform_admin());
CREATE POLICY deletion_requests_system ON compliance.deletion_requests
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON compliance.deletion_requests TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON compliance.deletion_requests TO rapport_worker;
"""

# Identity's questions at sign-in, asked in its system transaction: functions rather than
# the table, so that identity knows nothing of how compliance keeps the requests.
SIGN_IN = r"""
CREATE FUNCTION compliance.schedule_deletion(target uuid, grace interval, confirmed_by text)
    RETURNS TABLE (requested_at timestamptz, erase_after timestamptz)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'scheduling an erasure is system work' USING ERRCODE = 'insufficient_privilege';
        END IF;
        UPDATE auth.users SET status = 'deleted' WHERE id = target AND status = 'active';
        IF NOT FOUND THEN
            RETURN;
        END IF;
        -- A request left behind by an account restored another way (by an administrator)
        -- is replaced.
        RETURN QUERY
            INSERT INTO compliance.deletion_requests AS r (user_id, erase_after, confirmed_by)
            VALUES (target, now() + grace, schedule_deletion.confirmed_by)
            ON CONFLICT (user_id) DO UPDATE
               SET requested_at = now(), erase_after = excluded.erase_after, confirmed_by = excluded.confirmed_by
            RETURNING r.requested_at, r.erase_after;
        PERFORM compliance.log_event(target, 'data_deletion_requested',
                                     jsonb_build_object('erase_after', now() + grace,
                                                        'confirmed_by', schedule_deletion.confirmed_by));
    END
    $$;
COMMENT ON FUNCTION compliance.schedule_deletion(uuid, interval, text) IS
    'DELETE /v1/me, once confirmed: the active account is disabled (status deleted) and will be erased '
    'after the grace period; the request is logged. No row when the account was not active. System work only.';

CREATE FUNCTION compliance.deletion_pending(target uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (SELECT 1 FROM compliance.deletion_requests r
                        WHERE r.user_id = target AND r.erase_after > now())
    $$;
COMMENT ON FUNCTION compliance.deletion_pending(uuid) IS
    'Whether the account''s deletion was asked for and its grace period runs still: it may sign in, '
    'which restores it (compliance.cancel_deletion). System work only (row-level security).';

CREATE FUNCTION compliance.cancel_deletion(target uuid) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        asked timestamptz;
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'restoring an account is system work' USING ERRCODE = 'insufficient_privilege';
        END IF;
        DELETE FROM compliance.deletion_requests r
         WHERE r.user_id = target AND r.erase_after > now()
        RETURNING r.requested_at INTO asked;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
        UPDATE auth.users SET status = 'active' WHERE id = target AND status = 'deleted';
        PERFORM compliance.log_event(target, 'data_deletion_cancelled',
                                     jsonb_build_object('requested_at', asked, 'how', 'sign_in'));
        RETURN true;
    END
    $$;
COMMENT ON FUNCTION compliance.cancel_deletion(uuid) IS
    'Signing in during the grace period: the deletion request goes, the account is active again and the '
    'cancellation is logged. False when no request was pending. System work only.';

REVOKE ALL ON FUNCTION compliance.schedule_deletion(uuid, interval, text), compliance.deletion_pending(uuid),
    compliance.cancel_deletion(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION compliance.schedule_deletion(uuid, interval, text), compliance.deletion_pending(uuid),
    compliance.cancel_deletion(uuid) TO rapport_worker;
"""

GUARD = r"""
CREATE FUNCTION compliance.guard_message_erasure() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'only erasure, as system work, rewrites messages this way'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.id <> OLD.id OR NEW.conversation_id <> OLD.conversation_id OR NEW.seq <> OLD.seq
           OR NEW.created_at <> OLD.created_at OR NEW.type <> OLD.type
           OR NEW.thread_id IS DISTINCT FROM OLD.thread_id
           OR NEW.reply_to_id IS DISTINCT FROM OLD.reply_to_id
           OR (NEW.sender_id IS DISTINCT FROM OLD.sender_id AND NEW.sender_id IS NOT NULL) THEN
            RAISE EXCEPTION 'a message''s identity and place never change' USING ERRCODE = 'RM403';
        END IF;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION compliance.guard_message_erasure() IS
    'BEFORE UPDATE on messaging.messages while rapport.erasing is on, instead of '
    'messaging.guard_message_update: system work may take a message''s content and mentions (its search '
    'vector follows its content); its identity, place, thread and reply stay.';
REVOKE ALL ON FUNCTION compliance.guard_message_erasure() FROM PUBLIC;

DROP TRIGGER guard_message_update ON messaging.messages;
CREATE TRIGGER guard_message_update BEFORE UPDATE ON messaging.messages
    FOR EACH ROW WHEN (current_setting('rapport.erasing', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION messaging.guard_message_update();
CREATE TRIGGER guard_message_erasure BEFORE UPDATE ON messaging.messages
    FOR EACH ROW WHEN (current_setting('rapport.erasing', true) = 'on')
    EXECUTE FUNCTION compliance.guard_message_erasure();

-- Serves compliance.erase_messages: the copies others forwarded of an erased person's messages.
CREATE INDEX ix_messages_forwarded_from_id ON messaging.messages (forwarded_from_id)
    WHERE forwarded_from_id IS NOT NULL;
-- Serves compliance.erase_messages: the versions an erased person recorded (their edits,
-- and the messages they deleted as a moderator).
CREATE INDEX ix_message_history_changed_by ON messaging.message_history (changed_by)
    WHERE changed_by IS NOT NULL;

-- Serves rapport.compliance._erase: others' notifications quoting an erased person's messages.
CREATE INDEX ix_notifications_related_id ON notifications.notifications (related_id)
    WHERE related_id IS NOT NULL;

-- compliance.erase_messages runs as rapport_owner, whom these tables' forced policies bind:
-- it alone (a definer function in system work) removes versions and whole conversations.
CREATE POLICY message_history_erase ON messaging.message_history FOR DELETE
    USING (kernel.in_definer() AND auth.is_system());
CREATE POLICY message_history_erase_actor ON messaging.message_history FOR UPDATE
    USING (kernel.in_definer() AND auth.is_system()) WITH CHECK (kernel.in_definer() AND auth.is_system());
CREATE POLICY conversations_erase ON messaging.conversations FOR DELETE
    USING (kernel.in_definer() AND auth.is_system());
"""

ERASE_MESSAGES = r"""
CREATE FUNCTION compliance.erase_messages(target uuid) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        blanked integer;
        added integer;
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'erasure is system work' USING ERRCODE = 'insufficient_privilege';
        END IF;
        PERFORM set_config('rapport.erasing', 'on', true);

        -- What they said, and every copy forwarded from it (a copy of a copy too).
        DROP TABLE IF EXISTS pg_temp.erased_messages;
        CREATE TEMP TABLE erased_messages ON COMMIT DROP AS
            SELECT m.conversation_id, m.seq, m.id, m.created_at, m.deleted_at IS NOT NULL AS was_deleted
              FROM messaging.messages m WHERE m.sender_id = target;
        LOOP
            INSERT INTO erased_messages
            SELECT m.conversation_id, m.seq, m.id, m.created_at, m.deleted_at IS NOT NULL
              FROM messaging.messages m
             WHERE m.forwarded_from_id IN (SELECT e.id FROM erased_messages e)
               AND NOT EXISTS (SELECT 1 FROM erased_messages e WHERE e.id = m.id);
            GET DIAGNOSTICS added = ROW_COUNT;
            EXIT WHEN added = 0;
        END LOOP;

        -- Their mentions of others, and every earlier version of what they said.
        DELETE FROM messaging.mentions n USING erased_messages e
         WHERE n.conversation_id = e.conversation_id AND n.seq = e.seq;
        DELETE FROM messaging.message_history h USING erased_messages e
         WHERE h.conversation_id = e.conversation_id AND h.message_id = e.id;
        -- Messages they deleted as a moderator: who deleted them goes.
        UPDATE messaging.messages m SET deleted_by = NULL
          FROM messaging.message_history h
         WHERE h.changed_by = target AND h.operation = 'delete'
           AND m.conversation_id = h.conversation_id AND m.id = h.message_id
           AND m.created_at = messaging.id_time(h.message_id) AND m.deleted_by = target;
        UPDATE messaging.message_history SET changed_by = NULL WHERE changed_by = target;

        -- Each keeps its place (sequence, time, thread, reply) as a deleted message (its
        -- search vector, generated from its content, empties with it); the retraction is
        -- what tells readers and unread counts that it is gone.
        INSERT INTO messaging.retractions (conversation_id, seq, message_id)
        SELECT e.conversation_id, e.seq, e.id FROM erased_messages e WHERE NOT e.was_deleted
        ON CONFLICT (conversation_id, seq) DO NOTHING;
        UPDATE messaging.messages m
           SET content = '', content_metadata = '{}'::jsonb, mentions = '{}'::uuid[],
               deleted_at = coalesce(m.deleted_at, now()),
               deleted_by = CASE WHEN m.deleted_by = target THEN NULL ELSE m.deleted_by END
          FROM erased_messages e
         WHERE m.conversation_id = e.conversation_id AND m.seq = e.seq AND m.created_at = e.created_at;
        GET DIAGNOSTICS blanked = ROW_COUNT;

        -- Others' messages that mention them (the mentions' own rows go with the account).
        UPDATE messaging.messages m SET mentions = array_remove(m.mentions, target)
          FROM messaging.mentions n
         WHERE n.user_id = target AND m.conversation_id = n.conversation_id AND m.seq = n.seq
           AND m.created_at = messaging.id_time(n.message_id);

        -- Reports: the reported words, the reporter's details, the moderator's note.
        UPDATE messaging.reports r SET message_content = ''
         WHERE r.message_sender_id = target
            OR (r.conversation_id, r.message_id) IN (SELECT e.conversation_id, e.id FROM erased_messages e);
        UPDATE messaging.reports SET details = NULL WHERE reporter_id = target;
        UPDATE messaging.reports SET resolution_note = NULL WHERE resolved_by = target;

        -- Threads they named (a thread without a root message needs a title).
        UPDATE messaging.threads
           SET title = CASE WHEN root_message_id IS NULL THEN 'Thread' END
         WHERE creator_id = target AND title IS NOT NULL;

        -- A conversation no one else ever took part in is theirs alone: it goes whole.
        DELETE FROM messaging.conversations c
         WHERE (c.id IN (SELECT p.conversation_id FROM messaging.participants p WHERE p.user_id = target)
                OR c.creator_id = target)
           AND NOT EXISTS (SELECT 1 FROM messaging.participants o
                            WHERE o.conversation_id = c.id AND o.user_id <> target);

        -- A direct conversation keeps the other side: the pair names no one in their place,
        -- and no message can be sent to it any more.
        UPDATE messaging.conversations c
           SET direct_low = least(pair.other, pair.nobody), direct_high = greatest(pair.other, pair.nobody),
               status = 'closed'
          FROM (SELECT d.id,
                       CASE WHEN d.direct_low = target THEN d.direct_high ELSE d.direct_low END AS other,
                       gen_random_uuid() AS nobody
                  FROM messaging.conversations d
                  JOIN messaging.participants p ON p.conversation_id = d.id AND p.user_id = target
                 WHERE d.type = 'direct' AND target IN (d.direct_low, d.direct_high)) AS pair
         WHERE c.id = pair.id;

        -- A conversation they owned passes to the first of its remaining members (admins
        -- first), unless another owner remains.
        UPDATE messaging.participants p SET role = 'owner'
          FROM (SELECT DISTINCT ON (o.conversation_id) o.conversation_id, o.user_id
                  FROM messaging.participants mine
                  JOIN messaging.participants o
                    ON o.conversation_id = mine.conversation_id AND o.user_id <> target
                   AND o.status IN ('active', 'muted')
                 WHERE mine.user_id = target AND mine.role = 'owner'
                   AND NOT EXISTS (SELECT 1 FROM messaging.participants x
                                    WHERE x.conversation_id = mine.conversation_id AND x.user_id <> target
                                      AND x.role = 'owner' AND x.status IN ('active', 'muted'))
                 ORDER BY o.conversation_id,
                          array_position(ARRAY['admin', 'moderator', 'member', 'guest', 'observer'], o.role),
                          o.joined_at, o.user_id) AS heir
         WHERE p.conversation_id = heir.conversation_id AND p.user_id = heir.user_id;

        PERFORM set_config('rapport.erasing', '', true);
        RETURN blanked;
    END
    $$;
COMMENT ON FUNCTION compliance.erase_messages(uuid) IS
    'System work, before the account row is deleted: what the person said (and copies forwarded from it) '
    'keeps its place without content, versions, mentions or deleter; reports, thread titles, direct '
    'conversations and owned conversations let go of them; conversations only they took part in go. '
    'Returns how many messages were blanked.';
REVOKE ALL ON FUNCTION compliance.erase_messages(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION compliance.erase_messages(uuid) TO rapport_worker;
"""


def upgrade() -> None:
    run_sql(TABLES)
    run_sql(SIGN_IN)
    run_sql(GUARD)
    run_sql(ERASE_MESSAGES)


def downgrade() -> None:
    run_sql(
        """
        DROP FUNCTION compliance.erase_messages(uuid);
        DROP POLICY conversations_erase ON messaging.conversations;
        DROP POLICY message_history_erase_actor ON messaging.message_history;
        DROP POLICY message_history_erase ON messaging.message_history;
        DROP INDEX notifications.ix_notifications_related_id;
        DROP INDEX messaging.ix_message_history_changed_by;
        DROP INDEX messaging.ix_messages_forwarded_from_id;
        DROP TRIGGER guard_message_erasure ON messaging.messages;
        DROP TRIGGER guard_message_update ON messaging.messages;
        CREATE TRIGGER guard_message_update BEFORE UPDATE ON messaging.messages
            FOR EACH ROW EXECUTE FUNCTION messaging.guard_message_update();
        DROP FUNCTION compliance.guard_message_erasure();
        DROP FUNCTION compliance.cancel_deletion(uuid);
        DROP FUNCTION compliance.deletion_pending(uuid);
        DROP FUNCTION compliance.schedule_deletion(uuid, interval, text);
        DROP TABLE compliance.deletion_requests;
        DROP TABLE compliance.exports;
        """
    )
