"""Messaging: calls and their participants (seed 004), reports of messages and the
moderation queue (seed 002's moderation_flagged).

Why: a call is another way a conversation talks, so it takes the rules of sending and the
conversation's row-level security; reports and flags give a conversation's moderators, and
the platform's administrators, something to act on. Media signalling is out of scope: these
are the records.

Revision ID: 2026_11_29_0015
Revises: 2026_11_29_0014
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0015"
down_revision = "2026_11_29_0014"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


TABLES = """
CREATE TABLE messaging.calls (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    type text NOT NULL,
    status text NOT NULL DEFAULT 'ringing',
    started_by uuid,
    started_at timestamptz NOT NULL DEFAULT now(),
    answered_at timestamptz,
    ended_at timestamptz,
    duration_seconds integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_calls PRIMARY KEY (id),
    CONSTRAINT uq_calls_conversation_id_id UNIQUE (conversation_id, id),
    CONSTRAINT fk_calls_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_calls_started_by_users FOREIGN KEY (started_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_calls_type CHECK (type IN ('audio', 'video', 'screen_share')),
    CONSTRAINT ck_calls_status CHECK (status IN ('ringing', 'ongoing', 'ended', 'missed', 'declined')),
    -- Written with NOT IN so that the enumeration above stays the one list of statuses.
    CONSTRAINT ck_calls_answered CHECK ((answered_at IS NULL) = (status NOT IN ('ongoing', 'ended'))),
    CONSTRAINT ck_calls_ended CHECK ((ended_at IS NULL) = (status NOT IN ('ended', 'missed', 'declined'))),
    CONSTRAINT ck_calls_duration CHECK ((duration_seconds IS NULL) = (ended_at IS NULL) AND duration_seconds >= 0)
);
COMMENT ON TABLE messaging.calls IS
    'Audio, video and screen-sharing calls of a conversation (seed 004 calls): who started it, when it '
    'was answered and ended, how long it lasted. At most one ringing or ongoing call per conversation. '
    'Status changes are checked by messaging.guard_call and follow the participants (messaging.follow_call).';
COMMENT ON COLUMN messaging.calls.status IS
    'ringing (started, nobody else has joined), ongoing (a second person joined), then ended (it was '
    'answered), missed (it ended unanswered) or declined (everyone rung declined).';
COMMENT ON COLUMN messaging.calls.answered_at IS 'When a second person joined: the call''s duration counts from here.';
COMMENT ON COLUMN messaging.calls.duration_seconds IS
    'Set when the call ends: ended_at - answered_at in whole seconds, 0 for a call nobody answered.';
-- Serves rapport.messaging._calls.list_calls: a conversation's calls, newest first (scanned
-- backwards), lookups by id within a conversation, and the composite foreign key of call_participants.
-- (uq_calls_conversation_id_id)
-- Serves rapport.messaging._calls.do_start_call: at most one live call per conversation.
CREATE UNIQUE INDEX uq_calls_live ON messaging.calls (conversation_id) WHERE status IN ('ringing', 'ongoing');
-- Serves the foreign key's ON DELETE SET NULL when an account goes.
CREATE INDEX ix_calls_started_by ON messaging.calls (started_by);

