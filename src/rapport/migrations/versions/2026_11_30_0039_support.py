"""support: the support desk (seed 003): rooms, guests, agents by level, escalations, SLAs.

Why: issue 16. A customer opens a support room (a messaging conversation of type
`support`) about an issue; a guest without an account may join it through a link whose
token is kept only as its SHA-256; agents of the room's level or higher (access's
permissions `support:queue:t1` to `support:queue:manager`, a higher level including the
lower queues) join it; an escalation T1 -> T2 -> T3 -> manager either opens an
`escalated` room below the source or raises the room's level, and moves through created,
assigned, in_progress, then resolved or cancelled. Queues list what waits per level by
priority and age against an SLA per priority; supervisors read any support room's
messages without taking part (`support.observe_messages`). Who sees a room is decided
here, in row-level security, by `access.has_permission` and the conversation's
participants; every write is system work.

Revision ID: 2026_11_30_0039
Revises: 2026_11_30_0038
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0039"
down_revision = "2026_11_30_0038"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


LEVELS = "'T1', 'T2', 'T3', 'manager'"
OPEN_ESCALATION = "'created', 'assigned', 'in_progress'"

SCHEMA = f"""
CREATE SCHEMA support;
COMMENT ON SCHEMA support IS
    'The support desk (seed 003): support rooms, their guests and agents, escalations by level, SLAs.';
GRANT USAGE ON SCHEMA support TO rapport_app, rapport_worker;

