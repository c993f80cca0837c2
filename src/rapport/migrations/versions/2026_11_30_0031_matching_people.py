"""Matching: people. A person's dating profile (seed 002 profiles and photos), their
ECR-R attachment assessments (seed 002 assessments, history kept), their feature vector
(seed 001 user_features) and the cached top N of the people most like them (seed 001
match_results).

Why: matching reads one row per person for preferences and location, and compares
fixed-size vectors; a profile's coordinates and birth date are its owner's alone (others
get a distance and an age through matching.profile_card). pgvector serves the similarity
search where the server has it; an exact SQL fallback gives the same answers where not.

Revision ID: 2026_11_30_0031
Revises: 2026_11_30_0030
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0031"
down_revision = "2026_11_30_0030"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


SCHEMA = """
CREATE SCHEMA matching;
COMMENT ON SCHEMA matching IS 'Matching (seeds 001, 002): profiles, assessments, features, matches, subscriptions.';
GRANT USAGE ON SCHEMA matching TO rapport_app, rapport_worker;
"""

FUNCTIONS = """
-- Whole years between a birth date and a day (what "age" means on a dating profile).
CREATE FUNCTION matching.age_on(birth date, on_day date) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT extract(year FROM age(on_day, birth))::integer $$;
COMMENT ON FUNCTION matching.age_on(date, date) IS 'Whole years from a birth date to a day.';

-- Great-circle distance (haversine, mean Earth radius 6371.0088 km): no PostGIS needed.
CREATE FUNCTION matching.distance_km(lat1 double precision, lon1 double precision,
                                     lat2 double precision, lon2 double precision)
    RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT 2 * 6371.0088 * asin(least(1.0, sqrt(
            power(sin(radians(lat2 - lat1) / 2), 2)
            + cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians(lon2 - lon1) / 2), 2))))
    $$;
COMMENT ON FUNCTION matching.distance_km(double precision, double precision, double precision, double precision) IS
    'Great-circle distance in km between two points given in degrees (haversine).';

-- Adults only, whatever path writes the profile (the API checks first and says so).
CREATE FUNCTION matching.check_adult() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
        BEGIN
            IF matching.age_on(NEW.birth_date, current_date) < 18 THEN
                RAISE EXCEPTION 'a dating profile is for adults (18 or older)'
                    USING ERRCODE = 'check_violation', SCHEMA = 'matching', TABLE = 'profiles',
                          CONSTRAINT = 'ck_profiles_adult';
            END IF;
            RETURN NEW;
        END
    $$;
COMMENT ON FUNCTION matching.check_adult() IS 'Refuses a profile whose birth date makes its person under 18 today.';

