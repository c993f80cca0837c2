"""community.

Community (seed 001): the tag vocabulary and a person's tags, stories with their
visibility and tags, habits with their check-ins, one garden per person and the profile
extra of journaling frequency.

Why: who reads a story (its author, the author's contacts, everyone) is the database's
decision, so that the feed and every other query can only return what the reader may see;
a tag is seen only where something the reader may see carries it.

Revision ID: 2026_11_30_0030
Revises: 2026_11_30_0029
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0030"
down_revision = "2026_11_30_0029"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


SCHEMA = """
CREATE SCHEMA community;
COMMENT ON SCHEMA community IS 'Community (seed 001): tags, stories, habits, gardens.';
GRANT USAGE ON SCHEMA community TO rapport_app, rapport_worker;
"""

TABLES = """
CREATE TABLE community.tags (
    name text NOT NULL,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_tags PRIMARY KEY (name),
    CONSTRAINT fk_tags_created_by_users FOREIGN KEY (created_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_tags_name CHECK (
        length(name) BETWEEN 1 AND 64 AND name = lower(name) AND name = btrim(name) AND name !~ '[[:cntrl:],#]')
);
COMMENT ON TABLE community.tags IS
    'The shared tag vocabulary (seed 001 tags): a tag is its name, in lower case, so unique regardless of case. '
    'A reader sees a tag only where something they may see carries it (a story, their own tags), or when they '
    'made it; a tag nothing carries any more is removed.';
COMMENT ON COLUMN community.tags.created_by IS 'Who first used the tag (it stays when they go, if others use it).';
-- Serves the foreign key.
CREATE INDEX ix_tags_created_by ON community.tags (created_by) WHERE created_by IS NOT NULL;

CREATE TABLE community.user_tags (
    user_id uuid NOT NULL,
    tag text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_user_tags PRIMARY KEY (user_id, tag),
    CONSTRAINT fk_user_tags_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_user_tags_tag_tags FOREIGN KEY (tag) REFERENCES community.tags (name)
);
COMMENT ON TABLE community.user_tags IS 'A person''s tags (seed 001 user_tags): their interests, theirs alone to see.';
-- Serves the foreign key and community.tag_in_sight.
CREATE INDEX ix_user_tags_tag ON community.user_tags (tag);

CREATE TABLE community.stories (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    title text NOT NULL,
    content text NOT NULL,
    visibility text NOT NULL DEFAULT 'private',
    tags_cached text[] NOT NULL DEFAULT '{}',
    search tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, title || ' ' || content)) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_stories PRIMARY KEY (id),
    CONSTRAINT fk_stories_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_stories_title CHECK (length(title) BETWEEN 1 AND 140),
    CONSTRAINT ck_stories_content CHECK (length(content) BETWEEN 1 AND 20000),
    CONSTRAINT ck_stories_visibility CHECK (visibility IN ('private', 'public', 'friends'))
);
COMMENT ON TABLE community.stories IS
    'Stories (seed 001): Markdown content seen by its author alone (private), by the author''s contacts '
    '(friends) or by everyone signed in (public); never by someone either of them blocks.';
COMMENT ON COLUMN community.stories.tags_cached IS
    'The story''s tags (community.story_tags), sorted: kept by trigger, whatever is written here.';
