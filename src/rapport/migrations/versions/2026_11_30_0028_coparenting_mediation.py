"""Co-parenting: mediation.

Why: issue 14 (seed 000). Before sending, a parent may have a draft analysed: their own
conflict triggers (communication_triggers) and its tone are looked for, and a calmer
rewrite is suggested. What they did with it (accepted, modified, rejected, ignored) is kept
in intervention_rewrites and summed, by trigger, in intervention_statistics, which the view
intervention_stats_with_rate shows with its acceptance rate. communication_profiles are
learned from the person's own messages by a job. Every row is its person's alone: the other
parent never learns that an analysis ran or a rewrite was suggested.

Revision ID: 2026_11_30_0028
Revises: 2026_11_30_0027
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0028"
down_revision = "2026_11_30_0027"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


OUTCOMES = "'accepted', 'modified', 'rejected', 'ignored'"
TONES = "'direct', 'formal', 'casual', 'warm', 'tense'"

TABLES = f"""
CREATE TABLE coparenting.communication_triggers (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    trigger_type text NOT NULL,
    trigger_value text NOT NULL,
    intensity numeric(3,2) NOT NULL DEFAULT 0.5,
    detection_count integer NOT NULL DEFAULT 0,
    last_detected timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_communication_triggers PRIMARY KEY (id),
    CONSTRAINT fk_communication_triggers_user_id_users FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_communication_triggers_trigger_type CHECK (trigger_type IN ('topic', 'phrase', 'pattern')),
    CONSTRAINT ck_communication_triggers_trigger_value CHECK (length(trigger_value) BETWEEN 1 AND 200),
    CONSTRAINT ck_communication_triggers_intensity CHECK (intensity BETWEEN 0 AND 1),
    CONSTRAINT ck_communication_triggers_detection_count CHECK (detection_count >= 0),
    CONSTRAINT ck_communication_triggers_last_detected CHECK ((last_detected IS NULL) = (detection_count = 0))
);
COMMENT ON TABLE coparenting.communication_triggers IS
    'What sets a person off in talks with the other parent (seed 000): a topic, a phrase or a word pattern, '
    'with how strongly, and how often the analysis of their drafts found it. Their own alone.';
COMMENT ON COLUMN coparenting.communication_triggers.trigger_value IS
    'topic: words that must all appear (any ending); phrase: words in this order; pattern: words where * '
    'stands for one to three words.';
COMMENT ON COLUMN coparenting.communication_triggers.intensity IS 'How strongly it sets them off, 0 to 1.';
COMMENT ON COLUMN coparenting.communication_triggers.detection_count IS
    'How many analysed drafts contained it (0 until first found: the person names triggers ahead).';