REVOKE ALL ON FUNCTION matching.check_adult() FROM PUBLIC;
REVOKE ALL ON FUNCTION matching.age_on(date, date),
    matching.distance_km(double precision, double precision, double precision, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION matching.age_on(date, date),
    matching.distance_km(double precision, double precision, double precision, double precision)
    TO rapport_app, rapport_worker;
"""

PROFILES = """
CREATE TABLE matching.profiles (
    user_id uuid NOT NULL,
    birth_date date NOT NULL,
    gender text NOT NULL,
    bio text,
    interests text[] NOT NULL DEFAULT '{}',
    latitude double precision,
    longitude double precision,
    city text,
    country text,
    pref_genders text[] NOT NULL DEFAULT '{}',
    pref_age_min integer NOT NULL DEFAULT 18,
    pref_age_max integer NOT NULL DEFAULT 99,
    pref_distance_km integer NOT NULL DEFAULT 50,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_profiles PRIMARY KEY (user_id),
    CONSTRAINT fk_profiles_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_profiles_birth_date CHECK (birth_date >= DATE '1900-01-01'),
    CONSTRAINT ck_profiles_gender CHECK (gender IN ('woman', 'man', 'nonbinary', 'other')),
    CONSTRAINT ck_profiles_bio CHECK (length(bio) <= 500),
    CONSTRAINT ck_profiles_interests CHECK (
        cardinality(interests) <= 30 AND array_position(interests, NULL) IS NULL),
    CONSTRAINT ck_profiles_location CHECK (
        (latitude IS NULL) = (longitude IS NULL)
        AND latitude BETWEEN -90 AND 90 AND longitude BETWEEN -180 AND 180),
    CONSTRAINT ck_profiles_place CHECK (length(city) BETWEEN 1 AND 100 AND length(country) BETWEEN 1 AND 100),
    CONSTRAINT ck_profiles_pref_genders CHECK (
        pref_genders <@ ARRAY['woman', 'man', 'nonbinary', 'other']::text[]
        AND array_position(pref_genders, NULL) IS NULL),
    CONSTRAINT ck_profiles_pref_age CHECK (pref_age_min BETWEEN 18 AND 120 AND pref_age_max BETWEEN pref_age_min AND 120),
    CONSTRAINT ck_profiles_pref_distance_km CHECK (pref_distance_km BETWEEN 1 AND 20000)
);
COMMENT ON TABLE matching.profiles IS
    'A person''s dating profile (seed 002 profiles): adults only (a trigger checks the birth date). '
    'Its owner''s alone; others see it through matching.profile_card, as an age and a distance, never '
    'the birth date or the coordinates.';
COMMENT ON COLUMN matching.profiles.interests IS 'Free words (at most 30, each 1-50 characters, stored lower-case).';
COMMENT ON COLUMN matching.profiles.latitude IS 'Degrees, with longitude or not at all. Never shown to anyone else.';
COMMENT ON COLUMN matching.profiles.pref_genders IS 'The genders the person wants to meet; empty: any.';
COMMENT ON COLUMN matching.profiles.is_active IS 'Whether the person takes part in matching now.';
-- Served a bounding-box prefilter of the distance preference (latitude range first, then
-- longitude) for the daily proposals; dropped by 2026_11_30_0034, whose nearest-first GiST
-- index ix_profiles_place the daily job walks instead.
CREATE INDEX ix_profiles_latitude_longitude ON matching.profiles (latitude, longitude)
    WHERE latitude IS NOT NULL;
CREATE TRIGGER tr_profiles_adult BEFORE INSERT OR UPDATE OF birth_date ON matching.profiles
    FOR EACH ROW EXECUTE FUNCTION matching.check_adult();
CREATE TRIGGER tr_profiles_updated_at BEFORE UPDATE ON matching.profiles
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

-- A dating profile's photos are its owner's profile photos (media.profile_photos, up to six
-- in order, seed 002 photos): one set of photos per person, read by others through
-- media's own rule for profile photos.
"""

ASSESSMENTS = """
CREATE TABLE matching.assessments (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    responses smallint[] NOT NULL,
    anxiety_score numeric(3, 2) NOT NULL,
    avoidance_score numeric(3, 2) NOT NULL,
    style text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_assessments PRIMARY KEY (id),
    CONSTRAINT fk_assessments_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_assessments_responses CHECK (
        cardinality(responses) = 36 AND array_ndims(responses) = 1
        AND 1 <= ALL (responses) AND 7 >= ALL (responses)),
    CONSTRAINT ck_assessments_scores CHECK (
        anxiety_score BETWEEN 1 AND 7 AND avoidance_score BETWEEN 1 AND 7),
    CONSTRAINT ck_assessments_style CHECK (style IN ('secure', 'anxious', 'avoidant', 'fearful'))
);
COMMENT ON TABLE matching.assessments IS
    'ECR-R attachment assessments (seed 002 assessments; Fraley, Waller & Brennan 2000): the 36 answers '
    'as given and the scores they make. Retaking adds a row; the newest is the person''s current one. '
    'Their taker''s alone.';
COMMENT ON COLUMN matching.assessments.responses IS
    'The 36 answers (1-7) in the instrument''s order: items 1-18 anxiety, 19-36 avoidance, as answered '
    '(reverse-keyed items not yet reversed).';
COMMENT ON COLUMN matching.assessments.style IS
    'By the scale midpoint 4 (above it: high): secure low/low, anxious high anxiety, avoidant high '
    'avoidance, fearful high/high.';
-- Serves rapport.modules.matching._assessment.list_assessments and current_assessment (newest
-- first: ids are UUIDv7, in the order taken), and the foreign key.
CREATE INDEX ix_assessments_user_id ON matching.assessments (user_id, id DESC);
"""

FEATURES = """
CREATE TABLE matching.user_features (
    user_id uuid NOT NULL,
    version integer NOT NULL,
    features real[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_user_features PRIMARY KEY (user_id),
    CONSTRAINT fk_user_features_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_user_features_version CHECK (version >= 1),
    CONSTRAINT ck_user_features_features CHECK (
        cardinality(features) = 32 AND array_ndims(features) = 1 AND array_position(features, NULL) IS NULL)
);
COMMENT ON TABLE matching.user_features IS
    'A person''s feature vector (seed 001 user_features): 32 numbers of unit length (or all zero) made '
    'from their interests and current assessment by rapport.modules.matching._features, so that the '
    'inner product of two vectors is their cosine similarity. Their owner''s; compared by system work.';
COMMENT ON COLUMN matching.user_features.version IS
    'Which layout of rapport.modules.matching._features made the vector (a new layout rebuilds them).';
-- Serves rapport.modules.matching._features.do_rebuild_features: the vectors an older layout made.
CREATE INDEX ix_user_features_version ON matching.user_features (version);
CREATE TRIGGER tr_user_features_updated_at BEFORE UPDATE ON matching.user_features
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE matching.match_results (
    user_id uuid NOT NULL,
    target_user_id uuid NOT NULL,
    score double precision NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_match_results PRIMARY KEY (user_id, target_user_id),
    CONSTRAINT fk_match_results_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_match_results_target_user_id_users FOREIGN KEY (target_user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_match_results_score CHECK (score BETWEEN 0 AND 1),
    CONSTRAINT ck_match_results_not_self CHECK (target_user_id <> user_id)
);
COMMENT ON TABLE matching.match_results IS
    'The cached top N of the people most like a person (seed 001 match_results), scored 0-1 by the '
    'cosine similarity of their feature vectors ((1 + cos) / 2); replaced whole by each refresh (system work). Read by its '
    'person alone; it goes with either account.';
-- Serves the foreign key's ON DELETE CASCADE (an erased account leaves everyone's lists).
CREATE INDEX ix_match_results_target_user_id ON matching.match_results (target_user_id);
"""

# pgvector where the server has it and the migration may create it; the exact fallback in
# rapport.modules.matching._similarity serves the other servers with the same answers.
VECTOR = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;
        EXCEPTION WHEN insufficient_privilege OR feature_not_supported OR undefined_file THEN
            RAISE NOTICE 'pgvector is available but cannot be created here: similarity uses the exact fallback';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        EXECUTE format(
            'ALTER TABLE matching.user_features ADD COLUMN embedding %1$I.vector(32) '
            'GENERATED ALWAYS AS (features::%1$I.vector(32)) STORED',
            (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
              WHERE e.extname = 'vector'));
        COMMENT ON COLUMN matching.user_features.embedding IS
            'features as a pgvector vector (kept by the database), for the HNSW index.';
        -- Serves rapport.modules.matching._similarity.top_similar (pgvector path): nearest by
        -- inner product, which is cosine similarity on these unit vectors.
        EXECUTE format(
            'CREATE INDEX ix_user_features_embedding ON matching.user_features '
            'USING hnsw (embedding %I.vector_ip_ops)',
            (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
              WHERE e.extname = 'vector'));
    END IF;
END
$$;
"""

CARD = """
-- What another person may see of a profile: no birth date (an age), no coordinates, city or
-- country (a distance, rounded to whole km, when both have a location). Only someone with a
-- profile of their own sees an active profile, and not across a block either way; anyone
-- else gets no row, as for a profile that does not exist.
CREATE FUNCTION matching.profile_card(target uuid) RETURNS TABLE (
    user_id uuid, age integer, gender text, bio text, interests text[], distance_km integer,
    photos uuid[], is_active boolean
)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT t.user_id, matching.age_on(t.birth_date, current_date), t.gender, t.bio, t.interests,
               CASE WHEN t.user_id <> v.user_id THEN
                   round(matching.distance_km(v.latitude, v.longitude, t.latitude, t.longitude))::integer
               END,
               ARRAY(SELECT p.file_id FROM media.profile_photos p WHERE p.user_id = t.user_id
                      ORDER BY p.position),
               t.is_active
          FROM matching.profiles v
          JOIN matching.profiles t ON t.user_id = target
         WHERE v.user_id = auth.current_user_id()
           AND (t.user_id = v.user_id
                OR (t.is_active AND NOT coalesce(social.is_blocked(v.user_id, t.user_id), false)))
    $$;
COMMENT ON FUNCTION matching.profile_card(uuid) IS
    'Another''s profile as the acting user may see it: age, gender, bio, interests, photos and a '
    'distance in whole km; nothing unless the acting user has a profile, the other''s is active and '
    'neither blocks the other.';
REVOKE ALL ON FUNCTION matching.profile_card(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION matching.profile_card(uuid) TO rapport_app, rapport_worker;
"""

POLICIES = """
-- A profile and its photos are their owner's alone (others: matching.profile_card); a
-- photo must be a live file of the owner's.
ALTER TABLE matching.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE matching.profiles FORCE ROW LEVEL SECURITY;
CREATE POLICY profiles_owner ON matching.profiles
    USING (user_id = auth.current_user_id() OR auth.is_system() OR kernel.in_definer())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT, DELETE ON matching.profiles TO rapport_app, rapport_worker;
GRANT UPDATE (birth_date, gender, bio, interests, latitude, longitude, city, country, pref_genders,
              pref_age_min, pref_age_max, pref_distance_km, is_active)
    ON matching.profiles TO rapport_app, rapport_worker;

-- Assessments are their taker's; the history is kept as taken (no updates).
ALTER TABLE matching.assessments ENABLE ROW LEVEL SECURITY;
ALTER TABLE matching.assessments FORCE ROW LEVEL SECURITY;
CREATE POLICY assessments_owner ON matching.assessments
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT ON matching.assessments TO rapport_app;
GRANT SELECT, INSERT, DELETE ON matching.assessments TO rapport_worker;

-- A person's vector is theirs to read and keep current; comparing vectors across people is
-- system work.
ALTER TABLE matching.user_features ENABLE ROW LEVEL SECURITY;
ALTER TABLE matching.user_features FORCE ROW LEVEL SECURITY;
CREATE POLICY user_features_owner ON matching.user_features
    USING (user_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT, DELETE ON matching.user_features TO rapport_app, rapport_worker;
GRANT UPDATE (version, features) ON matching.user_features TO rapport_app, rapport_worker;

-- Read by their person; written by system work alone (a person cannot plant entries).
ALTER TABLE matching.match_results ENABLE ROW LEVEL SECURITY;
ALTER TABLE matching.match_results FORCE ROW LEVEL SECURITY;
CREATE POLICY match_results_read ON matching.match_results FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system());
CREATE POLICY match_results_system ON matching.match_results FOR ALL
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON matching.match_results TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON matching.match_results TO rapport_worker;
"""


def upgrade() -> None:
    run_sql(SCHEMA)
    run_sql(FUNCTIONS)
    run_sql(PROFILES)
    run_sql(ASSESSMENTS)
    run_sql(FEATURES)
    run_sql(VECTOR)
    run_sql(CARD)
    run_sql(POLICIES)


def downgrade() -> None:
    # pgvector stays installed: other schemas may use it, and upgrading again reuses it.
    run_sql("DROP SCHEMA matching CASCADE;")