CREATE TABLE messaging.call_participants (
    conversation_id uuid NOT NULL,
    call_id uuid NOT NULL,
    user_id uuid NOT NULL,
    status text NOT NULL,
    joined_at timestamptz,
    left_at timestamptz,
    quality_rating integer,
    rated_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_call_participants PRIMARY KEY (conversation_id, call_id, user_id),
    CONSTRAINT fk_call_participants_conversation_id_calls FOREIGN KEY (conversation_id, call_id)
        REFERENCES messaging.calls (conversation_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_call_participants_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_call_participants_status CHECK (
        status IN ('invited', 'ringing', 'joined', 'left', 'declined', 'missed')),
    CONSTRAINT ck_call_participants_joined CHECK (status NOT IN ('joined', 'left') OR joined_at IS NOT NULL),
    CONSTRAINT ck_call_participants_quality_rating CHECK (quality_rating BETWEEN 1 AND 5),
    CONSTRAINT ck_call_participants_rated CHECK (
        (quality_rating IS NULL) = (rated_at IS NULL) AND (quality_rating IS NULL OR joined_at IS NOT NULL))
);
COMMENT ON TABLE messaging.call_participants IS
    'Who a call rang and who took part (seed 004 call_participants): one row per person and call, made '
    'by messaging.ring_call when the call starts, or by the person when they join later. Each person '
    'rates the call''s quality for themself.';
COMMENT ON COLUMN messaging.call_participants.status IS
    'invited (may join; not rung, having muted the conversation), ringing, joined, left, declined, or '
    'missed (still invited or ringing when the call ended).';
COMMENT ON COLUMN messaging.call_participants.joined_at IS 'When the person first joined; kept when they rejoin.';
-- The primary key serves a call's participants (rapport.messaging._calls.list_calls) and
-- the composite foreign key's ON DELETE CASCADE. This serves ON DELETE CASCADE when an account goes.
CREATE INDEX ix_call_participants_user_id ON messaging.call_participants (user_id);

CREATE TABLE messaging.reports (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    message_id uuid NOT NULL,
    message_sender_id uuid,
    message_content text NOT NULL DEFAULT '',
    reporter_id uuid,
    reason text NOT NULL,
    details text,
    status text NOT NULL DEFAULT 'open',
    resolved_by uuid,
    resolved_at timestamptz,
    resolution_note text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_reports PRIMARY KEY (id),
    CONSTRAINT fk_reports_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_reports_message_sender_id_users FOREIGN KEY (message_sender_id)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT fk_reports_reporter_id_users FOREIGN KEY (reporter_id) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT fk_reports_resolved_by_users FOREIGN KEY (resolved_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_reports_reason CHECK (
        reason IN ('spam', 'harassment', 'hate', 'violence', 'sexual', 'self_harm', 'other')),
    CONSTRAINT ck_reports_status CHECK (status IN ('open', 'dismissed', 'actioned')),
    CONSTRAINT ck_reports_details CHECK (length(details) BETWEEN 1 AND 2000),
    CONSTRAINT ck_reports_resolution_note CHECK (length(resolution_note) BETWEEN 1 AND 2000),
    CONSTRAINT ck_reports_message_content CHECK (length(message_content) <= 10000),
    CONSTRAINT ck_reports_resolved CHECK ((status = 'open') = (resolved_at IS NULL))
);
COMMENT ON TABLE messaging.reports IS
    'A participant''s report of a message to the conversation''s moderators and the platform''s '
    'administrators, and what was done about it. At most one open report per reporter and message. '
    'No foreign key to the message: messages are partitioned and never deleted, only emptied.';
COMMENT ON COLUMN messaging.reports.message_content IS
    'The message as the reporter saw it (copied by messaging.guard_report): what moderators judge, also '
    'after an edit or a deletion, and what platform administrators who do not take part read.';
COMMENT ON COLUMN messaging.reports.status IS
    'open; dismissed (nothing to do); actioned (the message was deleted for everyone).';
-- Serves rapport.messaging._moderation.list_conversation_reports: a conversation's reports
-- of one status, newest first; and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_reports_conversation_id ON messaging.reports (conversation_id, status, id DESC);
-- Serves rapport.messaging._moderation.list_open_reports: every open report, newest first.
CREATE INDEX ix_reports_open ON messaging.reports (id DESC) WHERE status = 'open';
-- Serves rapport.messaging._moderation.do_report_message (one open report per reporter and
-- message) and do_resolve_report (closing every open report of a deleted message).
CREATE UNIQUE INDEX uq_reports_open ON messaging.reports (conversation_id, message_id, reporter_id)
    WHERE status = 'open';
-- Serve the foreign keys' ON DELETE SET NULL when an account goes.
CREATE INDEX ix_reports_reporter_id ON messaging.reports (reporter_id);
CREATE INDEX ix_reports_message_sender_id ON messaging.reports (message_sender_id);
CREATE INDEX ix_reports_resolved_by ON messaging.reports (resolved_by);

-- Serves rapport.messaging._moderation.list_flagged_messages: a conversation's flagged
-- messages still there, newest first (one small partial index per monthly partition).
CREATE INDEX ix_messages_flagged ON messaging.messages (conversation_id, seq DESC)
    WHERE moderation_flagged AND deleted_at IS NULL;
"""


FUNCTIONS = r"""
-- Whether the acting user may start or join a call: the rules of sending (messages_send),
-- since a call is a way of talking. Reads only the acting user's own participant row and
-- their conversation, both theirs to read: no definer rights needed.
CREATE FUNCTION messaging.may_call(conversation uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM messaging.participants p JOIN messaging.conversations c ON c.id = p.conversation_id
             WHERE p.conversation_id = conversation AND p.user_id = auth.current_user_id()
               AND p.status = 'active' AND p.can_send AND p.role <> 'observer'
               AND c.status = 'active' AND c.deleted_at IS NULL
               AND (c.type <> 'broadcast' OR p.role IN ('owner', 'admin'))
               AND (c.type <> 'direct' OR NOT social.is_blocked(c.direct_low, c.direct_high)))
    $$;
COMMENT ON FUNCTION messaging.may_call(uuid) IS
    'Whether the acting user may start or join a call in the conversation: whoever may send there.';

-- A call's life: made ringing by whoever may call; its identity never changes; once ended,
-- missed or declined it stays so. Users only end it (the starter, or moderators and above);
-- answering and the endings that follow from people leaving or declining are
-- messaging.follow_call's, which runs with definer rights. Ending stamps the time and the
-- duration here, so nobody chooses them.
CREATE FUNCTION messaging.guard_call() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        trusted boolean := kernel.in_definer() OR auth.is_system();
        actor uuid := auth.current_user_id();
    BEGIN
        IF TG_OP = 'INSERT' THEN
            IF NOT trusted THEN
                IF messaging.participant_role(NEW.conversation_id) IS NULL THEN
                    RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
                END IF;
                IF EXISTS (SELECT 1 FROM messaging.conversations c
                            WHERE c.id = NEW.conversation_id AND c.status <> 'active') THEN
                    RAISE EXCEPTION 'conversation-not-active' USING ERRCODE = 'RM409';
                END IF;
                IF NOT messaging.may_call(NEW.conversation_id) THEN
                    RAISE EXCEPTION 'cannot-call' USING ERRCODE = 'RM403';
                END IF;
            END IF;
            NEW.status := 'ringing';
            NEW.started_at := now();
            NEW.answered_at := NULL;
            NEW.ended_at := NULL;
            NEW.duration_seconds := NULL;
            NEW.created_at := now();
            RETURN NEW;
        END IF;
        IF trusted AND NEW.status = OLD.status THEN
            -- System work, and the foreign key's SET NULL when an account goes.
            RETURN NEW;
        END IF;
        IF NEW.id <> OLD.id OR NEW.conversation_id <> OLD.conversation_id OR NEW.type <> OLD.type
           OR (NEW.started_by IS DISTINCT FROM OLD.started_by AND NEW.started_by IS NOT NULL)
           OR NEW.started_at <> OLD.started_at OR NEW.created_at <> OLD.created_at THEN
            RAISE EXCEPTION 'a call''s identity never changes' USING ERRCODE = 'RM403';
        END IF;
        IF OLD.status NOT IN ('ringing', 'ongoing') THEN
            RAISE EXCEPTION 'call-not-live' USING ERRCODE = 'RM409';
        END IF;
        IF NEW.status = OLD.status THEN
            NEW.answered_at := OLD.answered_at;
            NEW.ended_at := OLD.ended_at;
            NEW.duration_seconds := OLD.duration_seconds;
            RETURN NEW;
        END IF;
        IF NEW.status IN ('ringing', 'ongoing') THEN
            -- Answering is joining: only messaging.follow_call moves a call to ongoing.
            IF NOT trusted OR NEW.status = 'ringing' THEN
                RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
            END IF;
            NEW.answered_at := coalesce(OLD.answered_at, now());
            RETURN NEW;
        END IF;
        IF NOT trusted AND OLD.started_by IS DISTINCT FROM actor
           AND coalesce(messaging.participant_role(OLD.conversation_id) IN ('owner', 'admin', 'moderator'), false) = false
        THEN
            RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
        END IF;
        -- What the ending is follows from the call, not from what was asked.
        NEW.status := CASE WHEN OLD.answered_at IS NOT NULL THEN 'ended'
                           WHEN NEW.status = 'declined' AND trusted THEN 'declined'
                           ELSE 'missed' END;
        NEW.answered_at := OLD.answered_at;
        NEW.ended_at := now();
        NEW.duration_seconds := CASE WHEN OLD.answered_at IS NULL THEN 0
                                     ELSE greatest(0, floor(extract(epoch FROM now() - OLD.answered_at)))::integer END;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION messaging.guard_call() IS
    'BEFORE INSERT or UPDATE on calls: who may start one (messaging.may_call), that a call never changes '
    'identity or comes back, that only its starter or a moderator ends it, and its end time and duration.';
CREATE TRIGGER guard_call BEFORE INSERT OR UPDATE ON messaging.calls
    FOR EACH ROW EXECUTE FUNCTION messaging.guard_call();

-- Rings the conversation when a call starts: the starter has joined, and everyone else who
-- may call is rung (or, having muted the conversation, invited without ringing). A definer
-- trigger: these are other people's rows. One INSERT, a row per person who may take part.
CREATE FUNCTION messaging.ring_call() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        INSERT INTO messaging.call_participants (conversation_id, call_id, user_id, status, joined_at)
        SELECT NEW.conversation_id, NEW.id, p.user_id,
               CASE WHEN p.user_id = NEW.started_by THEN 'joined' WHEN p.is_muted THEN 'invited' ELSE 'ringing' END,
               CASE WHEN p.user_id = NEW.started_by THEN NEW.started_at END
          FROM messaging.participants p JOIN messaging.conversations c ON c.id = p.conversation_id
         WHERE p.conversation_id = NEW.conversation_id AND p.status = 'active' AND p.can_send
           AND p.role <> 'observer' AND (c.type <> 'broadcast' OR p.role IN ('owner', 'admin'));
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION messaging.ring_call() IS
    'AFTER INSERT on calls: the starter joined, the others who may call ringing (invited when they muted it).';
CREATE TRIGGER ring_call AFTER INSERT ON messaging.calls
    FOR EACH ROW EXECUTE FUNCTION messaging.ring_call();

-- When a call ends, those still in it have left and those still rung have missed it.
CREATE FUNCTION messaging.close_call() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        UPDATE messaging.call_participants
           SET status = CASE WHEN status = 'joined' THEN 'left' ELSE 'missed' END,
               left_at = CASE WHEN status = 'joined' THEN NEW.ended_at ELSE left_at END
         WHERE conversation_id = NEW.conversation_id AND call_id = NEW.id
           AND status IN ('joined', 'ringing', 'invited');
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION messaging.close_call() IS
    'AFTER UPDATE on calls, when one ends: joined participants left at its end, invited or ringing ones missed it.';
CREATE TRIGGER close_call AFTER UPDATE OF status ON messaging.calls
    FOR EACH ROW WHEN (OLD.status IN ('ringing', 'ongoing') AND NEW.status NOT IN ('ringing', 'ongoing'))
    EXECUTE FUNCTION messaging.close_call();

-- A person's own row: they join a live call if they may call, leave it once joined, decline
-- it while it rings for them, and rate it once they have joined; the times are stamped here.
-- The call's row is locked first, so that changes to one call follow one another and the
-- counts messaging.follow_call takes are exact.
CREATE FUNCTION messaging.guard_call_participant() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        was text;
        call_status text;
    BEGIN
        IF kernel.in_definer() OR auth.is_system() THEN
            RETURN NEW;
        END IF;
        IF TG_OP = 'UPDATE' THEN
            IF NEW.call_id <> OLD.call_id OR NEW.conversation_id <> OLD.conversation_id OR NEW.user_id <> OLD.user_id THEN
                RAISE EXCEPTION 'a call participant''s identity never changes' USING ERRCODE = 'RM403';
            END IF;
            was := OLD.status;
        ELSE
            NEW.joined_at := NULL;
            NEW.left_at := NULL;
            NEW.quality_rating := NULL;
            NEW.rated_at := NULL;
            NEW.created_at := now();
        END IF;
        SELECT c.status INTO call_status FROM messaging.calls c
         WHERE c.id = NEW.call_id AND c.conversation_id = NEW.conversation_id
           FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'call-not-found' USING ERRCODE = 'RM404';
        END IF;
        IF NEW.status IS DISTINCT FROM was THEN
            IF NEW.status = 'joined' THEN
                IF call_status NOT IN ('ringing', 'ongoing') THEN
                    RAISE EXCEPTION 'call-not-live' USING ERRCODE = 'RM409';
                END IF;
                IF NOT messaging.may_call(NEW.conversation_id) THEN
                    RAISE EXCEPTION 'cannot-call' USING ERRCODE = 'RM403';
                END IF;
                NEW.joined_at := coalesce(NEW.joined_at, now());
                NEW.left_at := NULL;
            ELSIF NEW.status = 'left' THEN
                IF was IS DISTINCT FROM 'joined' THEN
                    RAISE EXCEPTION 'not-in-call' USING ERRCODE = 'RM409';
                END IF;
                NEW.left_at := now();
            ELSIF NEW.status = 'declined' THEN
                IF call_status NOT IN ('ringing', 'ongoing') THEN
                    RAISE EXCEPTION 'call-not-live' USING ERRCODE = 'RM409';
                END IF;
                IF was IS NULL OR was NOT IN ('ringing', 'invited') THEN
                    RAISE EXCEPTION 'call-not-ringing' USING ERRCODE = 'RM409';
                END IF;
            ELSE
                RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
            END IF;
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.quality_rating IS DISTINCT FROM OLD.quality_rating THEN
            IF NEW.joined_at IS NULL THEN
                RAISE EXCEPTION 'not-in-call' USING ERRCODE = 'RM409';
            END IF;
            NEW.rated_at := CASE WHEN NEW.quality_rating IS NOT NULL THEN now() END;
        END IF;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION messaging.guard_call_participant() IS
    'BEFORE INSERT or UPDATE on call_participants: join (live call, may call), leave (once joined), decline '
    '(while rung), rate (once joined); stamps the times; locks the call''s row first.';
CREATE TRIGGER guard_call_participant BEFORE INSERT OR UPDATE ON messaging.call_participants
    FOR EACH ROW EXECUTE FUNCTION messaging.guard_call_participant();

-- The call follows its people: answered when a second person joins, over when the last
-- one leaves (ended if it was answered, missed if not), declined when everyone rung has
-- declined and nobody but the starter is in it. A definer trigger: any participant's
-- change may move the call, which only its starter and moderators may move by hand.
CREATE FUNCTION messaging.follow_call() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        c messaging.calls;
        joined integer;
        pending integer;
    BEGIN
        SELECT * INTO c FROM messaging.calls
         WHERE id = NEW.call_id AND conversation_id = NEW.conversation_id FOR UPDATE;
        IF NOT FOUND OR c.status NOT IN ('ringing', 'ongoing') THEN
            RETURN NULL;
        END IF;
        SELECT count(*) FILTER (WHERE p.status = 'joined'), count(*) FILTER (WHERE p.status IN ('ringing', 'invited'))
          INTO joined, pending
          FROM messaging.call_participants p
         WHERE p.conversation_id = NEW.conversation_id AND p.call_id = NEW.call_id;
        IF joined = 0 THEN
            UPDATE messaging.calls SET status = 'ended' WHERE id = c.id;
        ELSIF c.status = 'ringing' AND joined >= 2 THEN
            UPDATE messaging.calls SET status = 'ongoing' WHERE id = c.id;
        ELSIF c.status = 'ringing' AND NEW.status = 'declined' AND joined = 1 AND pending = 0 THEN
            UPDATE messaging.calls SET status = 'declined' WHERE id = c.id;
        END IF;
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION messaging.follow_call() IS
    'AFTER INSERT or UPDATE on call_participants: a second person joining answers the call, the last one '
    'leaving ends it, everyone rung declining declines it.';
CREATE TRIGGER follow_call AFTER INSERT OR UPDATE OF status ON messaging.call_participants
    FOR EACH ROW WHEN (NEW.status IN ('joined', 'left', 'declined'))
    EXECUTE FUNCTION messaging.follow_call();

-- A report is of a message its reporter can read, as they read it (their own row-level
-- security finds it), and opens as such; resolving it is the one change, stamped with who
-- and when. What was reported, by whom and why never changes.
CREATE FUNCTION messaging.guard_report() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        trusted boolean := kernel.in_definer() OR auth.is_system();
        reported record;
    BEGIN
        IF TG_OP = 'INSERT' THEN
            IF NOT trusted AND messaging.participant_role(NEW.conversation_id) IS NULL THEN
                RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';
            END IF;
            SELECT m.sender_id, m.content, m.deleted_at INTO reported FROM messaging.messages m
             WHERE m.conversation_id = NEW.conversation_id AND m.id = NEW.message_id
               AND m.created_at = messaging.id_time(NEW.message_id);
            IF NOT FOUND OR reported.deleted_at IS NOT NULL THEN
                RAISE EXCEPTION 'message-not-found' USING ERRCODE = 'RM404';
            END IF;
            NEW.message_sender_id := reported.sender_id;
            NEW.message_content := reported.content;
            NEW.status := 'open';
            NEW.resolved_by := NULL;
            NEW.resolved_at := NULL;
            NEW.resolution_note := NULL;
            NEW.created_at := now();
            RETURN NEW;
        END IF;
        IF trusted THEN
            -- System work, and the foreign keys' SET NULL when an account goes.
            RETURN NEW;
        END IF;
        IF NEW.id <> OLD.id OR NEW.conversation_id <> OLD.conversation_id OR NEW.message_id <> OLD.message_id
           OR NEW.message_content <> OLD.message_content OR NEW.reason <> OLD.reason
           OR NEW.details IS DISTINCT FROM OLD.details OR NEW.created_at <> OLD.created_at
           OR (NEW.reporter_id IS DISTINCT FROM OLD.reporter_id AND NEW.reporter_id IS NOT NULL)
           OR (NEW.message_sender_id IS DISTINCT FROM OLD.message_sender_id AND NEW.message_sender_id IS NOT NULL) THEN
            RAISE EXCEPTION 'a report''s content never changes' USING ERRCODE = 'RM403';
        END IF;
        IF NEW.status = OLD.status AND NEW.resolution_note IS NOT DISTINCT FROM OLD.resolution_note THEN
            RETURN NEW;
        END IF;
        IF OLD.status <> 'open' THEN
            RAISE EXCEPTION 'report-not-open' USING ERRCODE = 'RM409';
        END IF;
        IF NEW.status = 'open' THEN
            RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
        END IF;
        NEW.resolved_by := auth.current_user_id();
        NEW.resolved_at := now();
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION messaging.guard_report() IS
    'BEFORE INSERT or UPDATE on reports: the reported message as its reporter reads it, opened; a report '
    'changes only by being resolved once, stamped with who and when.';
CREATE TRIGGER guard_report BEFORE INSERT OR UPDATE ON messaging.reports
    FOR EACH ROW EXECUTE FUNCTION messaging.guard_report();
"""


POLICIES = """
ALTER TABLE messaging.calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.calls FORCE ROW LEVEL SECURITY;
-- Read by those who take part in the conversation.
CREATE POLICY calls_read ON messaging.calls FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR messaging.participant_role(conversation_id) IS NOT NULL);
-- Started as oneself by whoever may call (messaging.guard_call says why not, first).
CREATE POLICY calls_start ON messaging.calls FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system()
                OR (started_by = auth.current_user_id() AND messaging.may_call(conversation_id)));
