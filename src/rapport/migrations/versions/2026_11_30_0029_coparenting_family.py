"""Co-parenting: family. The details kept about a child or a co-parent (contacts'
extended fields of seed 000), the tasks two parents share, and the topic organiser of a
shared room (seed 000's AI-organised threads).

Why: a child's health and a separation's details are their keeper's alone, with every
read and write on record; tasks and topics belong to the room both parents take part in.

Revision ID: 2026_11_30_0029
Revises: 2026_11_30_0028
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0029"
down_revision = "2026_11_30_0028"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


FUNCTIONS = """
-- Whether a contact is in the acting user's list (contacts' own policy decides: a list is
-- its owner's alone). Invoker rights: it sees what the caller sees, nothing more.
CREATE FUNCTION coparenting.owns_contact(contact uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (SELECT 1 FROM social.contacts c
                        WHERE c.id = contact AND c.owner_id = auth.current_user_id())
    $$;
COMMENT ON FUNCTION coparenting.owns_contact(uuid) IS 'Whether the contact is in the acting user''s list.';

-- Whether the acting user takes part in a conversation (reads what belongs to the room).
CREATE FUNCTION coparenting.in_room(conversation uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT messaging.participant_role(conversation) IS NOT NULL $$;
COMMENT ON FUNCTION coparenting.in_room(uuid) IS
    'Whether the acting user takes part in the conversation (active or muted).';

-- Whether the acting user may change what belongs to a room: taking part, not as an observer.
CREATE FUNCTION coparenting.acts_in_room(conversation uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT coalesce(messaging.participant_role(conversation) <> 'observer', false) $$;
COMMENT ON FUNCTION coparenting.acts_in_room(uuid) IS
    'Whether the acting user takes part in the conversation other than as an observer.';

REVOKE ALL ON FUNCTION coparenting.owns_contact(uuid), coparenting.in_room(uuid), coparenting.acts_in_room(uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION coparenting.owns_contact(uuid), coparenting.in_room(uuid),
    coparenting.acts_in_room(uuid) TO rapport_app, rapport_worker;
"""

DETAILS = """
CREATE TABLE coparenting.child_details (
    contact_id uuid NOT NULL,
    user_id uuid NOT NULL,
    birth_date date,
    school text,
    grade text,
    health_conditions text,
    allergies text,
    medications text,
    healthcare_providers text,
    activities jsonb NOT NULL DEFAULT '[]',
    appointments jsonb NOT NULL DEFAULT '[]',
    notes text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_child_details PRIMARY KEY (contact_id),
    CONSTRAINT fk_child_details_contact_id_contacts FOREIGN KEY (contact_id)
        REFERENCES social.contacts (id) ON DELETE CASCADE,
    CONSTRAINT fk_child_details_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_child_details_lengths CHECK (
        length(school) <= 200 AND length(grade) <= 40 AND length(health_conditions) <= 2000
        AND length(allergies) <= 1000 AND length(medications) <= 2000 AND length(healthcare_providers) <= 1000
        AND length(notes) <= 2000),
    CONSTRAINT ck_child_details_birth_date CHECK (birth_date >= DATE '1900-01-01'),
    CONSTRAINT ck_child_details_activities CHECK (
        jsonb_typeof(activities) = 'array' AND jsonb_array_length(activities) <= 50),
    CONSTRAINT ck_child_details_appointments CHECK (
        jsonb_typeof(appointments) = 'array' AND jsonb_array_length(appointments) <= 100)
);
COMMENT ON TABLE coparenting.child_details IS
    'SENSITIVE details of a child in someone''s contacts (seed 000 contacts, migration 011: health, '
    'activities, appointments). Only the contact''s owner reads or writes them; every read and write '
    'is recorded in audit.sensitive_data_access.';
COMMENT ON COLUMN coparenting.child_details.user_id IS 'The owner of the contact (whose record it is).';
COMMENT ON COLUMN coparenting.child_details.activities IS 'A list of {name, schedule, location}.';
COMMENT ON COLUMN coparenting.child_details.appointments IS 'A list of {title, starts_at, location, notes}.';
-- Serves the foreign key (an account's details go with it) and the owner's policy.
CREATE INDEX ix_child_details_user_id ON coparenting.child_details (user_id);

CREATE TABLE coparenting.coparent_details (
    contact_id uuid NOT NULL,
    user_id uuid NOT NULL,
    relationship_start date,
    separation_date date,
    divorce_date date,
    lived_together boolean,
    custody_arrangement text,
    custody_schedule text,
    communication_preferences text,
    legal_notes text,
    relationship_notes text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_coparent_details PRIMARY KEY (contact_id),
    CONSTRAINT fk_coparent_details_contact_id_contacts FOREIGN KEY (contact_id)
        REFERENCES social.contacts (id) ON DELETE CASCADE,
    CONSTRAINT fk_coparent_details_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_coparent_details_lengths CHECK (
        length(custody_schedule) <= 1000 AND length(communication_preferences) <= 1000
        AND length(legal_notes) <= 2000 AND length(relationship_notes) <= 2000),
    CONSTRAINT ck_coparent_details_dates CHECK (
        relationship_start >= DATE '1900-01-01' AND separation_date >= relationship_start
        AND divorce_date >= relationship_start),
    CONSTRAINT ck_coparent_details_custody_arrangement CHECK (custody_arrangement IN (
        'joint', 'sole_mine', 'sole_theirs', 'split', 'bird_nesting', 'undecided', 'other'))
);
COMMENT ON TABLE coparenting.coparent_details IS
    'SENSITIVE details of a co-parent or partner in someone''s contacts (seed 000 contacts, migration 011: '
    'separation details, partner relationship info). Only the contact''s owner reads or writes them; '
    'every read and write is recorded in audit.sensitive_data_access.';
COMMENT ON COLUMN coparenting.coparent_details.user_id IS 'The owner of the contact (whose record it is).';
-- Serves the foreign key (an account's details go with it) and the owner's policy.
CREATE INDEX ix_coparent_details_user_id ON coparenting.coparent_details (user_id);
"""

TASKS = """
CREATE TABLE coparenting.tasks (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    conversation_id uuid,
    title text NOT NULL,
    description text,
    status text NOT NULL DEFAULT 'open',
    priority text NOT NULL DEFAULT 'medium',
    type text NOT NULL DEFAULT 'general',
    due_date timestamptz,
    completed_at timestamptz,
    assignee_id uuid,
    reminded_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_tasks PRIMARY KEY (id),
    CONSTRAINT fk_tasks_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_tasks_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_tasks_assignee_id_users FOREIGN KEY (assignee_id) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_tasks_title CHECK (length(title) BETWEEN 1 AND 200),
    CONSTRAINT ck_tasks_description CHECK (length(description) <= 4000),
    CONSTRAINT ck_tasks_status CHECK (status IN ('open', 'in_progress', 'completed', 'canceled')),
    CONSTRAINT ck_tasks_priority CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    CONSTRAINT ck_tasks_type CHECK (type ~ '^[a-z][a-z0-9_]{0,39}$'),
    CONSTRAINT ck_tasks_completed_at CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);
COMMENT ON TABLE coparenting.tasks IS
    'Tasks (seed 000 tasks): their creator''s, and, when they belong to a room (conversation_id, the '
    'parents'' shared room), read and changed by everyone taking part in it. They go with their creator''s '
    'account.';
COMMENT ON COLUMN coparenting.tasks.user_id IS 'Who made the task.';
COMMENT ON COLUMN coparenting.tasks.conversation_id IS 'The room whose participants share the task; NULL: its creator''s own.';
COMMENT ON COLUMN coparenting.tasks.assignee_id IS 'Who does it: its creator, or someone taking part in its room.';
COMMENT ON COLUMN coparenting.tasks.reminded_at IS 'When the reminder of the current due date went out.';
-- Serves rapport.modules.coparenting._tasks.list_tasks (one's own tasks, newest first) and the foreign key.
CREATE INDEX ix_tasks_user_id ON coparenting.tasks (user_id, status, id DESC);
-- Serves rapport.modules.coparenting._tasks.list_tasks (a room's tasks, newest first) and the foreign key.
CREATE INDEX ix_tasks_conversation_id ON coparenting.tasks (conversation_id, status, id DESC)
    WHERE conversation_id IS NOT NULL;
-- Serves rapport.modules.coparenting._tasks.list_tasks (tasks given to someone) and the foreign key.
CREATE INDEX ix_tasks_assignee_id ON coparenting.tasks (assignee_id, id DESC) WHERE assignee_id IS NOT NULL;

CREATE TABLE coparenting.task_people (
    task_id uuid NOT NULL,
    contact_id uuid NOT NULL,
    user_id uuid NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_task_people PRIMARY KEY (task_id, contact_id),
    CONSTRAINT fk_task_people_task_id_tasks FOREIGN KEY (task_id) REFERENCES coparenting.tasks (id) ON DELETE CASCADE,
    CONSTRAINT fk_task_people_contact_id_contacts FOREIGN KEY (contact_id)
        REFERENCES social.contacts (id) ON DELETE CASCADE,
    CONSTRAINT fk_task_people_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_task_people_name CHECK (length(name) BETWEEN 1 AND 201)
);
COMMENT ON TABLE coparenting.task_people IS
    'The people a task is about (seed 000 tasks.related_people): contacts of whoever added them, shown '
    'to everyone who sees the task by the name they had when added (the contact itself stays private).';
COMMENT ON COLUMN coparenting.task_people.user_id IS 'Who added the person: the owner of the contact.';
-- Serves the foreign key (a removed contact leaves the tasks).
CREATE INDEX ix_task_people_contact_id ON coparenting.task_people (contact_id);
-- Serves the foreign key (an account's additions go with it).
CREATE INDEX ix_task_people_user_id ON coparenting.task_people (user_id);

CREATE FUNCTION coparenting.may_see_task(task uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT EXISTS (SELECT 1 FROM coparenting.tasks t WHERE t.id = task) $$;
COMMENT ON FUNCTION coparenting.may_see_task(uuid) IS
    'Whether the acting user sees the task (the tasks'' own policy decides).';
REVOKE ALL ON FUNCTION coparenting.may_see_task(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION coparenting.may_see_task(uuid) TO rapport_app, rapport_worker;
"""

TOPICS = """
CREATE TABLE coparenting.topic_rooms (
    conversation_id uuid NOT NULL,
    enabled_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_topic_rooms PRIMARY KEY (conversation_id),
    CONSTRAINT fk_topic_rooms_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_topic_rooms_enabled_by_users FOREIGN KEY (enabled_by) REFERENCES auth.users (id) ON DELETE SET NULL
);
COMMENT ON TABLE coparenting.topic_rooms IS
    'The rooms whose new messages the topic organiser reads (a shared room once paired, or one its '
    'participants asked for).';
-- Serves the foreign key.
CREATE INDEX ix_topic_rooms_enabled_by ON coparenting.topic_rooms (enabled_by) WHERE enabled_by IS NOT NULL;

CREATE TABLE coparenting.topic_suggestions (
    id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    message_id uuid NOT NULL,
    sender_id uuid NOT NULL,
    kind text NOT NULL,
    thread_id uuid,
    title text,
    category text,
    terms text[] NOT NULL DEFAULT '{}',
    score real NOT NULL,
    state text NOT NULL,
    decided_by uuid,
    decided_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_topic_suggestions PRIMARY KEY (id),
    CONSTRAINT fk_topic_suggestions_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_topic_suggestions_sender_id_users FOREIGN KEY (sender_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_topic_suggestions_thread_id_threads FOREIGN KEY (thread_id)
        REFERENCES messaging.threads (id) ON DELETE CASCADE,
    CONSTRAINT fk_topic_suggestions_decided_by_users FOREIGN KEY (decided_by)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_topic_suggestions_kind CHECK (kind IN ('place', 'new')),
    CONSTRAINT ck_topic_suggestions_state CHECK (state IN ('placed', 'pending', 'accepted', 'dismissed')),
    CONSTRAINT ck_topic_suggestions_shape CHECK (
        (kind = 'place' AND thread_id IS NOT NULL)
        OR (kind = 'new' AND title IS NOT NULL AND (state = 'accepted') = (thread_id IS NOT NULL))),
    CONSTRAINT ck_topic_suggestions_title CHECK (length(title) BETWEEN 1 AND 200 AND length(category) BETWEEN 1 AND 100),
    CONSTRAINT ck_topic_suggestions_terms CHECK (cardinality(terms) <= 20),
    CONSTRAINT ck_topic_suggestions_decided CHECK ((decided_at IS NULL) = (state NOT IN ('accepted', 'dismissed')))
);
COMMENT ON TABLE coparenting.topic_suggestions IS
    'Where the topic organiser put a new message of an organised room (seed 000''s AI-organised threads): '
    'in the topic thread it matches (place), or under a new topic the participants may accept (new). '
    'Seen by those who see the message; made by the organiser alone; goes with the sender''s account.';
COMMENT ON COLUMN coparenting.topic_suggestions.terms IS 'The topic words the message and the thread share.';
COMMENT ON COLUMN coparenting.topic_suggestions.score IS 'How well the message matched, 0 to 1.';
-- One suggestion per message (a batch read again makes none twice); serves
-- rapport.modules.coparenting._topics.list_suggestions: a room's newest first.
CREATE UNIQUE INDEX ux_topic_suggestions_message ON coparenting.topic_suggestions (conversation_id, message_id);
-- Serves the foreign key (an account's messages take their suggestions with them).
CREATE INDEX ix_topic_suggestions_sender_id ON coparenting.topic_suggestions (sender_id);
-- Serves the foreign key.
CREATE INDEX ix_topic_suggestions_thread_id ON coparenting.topic_suggestions (thread_id) WHERE thread_id IS NOT NULL;
-- Serves the foreign key.
CREATE INDEX ix_topic_suggestions_decided_by ON coparenting.topic_suggestions (decided_by) WHERE decided_by IS NOT NULL;

CREATE TABLE coparenting.topic_cursor (
    name text NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_topic_cursor PRIMARY KEY (name),
    CONSTRAINT ck_topic_cursor_name CHECK (length(name) BETWEEN 1 AND 40)
);
COMMENT ON TABLE coparenting.topic_cursor IS
    'How far in the outbox the topic organiser has read (its durable cursor): system work''s alone.';
"""

TRIGGERS = """
CREATE TRIGGER tr_child_details_updated_at BEFORE UPDATE ON coparenting.child_details
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
CREATE TRIGGER tr_coparent_details_updated_at BEFORE UPDATE ON coparenting.coparent_details
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
CREATE TRIGGER tr_tasks_updated_at BEFORE UPDATE ON coparenting.tasks
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
CREATE TRIGGER tr_topic_suggestions_updated_at BEFORE UPDATE ON coparenting.topic_suggestions
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
-- Every write of the sensitive details, whatever path it takes: which fields changed.
CREATE TRIGGER tr_child_details_record_write AFTER INSERT OR UPDATE OR DELETE ON coparenting.child_details
    FOR EACH ROW EXECUTE FUNCTION audit.record_sensitive_write();
CREATE TRIGGER tr_coparent_details_record_write AFTER INSERT OR UPDATE OR DELETE ON coparenting.coparent_details
    FOR EACH ROW EXECUTE FUNCTION audit.record_sensitive_write();
"""

POLICIES = """
-- The details of a contact are its owner's alone, and only about a contact in their list.
ALTER TABLE coparenting.child_details ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.child_details FORCE ROW LEVEL SECURITY;
CREATE POLICY child_details_owner ON coparenting.child_details
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK ((user_id = auth.current_user_id() AND coparenting.owns_contact(contact_id)) OR auth.is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON coparenting.child_details TO rapport_app, rapport_worker;

ALTER TABLE coparenting.coparent_details ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.coparent_details FORCE ROW LEVEL SECURITY;
CREATE POLICY coparent_details_owner ON coparenting.coparent_details
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK ((user_id = auth.current_user_id() AND coparenting.owns_contact(contact_id)) OR auth.is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON coparenting.coparent_details TO rapport_app, rapport_worker;

-- A task is its creator's, and everyone's who takes part in its room; only those who act
-- in the room (not observers) change it. Who made it and which room it is in never change.
ALTER TABLE coparenting.tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tasks_read ON coparenting.tasks FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system()
           OR (conversation_id IS NOT NULL AND coparenting.in_room(conversation_id)));
CREATE POLICY tasks_create ON coparenting.tasks FOR INSERT
    WITH CHECK ((user_id = auth.current_user_id()
                 AND (conversation_id IS NULL OR coparenting.acts_in_room(conversation_id)))
                OR auth.is_system());
CREATE POLICY tasks_change ON coparenting.tasks FOR UPDATE
    USING (user_id = auth.current_user_id() OR auth.is_system()
           OR (conversation_id IS NOT NULL AND coparenting.acts_in_room(conversation_id)))
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system()
                OR (conversation_id IS NOT NULL AND coparenting.acts_in_room(conversation_id)));
CREATE POLICY tasks_delete ON coparenting.tasks FOR DELETE
    USING (user_id = auth.current_user_id() OR auth.is_system()
           OR (conversation_id IS NOT NULL AND coparenting.acts_in_room(conversation_id)));
GRANT SELECT, INSERT, DELETE ON coparenting.tasks TO rapport_app, rapport_worker;
GRANT UPDATE (title, description, status, priority, type, due_date, completed_at, assignee_id, reminded_at)
    ON coparenting.tasks TO rapport_app, rapport_worker;

-- Seen with the task; added and removed by whoever sees the task, naming a contact of their own.
ALTER TABLE coparenting.task_people ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.task_people FORCE ROW LEVEL SECURITY;
CREATE POLICY task_people_read ON coparenting.task_people FOR SELECT
    USING (auth.is_system() OR coparenting.may_see_task(task_id));
CREATE POLICY task_people_add ON coparenting.task_people FOR INSERT
    WITH CHECK ((user_id = auth.current_user_id() AND coparenting.owns_contact(contact_id)
                 AND coparenting.may_see_task(task_id)) OR auth.is_system());
CREATE POLICY task_people_remove ON coparenting.task_people FOR DELETE
    USING (auth.is_system() OR coparenting.may_see_task(task_id));
GRANT SELECT, INSERT, DELETE ON coparenting.task_people TO rapport_app, rapport_worker;

-- The participants see whether their room is organised, and switch it on or off.
ALTER TABLE coparenting.topic_rooms ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.topic_rooms FORCE ROW LEVEL SECURITY;
CREATE POLICY topic_rooms_read ON coparenting.topic_rooms FOR SELECT
    USING (auth.is_system() OR coparenting.in_room(conversation_id));
CREATE POLICY topic_rooms_enable ON coparenting.topic_rooms FOR INSERT
    WITH CHECK (auth.is_system()
                OR (enabled_by = auth.current_user_id() AND coparenting.acts_in_room(conversation_id)));
CREATE POLICY topic_rooms_disable ON coparenting.topic_rooms FOR DELETE
    USING (auth.is_system() OR coparenting.acts_in_room(conversation_id));
GRANT SELECT, INSERT, DELETE ON coparenting.topic_rooms TO rapport_app, rapport_worker;

-- Seen by whoever sees the message it is about (a later joiner's window of the history
-- included); made by the organiser (system work) alone; decided by those who act in the room.
ALTER TABLE coparenting.topic_suggestions ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.topic_suggestions FORCE ROW LEVEL SECURITY;
CREATE POLICY topic_suggestions_read ON coparenting.topic_suggestions FOR SELECT
    USING (auth.is_system()
           OR (coparenting.in_room(conversation_id) AND messaging.seq_of(conversation_id, message_id) IS NOT NULL));
CREATE POLICY topic_suggestions_organiser ON coparenting.topic_suggestions FOR INSERT
    WITH CHECK (auth.is_system());
CREATE POLICY topic_suggestions_decide ON coparenting.topic_suggestions FOR UPDATE
    USING (auth.is_system()
           OR (coparenting.acts_in_room(conversation_id) AND messaging.seq_of(conversation_id, message_id) IS NOT NULL))
    WITH CHECK (auth.is_system() OR (coparenting.acts_in_room(conversation_id) AND decided_by = auth.current_user_id()));
GRANT SELECT ON coparenting.topic_suggestions TO rapport_app;
GRANT UPDATE (thread_id, state, decided_by, decided_at) ON coparenting.topic_suggestions TO rapport_app;
GRANT SELECT, INSERT, UPDATE ON coparenting.topic_suggestions TO rapport_worker;

ALTER TABLE coparenting.topic_cursor ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.topic_cursor FORCE ROW LEVEL SECURITY;
CREATE POLICY topic_cursor_system ON coparenting.topic_cursor
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT, UPDATE ON coparenting.topic_cursor TO rapport_worker;
"""


def upgrade() -> None:
    run_sql(FUNCTIONS)
    run_sql(DETAILS)
    run_sql(TASKS)
    run_sql(TOPICS)
    run_sql(TRIGGERS)
    run_sql(POLICIES)


def downgrade() -> None:
    run_sql(
        """
        DROP TABLE coparenting.topic_cursor;
        DROP TABLE coparenting.topic_suggestions;
        DROP TABLE coparenting.topic_rooms;
        DROP TABLE coparenting.task_people;
        DROP FUNCTION coparenting.may_see_task(uuid);
        DROP TABLE coparenting.tasks;
        DROP TABLE coparenting.coparent_details;
        DROP TABLE coparenting.child_details;
        DROP FUNCTION coparenting.acts_in_room(uuid);
        DROP FUNCTION coparenting.in_room(uuid);
        DROP FUNCTION coparenting.owns_contact(uuid);
        """
    )
