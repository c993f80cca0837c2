"""analytics_reports: what analytics.events becomes for the people who run the platform:
daily metrics rolled up by a job, retention cohorts, feature usage, funnels, A/B tests,
and the seed's reporting views (schema `views`).

Why: seed 004 reads its business figures from pre-aggregated tables and views; reading
ten million events for each chart would cost seconds, a day's rollup costs one pass over
one day of one partition. Only platform administrators read any of it: the tables admit
them (and system work) alone, and the views read across schemas only through definer
functions that return nothing to anyone else.

Revision ID: 2026_11_30_0046
Revises: 2026_11_30_0045
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0046"
down_revision = "2026_11_30_0045"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


# Who reads analytics: system work, a definer function of this migration, a platform admin.
READERS = "auth.is_system() OR kernel.in_definer() OR (SELECT access.is_platform_admin())"
ADMIN = "(auth.is_system() OR (SELECT access.is_platform_admin()))"
KEY = r"'^[a-z0-9][a-z0-9_.-]{0,63}$'"

TABLES = rf"""
CREATE TABLE analytics.daily_metrics (
    day date NOT NULL,
    metric text NOT NULL,
    dimension text NOT NULL DEFAULT '',
    value bigint NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_daily_metrics PRIMARY KEY (day, metric, dimension),
    CONSTRAINT ck_daily_metrics_metric CHECK (metric IN (
        'events', 'events_by_name', 'active_users', 'sessions', 'new_users', 'messages_sent',
        'active_senders', 'conversations_created', 'files_uploaded', 'bytes_uploaded'))
);
COMMENT ON TABLE analytics.daily_metrics IS
    'One figure per UTC day (analytics.rollup_day): events, active users, sessions, new users, messages, files.';
COMMENT ON COLUMN analytics.daily_metrics.dimension IS
    'What the figure is broken down by: the event name for events_by_name, empty otherwise.';

CREATE TABLE analytics.feature_usage (
    day date NOT NULL,
    feature text NOT NULL,
    uses bigint NOT NULL,
    users bigint NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_feature_usage PRIMARY KEY (day, feature)
);
COMMENT ON TABLE analytics.feature_usage IS
    'Per UTC day and feature: events named feature_used with that properties.feature, and distinct people.';

CREATE TABLE analytics.user_retention (
    cohort_period text NOT NULL,
    cohort_start date NOT NULL,
    cohort_size integer NOT NULL,
    retained_day_1 integer,
    retained_day_7 integer,
    retained_day_30 integer,
    computed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_user_retention PRIMARY KEY (cohort_period, cohort_start),
    CONSTRAINT ck_user_retention_cohort_period CHECK (cohort_period IN ('day', 'week'))
);
COMMENT ON TABLE analytics.user_retention IS
    'Sign-up cohorts (UTC day, or ISO week from Monday) and how many of them had an event on '
    'their day 1, 7 and 30 after signing up; NULL until that day is over for every member.';

CREATE TABLE analytics.funnels (
    id uuid NOT NULL,
    key text NOT NULL,
    name text NOT NULL,
    window_seconds integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_funnels PRIMARY KEY (id),
    CONSTRAINT uq_funnels_key UNIQUE (key),
    CONSTRAINT ck_funnels_key CHECK (key ~ {KEY}),
    CONSTRAINT ck_funnels_window_seconds CHECK (window_seconds BETWEEN 1 AND 7776000)
);
COMMENT ON TABLE analytics.funnels IS
    'Conversion funnels: ordered steps (analytics.funnel_events), each to be reached within '
    'window_seconds of the first.';

CREATE TABLE analytics.funnel_events (
    funnel_id uuid NOT NULL,
    step integer NOT NULL,
    event_name text NOT NULL,
    CONSTRAINT pk_funnel_events PRIMARY KEY (funnel_id, step),
    CONSTRAINT fk_funnel_events_funnel_id_funnels FOREIGN KEY (funnel_id)
        REFERENCES analytics.funnels (id) ON DELETE CASCADE,
    CONSTRAINT ck_funnel_events_step CHECK (step BETWEEN 1 AND 20)
);
COMMENT ON TABLE analytics.funnel_events IS 'The steps of a funnel: the event name each step waits for.';