-- Ended by its starter or a moderator: messaging.guard_call decides. Every participant
-- passes here so that joining can lock the call's row (FOR UPDATE needs this policy).
CREATE POLICY calls_change ON messaging.calls FOR UPDATE
    USING (kernel.in_definer() OR auth.is_system() OR messaging.participant_role(conversation_id) IS NOT NULL)
    WITH CHECK (kernel.in_definer() OR auth.is_system() OR messaging.participant_role(conversation_id) IS NOT NULL);
GRANT SELECT ON messaging.calls TO rapport_app, rapport_worker;
GRANT INSERT (id, conversation_id, type, started_by) ON messaging.calls TO rapport_app, rapport_worker;
GRANT UPDATE (status) ON messaging.calls TO rapport_app, rapport_worker;

ALTER TABLE messaging.call_participants ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.call_participants FORCE ROW LEVEL SECURITY;
CREATE POLICY call_participants_read ON messaging.call_participants FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR messaging.participant_role(conversation_id) IS NOT NULL);
-- A person joins a call they were not rung for (they joined the conversation later) as
-- themself, if they may call; messaging.ring_call writes everyone else's rows.
CREATE POLICY call_participants_join ON messaging.call_participants FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system()
                OR (user_id = auth.current_user_id() AND messaging.may_call(conversation_id)));
