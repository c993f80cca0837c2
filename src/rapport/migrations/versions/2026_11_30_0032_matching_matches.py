"""Matching: daily matches, likes and passes (seed 002 matches).

Why: issue 15. A daily job proposes to each person the people who fit both their
preferences (age, distance, genders), with neither blocking the other and never someone
already proposed, liked or passed; each proposal is one row per person of the pair, with
a compatibility score (0-1) and its breakdown. Each person likes or passes on their own
row through `matching.decide_match`, which locks the pair's two rows so that two likes at
the same moment still make the match mutual exactly once. Distances without PostGIS: a
great-circle distance and a bounding box the profiles' (latitude, longitude) index serves.

Revision ID: 2026_11_30_0032
Revises: 2026_11_30_0031
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0032"
down_revision = "2026_11_30_0031"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


SCHEMA = r"""
-- The box around a circle, as one SQL expression: inlined into the daily job's query, so
-- that the box's latitude range reaches the profiles' (latitude, longitude) index before
-- matching.distance_km (migration 2026_11_30_0031) measures exactly.
CREATE FUNCTION matching.in_box(lat double precision, lon double precision,
                                center_lat double precision, center_lon double precision, km double precision)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT lat BETWEEN center_lat - km / 111.19508 AND center_lat + km / 111.19508
           AND (abs(center_lat) + km / 111.19508 >= 89.0
                OR least(abs(lon - center_lon), 360 - abs(lon - center_lon))
                   <= km / (111.19508 * cos(radians(least(89.0, abs(center_lat) + km / 111.19508)))))
    $$;
COMMENT ON FUNCTION matching.in_box(double precision, double precision, double precision, double precision,
                                    double precision) IS
    'Whether a point lies in the latitude/longitude box holding every point within km of the centre '
    '(across the date line too; near a pole, every longitude): the prefilter before matching.distance_km.';

-- Two people's interests in common over all they name (Jaccard), regardless of case.
CREATE FUNCTION matching.interest_overlap(a text[], b text[]) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT coalesce((SELECT count(*) FROM (SELECT lower(x) FROM unnest(a) x
                                               INTERSECT SELECT lower(y) FROM unnest(b) y) i)::double precision
                        / nullif((SELECT count(*) FROM (SELECT lower(x) FROM unnest(a) x
                                                        UNION SELECT lower(y) FROM unnest(b) y) u), 0), 0)
    $$;
COMMENT ON FUNCTION matching.interest_overlap(text[], text[]) IS
    'Interests in common over interests named by either (0-1), regardless of case; 0 when neither names any.';

-- Cosine similarity of two feature vectors, from -1..1 to 0..1; 0.5 (no opinion) when a
-- vector is missing, of another dimension or all zeros.
CREATE FUNCTION matching.feature_similarity(a real[], b real[]) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT coalesce((1 + sum(x::float8 * y) / nullif(sqrt(sum(x::float8 * x) * sum(y::float8 * y)), 0)) / 2,
                        0.5)
          FROM unnest(a, b) AS t(x, y)
         WHERE cardinality(a) = cardinality(b)
    $$;
COMMENT ON FUNCTION matching.feature_similarity(real[], real[]) IS
    'Cosine similarity of two feature vectors mapped to 0-1; 0.5 when either is missing or empty.';