CREATE TABLE analytics.ab_tests (
    id uuid NOT NULL,
    key text NOT NULL,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    variants jsonb NOT NULL,
    conversion_event text NOT NULL,
    status text NOT NULL DEFAULT 'running',
    started_at timestamptz NOT NULL DEFAULT now(),
    stopped_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_ab_tests PRIMARY KEY (id),
    CONSTRAINT uq_ab_tests_key UNIQUE (key),
    CONSTRAINT ck_ab_tests_key CHECK (key ~ {KEY}),
    CONSTRAINT ck_ab_tests_variants CHECK (jsonb_typeof(variants) = 'array' AND jsonb_array_length(variants) >= 2),
    CONSTRAINT ck_ab_tests_status CHECK (status IN ('running', 'stopped')),
    CONSTRAINT ck_ab_tests_stopped CHECK ((status = 'stopped') = (stopped_at IS NOT NULL))
);
COMMENT ON TABLE analytics.ab_tests IS
    'A/B tests: variants [{{name, weight}}] assigned by analytics.assign_variant, and the event '
    'that counts as a conversion after a person''s exposure.';

CREATE TABLE analytics.ab_test_exposures (
    test_id uuid NOT NULL,
    user_id uuid NOT NULL,
    variant text NOT NULL,
    exposed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_ab_test_exposures PRIMARY KEY (test_id, user_id),
    CONSTRAINT fk_ab_test_exposures_test_id_ab_tests FOREIGN KEY (test_id)
        REFERENCES analytics.ab_tests (id) ON DELETE CASCADE,
    CONSTRAINT fk_ab_test_exposures_user_id_users FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE
);
COMMENT ON TABLE analytics.ab_test_exposures IS
    'Who was shown which variant of a test, first time: the variant stays theirs (analytics.expose).';
-- Serves the foreign key's cascade when an account is erased.
CREATE INDEX ix_ab_test_exposures_user_id ON analytics.ab_test_exposures (user_id);

CREATE TRIGGER funnels_updated_at BEFORE UPDATE ON analytics.funnels
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
CREATE TRIGGER ab_tests_updated_at BEFORE UPDATE ON analytics.ab_tests
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
-- Who defined or stopped which test or funnel, in the generic audit.
CREATE TRIGGER funnels_audit AFTER INSERT OR UPDATE OR DELETE ON analytics.funnels
    FOR EACH ROW EXECUTE FUNCTION audit.record_change();
CREATE TRIGGER ab_tests_audit AFTER INSERT OR UPDATE OR DELETE ON analytics.ab_tests
    FOR EACH ROW EXECUTE FUNCTION audit.record_change();
"""

POLICIES = f"""
ALTER TABLE analytics.daily_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.daily_metrics FORCE ROW LEVEL SECURITY;
ALTER TABLE analytics.feature_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.feature_usage FORCE ROW LEVEL SECURITY;
ALTER TABLE analytics.user_retention ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.user_retention FORCE ROW LEVEL SECURITY;
ALTER TABLE analytics.funnels ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.funnels FORCE ROW LEVEL SECURITY;
ALTER TABLE analytics.funnel_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.funnel_events FORCE ROW LEVEL SECURITY;
ALTER TABLE analytics.ab_tests ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.ab_tests FORCE ROW LEVEL SECURITY;
ALTER TABLE analytics.ab_test_exposures ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.ab_test_exposures FORCE ROW LEVEL SECURITY;

-- The rollups are system work's alone; platform administrators read them.
CREATE POLICY daily_metrics_read ON analytics.daily_metrics FOR SELECT USING ({READERS});
CREATE POLICY daily_metrics_rollup ON analytics.daily_metrics FOR ALL TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
CREATE POLICY feature_usage_read ON analytics.feature_usage FOR SELECT USING ({READERS});
CREATE POLICY feature_usage_rollup ON analytics.feature_usage FOR ALL TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
CREATE POLICY user_retention_read ON analytics.user_retention FOR SELECT USING ({READERS});
CREATE POLICY user_retention_rollup ON analytics.user_retention FOR ALL TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON analytics.daily_metrics, analytics.feature_usage, analytics.user_retention TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON analytics.daily_metrics, analytics.feature_usage, analytics.user_retention
    TO rapport_worker;

-- Funnels and tests are defined, and tests stopped, by platform administrators.
CREATE POLICY funnels_read ON analytics.funnels FOR SELECT USING ({READERS});
CREATE POLICY funnels_define ON analytics.funnels FOR INSERT WITH CHECK {ADMIN};
CREATE POLICY funnels_delete ON analytics.funnels FOR DELETE USING {ADMIN};
CREATE POLICY funnel_events_read ON analytics.funnel_events FOR SELECT USING ({READERS});
CREATE POLICY funnel_events_define ON analytics.funnel_events FOR INSERT WITH CHECK {ADMIN};
CREATE POLICY funnel_events_delete ON analytics.funnel_events FOR DELETE USING {ADMIN};
GRANT SELECT, INSERT, DELETE ON analytics.funnels, analytics.funnel_events TO rapport_app, rapport_worker;