-- A person changes their own row while they take part (messaging.guard_call_participant
-- says which changes); messaging.close_call changes everyone's.
CREATE POLICY call_participants_own ON messaging.call_participants FOR UPDATE
    USING (kernel.in_definer() OR auth.is_system()
           OR (user_id = auth.current_user_id() AND messaging.participant_role(conversation_id) IS NOT NULL))
    WITH CHECK (kernel.in_definer() OR auth.is_system()
                OR (user_id = auth.current_user_id() AND messaging.participant_role(conversation_id) IS NOT NULL));
GRANT SELECT ON messaging.call_participants TO rapport_app, rapport_worker;
GRANT INSERT (conversation_id, call_id, user_id, status) ON messaging.call_participants TO rapport_app, rapport_worker;
GRANT UPDATE (status, quality_rating) ON messaging.call_participants TO rapport_app, rapport_worker;

ALTER TABLE messaging.reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE messaging.reports FORCE ROW LEVEL SECURITY;
-- The reporter sees their own; the conversation's moderators and above see its reports;
-- platform administrators see every report.
CREATE POLICY reports_read ON messaging.reports FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR reporter_id = auth.current_user_id()
           OR messaging.participant_role(conversation_id) IN ('owner', 'admin', 'moderator')
           OR messaging.is_platform_admin());