CREATE TABLE matching.matches (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    matched_user_id uuid NOT NULL,
    score numeric(4, 3) NOT NULL,
    breakdown jsonb NOT NULL DEFAULT '{}'::jsonb,
    status text NOT NULL DEFAULT 'proposed',
    for_date date NOT NULL,
    decided_at timestamptz,
    conversation_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_matches PRIMARY KEY (id),
    CONSTRAINT fk_matches_user_id_users FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_matches_matched_user_id_users FOREIGN KEY (matched_user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_matches_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE SET NULL,
    CONSTRAINT uq_matches_user_id_matched_user_id UNIQUE (user_id, matched_user_id),
    CONSTRAINT ck_matches_status CHECK (status IN ('proposed', 'liked', 'passed', 'mutual')),
    CONSTRAINT ck_matches_score CHECK (score >= 0 AND score <= 1),
    CONSTRAINT ck_matches_not_self CHECK (user_id <> matched_user_id),
    CONSTRAINT ck_matches_breakdown CHECK (
        jsonb_typeof(breakdown) = 'object' AND octet_length(breakdown::text) <= 1000),
    CONSTRAINT ck_matches_decided CHECK ((status = 'proposed') = (decided_at IS NULL)),
    CONSTRAINT ck_matches_conversation CHECK (conversation_id IS NULL OR status = 'mutual')
);
COMMENT ON TABLE matching.matches IS
    'Daily matches (seed 002 matches): one row per person of each proposed pair, made by the daily job '
    '(rapport.modules.matching._daily); the person likes or passes on it (matching.decide_match). Read by '
    'its person, and by the other once it is liked or mutual. Either account going takes the row.';
COMMENT ON COLUMN matching.matches.user_id IS 'The person this proposal is for, who decides on it.';
COMMENT ON COLUMN matching.matches.matched_user_id IS 'The person proposed.';
COMMENT ON COLUMN matching.matches.score IS 'Compatibility 0-1: the weighted sum of the breakdown.';
COMMENT ON COLUMN matching.matches.breakdown IS
    'The score''s parts, each 0-1: attachment, interests, values, demographics.';
COMMENT ON COLUMN matching.matches.status IS
    'proposed; liked or passed by user_id; mutual once both rows of the pair are liked.';
COMMENT ON COLUMN matching.matches.for_date IS 'The day (UTC) the daily job proposed it for.';
COMMENT ON COLUMN matching.matches.decided_at IS 'When user_id liked or passed.';
COMMENT ON COLUMN matching.matches.conversation_id IS 'The two people''s direct conversation, once mutual.';
-- Serves rapport.modules.matching._daily.list_daily and the daily job's count of a person's proposals of a day.
CREATE INDEX ix_matches_user_id_for_date ON matching.matches (user_id, for_date DESC, score DESC);
-- Serves the likes a person received (matching's subscriptions) and ON DELETE CASCADE of the person proposed.
CREATE INDEX ix_matches_matched_user_id ON matching.matches (matched_user_id, status);
-- Serves rapport.modules.matching.tasks.enqueue_if_due: whether today's proposals exist.
CREATE INDEX ix_matches_for_date ON matching.matches (for_date);
-- Serves the foreign key's ON DELETE SET NULL when a conversation goes.
CREATE INDEX ix_matches_conversation_id ON matching.matches (conversation_id) WHERE conversation_id IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON matching.matches
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

-- The transitions a match may make, whoever writes: proposed to liked or passed, liked to
-- mutual; its pair, score and day never change. The conversation is recorded once, on a
-- mutual match, and by someone taking part in it.
CREATE FUNCTION matching.guard_match_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
               (OLD.status = 'proposed' AND NEW.status IN ('liked', 'passed'))
            OR (OLD.status = 'proposed' AND NEW.status = 'mutual' AND NEW.decided_at IS NOT NULL)
            OR (OLD.status = 'liked' AND NEW.status = 'mutual')) THEN
            RAISE EXCEPTION 'a match goes from proposed to liked or passed, and from liked to mutual'
                USING ERRCODE = 'check_violation';
        END IF;
        IF (NEW.user_id, NEW.matched_user_id, NEW.score, NEW.breakdown, NEW.for_date, NEW.created_at)
           IS DISTINCT FROM (OLD.user_id, OLD.matched_user_id, OLD.score, OLD.breakdown, OLD.for_date, OLD.created_at)
        THEN
            RAISE EXCEPTION 'a match''s pair, score and day do not change' USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.conversation_id IS DISTINCT FROM OLD.conversation_id AND NEW.conversation_id IS NOT NULL
           AND NOT kernel.in_definer() AND NOT auth.is_system()
           AND (OLD.conversation_id IS NOT NULL OR messaging.participant_role(NEW.conversation_id) IS NULL) THEN
            RAISE EXCEPTION 'a match''s conversation is set once, to one its people take part in'
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION matching.guard_match_update() IS
    'BEFORE UPDATE trigger of matches: the allowed status transitions, a fixed pair, score and day, and the '
    'conversation set once.';
REVOKE ALL ON FUNCTION matching.guard_match_update() FROM PUBLIC;
CREATE TRIGGER guard_match_update BEFORE UPDATE ON matching.matches
    FOR EACH ROW EXECUTE FUNCTION matching.guard_match_update();

-- Liking or passing: the caller decides on their own row, but whether the match becomes
-- mutual depends on the other row, which is not theirs to read while it is only proposed
-- (a pass is never shown). Both rows of the pair are locked in one order, so of two people
-- liking each other at once the second waits for the first and then sees its like.
-- Outcomes: not_found, liked, passed, mutual (made now), unchanged (the same decision
-- again, or a like on a match already mutual) and decided (the opposite decision was made).
CREATE FUNCTION matching.decide_match(match uuid, decision text)
    RETURNS TABLE (outcome text, other_user_id uuid, other_match_id uuid)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        caller uuid := auth.current_user_id();
        mine matching.matches;
        theirs matching.matches;
    BEGIN
        IF caller IS NULL OR decide_match.decision IS NULL OR decide_match.decision NOT IN ('like', 'pass') THEN
            RETURN QUERY SELECT 'not_found'::text, NULL::uuid, NULL::uuid;
            RETURN;
        END IF;
        SELECT * INTO mine FROM matching.matches m WHERE m.id = decide_match.match AND m.user_id = caller;
        IF mine.id IS NULL THEN
            RETURN QUERY SELECT 'not_found'::text, NULL::uuid, NULL::uuid;
            RETURN;
        END IF;
        PERFORM 1 FROM matching.matches m
          WHERE (m.user_id = caller AND m.matched_user_id = mine.matched_user_id)
             OR (m.user_id = mine.matched_user_id AND m.matched_user_id = caller)
          ORDER BY m.id
            FOR UPDATE;
        -- Read again after the locks: a decision committed meanwhile is seen now.
        SELECT * INTO mine FROM matching.matches m WHERE m.id = decide_match.match;
        SELECT * INTO theirs FROM matching.matches m
         WHERE m.user_id = mine.matched_user_id AND m.matched_user_id = caller;
        IF decide_match.decision = 'pass' THEN
            IF mine.status = 'passed' THEN
                RETURN QUERY SELECT 'unchanged'::text, mine.matched_user_id, theirs.id;
            ELSIF mine.status = 'proposed' THEN
                UPDATE matching.matches SET status = 'passed', decided_at = now() WHERE id = mine.id;
                RETURN QUERY SELECT 'passed'::text, mine.matched_user_id, theirs.id;
            ELSE
                RETURN QUERY SELECT 'decided'::text, mine.matched_user_id, theirs.id;
            END IF;
            RETURN;
        END IF;
        IF mine.status IN ('liked', 'mutual') THEN
            RETURN QUERY SELECT 'unchanged'::text, mine.matched_user_id, theirs.id;
        ELSIF mine.status = 'passed' THEN
            RETURN QUERY SELECT 'decided'::text, mine.matched_user_id, theirs.id;
        ELSIF theirs.status = 'liked' THEN
            UPDATE matching.matches SET status = 'mutual', decided_at = now() WHERE id = mine.id;
            UPDATE matching.matches SET status = 'mutual' WHERE id = theirs.id;
            RETURN QUERY SELECT 'mutual'::text, mine.matched_user_id, theirs.id;
        ELSE
            UPDATE matching.matches SET status = 'liked', decided_at = now() WHERE id = mine.id;
            RETURN QUERY SELECT 'liked'::text, mine.matched_user_id, theirs.id;
        END IF;
    END
    $$;
COMMENT ON FUNCTION matching.decide_match(uuid, text) IS
    'Like or pass (decision like or pass) on one of the acting user''s matches; a like on a match whose other '
    'row is liked makes both mutual. Returns the outcome (not_found, liked, passed, mutual, unchanged, '
    'decided), the other person and the id of their row.';
REVOKE ALL ON FUNCTION matching.decide_match(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION matching.decide_match(uuid, text) TO rapport_app;

ALTER TABLE matching.matches ENABLE ROW LEVEL SECURITY;
ALTER TABLE matching.matches FORCE ROW LEVEL SECURITY;
-- Its person reads it; the person proposed reads it once it is liked (who liked me, a
-- paid feature the service gates) or mutual. A pass or a mere proposal stays unseen.
CREATE POLICY matches_read ON matching.matches FOR SELECT
    USING (user_id = auth.current_user_id()
           OR (matched_user_id = auth.current_user_id() AND status IN ('liked', 'mutual'))
           OR kernel.in_definer() OR auth.is_system());
-- Proposals are made by the daily job alone.
CREATE POLICY matches_propose ON matching.matches FOR INSERT
    WITH CHECK (auth.is_system() OR kernel.in_definer());
-- The people of a mutual match record their conversation (the column granted below); the
-- decisions go through matching.decide_match.
CREATE POLICY matches_change ON matching.matches FOR UPDATE
    USING (user_id = auth.current_user_id()
           OR (matched_user_id = auth.current_user_id() AND status = 'mutual')
           OR kernel.in_definer() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id()
                OR (matched_user_id = auth.current_user_id() AND status = 'mutual')
                OR kernel.in_definer() OR auth.is_system());
GRANT SELECT ON matching.matches TO rapport_app;
GRANT UPDATE (conversation_id) ON matching.matches TO rapport_app;
GRANT SELECT, INSERT ON matching.matches TO rapport_worker;
"""


def upgrade() -> None:
    run_sql(SCHEMA)


def downgrade() -> None:
    run_sql(
        """
        DROP TABLE matching.matches;
        DROP FUNCTION matching.decide_match(uuid, text);
        DROP FUNCTION matching.guard_match_update();
        DROP FUNCTION matching.feature_similarity(real[], real[]);
        DROP FUNCTION matching.interest_overlap(text[], text[]);
        DROP FUNCTION matching.in_box(double precision, double precision, double precision, double precision,
                                      double precision);
        """
    )