CREATE POLICY ab_tests_read ON analytics.ab_tests FOR SELECT USING ({READERS});
CREATE POLICY ab_tests_define ON analytics.ab_tests FOR INSERT WITH CHECK {ADMIN};
CREATE POLICY ab_tests_stop ON analytics.ab_tests FOR UPDATE USING {ADMIN} WITH CHECK {ADMIN};
GRANT SELECT, INSERT, UPDATE (status, stopped_at) ON analytics.ab_tests TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON analytics.ab_tests TO rapport_worker;

-- A person's exposure is written by analytics.expose (a definer function); nobody reads
-- exposures but administrators and system work, the person included (the answer of
-- analytics.expose tells them their variant).
CREATE POLICY ab_test_exposures_read ON analytics.ab_test_exposures FOR SELECT USING ({READERS});
CREATE POLICY ab_test_exposures_expose ON analytics.ab_test_exposures FOR INSERT TO rapport_owner
    WITH CHECK (kernel.in_definer());
CREATE POLICY ab_test_exposures_system ON analytics.ab_test_exposures FOR ALL TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON analytics.ab_test_exposures TO rapport_app;
GRANT SELECT, INSERT, DELETE ON analytics.ab_test_exposures TO rapport_worker;
"""

# The day's bounds in UTC, for a date variable `d`.
_START = "({d}::timestamp AT TIME ZONE 'UTC')"


def _bounds(d: str, plus: int = 0) -> str:
    day = d if plus == 0 else f"({d} + {plus})"
    return _START.format(d=day)


ROLLUP = rf"""
CREATE FUNCTION analytics.rollup_day(p_day date) RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        day_start timestamptz := {_bounds("p_day")};
        day_end timestamptz := {_bounds("p_day", 1)};
        written integer;
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'analytics.rollup_day is system work' USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- Two runs of one day wait for each other; each replaces the day whole.
        PERFORM pg_advisory_xact_lock(hashtext('analytics.rollup_day'), p_day - DATE '2000-01-01');
        DELETE FROM analytics.daily_metrics WHERE day = p_day;
        DELETE FROM analytics.feature_usage WHERE day = p_day;

        -- One pass over the day's events (the CTE is read once, materialised).
        WITH e AS MATERIALIZED (
            SELECT event_name, user_id, session_id, properties
              FROM analytics.events
             WHERE created_at >= day_start AND created_at < day_end
        ), figures (metric, dimension, value) AS (
            SELECT 'events', '', count(*) FROM e
            UNION ALL SELECT 'active_users', '', count(DISTINCT user_id) FROM e
            UNION ALL SELECT 'sessions', '', count(DISTINCT session_id) FROM e
            UNION ALL SELECT 'events_by_name', event_name, count(*) FROM e GROUP BY event_name
            UNION ALL SELECT 'new_users', '', count(*) FROM auth.users u
                       WHERE u.created_at >= day_start AND u.created_at < day_end AND u.kind = 'person'
            UNION ALL SELECT 'messages_sent', '', count(*) FROM messaging.messages m
                       WHERE m.created_at >= day_start AND m.created_at < day_end AND m.type <> 'system'
            UNION ALL SELECT 'active_senders', '', count(DISTINCT m.sender_id) FROM messaging.messages m
                       WHERE m.created_at >= day_start AND m.created_at < day_end AND m.type <> 'system'
            UNION ALL SELECT 'conversations_created', '', count(*) FROM messaging.conversations c
                       WHERE c.created_at >= day_start AND c.created_at < day_end
            UNION ALL SELECT 'files_uploaded', '', count(*) FROM media.files f
                       WHERE f.created_at >= day_start AND f.created_at < day_end
            UNION ALL SELECT 'bytes_uploaded', '', coalesce(sum(f.size_bytes), 0) FROM media.files f
                       WHERE f.created_at >= day_start AND f.created_at < day_end
        ), features AS (
            INSERT INTO analytics.feature_usage (day, feature, uses, users)
            SELECT p_day, left(btrim(properties ->> 'feature'), 100), count(*), count(DISTINCT user_id)
              FROM e
             WHERE event_name = 'feature_used' AND nullif(btrim(properties ->> 'feature'), '') IS NOT NULL
             GROUP BY 2
        )
        INSERT INTO analytics.daily_metrics (day, metric, dimension, value)
        SELECT p_day, metric, dimension, value FROM figures;
        GET DIAGNOSTICS written = ROW_COUNT;

        PERFORM analytics.rollup_retention(p_day);
        RETURN written;
    END
    $$;