-- Serves rapport.modules.coparenting._mediation.list_triggers (one person's, newest first) and the foreign key.
CREATE INDEX ix_communication_triggers_user_id ON coparenting.communication_triggers (user_id, id DESC);
-- One trigger per value and type per person, whatever its case; serves the duplicate check of
-- rapport.modules.coparenting._mediation.do_create_trigger.
CREATE UNIQUE INDEX ux_communication_triggers_value
    ON coparenting.communication_triggers (user_id, trigger_type, lower(trigger_value));
CREATE TRIGGER set_updated_at BEFORE UPDATE OF trigger_type, trigger_value, intensity
    ON coparenting.communication_triggers FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE coparenting.intervention_rewrites (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    conversation_id uuid,
    original_text text NOT NULL,
    rewrite_text text NOT NULL,
    final_text text,
    outcome text,
    pattern_detected text,
    engine text NOT NULL,
    outcome_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_intervention_rewrites PRIMARY KEY (id),
    CONSTRAINT fk_intervention_rewrites_user_id_users FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_intervention_rewrites_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE SET NULL,
    CONSTRAINT ck_intervention_rewrites_outcome CHECK (outcome IN ({OUTCOMES})),
    CONSTRAINT ck_intervention_rewrites_engine CHECK (engine IN ('local', 'llm')),
    CONSTRAINT ck_intervention_rewrites_texts CHECK (
        length(original_text) BETWEEN 1 AND 5000 AND length(rewrite_text) BETWEEN 1 AND 10000
        AND length(final_text) BETWEEN 1 AND 5000),
    CONSTRAINT ck_intervention_rewrites_pattern_detected CHECK (length(pattern_detected) <= 500),
    CONSTRAINT ck_intervention_rewrites_answered CHECK ((outcome IS NULL) = (outcome_at IS NULL)),
    CONSTRAINT ck_intervention_rewrites_final_text CHECK ((final_text IS NOT NULL) = (outcome IS NOT DISTINCT FROM 'modified'))
);
COMMENT ON TABLE coparenting.intervention_rewrites IS
    'Each calmer rewrite suggested for a person''s draft (seed 000), and what they did with it: pending '
    '(outcome NULL) until they say. Their own alone: the other parent never learns one was suggested.';
COMMENT ON COLUMN coparenting.intervention_rewrites.conversation_id IS
    'The conversation the draft was for, when the person named one they take part in.';
COMMENT ON COLUMN coparenting.intervention_rewrites.final_text IS 'What they sent instead, when they modified it.';
COMMENT ON COLUMN coparenting.intervention_rewrites.pattern_detected IS
    'What the analysis found, as comma-separated labels (insult, blame, caps, trigger:phrase, ...).';
COMMENT ON COLUMN coparenting.intervention_rewrites.engine IS
    'Who wrote the rewrite: the local rules, or the configured language model.';
-- Serves rapport.modules.coparenting._mediation.list_rewrites (one person's, newest first) and the foreign key.
CREATE INDEX ix_intervention_rewrites_user_id ON coparenting.intervention_rewrites (user_id, id DESC);
-- Serves the foreign key's ON DELETE SET NULL when a conversation goes.
CREATE INDEX ix_intervention_rewrites_conversation_id ON coparenting.intervention_rewrites (conversation_id)
    WHERE conversation_id IS NOT NULL;

CREATE TABLE coparenting.intervention_statistics (
    user_id uuid NOT NULL,
    total_interventions integer NOT NULL DEFAULT 0,
    accepted_count integer NOT NULL DEFAULT 0,
    modified_count integer NOT NULL DEFAULT 0,
    rejected_count integer NOT NULL DEFAULT 0,
    ignored_count integer NOT NULL DEFAULT 0,
    last_intervention_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_intervention_statistics PRIMARY KEY (user_id),
    CONSTRAINT fk_intervention_statistics_user_id_users FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_intervention_statistics_counts CHECK (
        accepted_count >= 0 AND modified_count >= 0 AND rejected_count >= 0 AND ignored_count >= 0
        AND total_interventions = accepted_count + modified_count + rejected_count + ignored_count)
);
COMMENT ON TABLE coparenting.intervention_statistics IS
    'A person''s rewrite outcomes summed (seed 000), kept by the trigger coparenting.count_outcome as each '
    'outcome is recorded: total_interventions counts the answered suggestions.';

CREATE TABLE coparenting.communication_profiles (
    user_id uuid NOT NULL,
    tone_tendencies text[] NOT NULL DEFAULT '{{}}'::text[],
    avg_message_length integer NOT NULL DEFAULT 0,
    vocabulary_complexity text NOT NULL,
    emoji_usage text NOT NULL,
    messages_analysed integer NOT NULL DEFAULT 0,
    profile_version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_communication_profiles PRIMARY KEY (user_id),
    CONSTRAINT fk_communication_profiles_user_id_users FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_communication_profiles_tone_tendencies CHECK (tone_tendencies <@ ARRAY[{TONES}]::text[]),
    CONSTRAINT ck_communication_profiles_vocabulary_complexity CHECK (
        vocabulary_complexity IN ('simple', 'moderate', 'complex')),
    CONSTRAINT ck_communication_profiles_emoji_usage CHECK (emoji_usage IN ('none', 'minimal', 'moderate', 'frequent')),
    CONSTRAINT ck_communication_profiles_numbers CHECK (
        avg_message_length >= 0 AND messages_analysed >= 0 AND profile_version >= 1)
);
COMMENT ON TABLE coparenting.communication_profiles IS
    'How a person writes (seed 000), learned from their own recent messages by the job '
    'coparenting.learn_profile: tone tendencies, average length, vocabulary, emoji use. Their own alone; '
    'written only by system work.';
COMMENT ON COLUMN coparenting.communication_profiles.messages_analysed IS 'How many of their messages it was learned from.';
COMMENT ON COLUMN coparenting.communication_profiles.profile_version IS 'Counts each time it is learned again.';
CREATE TRIGGER set_updated_at BEFORE UPDATE ON coparenting.communication_profiles
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

-- Definer: the statistics are nobody's to write but this trigger's, so the person cannot
-- make their own figures up (the serving role holds no write grant on them).
CREATE FUNCTION coparenting.count_outcome() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        INSERT INTO coparenting.intervention_statistics AS s
               (user_id, total_interventions, accepted_count, modified_count, rejected_count, ignored_count,
                last_intervention_at)
        VALUES (NEW.user_id, 1, (NEW.outcome = 'accepted')::int, (NEW.outcome = 'modified')::int,
                (NEW.outcome = 'rejected')::int, (NEW.outcome = 'ignored')::int, NEW.outcome_at)
        ON CONFLICT (user_id) DO UPDATE
           SET total_interventions = s.total_interventions + 1,
               accepted_count = s.accepted_count + EXCLUDED.accepted_count,
               modified_count = s.modified_count + EXCLUDED.modified_count,
               rejected_count = s.rejected_count + EXCLUDED.rejected_count,
               ignored_count = s.ignored_count + EXCLUDED.ignored_count,
               last_intervention_at = greatest(s.last_intervention_at, EXCLUDED.last_intervention_at),
               updated_at = now();
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION coparenting.count_outcome() IS
    'Adds an intervention''s recorded outcome to its person''s intervention_statistics.';
REVOKE ALL ON FUNCTION coparenting.count_outcome() FROM PUBLIC;
CREATE TRIGGER count_outcome AFTER UPDATE OF outcome ON coparenting.intervention_rewrites
    FOR EACH ROW WHEN (OLD.outcome IS NULL AND NEW.outcome IS NOT NULL)
    EXECUTE FUNCTION coparenting.count_outcome();

CREATE VIEW coparenting.intervention_stats_with_rate WITH (security_invoker = true) AS
SELECT s.user_id, s.total_interventions, s.accepted_count, s.modified_count, s.rejected_count, s.ignored_count,
       CASE WHEN s.total_interventions > 0
            THEN round(s.accepted_count::numeric / s.total_interventions, 4) END AS acceptance_rate,
       s.last_intervention_at, s.created_at, s.updated_at
  FROM coparenting.intervention_statistics s;
COMMENT ON VIEW coparenting.intervention_stats_with_rate IS
    'intervention_statistics with acceptance_rate: accepted / answered suggestions (NULL before the first). '
    'security_invoker: the caller''s own row only.';
"""

POLICIES = """
ALTER TABLE coparenting.communication_triggers ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.communication_triggers FORCE ROW LEVEL SECURITY;
-- The person's own; system work removes them with the account.
CREATE POLICY communication_triggers_own ON coparenting.communication_triggers
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT, DELETE ON coparenting.communication_triggers TO rapport_app, rapport_worker;
GRANT UPDATE (trigger_type, trigger_value, intensity, detection_count, last_detected)
    ON coparenting.communication_triggers TO rapport_app, rapport_worker;

ALTER TABLE coparenting.intervention_rewrites ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.intervention_rewrites FORCE ROW LEVEL SECURITY;
CREATE POLICY intervention_rewrites_read ON coparenting.intervention_rewrites FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system());
-- Suggested pending, for a conversation the person takes part in (or none).
CREATE POLICY intervention_rewrites_suggest ON coparenting.intervention_rewrites FOR INSERT
    WITH CHECK (user_id = auth.current_user_id() AND outcome IS NULL
                AND (conversation_id IS NULL OR messaging.participant_role(conversation_id) IS NOT NULL));
-- Answered once: an outcome, once recorded, stays (the statistics counted it).
CREATE POLICY intervention_rewrites_answer ON coparenting.intervention_rewrites FOR UPDATE
    USING (user_id = auth.current_user_id() AND outcome IS NULL)
    WITH CHECK (user_id = auth.current_user_id());
CREATE POLICY intervention_rewrites_system_delete ON coparenting.intervention_rewrites FOR DELETE
    USING (auth.is_system());
GRANT SELECT, INSERT ON coparenting.intervention_rewrites TO rapport_app;
GRANT UPDATE (outcome, final_text, outcome_at) ON coparenting.intervention_rewrites TO rapport_app;
GRANT SELECT, DELETE ON coparenting.intervention_rewrites TO rapport_worker;

ALTER TABLE coparenting.intervention_statistics ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.intervention_statistics FORCE ROW LEVEL SECURITY;
CREATE POLICY intervention_statistics_read ON coparenting.intervention_statistics FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer());
-- Written only by coparenting.count_outcome.
CREATE POLICY intervention_statistics_count ON coparenting.intervention_statistics FOR INSERT
    WITH CHECK (kernel.in_definer());