-- Made as oneself, about a conversation one takes part in (messaging.guard_report finds
-- the message through the reporter's own row-level security).
CREATE POLICY reports_create ON messaging.reports FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system()
                OR (reporter_id = auth.current_user_id() AND messaging.participant_role(conversation_id) IS NOT NULL));
-- Resolved by those who see all of the conversation's reports.
CREATE POLICY reports_resolve ON messaging.reports FOR UPDATE
    USING (kernel.in_definer() OR auth.is_system()
           OR messaging.participant_role(conversation_id) IN ('owner', 'admin', 'moderator')
           OR messaging.is_platform_admin())
    WITH CHECK (kernel.in_definer() OR auth.is_system()
                OR messaging.participant_role(conversation_id) IN ('owner', 'admin', 'moderator')
                OR messaging.is_platform_admin());
GRANT SELECT ON messaging.reports TO rapport_app, rapport_worker;
GRANT INSERT (id, conversation_id, message_id, reporter_id, reason, details) ON messaging.reports
    TO rapport_app, rapport_worker;
GRANT UPDATE (status, resolution_note) ON messaging.reports TO rapport_app, rapport_worker;
"""

GRANTS = """
REVOKE ALL ON FUNCTION messaging.may_call(uuid), messaging.guard_call(), messaging.ring_call(),
    messaging.close_call(), messaging.guard_call_participant(), messaging.follow_call(),
    messaging.guard_report() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION messaging.may_call(uuid) TO rapport_app, rapport_worker;