COMMENT ON FUNCTION analytics.rollup_day(date) IS
    'Replace the figures of one UTC day (daily_metrics, feature_usage) and the retention cohorts it '
    'touches; idempotent, system work only. The number of daily_metrics rows written.';

CREATE FUNCTION analytics.rollup_retention(p_day date) RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        -- Whose day 1, 7 or 30 may be p_day: those who signed up in the 30 days before it,
        -- and their whole weeks.
        first_day date := date_trunc('week', p_day - 30)::date;
        today date := (now() AT TIME ZONE 'UTC')::date;
        written integer;
    BEGIN
        IF NOT auth.is_system() THEN
            RAISE EXCEPTION 'analytics.rollup_retention is system work' USING ERRCODE = 'insufficient_privilege';
        END IF;
        DELETE FROM analytics.user_retention
         WHERE (cohort_period = 'day' AND cohort_start BETWEEN p_day - 30 AND p_day)
            OR (cohort_period = 'week' AND cohort_start BETWEEN first_day AND p_day);
        WITH members AS (
            SELECT u.id, (u.created_at AT TIME ZONE 'UTC')::date AS signup_day
              FROM auth.users u
             WHERE u.kind = 'person' AND u.created_at >= {_bounds("first_day")}
               AND u.created_at < {_bounds("p_day", 1)}
        ), seen AS (
            SELECT m.signup_day,
                   EXISTS (SELECT 1 FROM analytics.events e WHERE e.user_id = m.id
                              AND e.created_at >= {_bounds("m.signup_day", 1)}
                              AND e.created_at < {_bounds("m.signup_day", 2)}) AS d1,
                   EXISTS (SELECT 1 FROM analytics.events e WHERE e.user_id = m.id
                              AND e.created_at >= {_bounds("m.signup_day", 7)}
                              AND e.created_at < {_bounds("m.signup_day", 8)}) AS d7,
                   EXISTS (SELECT 1 FROM analytics.events e WHERE e.user_id = m.id
                              AND e.created_at >= {_bounds("m.signup_day", 30)}
                              AND e.created_at < {_bounds("m.signup_day", 31)}) AS d30
              FROM members m
        ), cohorts AS (
            SELECT 'day' AS period, s.signup_day AS start, s.signup_day AS last_signup, s.d1, s.d7, s.d30
              FROM seen s WHERE s.signup_day >= p_day - 30
            UNION ALL
            SELECT 'week', date_trunc('week', s.signup_day)::date, s.signup_day, s.d1, s.d7, s.d30 FROM seen s
        )
        INSERT INTO analytics.user_retention
            (cohort_period, cohort_start, cohort_size, retained_day_1, retained_day_7, retained_day_30)
        -- Day N is known once it is over for the cohort's last member (UTC).
        SELECT c.period, c.start, count(*),
               CASE WHEN max(c.last_signup) + 1 < today THEN count(*) FILTER (WHERE c.d1) END,
               CASE WHEN max(c.last_signup) + 7 < today THEN count(*) FILTER (WHERE c.d7) END,
               CASE WHEN max(c.last_signup) + 30 < today THEN count(*) FILTER (WHERE c.d30) END
          FROM cohorts c
         GROUP BY c.period, c.start;
        GET DIAGNOSTICS written = ROW_COUNT;
        RETURN written;
    END
    $$;
COMMENT ON FUNCTION analytics.rollup_retention(date) IS
    'Recompute the sign-up cohorts whose day 1, 7 or 30 may fall on a UTC day; system work only.';