CREATE POLICY intervention_statistics_recount ON coparenting.intervention_statistics FOR UPDATE
    USING (kernel.in_definer()) WITH CHECK (kernel.in_definer());
CREATE POLICY intervention_statistics_system_delete ON coparenting.intervention_statistics FOR DELETE
    USING (auth.is_system());
GRANT SELECT ON coparenting.intervention_statistics TO rapport_app;
GRANT SELECT, DELETE ON coparenting.intervention_statistics TO rapport_worker;
GRANT SELECT ON coparenting.intervention_stats_with_rate TO rapport_app, rapport_worker;

ALTER TABLE coparenting.communication_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE coparenting.communication_profiles FORCE ROW LEVEL SECURITY;
CREATE POLICY communication_profiles_read ON coparenting.communication_profiles FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system());
-- Learned by the job, as system work: the person reads it and cannot write it.
CREATE POLICY communication_profiles_learn ON coparenting.communication_profiles FOR INSERT
    WITH CHECK (auth.is_system());
CREATE POLICY communication_profiles_relearn ON coparenting.communication_profiles FOR UPDATE
    USING (auth.is_system()) WITH CHECK (auth.is_system());
CREATE POLICY communication_profiles_system_delete ON coparenting.communication_profiles FOR DELETE
    USING (auth.is_system());
GRANT SELECT ON coparenting.communication_profiles TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON coparenting.communication_profiles TO rapport_worker;
"""


def upgrade() -> None:
    run_sql(TABLES)
    run_sql(POLICIES)


def downgrade() -> None:
    run_sql(
        """
        DROP VIEW coparenting.intervention_stats_with_rate;
        DROP TABLE coparenting.communication_profiles;
        DROP TABLE coparenting.intervention_statistics;
        DROP TABLE coparenting.intervention_rewrites;
        DROP FUNCTION coparenting.count_outcome();
        DROP TABLE coparenting.communication_triggers;
        """
    )