COMMENT ON COLUMN community.stories.search IS 'The words of title and content, for the feed''s text search.';
-- Serves rapport.modules.community._stories.list_feed (one author's stories, newest first) and the foreign key.
CREATE INDEX ix_stories_user_id ON community.stories (user_id, id DESC);
-- Serves rapport.modules.community._stories.list_feed: the public stories, newest first.
CREATE INDEX ix_stories_public ON community.stories (id DESC) WHERE visibility = 'public';
-- Serves rapport.modules.community._stories.list_feed (the `tag` filter).
CREATE INDEX ix_stories_tags_cached ON community.stories USING gin (tags_cached);
-- Serves rapport.modules.community._stories.list_feed (the `q` text search).
CREATE INDEX ix_stories_search ON community.stories USING gin (search);

CREATE TABLE community.story_tags (
    story_id uuid NOT NULL,
    tag text NOT NULL,
    CONSTRAINT pk_story_tags PRIMARY KEY (story_id, tag),
    CONSTRAINT fk_story_tags_story_id_stories FOREIGN KEY (story_id)
        REFERENCES community.stories (id) ON DELETE CASCADE,
    CONSTRAINT fk_story_tags_tag_tags FOREIGN KEY (tag) REFERENCES community.tags (name)
);
COMMENT ON TABLE community.story_tags IS 'The tags of a story (seed 001 stories n - m tags), seen with the story.';
-- Serves the foreign key and community.tag_in_sight.
CREATE INDEX ix_story_tags_tag ON community.story_tags (tag);

CREATE TABLE community.habits (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    name text NOT NULL,
    frequency text NOT NULL DEFAULT 'daily',
    custom_days smallint,
    meta jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_habits PRIMARY KEY (id),
    CONSTRAINT fk_habits_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_habits_name CHECK (length(name) BETWEEN 1 AND 80),
    CONSTRAINT ck_habits_frequency CHECK (frequency IN ('daily', 'weekly', 'monthly', 'custom')),
    CONSTRAINT ck_habits_custom_days CHECK (
        (frequency = 'custom') = (custom_days IS NOT NULL) AND custom_days BETWEEN 1 AND 366),
    CONSTRAINT ck_habits_meta CHECK (jsonb_typeof(meta) = 'object' AND length(meta::text) <= 16000)
);
COMMENT ON TABLE community.habits IS 'Habits (seed 001): their owner''s alone.';
COMMENT ON COLUMN community.habits.custom_days IS
    'For a custom habit: at most this many days between two check-ins keep its streak going.';
COMMENT ON COLUMN community.habits.meta IS 'What the app keeps with the habit (such as {"minutes": 10}).';
-- One name per person, regardless of case; serves rapport.modules.community._habits.list_habits and the foreign key.
CREATE UNIQUE INDEX ux_habits_name ON community.habits (user_id, lower(name));

CREATE TABLE community.habit_checkins (
    habit_id uuid NOT NULL,
    day date NOT NULL,
    user_id uuid NOT NULL,
    note text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_habit_checkins PRIMARY KEY (habit_id, day),
    CONSTRAINT fk_habit_checkins_habit_id_habits FOREIGN KEY (habit_id)
        REFERENCES community.habits (id) ON DELETE CASCADE,
    CONSTRAINT fk_habit_checkins_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_habit_checkins_day CHECK (day >= DATE '2000-01-01'),
    CONSTRAINT ck_habit_checkins_note CHECK (length(note) BETWEEN 1 AND 500)
);
COMMENT ON TABLE community.habit_checkins IS
    'The days a habit was done (one check-in a day): its streaks are counted from them (community.habit_streaks).';
-- Serves the foreign key.
CREATE INDEX ix_habit_checkins_user_id ON community.habit_checkins (user_id);

CREATE TABLE community.gardens (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    name text NOT NULL,
    theme text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_gardens PRIMARY KEY (id),
    CONSTRAINT fk_gardens_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT uq_gardens_user_id UNIQUE (user_id),
    CONSTRAINT ck_gardens_name CHECK (length(name) BETWEEN 1 AND 80),
    CONSTRAINT ck_gardens_theme CHECK (length(theme) BETWEEN 1 AND 40)
);
COMMENT ON TABLE community.gardens IS
    'One garden per person (seed 001 gardens): its name and theme only; how it has grown is derived from the '
    'person''s habits, check-ins and stories whenever it is read, never stored.';

CREATE TABLE community.profile_extras (
    user_id uuid NOT NULL,
    journaling_frequency smallint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_profile_extras PRIMARY KEY (user_id),
    CONSTRAINT fk_profile_extras_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_profile_extras_journaling_frequency CHECK (journaling_frequency BETWEEN 0 AND 7)
);
COMMENT ON TABLE community.profile_extras IS
    'What seed 001''s user_profiles adds to social''s profile: how many days a week the person journals (0-7).';
"""

FUNCTIONS = """
-- Who may read a story: its author; then, signed in and with no block between the two,
-- everyone (public) or the author's contacts (friends). Invoker rights: social's functions
-- answer only about the caller's own pairs.
CREATE FUNCTION community.story_visible(author uuid, visibility text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT auth.is_system()
            OR author = auth.current_user_id()
            OR (auth.current_user_id() IS NOT NULL
                AND visibility IN ('public', 'friends')
                AND NOT social.is_blocked(author, auth.current_user_id())
                AND (visibility = 'public' OR social.are_contacts(author, auth.current_user_id())))
    $$;
COMMENT ON FUNCTION community.story_visible(uuid, text) IS
    'Whether the acting user may read a story of this author with this visibility.';

-- Whether the acting user sees the story (stories'' own policy decides).
CREATE FUNCTION community.may_see_story(story uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT EXISTS (SELECT 1 FROM community.stories s WHERE s.id = story) $$;
COMMENT ON FUNCTION community.may_see_story(uuid) IS 'Whether the acting user sees the story.';

-- Whether the story is the acting user's own.
CREATE FUNCTION community.writes_story(story uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (SELECT 1 FROM community.stories s
                        WHERE s.id = story AND s.user_id = auth.current_user_id())
    $$;
COMMENT ON FUNCTION community.writes_story(uuid) IS 'Whether the story is the acting user''s.';

-- Whether something the acting user sees carries the tag (the policies of story_tags and
-- user_tags decide what they see).
CREATE FUNCTION community.tag_in_sight(tag text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (SELECT 1 FROM community.story_tags st WHERE st.tag = tag_in_sight.tag)
            OR EXISTS (SELECT 1 FROM community.user_tags ut WHERE ut.tag = tag_in_sight.tag)
    $$;
COMMENT ON FUNCTION community.tag_in_sight(text) IS
    'Whether a story the acting user sees, or their own tags, carry the tag.';

-- Whether the habit is the acting user's own.
CREATE FUNCTION community.owns_habit(habit uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (SELECT 1 FROM community.habits h
                        WHERE h.id = habit AND h.user_id = auth.current_user_id())
    $$;
COMMENT ON FUNCTION community.owns_habit(uuid) IS 'Whether the habit is the acting user''s.';

-- The period a day falls in, numbered so that consecutive periods differ by one: days
-- (daily, and custom habits, whose streak is measured in days between check-ins), ISO
-- weeks (Monday first) and calendar months.
CREATE FUNCTION community.period_of(frequency text, day date) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT CASE frequency
                   WHEN 'weekly' THEN floor((day - DATE '1970-01-05') / 7.0)::integer
                   WHEN 'monthly' THEN (extract(year FROM day) * 12 + extract(month FROM day))::integer
                   ELSE day - DATE '1970-01-05'
               END
    $$;
COMMENT ON FUNCTION community.period_of(text, date) IS
    'The number of the day''s period for a habit of this frequency (day, ISO week or month).';

-- Each habit the acting user sees with its streaks on `today`: a streak is a run of
-- consecutive periods with a check-in (for a custom habit, of check-ins at most
-- custom_days apart, counted in check-ins); the current one is the latest run, while its
-- last period is this one or the one before (a week not yet checked in does not break a
-- weekly streak). Invoker rights: habits' policy decides whose.
CREATE FUNCTION community.habit_streaks(today date)
    RETURNS TABLE (habit_id uuid, checkins bigint, last_day date, current_streak integer, longest_streak integer)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH periods AS (
            SELECT DISTINCT h.id, community.period_of(h.frequency, c.day) AS period,
                   CASE WHEN h.frequency = 'custom' THEN h.custom_days ELSE 1 END AS step
              FROM community.habits h JOIN community.habit_checkins c ON c.habit_id = h.id
        ), breaks AS (
            SELECT id, period, step,
                   CASE WHEN period - lag(period) OVER (PARTITION BY id ORDER BY period) > step THEN 1 ELSE 0 END
                       AS starts_run
              FROM periods
        ), runs AS (
            SELECT id, step, period, sum(starts_run) OVER (PARTITION BY id ORDER BY period) AS run FROM breaks
        ), sizes AS (
            SELECT id, step, run, count(*)::integer AS size, max(period) AS last_period
              FROM runs GROUP BY id, step, run
        ), per_habit AS (
            SELECT id, max(size) AS longest,
                   (array_agg(size ORDER BY last_period DESC))[1] AS latest,
                   max(last_period) AS last_period, max(step) AS step
              FROM sizes GROUP BY id
        ), counts AS (
            SELECT c.habit_id AS id, count(*) AS checkins, max(c.day) AS last_day
              FROM community.habit_checkins c GROUP BY c.habit_id
        )
        SELECT h.id, coalesce(n.checkins, 0), n.last_day,
               CASE WHEN p.last_period >= community.period_of(h.frequency, today) - p.step THEN p.latest ELSE 0 END,
               coalesce(p.longest, 0)
          FROM community.habits h
          LEFT JOIN per_habit p ON p.id = h.id
          LEFT JOIN counts n ON n.id = h.id
    $$;
COMMENT ON FUNCTION community.habit_streaks(date) IS
    'Each habit the acting user sees with its number of check-ins, last day, current and longest streak.';

REVOKE ALL ON FUNCTION community.story_visible(uuid, text), community.may_see_story(uuid),
    community.writes_story(uuid), community.tag_in_sight(text), community.owns_habit(uuid),
    community.period_of(text, date), community.habit_streaks(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION community.story_visible(uuid, text), community.may_see_story(uuid),
    community.writes_story(uuid), community.tag_in_sight(text), community.owns_habit(uuid),
    community.period_of(text, date), community.habit_streaks(date) TO rapport_app, rapport_worker;
"""

TRIGGERS = """
-- tags_cached is the database's to keep: whatever a write puts there, the story's tags replace it.
CREATE FUNCTION community.cache_story_tags() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        NEW.tags_cached := coalesce(
            (SELECT array_agg(st.tag ORDER BY st.tag) FROM community.story_tags st WHERE st.story_id = NEW.id), '{}');
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION community.cache_story_tags() IS 'BEFORE INSERT OR UPDATE trigger keeping stories.tags_cached.';
CREATE TRIGGER tr_stories_tags_cached BEFORE INSERT OR UPDATE ON community.stories
    FOR EACH ROW EXECUTE FUNCTION community.cache_story_tags();

-- A change of a story's tags touches the story, whose trigger above reads them again.
CREATE FUNCTION community.touch_tagged_stories() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        UPDATE community.stories s SET updated_at = now()
         WHERE s.id IN (SELECT changed.story_id FROM changed);
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION community.touch_tagged_stories() IS
    'Statement trigger on story_tags: the stories whose tags changed read them again into tags_cached.';
CREATE TRIGGER tr_story_tags_added AFTER INSERT ON community.story_tags
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION community.touch_tagged_stories();
CREATE TRIGGER tr_story_tags_removed AFTER DELETE ON community.story_tags
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION community.touch_tagged_stories();

-- A tag nothing carries any more goes, so that a name only one person ever used leaves
-- with them. Invoker rights: a person removes only the tags they made (tags' policy), and
-- a tag still carried where they cannot see is kept by its foreign keys (the error is
-- the answer "still in use", not a failure). An erasure, as system work, sees everything.
CREATE FUNCTION community.prune_tags() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        gone text;
    BEGIN
        FOR gone IN SELECT DISTINCT changed.tag FROM changed LOOP
            BEGIN
                DELETE FROM community.tags t
                 WHERE t.name = gone
                   AND NOT EXISTS (SELECT 1 FROM community.story_tags st WHERE st.tag = gone)
                   AND NOT EXISTS (SELECT 1 FROM community.user_tags ut WHERE ut.tag = gone);
            EXCEPTION WHEN foreign_key_violation THEN
                NULL;
            END;
        END LOOP;
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION community.prune_tags() IS
    'Statement trigger on story_tags and user_tags: removes the tags nothing carries any more.';
CREATE TRIGGER tr_story_tags_prune AFTER DELETE ON community.story_tags
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION community.prune_tags();
CREATE TRIGGER tr_user_tags_prune AFTER DELETE ON community.user_tags
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION community.prune_tags();

REVOKE ALL ON FUNCTION community.cache_story_tags(), community.touch_tagged_stories(), community.prune_tags()
    FROM PUBLIC;

CREATE TRIGGER tr_stories_updated_at BEFORE UPDATE ON community.stories
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
CREATE TRIGGER tr_habits_updated_at BEFORE UPDATE ON community.habits
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
CREATE TRIGGER tr_gardens_updated_at BEFORE UPDATE ON community.gardens
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
CREATE TRIGGER tr_profile_extras_updated_at BEFORE UPDATE ON community.profile_extras
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
"""

POLICIES = """
-- A tag is seen where something the reader sees carries it, or by whoever made it; anyone
-- signed in adds one (as its maker); only its maker (or an erasure) removes it.
ALTER TABLE community.tags ENABLE ROW LEVEL SECURITY;
ALTER TABLE community.tags FORCE ROW LEVEL SECURITY;
CREATE POLICY tags_read ON community.tags FOR SELECT
    USING (auth.is_system() OR created_by = auth.current_user_id() OR community.tag_in_sight(name));
CREATE POLICY tags_add ON community.tags FOR INSERT
    WITH CHECK (auth.is_system() OR created_by = auth.current_user_id());
CREATE POLICY tags_remove ON community.tags FOR DELETE
    USING (auth.is_system() OR created_by = auth.current_user_id());
GRANT SELECT, INSERT, DELETE ON community.tags TO rapport_app, rapport_worker;

ALTER TABLE community.user_tags ENABLE ROW LEVEL SECURITY;
ALTER TABLE community.user_tags FORCE ROW LEVEL SECURITY;
CREATE POLICY user_tags_owner ON community.user_tags
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT, DELETE ON community.user_tags TO rapport_app, rapport_worker;

-- Read as community.story_visible says; written by the author alone.
ALTER TABLE community.stories ENABLE ROW LEVEL SECURITY;
ALTER TABLE community.stories FORCE ROW LEVEL SECURITY;
CREATE POLICY stories_read ON community.stories FOR SELECT
    USING (community.story_visible(user_id, visibility));
CREATE POLICY stories_write ON community.stories FOR INSERT
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
CREATE POLICY stories_change ON community.stories FOR UPDATE
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
CREATE POLICY stories_remove ON community.stories FOR DELETE
    USING (user_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT, DELETE ON community.stories TO rapport_app, rapport_worker;
GRANT UPDATE (title, content, visibility, tags_cached, updated_at) ON community.stories TO rapport_app, rapport_worker;

-- Seen with the story; set by its author.
ALTER TABLE community.story_tags ENABLE ROW LEVEL SECURITY;
ALTER TABLE community.story_tags FORCE ROW LEVEL SECURITY;
CREATE POLICY story_tags_read ON community.story_tags FOR SELECT
    USING (auth.is_system() OR community.may_see_story(story_id));
CREATE POLICY story_tags_add ON community.story_tags FOR INSERT
    WITH CHECK (auth.is_system() OR community.writes_story(story_id));
CREATE POLICY story_tags_remove ON community.story_tags FOR DELETE
    USING (auth.is_system() OR community.writes_story(story_id));
GRANT SELECT, INSERT, DELETE ON community.story_tags TO rapport_app, rapport_worker;

-- Habits, their check-ins, the garden and the profile extra: their owner's alone.
ALTER TABLE community.habits ENABLE ROW LEVEL SECURITY;
ALTER TABLE community.habits FORCE ROW LEVEL SECURITY;
CREATE POLICY habits_owner ON community.habits
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT, DELETE ON community.habits TO rapport_app, rapport_worker;
GRANT UPDATE (name, frequency, custom_days, meta) ON community.habits TO rapport_app, rapport_worker;

ALTER TABLE community.habit_checkins ENABLE ROW LEVEL SECURITY;
ALTER TABLE community.habit_checkins FORCE ROW LEVEL SECURITY;
CREATE POLICY habit_checkins_owner ON community.habit_checkins
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK ((user_id = auth.current_user_id() AND community.owns_habit(habit_id)) OR auth.is_system());
GRANT SELECT, INSERT, DELETE ON community.habit_checkins TO rapport_app, rapport_worker;
GRANT UPDATE (note) ON community.habit_checkins TO rapport_app, rapport_worker;

ALTER TABLE community.gardens ENABLE ROW LEVEL SECURITY;
ALTER TABLE community.gardens FORCE ROW LEVEL SECURITY;
CREATE POLICY gardens_owner ON community.gardens
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT, DELETE ON community.gardens TO rapport_app, rapport_worker;
GRANT UPDATE (name, theme) ON community.gardens TO rapport_app, rapport_worker;

ALTER TABLE community.profile_extras ENABLE ROW LEVEL SECURITY;
ALTER TABLE community.profile_extras FORCE ROW LEVEL SECURITY;
CREATE POLICY profile_extras_owner ON community.profile_extras
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT, DELETE ON community.profile_extras TO rapport_app, rapport_worker;
GRANT UPDATE (journaling_frequency) ON community.profile_extras TO rapport_app, rapport_worker;
"""


def upgrade() -> None:
    run_sql(SCHEMA)
    run_sql(TABLES)
    run_sql(FUNCTIONS)
    run_sql(TRIGGERS)
    run_sql(POLICIES)


def downgrade() -> None:
    run_sql("DROP SCHEMA community CASCADE;")