REVOKE ALL ON FUNCTION analytics.rollup_day(date), analytics.rollup_retention(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics.rollup_day(date), analytics.rollup_retention(date) TO rapport_worker;
"""

EXPERIMENTS = r"""
-- The variant of a person: the first 60 bits of sha256(key || ':' || user id), as a point
-- in [0, 2^60), laid over the variants' cumulative weights. Stable for a person and a test
-- as long as the weights stay; a person's exposure keeps their variant for good anyway.
CREATE FUNCTION analytics.assign_variant(p_key text, p_user uuid, p_variants jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH point AS (
            SELECT ('x' || substr(encode(sha256(convert_to(p_key || ':' || p_user::text, 'UTF8')), 'hex'), 1, 15))
                       ::bit(60)::bigint::numeric AS h
        ), v AS (
            SELECT x.i, x.v ->> 'name' AS name,
                   sum((x.v ->> 'weight')::bigint) OVER (ORDER BY x.i) AS upto,
                   sum((x.v ->> 'weight')::bigint) OVER () AS total
              FROM jsonb_array_elements(p_variants) WITH ORDINALITY AS x (v, i)
        )
        SELECT v.name FROM v, point WHERE point.h * v.total < v.upto * 1152921504606846976
         ORDER BY v.i LIMIT 1
    $$;
COMMENT ON FUNCTION analytics.assign_variant(text, uuid, jsonb) IS
    'The variant a person falls in: sha256(key:user) over the cumulative weights (rapport.analytics._experiments).';

CREATE FUNCTION analytics.expose(p_key text)
    RETURNS TABLE (variant text, running boolean, exposed_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        me uuid := auth.current_user_id();
        t analytics.ab_tests;
    BEGIN
        IF me IS NULL THEN
            RETURN;
        END IF;
        SELECT * INTO t FROM analytics.ab_tests a WHERE a.key = p_key;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        IF t.status = 'running' THEN
            INSERT INTO analytics.ab_test_exposures AS x (test_id, user_id, variant)
            VALUES (t.id, me, analytics.assign_variant(t.key, me, t.variants))
            ON CONFLICT (test_id, user_id) DO NOTHING;
        END IF;
        RETURN QUERY SELECT x.variant, t.status = 'running', x.exposed_at
                       FROM analytics.ab_test_exposures x WHERE x.test_id = t.id AND x.user_id = me;
        IF NOT FOUND THEN
            -- A stopped test never seen: its first variant (the control), nothing recorded.
            RETURN QUERY SELECT t.variants -> 0 ->> 'name', false, NULL::timestamptz;
        END IF;
    END
    $$;
COMMENT ON FUNCTION analytics.expose(text) IS
    'The acting person''s variant of a test, recording their first exposure while it runs; no row '
    'for a test that does not exist.';

-- Per variant: people exposed, and those of them with the conversion event after their
-- exposure (and before the test stopped).
CREATE FUNCTION analytics.experiment_counts(p_test uuid)
    RETURNS TABLE (variant text, exposures bigint, conversions bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NOT (auth.is_system() OR access.is_platform_admin()) THEN
            RETURN;
        END IF;
        RETURN QUERY
            SELECT v.name, count(x.user_id), count(x.user_id) FILTER (WHERE EXISTS (
                       SELECT 1 FROM analytics.events e
                        WHERE e.user_id = x.user_id AND e.event_name = t.conversion_event
                          AND e.created_at >= x.exposed_at AND e.created_at <= coalesce(t.stopped_at, 'infinity')))
              FROM analytics.ab_tests t
             CROSS JOIN LATERAL jsonb_array_elements(t.variants) WITH ORDINALITY AS j (v, i)
             CROSS JOIN LATERAL (SELECT j.v ->> 'name' AS name, j.i) v
              LEFT JOIN analytics.ab_test_exposures x ON x.test_id = t.id AND x.variant = v.name
             WHERE t.id = p_test
             GROUP BY v.name, v.i
             ORDER BY v.i;
    END
    $$;
COMMENT ON FUNCTION analytics.experiment_counts(uuid) IS
    'Exposures and conversions per variant of a test; nothing for anyone but administrators and system work.';

-- Per step: people who reached it in order, each step within window_seconds of their first.
CREATE FUNCTION analytics.funnel_counts(p_funnel uuid, p_from timestamptz, p_to timestamptz)
    RETURNS TABLE (step integer, event_name text, users bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NOT (auth.is_system() OR access.is_platform_admin()) THEN
            RETURN;
        END IF;
        RETURN QUERY
            WITH RECURSIVE steps AS (
                SELECT s.step, s.event_name, f.window_seconds * interval '1 second' AS span
                  FROM analytics.funnel_events s JOIN analytics.funnels f ON f.id = s.funnel_id
                 WHERE s.funnel_id = p_funnel
            ), reach (user_id, step, at, started) AS (
                SELECT e.user_id, 1, min(e.created_at), min(e.created_at)
                  FROM analytics.events e JOIN steps s ON s.step = 1 AND e.event_name = s.event_name
                 WHERE e.created_at >= p_from AND e.created_at < p_to AND e.user_id IS NOT NULL
                 GROUP BY e.user_id
                UNION ALL
                SELECT r.user_id, r.step + 1, n.at, r.started
                  FROM reach r
                  JOIN steps s ON s.step = r.step + 1
                 CROSS JOIN LATERAL (
                    SELECT e.created_at AS at FROM analytics.events e
                     WHERE e.user_id = r.user_id AND e.event_name = s.event_name
                       AND e.created_at >= r.at AND e.created_at <= r.started + s.span
                     ORDER BY e.created_at LIMIT 1) n
            )
            SELECT s.step, s.event_name, count(r.user_id)
              FROM steps s LEFT JOIN reach r ON r.step = s.step
             GROUP BY s.step, s.event_name
             ORDER BY s.step;
    END
    $$;
COMMENT ON FUNCTION analytics.funnel_counts(uuid, timestamptz, timestamptz) IS
    'People per funnel step, among those whose first step falls in [p_from, p_to); administrators only.';

REVOKE ALL ON FUNCTION analytics.assign_variant(text, uuid, jsonb), analytics.expose(text),
    analytics.experiment_counts(uuid), analytics.funnel_counts(uuid, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics.assign_variant(text, uuid, jsonb), analytics.expose(text),
    analytics.experiment_counts(uuid), analytics.funnel_counts(uuid, timestamptz, timestamptz)
    TO rapport_app, rapport_worker;
"""

_GUARD = """
        IF NOT (auth.is_system() OR access.is_platform_admin()) THEN
            RETURN;
        END IF;"""


def _definer(name: str, args: str, returns: str, body: str, comment: str) -> str:
    """A report function of the `views` schema: a definer function that answers platform
    administrators and system work, and nobody else."""
    return f"""
CREATE FUNCTION views.{name}({args})
    RETURNS TABLE ({returns})
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN{_GUARD}
        RETURN QUERY
{body};
    END
    $$;
COMMENT ON FUNCTION views.{name} IS '{comment}';
"""


VIEWS = (
    """
CREATE SCHEMA views;
COMMENT ON SCHEMA views IS
    'Seed 004''s reporting views: each reads through an administrators-only definer function.';
GRANT USAGE ON SCHEMA views TO rapport_app, rapport_worker;
"""
    + _definer(
        "user_growth_between",
        "p_from date, p_to date",
        "day date, new_users bigint, total_users bigint",
        """
            WITH bounds AS (
                SELECT coalesce(p_from, (SELECT min((u.created_at AT TIME ZONE 'UTC')::date) FROM auth.users u
                                          WHERE u.kind = 'person')) AS lo,
                       coalesce(p_to, (now() AT TIME ZONE 'UTC')::date) AS hi
            ), days AS (
                SELECT d::date AS day FROM bounds, generate_series(bounds.lo, bounds.hi, interval '1 day') d
            ), per_day AS (
                SELECT (u.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
                  FROM auth.users u, bounds
                 WHERE u.kind = 'person' AND u.created_at < (bounds.hi + 1)::timestamp AT TIME ZONE 'UTC'
                 GROUP BY 1
            )
            SELECT d.day, coalesce(p.n, 0)::bigint,
                   ((SELECT coalesce(sum(q.n), 0) FROM per_day q, bounds WHERE q.day < bounds.lo)
                    + sum(coalesce(p.n, 0)) OVER (ORDER BY d.day))::bigint
              FROM days d LEFT JOIN per_day p ON p.day = d.day
             ORDER BY d.day""",
        "Sign-ups per UTC day and the running total of accounts (people, not bots).",
    )
    + _definer(
        "active_users_at",
        "p_day date",
        "day date, dau bigint, wau bigint, mau bigint, stickiness numeric",
        """
            WITH e AS (
                SELECT ev.user_id, (ev.created_at AT TIME ZONE 'UTC')::date AS day FROM analytics.events ev
                 WHERE ev.user_id IS NOT NULL
                   AND ev.created_at >= (p_day - 29)::timestamp AT TIME ZONE 'UTC'
                   AND ev.created_at < (p_day + 1)::timestamp AT TIME ZONE 'UTC'
            ), n AS (
                SELECT count(DISTINCT e.user_id) FILTER (WHERE e.day = p_day) AS dau,
                       count(DISTINCT e.user_id) FILTER (WHERE e.day > p_day - 7) AS wau,
                       count(DISTINCT e.user_id) AS mau
                  FROM e
            )
            SELECT p_day, n.dau, n.wau, n.mau,
                   CASE WHEN n.mau > 0 THEN round(n.dau::numeric / n.mau, 4) END FROM n""",
        "People with an event on the UTC day (DAU), its 7 days (WAU), its 30 days (MAU); stickiness DAU/MAU.",
    )
    + _definer(
        "user_engagement_at",
        "p_day date",
        "user_id uuid, active_days integer, events bigint, last_active_at timestamptz, engagement_level text",
        """
            WITH e AS (
                SELECT ev.user_id, count(DISTINCT (ev.created_at AT TIME ZONE 'UTC')::date)::integer AS days,
                       count(*) AS n, max(ev.created_at) AS last_at
                  FROM analytics.events ev
                 WHERE ev.user_id IS NOT NULL
                   AND ev.created_at >= (p_day - 29)::timestamp AT TIME ZONE 'UTC'
                   AND ev.created_at < (p_day + 1)::timestamp AT TIME ZONE 'UTC'
                 GROUP BY ev.user_id
            )
            SELECT u.id, coalesce(e.days, 0), coalesce(e.n, 0), e.last_at,
                   CASE WHEN e.days >= 20 THEN 'power_user'
                        WHEN e.days >= 8 THEN 'active_user'
                        WHEN e.days >= 1 THEN 'casual_user'
                        ELSE 'inactive_user' END
              FROM auth.users u LEFT JOIN e ON e.user_id = u.id
             WHERE u.kind = 'person' AND u.status = 'active' AND u.deleted_at IS NULL
               AND u.created_at < (p_day + 1)::timestamp AT TIME ZONE 'UTC'""",
        "Each active account by the days it was active in the 30 UTC days to p_day: "
        "power 20+, active 8-19, casual 1-7, inactive 0.",
    )
    + _definer(
        "messaging_stats_between",
        "p_from date, p_to date",
        "day date, messages bigint, messages_with_media bigint, active_senders bigint, conversations_created bigint",
        """
            WITH days AS (
                SELECT d::date AS day FROM generate_series(p_from, p_to, interval '1 day') d
            ), m AS (
                SELECT (x.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n,
                       count(*) FILTER (WHERE x.attachment_count > 0) AS media,
                       count(DISTINCT x.sender_id) AS senders
                  FROM messaging.messages x
                 WHERE x.type <> 'system' AND x.created_at >= p_from::timestamp AT TIME ZONE 'UTC'
                   AND x.created_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
                 GROUP BY 1
            ), c AS (
                SELECT (x.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
                  FROM messaging.conversations x
                 WHERE x.created_at >= p_from::timestamp AT TIME ZONE 'UTC'
                   AND x.created_at < (p_to + 1)::timestamp AT TIME ZONE 'UTC'
                 GROUP BY 1
            )
            SELECT d.day, coalesce(m.n, 0), coalesce(m.media, 0), coalesce(m.senders, 0), coalesce(c.n, 0)
              FROM days d LEFT JOIN m ON m.day = d.day LEFT JOIN c ON c.day = d.day
             ORDER BY d.day""",
        "Messages (not system ones), messages with files, distinct senders and new conversations per UTC day.",
    )
    + _definer(
        "conversation_analytics_top",
        "p_limit integer",
        "conversation_id uuid, type text, member_count integer, message_count bigint, messages_7d bigint, "
        "senders_7d bigint, created_at timestamptz, last_message_at timestamptz",
        """
            SELECT c.id, c.type, c.member_count, c.last_seq, coalesce(w.n, 0), coalesce(w.senders, 0),
                   c.created_at, c.last_message_at
              FROM messaging.conversations c
              LEFT JOIN LATERAL (
                SELECT count(*) AS n, count(DISTINCT m.sender_id) AS senders FROM messaging.messages m
                 WHERE m.conversation_id = c.id AND m.created_at >= now() - interval '7 days'
              ) w ON true
             WHERE c.deleted_at IS NULL
             ORDER BY coalesce(w.n, 0) DESC, c.last_message_at DESC NULLS LAST, c.id
             LIMIT p_limit""",
        "Per conversation: members, messages ever (its last sequence number), messages and senders in the "
        "last 7 days; the busiest first.",
    )
    + _definer(
        "media_storage",
        "",
        "grouped_by text, key text, files bigint, bytes numeric",
        """
            SELECT CASE WHEN GROUPING(f.owner_id) = 0 THEN 'user'
                        WHEN GROUPING(f.kind) = 0 THEN 'kind'
                        WHEN GROUPING(date_trunc('month', f.created_at AT TIME ZONE 'UTC')) = 0 THEN 'month'
                        ELSE 'total' END,
                   coalesce(f.owner_id::text, f.kind,
                            to_char(date_trunc('month', f.created_at AT TIME ZONE 'UTC'), 'YYYY-MM'), ''),
                   count(*), coalesce(sum(f.size_bytes), 0)::numeric
              FROM media.files f
             WHERE f.deleted_at IS NULL
             GROUP BY GROUPING SETS ((f.owner_id), (f.kind), (date_trunc('month', f.created_at AT TIME ZONE 'UTC')),
                                     ())""",
        "Live files and their bytes (as uploaded, before sharing of equal bytes) by owner, kind, month and in all.",
    )
    + r"""
CREATE FUNCTION views.slow_queries_missing() RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')
                    THEN 'The extension pg_stat_statements is not installed in this database (it needs '
                         'shared_preload_libraries = ''pg_stat_statements'' and CREATE EXTENSION by a superuser; '
                         'the embedded server has no contrib extensions).'
               END
    $$;
COMMENT ON FUNCTION views.slow_queries_missing() IS
    'Why views.slow_queries is empty: NULL when pg_stat_statements is there.';

CREATE FUNCTION views.slow_queries_top(p_limit integer)
    RETURNS TABLE (query text, calls bigint, total_ms double precision, mean_ms double precision, rows bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        home text;
    BEGIN
        IF NOT (auth.is_system() OR access.is_platform_admin()) THEN
            RETURN;
        END IF;
        SELECT n.nspname INTO home FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
         WHERE x.extname = 'pg_stat_statements';
        IF home IS NULL THEN
            RETURN;
        END IF;
        -- Named at run time: the extension may come after this migration, or never.
        RETURN QUERY EXECUTE format(
            'SELECT s.query, s.calls, s.total_exec_time, s.mean_exec_time, s.rows'
            '  FROM %I.pg_stat_statements s WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())'
            ' ORDER BY s.mean_exec_time DESC LIMIT $1', home) USING p_limit;
    END
    $$;
COMMENT ON FUNCTION views.slow_queries_top(integer) IS
    'The statements of this database slowest on average (pg_stat_statements); empty without it, '
    'views.slow_queries_missing() says why; administrators only.';

CREATE VIEW views.user_growth WITH (security_barrier) AS
    SELECT * FROM views.user_growth_between(NULL, NULL);
CREATE VIEW views.active_users_summary WITH (security_barrier) AS
    SELECT * FROM views.active_users_at((now() AT TIME ZONE 'UTC')::date);
CREATE VIEW views.user_engagement WITH (security_barrier) AS
    SELECT * FROM views.user_engagement_at((now() AT TIME ZONE 'UTC')::date);
CREATE VIEW views.messaging_stats WITH (security_barrier) AS
    SELECT * FROM views.messaging_stats_between((now() AT TIME ZONE 'UTC')::date - 29, (now() AT TIME ZONE 'UTC')::date);
CREATE VIEW views.conversation_analytics WITH (security_barrier) AS
    SELECT * FROM views.conversation_analytics_top(NULL);
CREATE VIEW views.media_storage_summary WITH (security_barrier) AS
    SELECT * FROM views.media_storage();
CREATE VIEW views.slow_queries WITH (security_barrier) AS
    SELECT * FROM views.slow_queries_top(100);
COMMENT ON VIEW views.user_growth IS 'Sign-ups per UTC day since the first, with the running total.';
COMMENT ON VIEW views.active_users_summary IS 'Today''s DAU, WAU, MAU and stickiness (UTC).';
COMMENT ON VIEW views.user_engagement IS 'Each active account''s engagement level over the last 30 UTC days.';
COMMENT ON VIEW views.messaging_stats IS 'Messaging per UTC day, the last 30 days.';
COMMENT ON VIEW views.conversation_analytics IS 'Per conversation: members, messages, recent activity.';
COMMENT ON VIEW views.media_storage_summary IS 'Storage by owner, file kind, month and in all.';
COMMENT ON VIEW views.slow_queries IS
    'The slowest statements on average, from pg_stat_statements; empty without the extension '
    '(views.slow_queries_missing() says why).';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA views FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA views TO rapport_app, rapport_worker;
GRANT SELECT ON ALL TABLES IN SCHEMA views TO rapport_app, rapport_worker;
"""
)


def upgrade() -> None:
    run_sql(TABLES)
    run_sql(POLICIES)
    run_sql(ROLLUP)
    run_sql(EXPERIMENTS)
    run_sql(VIEWS)


def downgrade() -> None:
    run_sql(
        """
        DROP SCHEMA views CASCADE;
        DROP FUNCTION analytics.funnel_counts(uuid, timestamptz, timestamptz);
        DROP FUNCTION analytics.experiment_counts(uuid);
        DROP FUNCTION analytics.expose(text);
        DROP FUNCTION analytics.assign_variant(text, uuid, jsonb);
        DROP FUNCTION analytics.rollup_day(date);
        DROP FUNCTION analytics.rollup_retention(date);
        DROP TABLE analytics.ab_test_exposures, analytics.ab_tests, analytics.funnel_events, analytics.funnels,
                   analytics.user_retention, analytics.feature_usage, analytics.daily_metrics;
        """
    )