"""


# Platform administrators act on reports of conversations they take no part in, where
# row-level security shows them no message: this one change is theirs, checked here.
PLATFORM_DELETE = """
CREATE FUNCTION messaging.delete_as_platform_admin(conversation uuid, message uuid) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        deleted bigint;
    BEGIN
        IF NOT messaging.is_platform_admin() THEN
            RAISE EXCEPTION 'not-allowed' USING ERRCODE = 'RM403';
        END IF;
        UPDATE messaging.messages m SET deleted_at = now()
         WHERE m.conversation_id = conversation AND m.id = message
           AND m.created_at = messaging.id_time(message) AND m.deleted_at IS NULL
        RETURNING m.seq INTO deleted;
        RETURN deleted;
    END
    $$;
COMMENT ON FUNCTION messaging.delete_as_platform_admin(uuid, uuid) IS
    'Deletes a message for everyone, by a platform administrator acting on a report; returns its '
    'sequence, or NULL when it was not there.';
REVOKE ALL ON FUNCTION messaging.delete_as_platform_admin(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION messaging.delete_as_platform_admin(uuid, uuid) TO rapport_app;
"""


def upgrade() -> None:
    run_sql(TABLES)
    run_sql(FUNCTIONS)
    run_sql(POLICIES)
    run_sql(GRANTS)
    run_sql(PLATFORM_DELETE)


def downgrade() -> None:
    run_sql(
        """
        DROP FUNCTION messaging.delete_as_platform_admin(uuid, uuid);
        DROP INDEX messaging.ix_messages_flagged;
        DROP TABLE messaging.reports;
        DROP TABLE messaging.call_participants;
        DROP TABLE messaging.calls;
        DROP FUNCTION messaging.guard_report();
        DROP FUNCTION messaging.follow_call();
        DROP FUNCTION messaging.guard_call_participant();
        DROP FUNCTION messaging.close_call();
        DROP FUNCTION messaging.ring_call();
        DROP FUNCTION messaging.guard_call();
        DROP FUNCTION messaging.may_call(uuid);
        """
    )