CREATE FUNCTION support.level_rank(at_level text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE at_level WHEN 'T1' THEN 1 WHEN 'T2' THEN 2 WHEN 'T3' THEN 3 WHEN 'manager' THEN 4 END $$;
COMMENT ON FUNCTION support.level_rank(text) IS 'T1 1, T2 2, T3 3, manager 4: escalations only go up.';

CREATE TABLE support.sla (
    priority smallint NOT NULL,
    first_response_minutes integer NOT NULL,
    resolution_minutes integer NOT NULL,
    updated_by uuid,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_sla PRIMARY KEY (priority),
    CONSTRAINT fk_sla_updated_by_users FOREIGN KEY (updated_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_sla_priority CHECK (priority BETWEEN 1 AND 5),
    CONSTRAINT ck_sla_first_response_minutes CHECK (first_response_minutes BETWEEN 1 AND 525600),
    CONSTRAINT ck_sla_resolution_minutes CHECK (resolution_minutes BETWEEN first_response_minutes AND 525600)
);
COMMENT ON TABLE support.sla IS
    'The service levels, per priority (1 high, 5 low): minutes to a first response (an agent''s first '
    'message in a room, an escalation''s assignment) and to resolution. Read by everyone signed in, '
    'changed by access administrators.';
COMMENT ON COLUMN support.sla.updated_by IS 'Who changed it last; NULL as seeded.';
-- Serves the foreign key's ON DELETE SET NULL when an account goes.
CREATE INDEX ix_sla_updated_by ON support.sla (updated_by) WHERE updated_by IS NOT NULL;
INSERT INTO support.sla (priority, first_response_minutes, resolution_minutes) VALUES
    (1, 15, 240), (2, 60, 1440), (3, 240, 4320), (4, 1440, 10080), (5, 4320, 20160);
-- Who changed a service level, from what to what, stays in the audit.
CREATE TRIGGER audit_changes AFTER UPDATE ON support.sla
    FOR EACH ROW EXECUTE FUNCTION audit.record_change();

CREATE TABLE support.rooms (
    conversation_id uuid NOT NULL,
    customer_id uuid,
    issue_id text,
    issue_description text NOT NULL,
    level text NOT NULL DEFAULT 'T1',
    priority smallint NOT NULL DEFAULT 3,
    guests_allowed boolean NOT NULL DEFAULT true,
    status text NOT NULL DEFAULT 'open',
    escalated_from uuid,
    opened_at timestamptz NOT NULL DEFAULT now(),
    first_response_at timestamptz,
    first_responder_id uuid,
    closed_at timestamptz,
    closed_by uuid,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_rooms PRIMARY KEY (conversation_id),
    CONSTRAINT fk_rooms_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_rooms_customer_id_users FOREIGN KEY (customer_id) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT fk_rooms_escalated_from_rooms FOREIGN KEY (escalated_from)
        REFERENCES support.rooms (conversation_id) ON DELETE SET NULL,
    CONSTRAINT fk_rooms_first_responder_id_users FOREIGN KEY (first_responder_id)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT fk_rooms_closed_by_users FOREIGN KEY (closed_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_rooms_issue_id CHECK (length(issue_id) BETWEEN 1 AND 200),
    CONSTRAINT ck_rooms_issue_description CHECK (length(issue_description) BETWEEN 1 AND 4000),
    CONSTRAINT ck_rooms_level CHECK (level IN ({LEVELS})),
    CONSTRAINT ck_rooms_priority CHECK (priority BETWEEN 1 AND 5),
    CONSTRAINT ck_rooms_status CHECK (status IN ('open', 'closed')),
    CONSTRAINT ck_rooms_closed CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
    CONSTRAINT ck_rooms_not_own_source CHECK (escalated_from <> conversation_id)
);
COMMENT ON TABLE support.rooms IS
    'A support room (seed 003 chat_rooms of type support or escalated): the messaging conversation where a '
    'customer, their guests and agents talk about one issue, at a level (T1, T2, T3, manager) and a priority. '
    'Seen by its customer, whoever takes part in it, agents of its level or higher, and supervisors.';
COMMENT ON COLUMN support.rooms.customer_id IS 'Who opened it (the room''s first escalated_from''s customer for an escalated room).';
COMMENT ON COLUMN support.rooms.issue_id IS 'The customer''s or another system''s reference of the issue (seed 003 issue_id).';
COMMENT ON COLUMN support.rooms.level IS 'The agents'' level it needs: T1, T2, T3 or manager; it only goes up.';
COMMENT ON COLUMN support.rooms.priority IS '1 (high) to 5 (low): the service levels of support.sla.';
COMMENT ON COLUMN support.rooms.guests_allowed IS 'Whether guest links to it may be made and used (seed 003 guest_access_allowed).';
COMMENT ON COLUMN support.rooms.escalated_from IS 'For an escalated room, the room it was escalated from (also its conversation''s parent).';
COMMENT ON COLUMN support.rooms.first_response_at IS
    'When an agent first wrote in it (set from the outbox by rapport.modules.support._responses): what the '
    'first-response SLA measures.';
-- Serves rapport.modules.support._rooms.list_rooms (a customer's rooms, newest first) and ON DELETE SET NULL.
CREATE INDEX ix_rooms_customer_id ON support.rooms (customer_id, opened_at DESC);
-- Serves rapport.modules.support._queues.list_queue: a level's open rooms no agent has answered yet.
CREATE INDEX ix_rooms_unanswered ON support.rooms (level, priority, opened_at)
    WHERE status = 'open' AND first_response_at IS NULL;
-- Serves the foreign keys' ON DELETE SET NULL.
CREATE INDEX ix_rooms_escalated_from ON support.rooms (escalated_from) WHERE escalated_from IS NOT NULL;
CREATE INDEX ix_rooms_first_responder_id ON support.rooms (first_responder_id) WHERE first_responder_id IS NOT NULL;
CREATE INDEX ix_rooms_closed_by ON support.rooms (closed_by) WHERE closed_by IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON support.rooms
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE support.room_agents (
    conversation_id uuid NOT NULL,
    agent_id uuid NOT NULL,
    joined_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_room_agents PRIMARY KEY (conversation_id, agent_id),
    CONSTRAINT fk_room_agents_conversation_id_rooms FOREIGN KEY (conversation_id)
        REFERENCES support.rooms (conversation_id) ON DELETE CASCADE,
    CONSTRAINT fk_room_agents_agent_id_users FOREIGN KEY (agent_id) REFERENCES auth.users (id) ON DELETE CASCADE
);
COMMENT ON TABLE support.room_agents IS
    'The agents who joined a room (or were assigned an escalation in it): whose messages answer the customer.';
-- Serves the foreign key's ON DELETE CASCADE when an account goes.
CREATE INDEX ix_room_agents_agent_id ON support.room_agents (agent_id);

CREATE TABLE support.guest_links (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    created_by uuid,
    expires_at timestamptz NOT NULL,
    max_uses integer NOT NULL DEFAULT 1,
    uses integer NOT NULL DEFAULT 0,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_guest_links PRIMARY KEY (id),
    CONSTRAINT uq_guest_links_token_hash UNIQUE (token_hash),
    CONSTRAINT fk_guest_links_conversation_id_rooms FOREIGN KEY (conversation_id)
        REFERENCES support.rooms (conversation_id) ON DELETE CASCADE,
    CONSTRAINT fk_guest_links_created_by_users FOREIGN KEY (created_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_guest_links_token_hash CHECK (octet_length(token_hash) = 32),
    CONSTRAINT ck_guest_links_max_uses CHECK (max_uses BETWEEN 1 AND 100),
    CONSTRAINT ck_guest_links_uses CHECK (uses BETWEEN 0 AND max_uses),
    CONSTRAINT ck_guest_links_expiry CHECK (expires_at > created_at)
);
COMMENT ON TABLE support.guest_links IS
    'Links that let someone without an account join one support room as a guest: expiring, for a number of '
    'uses (one by default). The token is shown once; only its SHA-256 is kept.';
-- Serves rapport.modules.support._guests.list_guest_links: a room's links, newest first.
CREATE INDEX ix_guest_links_conversation_id ON support.guest_links (conversation_id, id DESC);
-- Serves the foreign key's ON DELETE SET NULL when an account goes.
CREATE INDEX ix_guest_links_created_by ON support.guest_links (created_by) WHERE created_by IS NOT NULL;

CREATE TABLE support.guests (
    user_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    link_id uuid,
    display_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_guests PRIMARY KEY (user_id),
    CONSTRAINT fk_guests_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_guests_conversation_id_rooms FOREIGN KEY (conversation_id)
        REFERENCES support.rooms (conversation_id) ON DELETE CASCADE,
    CONSTRAINT fk_guests_link_id_guest_links FOREIGN KEY (link_id)
        REFERENCES support.guest_links (id) ON DELETE SET NULL,
    CONSTRAINT ck_guests_display_name CHECK (length(display_name) BETWEEN 1 AND 80)
);
COMMENT ON TABLE support.guests IS
    'Guest accounts (auth.users.kind guest), each made by a guest link for one support room and no other.';
-- Serves the foreign key's ON DELETE CASCADE when a room goes.
CREATE INDEX ix_guests_conversation_id ON support.guests (conversation_id, created_at);
-- Serves the foreign key's ON DELETE SET NULL when a link goes.
CREATE INDEX ix_guests_link_id ON support.guests (link_id) WHERE link_id IS NOT NULL;

CREATE TABLE support.escalations (
    id uuid NOT NULL,
    source_room_id uuid NOT NULL,
    target_room_id uuid,
    mode text NOT NULL,
    reason text NOT NULL,
    from_level text NOT NULL,
    to_level text NOT NULL,
    priority smallint NOT NULL DEFAULT 3,
    status text NOT NULL DEFAULT 'created',
    created_by uuid,
    assigned_to uuid,
    resolution_notes text,
    assigned_at timestamptz,
    started_at timestamptz,
    resolved_at timestamptz,
    cancelled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_escalations PRIMARY KEY (id),
    CONSTRAINT fk_escalations_source_room_id_rooms FOREIGN KEY (source_room_id)
        REFERENCES support.rooms (conversation_id) ON DELETE CASCADE,
    CONSTRAINT fk_escalations_target_room_id_rooms FOREIGN KEY (target_room_id)
        REFERENCES support.rooms (conversation_id) ON DELETE SET NULL,
    CONSTRAINT fk_escalations_created_by_users FOREIGN KEY (created_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT fk_escalations_assigned_to_users FOREIGN KEY (assigned_to)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_escalations_mode CHECK (mode IN ('new_room', 'same_room')),
    CONSTRAINT ck_escalations_reason CHECK (length(reason) BETWEEN 1 AND 4000),
    CONSTRAINT ck_escalations_from_level CHECK (from_level IN ({LEVELS})),
    CONSTRAINT ck_escalations_to_level CHECK (to_level IN ({LEVELS})),
    CONSTRAINT ck_escalations_upward CHECK (support.level_rank(to_level) > support.level_rank(from_level)),
    CONSTRAINT ck_escalations_priority CHECK (priority BETWEEN 1 AND 5),
    CONSTRAINT ck_escalations_status CHECK (status IN ({OPEN_ESCALATION}, 'resolved', 'cancelled')),
    CONSTRAINT ck_escalations_resolution_notes CHECK (length(resolution_notes) BETWEEN 1 AND 4000),
    CONSTRAINT ck_escalations_resolved CHECK ((status = 'resolved') = (resolved_at IS NOT NULL)),
    CONSTRAINT ck_escalations_cancelled CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    CONSTRAINT ck_escalations_target CHECK (
        (mode = 'same_room' AND target_room_id IS NULL) OR mode = 'new_room')
);
COMMENT ON TABLE support.escalations IS
    'Escalations of a support room to a higher level (seed 003 escalations): a new escalated room below the '
    'source (new_room) or the source raised (same_room); created, assigned, in_progress, then resolved or '
    'cancelled. Seen by its creator, its assignee, agents of its level or higher, and supervisors.';
COMMENT ON COLUMN support.escalations.target_room_id IS 'The escalated room a new_room escalation opened.';
COMMENT ON COLUMN support.escalations.from_level IS 'The room''s level when it was escalated.';
-- Serves rapport.modules.support._queues.list_queue: a level's open escalations by priority and age.
CREATE INDEX ix_escalations_open ON support.escalations (to_level, priority, created_at)
    WHERE status IN ({OPEN_ESCALATION});
-- Serves rapport.modules.support._escalations.list_escalations (a room's, newest first) and ON DELETE CASCADE.
CREATE INDEX ix_escalations_source_room_id ON support.escalations (source_room_id, id DESC);
-- Serves the foreign keys' ON DELETE SET NULL.
CREATE INDEX ix_escalations_target_room_id ON support.escalations (target_room_id) WHERE target_room_id IS NOT NULL;
CREATE INDEX ix_escalations_created_by ON support.escalations (created_by) WHERE created_by IS NOT NULL;
CREATE INDEX ix_escalations_assigned_to ON support.escalations (assigned_to) WHERE assigned_to IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON support.escalations
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
-- Every step of an escalation, and who took it, stays in the audit.
CREATE TRIGGER audit_changes AFTER INSERT OR UPDATE OR DELETE ON support.escalations
    FOR EACH ROW EXECUTE FUNCTION audit.record_change();

CREATE TABLE support.cursor (
    name text NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_cursor PRIMARY KEY (name),
    CONSTRAINT ck_cursor_name CHECK (length(name) BETWEEN 1 AND 40)
);
COMMENT ON TABLE support.cursor IS
    'How far in the outbox the first-response watcher has read (its durable cursor): system work''s alone.';
"""

FUNCTIONS = f"""
-- Whether the acting user works the queue of a level: they hold its permission or a
-- higher level's, platform-wide or for the conversation named.
CREATE FUNCTION support.works_at(at_level text, conversation uuid DEFAULT NULL) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM unnest(ARRAY[{LEVELS}]) AS l (name)
             WHERE support.level_rank(l.name) >= support.level_rank(at_level)
               AND access.has_permission('support:queue:' || lower(l.name), conversation))
    $$;
COMMENT ON FUNCTION support.works_at(text, uuid) IS
    'Whether the acting user works the queue of this level or a higher one (access.has_permission).';

-- The policies' rules, as small functions answering for the acting user.
CREATE FUNCTION support.may_see_room(room uuid, customer uuid, room_level text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT auth.is_system() OR kernel.in_definer() OR (auth.current_user_id() IS NOT NULL AND (
               customer = auth.current_user_id()
            OR messaging.participant_role(room) IS NOT NULL
            OR support.works_at(room_level, room)
            OR access.has_permission('supervisor:chat:observe', room)))
    $$;
COMMENT ON FUNCTION support.may_see_room(uuid, uuid, text) IS
    'Whether the acting user sees a support room: its customer, someone taking part in it (a guest, an agent '
    'who joined), an agent of its level or higher, or a supervisor.';

CREATE FUNCTION support.may_see_escalation(room uuid, to_level text, creator uuid, assignee uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT auth.is_system() OR kernel.in_definer() OR (auth.current_user_id() IS NOT NULL AND (
               auth.current_user_id() IN (creator, assignee)
            OR support.works_at(to_level, room)
            OR access.has_permission('supervisor:chat:observe', room)))
    $$;
COMMENT ON FUNCTION support.may_see_escalation(uuid, text, uuid, uuid) IS
    'Whether the acting user sees an escalation: whoever made it or is assigned it, agents of its level or '
    'higher, and supervisors.';

CREATE FUNCTION support.may_see_room_id(room uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$ SELECT EXISTS (SELECT 1 FROM support.rooms r WHERE r.conversation_id = room) $$;
COMMENT ON FUNCTION support.may_see_room_id(uuid) IS
    'Whether the caller sees this support room (under its row-level security).';

-- The transitions an escalation makes, whoever writes: created -> assigned (again, to
-- another) -> in_progress -> resolved, and to cancelled from any of the open three. A
-- room's level only goes up, and a closed room stays closed.
CREATE FUNCTION support.guard_escalation_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
               (OLD.status = 'created' AND NEW.status IN ('assigned', 'cancelled'))
            OR (OLD.status = 'assigned' AND NEW.status IN ('in_progress', 'cancelled'))
            OR (OLD.status = 'in_progress' AND NEW.status IN ('resolved', 'cancelled'))) THEN
            RAISE EXCEPTION 'an escalation % cannot become %', OLD.status, NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
        -- An ended one keeps its record; only an account's or a room's going clears a name.
        -- The one change to the words: an erasure's '(erased)' (rapport.compliance).
        IF OLD.status IN ('resolved', 'cancelled') AND (
               (NEW.priority, nullif(NEW.resolution_notes, '(erased)'), NEW.assigned_at, NEW.started_at,
                NEW.resolved_at, NEW.cancelled_at)
               IS DISTINCT FROM
               (OLD.priority, CASE WHEN NEW.resolution_notes = '(erased)' THEN NULL ELSE OLD.resolution_notes END,
                OLD.assigned_at, OLD.started_at, OLD.resolved_at, OLD.cancelled_at)
            OR (NEW.assigned_to IS DISTINCT FROM OLD.assigned_to AND NEW.assigned_to IS NOT NULL)) THEN
            RAISE EXCEPTION 'a % escalation does not change', OLD.status USING ERRCODE = 'check_violation';
        END IF;
        IF (NEW.source_room_id, NEW.mode, NEW.from_level, NEW.to_level, NEW.created_at)
           IS DISTINCT FROM (OLD.source_room_id, OLD.mode, OLD.from_level, OLD.to_level, OLD.created_at)
           OR (NEW.reason IS DISTINCT FROM OLD.reason AND NEW.reason <> '(erased)')
           OR (NEW.target_room_id IS DISTINCT FROM OLD.target_room_id AND NEW.target_room_id IS NOT NULL) THEN
            RAISE EXCEPTION 'what an escalation was made with does not change' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION support.guard_escalation_update() IS
    'BEFORE UPDATE trigger of escalations: the allowed status transitions, and what it was made with kept.';
REVOKE ALL ON FUNCTION support.guard_escalation_update() FROM PUBLIC;
CREATE TRIGGER guard_escalation_update BEFORE UPDATE ON support.escalations
    FOR EACH ROW EXECUTE FUNCTION support.guard_escalation_update();

CREATE FUNCTION support.guard_room_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF support.level_rank(NEW.level) < support.level_rank(OLD.level) THEN
            RAISE EXCEPTION 'a support room''s level only goes up' USING ERRCODE = 'check_violation';
        END IF;
        IF OLD.status = 'closed' AND NEW.status <> 'closed' THEN
            RAISE EXCEPTION 'a closed support room stays closed' USING ERRCODE = 'check_violation';
        END IF;
        IF OLD.first_response_at IS NOT NULL AND NEW.first_response_at IS DISTINCT FROM OLD.first_response_at THEN
            RAISE EXCEPTION 'a first response happens once' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION support.guard_room_update() IS
    'BEFORE UPDATE trigger of rooms: the level only rises, a closed room stays closed, the first response is set once.';
REVOKE ALL ON FUNCTION support.guard_room_update() FROM PUBLIC;
CREATE TRIGGER guard_room_update BEFORE UPDATE ON support.rooms
    FOR EACH ROW EXECUTE FUNCTION support.guard_room_update();

-- Supervisors read a support room's messages without taking part in it: a definer
-- function, since the messages' own policy admits participants only. It answers nothing
-- to anyone else (no error: the service tells the caller what is wrong), and reads the
-- page newest first before `before_id` (a message of the room), one row past the page.
CREATE FUNCTION support.observe_messages(room uuid, before_id uuid, page_size integer)
    RETURNS TABLE (seq bigint, id uuid, message jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        viewer uuid := auth.current_user_id();
        anchor bigint;
    BEGIN
        IF viewer IS NULL OR page_size IS NULL OR page_size < 1
           OR NOT EXISTS (SELECT 1 FROM support.rooms r WHERE r.conversation_id = room)
           OR NOT access.has_permission('supervisor:chat:observe', room) THEN
            RETURN;
        END IF;
        IF before_id IS NOT NULL THEN
            SELECT m.seq INTO anchor FROM messaging.messages m
             WHERE m.conversation_id = room AND m.id = before_id AND m.created_at = messaging.id_time(before_id);
            IF anchor IS NULL THEN
                RETURN;
            END IF;
        END IF;
        RETURN QUERY
            SELECT m.seq, m.id, messaging.render_message(m, viewer)
              FROM messaging.messages m
             WHERE m.conversation_id = room AND (anchor IS NULL OR m.seq < anchor)
             ORDER BY m.seq DESC
             LIMIT least(page_size, 200) + 1;
    END
    $$;
COMMENT ON FUNCTION support.observe_messages(uuid, uuid, integer) IS
    'A page of a support room''s messages, newest first, for a supervisor (supervisor:chat:observe) who takes '
    'no part in it; nothing for anyone else.';
REVOKE ALL ON FUNCTION support.observe_messages(uuid, uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION support.observe_messages(uuid, uuid, integer) TO rapport_app;
"""

POLICIES = """
ALTER TABLE support.sla ENABLE ROW LEVEL SECURITY;
ALTER TABLE support.sla FORCE ROW LEVEL SECURITY;
CREATE POLICY sla_read ON support.sla FOR SELECT
    USING (auth.current_user_id() IS NOT NULL OR auth.is_system() OR kernel.in_definer());
CREATE POLICY sla_change ON support.sla FOR UPDATE
    USING (auth.is_system() OR access.has_permission('access:admin:manage'))
    WITH CHECK (auth.is_system() OR (access.has_permission('access:admin:manage')
                                     AND updated_by = auth.current_user_id()));
GRANT SELECT ON support.sla TO rapport_app, rapport_worker;
GRANT UPDATE (first_response_minutes, resolution_minutes, updated_by, updated_at) ON support.sla
    TO rapport_app, rapport_worker;

-- Every write below is system work: the service checks who may, in the caller's own
-- transaction, then writes in a system one.
ALTER TABLE support.rooms ENABLE ROW LEVEL SECURITY;
ALTER TABLE support.rooms FORCE ROW LEVEL SECURITY;
CREATE POLICY rooms_read ON support.rooms FOR SELECT
    USING (support.may_see_room(conversation_id, customer_id, level));
CREATE POLICY rooms_system ON support.rooms FOR ALL TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON support.rooms TO rapport_app;
GRANT SELECT, INSERT, UPDATE ON support.rooms TO rapport_worker;

ALTER TABLE support.room_agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE support.room_agents FORCE ROW LEVEL SECURITY;
CREATE POLICY room_agents_read ON support.room_agents FOR SELECT
    USING (agent_id = auth.current_user_id() OR auth.is_system() OR support.may_see_room_id(conversation_id));
CREATE POLICY room_agents_system ON support.room_agents FOR ALL TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON support.room_agents TO rapport_app;
GRANT SELECT, INSERT, DELETE ON support.room_agents TO rapport_worker;

-- A link is seen by whoever made it; its token only ever by them, once.
ALTER TABLE support.guest_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE support.guest_links FORCE ROW LEVEL SECURITY;
CREATE POLICY guest_links_read ON support.guest_links FOR SELECT
    USING (created_by = auth.current_user_id() OR auth.is_system());
CREATE POLICY guest_links_system ON support.guest_links FOR ALL TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON support.guest_links TO rapport_app;
GRANT SELECT, INSERT, UPDATE ON support.guest_links TO rapport_worker;

ALTER TABLE support.guests ENABLE ROW LEVEL SECURITY;
ALTER TABLE support.guests FORCE ROW LEVEL SECURITY;
CREATE POLICY guests_read ON support.guests FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system() OR support.may_see_room_id(conversation_id));
CREATE POLICY guests_system ON support.guests FOR ALL TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON support.guests TO rapport_app;
GRANT SELECT, INSERT ON support.guests TO rapport_worker;

ALTER TABLE support.escalations ENABLE ROW LEVEL SECURITY;
ALTER TABLE support.escalations FORCE ROW LEVEL SECURITY;
CREATE POLICY escalations_read ON support.escalations FOR SELECT
    USING (support.may_see_escalation(coalesce(target_room_id, source_room_id), to_level, created_by, assigned_to));
CREATE POLICY escalations_system ON support.escalations FOR ALL TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON support.escalations TO rapport_app;
GRANT SELECT, INSERT, UPDATE ON support.escalations TO rapport_worker;

ALTER TABLE support.cursor ENABLE ROW LEVEL SECURITY;
ALTER TABLE support.cursor FORCE ROW LEVEL SECURITY;
CREATE POLICY cursor_system ON support.cursor
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT, UPDATE ON support.cursor TO rapport_worker;
"""


def upgrade() -> None:
    run_sql(SCHEMA)
    run_sql(FUNCTIONS)
    run_sql(POLICIES)


def downgrade() -> None:
    run_sql("DROP SCHEMA support CASCADE;")
