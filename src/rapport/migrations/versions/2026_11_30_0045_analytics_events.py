"""analytics_events: product events (seed 004 analytics.events), sessions and crash reports.

Why: issue 17. Clients send what people do in batches (`POST /v1/analytics/events`), and
Rapport records its own facts (a message sent, a sign-up, a sign-in) from the outbox, into
one table range-partitioned by month on the server's receipt time, like messaging.messages
(kernel.monthly_partitions makes the partitions ahead). Each insert also folds its rows
into `analytics.user_sessions` (a statement trigger over the inserted rows, one upsert per
batch). Crashes are reported apart, deduplicated by the fingerprint of their normalised
stack, with who was affected in a link table that goes with the person.

Only platform administrators (and system work) read any of it; a person writes only
events of their own through the API; nobody updates an event.

Revision ID: 2026_11_30_0045
Revises: 2026_11_30_0044
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0045"
down_revision = "2026_11_30_0044"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


# Kept in step with rapport.analytics.models.CATEGORIES.
CATEGORIES = (
    "'engagement', 'conversion', 'retention', 'acquisition', 'monetization', 'navigation', "
    "'performance', 'error', 'system'"
)

SCHEMA = r"""
CREATE SCHEMA analytics;
COMMENT ON SCHEMA analytics IS
    'Product analytics (seed 004): events, sessions, crash reports, and the reports made from them.';
GRANT USAGE ON SCHEMA analytics TO rapport_app, rapport_worker;
"""

EVENTS = rf"""
CREATE TABLE analytics.events (
    id uuid NOT NULL DEFAULT kernel.uuid7_like(),
    created_at timestamptz NOT NULL DEFAULT now(),
    event_timestamp timestamptz NOT NULL DEFAULT now(),
    user_id uuid,
    session_id uuid,
    event_name text NOT NULL,
    event_category text,
    source text NOT NULL DEFAULT 'client',
    properties jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    platform text,
    device_type text,
    device_model text,
    os_name text,
    os_version text,
    app_version text,
    country text,
    region text,
    city text,
    utm_source text,
    utm_medium text,
    utm_campaign text,
    utm_term text,
    utm_content text,
    network_type text,
    network_quality text,
    duration_ms integer,
    load_time_ms integer,
    CONSTRAINT pk_events PRIMARY KEY (created_at, id),
    CONSTRAINT fk_events_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_events_event_name CHECK (event_name ~ '^[a-z][a-z0-9_.:-]{{0,63}}$'),
    CONSTRAINT ck_events_event_category CHECK (event_category IN ({CATEGORIES})),
    CONSTRAINT ck_events_source CHECK (source IN ('client', 'server')),
    CONSTRAINT ck_events_server_user CHECK (source = 'client' OR user_id IS NOT NULL),
    CONSTRAINT ck_events_properties CHECK (
        jsonb_typeof(properties) = 'object' AND octet_length(properties::text) <= 8192),
    CONSTRAINT ck_events_short_fields CHECK (
        length(platform) <= 32 AND length(device_type) <= 32 AND length(device_model) <= 128
        AND length(os_name) <= 64 AND length(os_version) <= 64 AND length(app_version) <= 64
        AND length(network_type) <= 32 AND length(network_quality) <= 32),
    CONSTRAINT ck_events_place CHECK (length(country) <= 64 AND length(region) <= 128 AND length(city) <= 128),
    CONSTRAINT ck_events_utm CHECK (
        length(utm_source) <= 256 AND length(utm_medium) <= 256 AND length(utm_campaign) <= 256
        AND length(utm_term) <= 256 AND length(utm_content) <= 256),
    CONSTRAINT ck_events_duration_ms CHECK (duration_ms >= 0),
    CONSTRAINT ck_events_load_time_ms CHECK (load_time_ms >= 0)
) PARTITION BY RANGE (created_at);
COMMENT ON TABLE analytics.events IS
    'What people did (seed 004 analytics.events): sent by clients in batches (source client) or recorded by '
    'Rapport from its outbox (source server), range-partitioned by month on created_at '
    '(kernel.monthly_partitions makes them ahead). Read by platform administrators only.';
COMMENT ON COLUMN analytics.events.id IS 'A UUIDv7.';
COMMENT ON COLUMN analytics.events.created_at IS 'When the server received it: the partition key.';
COMMENT ON COLUMN analytics.events.event_timestamp IS
    'When it happened, by the client''s clock (the outbox event''s time for server events); created_at when not sent.';
COMMENT ON COLUMN analytics.events.user_id IS 'The actor; always set for server events.';
COMMENT ON COLUMN analytics.events.session_id IS 'The client''s session (analytics.user_sessions), as the client names it.';
COMMENT ON COLUMN analytics.events.event_name IS
    'What happened: lower case, digits, _ . : -, at most 64 characters (app_open, screen_view, message_sent).';
COMMENT ON COLUMN analytics.events.event_category IS 'engagement, conversion, retention, and so on.';
COMMENT ON COLUMN analytics.events.source IS 'client (sent through the API) or server (recorded by Rapport).';
COMMENT ON COLUMN analytics.events.properties IS 'The event''s own fields: a JSON object of at most 8 KiB.';
COMMENT ON COLUMN analytics.events.duration_ms IS 'How long the action took, by the client.';
COMMENT ON COLUMN analytics.events.load_time_ms IS 'How long a screen took to load, by the client.';
-- Serves a person's events newest first (reports), and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_events_user ON analytics.events (user_id, created_at DESC);
-- Serves a session's events in order.
CREATE INDEX ix_events_session ON analytics.events (session_id, event_timestamp);
-- Serves counts and funnels by event name over time.
CREATE INDEX ix_events_name ON analytics.events (event_name, created_at DESC);
INSERT INTO kernel.monthly_partitions (parent) VALUES ('analytics.events');
SELECT kernel.ensure_partitions();

ALTER TABLE analytics.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.events FORCE ROW LEVEL SECURITY;
-- Read by platform administrators and system work (reports, exports) only.
CREATE POLICY events_read ON analytics.events FOR SELECT
    USING (auth.is_system() OR (SELECT access.is_platform_admin()));
-- A person writes their own client events; system work writes the server's.
CREATE POLICY events_insert ON analytics.events FOR INSERT
    WITH CHECK (auth.is_system() OR (source = 'client' AND user_id = auth.current_user_id()));
-- Retention and erasure are system work; nobody updates an event.
CREATE POLICY events_system_delete ON analytics.events FOR DELETE USING (auth.is_system());
GRANT SELECT, INSERT ON analytics.events TO rapport_app;
GRANT SELECT, INSERT, DELETE ON analytics.events TO rapport_worker;
"""

SESSIONS = r"""
CREATE TABLE analytics.user_sessions (
    session_id uuid NOT NULL,
    user_id uuid NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz NOT NULL,
    duration_ms bigint GENERATED ALWAYS AS ((extract(epoch FROM ended_at - started_at) * 1000)::bigint) STORED,
    event_count integer NOT NULL DEFAULT 0,
    screens_viewed integer NOT NULL DEFAULT 0,
    platform text,
    app_version text,
    device_type text,
    country text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_user_sessions PRIMARY KEY (session_id),
    CONSTRAINT fk_user_sessions_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_user_sessions_span CHECK (ended_at >= started_at),
    CONSTRAINT ck_user_sessions_counts CHECK (event_count >= 0 AND screens_viewed BETWEEN 0 AND event_count)
);
COMMENT ON TABLE analytics.user_sessions IS
    'One row per client session (seed 004 analytics.user_sessions), folded from its events as they are '
    'inserted (analytics.track_sessions): first and last event time, how many events and screen views. '
    'A session id belongs to the person whose events named it first. Read by platform administrators only.';
COMMENT ON COLUMN analytics.user_sessions.started_at IS 'The earliest event_timestamp of its events.';
COMMENT ON COLUMN analytics.user_sessions.ended_at IS 'The latest event_timestamp of its events.';
COMMENT ON COLUMN analytics.user_sessions.screens_viewed IS 'How many of its events are screen_view or page_view.';
-- Serves a person's sessions (reports, retention) and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_user_sessions_user_id ON analytics.user_sessions (user_id, started_at DESC);
-- Serves reports over a time range.
CREATE INDEX ix_user_sessions_started_at ON analytics.user_sessions (started_at);

ALTER TABLE analytics.user_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.user_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY user_sessions_read ON analytics.user_sessions FOR SELECT
    USING (auth.is_system() OR (SELECT access.is_platform_admin()));
CREATE POLICY user_sessions_system ON analytics.user_sessions
    USING (auth.is_system()) WITH CHECK (auth.is_system());
-- Written by analytics.track_sessions, which runs as the owner.
CREATE POLICY user_sessions_definer ON analytics.user_sessions TO rapport_owner USING (true) WITH CHECK (true);
GRANT SELECT ON analytics.user_sessions TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON analytics.user_sessions TO rapport_worker;

-- Definer rights: the person inserting events may not read or change sessions, yet their
-- events move them. It reads only the rows of the statement that fired it, and a session
-- id already held by someone else is left alone (a client cannot add to another's session).
CREATE FUNCTION analytics.track_sessions() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        INSERT INTO analytics.user_sessions AS s (
            session_id, user_id, started_at, ended_at, event_count, screens_viewed,
            platform, app_version, device_type, country)
        SELECT DISTINCT ON (g.session_id)
               g.session_id, g.user_id, g.started_at, g.ended_at, g.event_count, g.screens_viewed,
               g.platform, g.app_version, g.device_type, g.country
          FROM (SELECT a.session_id, a.user_id, min(a.event_timestamp) AS started_at,
                       max(a.event_timestamp) AS ended_at, count(*)::integer AS event_count,
                       (count(*) FILTER (WHERE a.event_name IN ('screen_view', 'page_view')))::integer
                           AS screens_viewed,
                       max(a.platform) AS platform, max(a.app_version) AS app_version,
                       max(a.device_type) AS device_type, max(a.country) AS country
                  FROM added a
                 WHERE a.session_id IS NOT NULL AND a.user_id IS NOT NULL
                 GROUP BY a.session_id, a.user_id) g
         ORDER BY g.session_id, g.event_count DESC, g.user_id
        ON CONFLICT (session_id) DO UPDATE
           SET started_at = least(s.started_at, excluded.started_at),
               ended_at = greatest(s.ended_at, excluded.ended_at),
               event_count = s.event_count + excluded.event_count,
               screens_viewed = s.screens_viewed + excluded.screens_viewed,
               platform = coalesce(excluded.platform, s.platform),
               app_version = coalesce(excluded.app_version, s.app_version),
               device_type = coalesce(excluded.device_type, s.device_type),
               country = coalesce(excluded.country, s.country),
               updated_at = now()
         WHERE s.user_id = excluded.user_id;
        RETURN NULL;
    END
    $$;
COMMENT ON FUNCTION analytics.track_sessions() IS
    'After each insert into analytics.events: fold the inserted rows into analytics.user_sessions, one upsert '
    'per statement; a session id held by another person is left alone.';
REVOKE ALL ON FUNCTION analytics.track_sessions() FROM PUBLIC;
CREATE TRIGGER track_sessions AFTER INSERT ON analytics.events
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION analytics.track_sessions();
"""

CRASHES = r"""
CREATE TABLE analytics.crash_reports (
    id uuid NOT NULL DEFAULT kernel.uuid7_like(),
    fingerprint bytea NOT NULL,
    platform text NOT NULL,
    exception_type text NOT NULL,
    stack_trace text NOT NULL,
    first_app_version text,
    last_app_version text,
    last_os_version text,
    occurrences bigint NOT NULL DEFAULT 1,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_crash_reports PRIMARY KEY (id),
    CONSTRAINT uq_crash_reports_fingerprint UNIQUE (fingerprint),
    CONSTRAINT ck_crash_reports_fingerprint CHECK (octet_length(fingerprint) = 32),
    CONSTRAINT ck_crash_reports_platform CHECK (length(platform) BETWEEN 1 AND 32),
    CONSTRAINT ck_crash_reports_exception_type CHECK (length(exception_type) BETWEEN 1 AND 200),
    CONSTRAINT ck_crash_reports_stack_trace CHECK (length(stack_trace) <= 20000),
    CONSTRAINT ck_crash_reports_versions CHECK (
        length(first_app_version) <= 64 AND length(last_app_version) <= 64 AND length(last_os_version) <= 64),
    CONSTRAINT ck_crash_reports_occurrences CHECK (occurrences >= 1),
    CONSTRAINT ck_crash_reports_seen CHECK (last_seen >= first_seen)
);
COMMENT ON TABLE analytics.crash_reports IS
    'Crashes clients reported (seed 004 analytics.crash_reports), one row per fingerprint: the SHA-256 of the '
    'platform, exception type and normalised stack. Holds no one''s text: the message and who was affected '
    'are in analytics.crash_report_users. Read by platform administrators only.';
COMMENT ON COLUMN analytics.crash_reports.stack_trace IS
    'The normalised stack: addresses, line and column numbers and quoted values taken out.';
COMMENT ON COLUMN analytics.crash_reports.occurrences IS 'How many reports of it arrived.';
-- Serves the administrators' list, most recent first.
CREATE INDEX ix_crash_reports_last_seen ON analytics.crash_reports (last_seen DESC, id DESC);

CREATE TABLE analytics.crash_report_users (
    crash_id uuid NOT NULL,
    user_id uuid NOT NULL,
    occurrences integer NOT NULL DEFAULT 1,
    last_message text,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_crash_report_users PRIMARY KEY (crash_id, user_id),
    CONSTRAINT fk_crash_report_users_crash_id_crash_reports FOREIGN KEY (crash_id)
        REFERENCES analytics.crash_reports (id) ON DELETE CASCADE,
    CONSTRAINT fk_crash_report_users_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_crash_report_users_occurrences CHECK (occurrences >= 1),
    CONSTRAINT ck_crash_report_users_last_message CHECK (length(last_message) <= 2000)
);
COMMENT ON TABLE analytics.crash_report_users IS
    'Who a crash affected, how often, and the last message their client sent with it: goes with the person '
    '(the affected-user count of a crash is the number of its rows). Read by platform administrators only.';
-- Serves the foreign key's ON DELETE CASCADE when an account goes.
CREATE INDEX ix_crash_report_users_user_id ON analytics.crash_report_users (user_id);

ALTER TABLE analytics.crash_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.crash_reports FORCE ROW LEVEL SECURITY;
CREATE POLICY crash_reports_read ON analytics.crash_reports FOR SELECT
    USING (auth.is_system() OR (SELECT access.is_platform_admin()));
CREATE POLICY crash_reports_system ON analytics.crash_reports
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON analytics.crash_reports TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON analytics.crash_reports TO rapport_worker;

ALTER TABLE analytics.crash_report_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.crash_report_users FORCE ROW LEVEL SECURITY;
CREATE POLICY crash_report_users_read ON analytics.crash_report_users FOR SELECT
    USING (auth.is_system() OR (SELECT access.is_platform_admin()));
CREATE POLICY crash_report_users_system ON analytics.crash_report_users
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON analytics.crash_report_users TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON analytics.crash_report_users TO rapport_worker;
"""


INGEST = r"""
-- A person's own bucket of events (rapport.identity._limits' algorithm, one unit per event).
CREATE POLICY rate_limits_own_analytics ON auth.rate_limits
    USING (key = 'analytics-events:' || auth.current_user_id())
    WITH CHECK (key = 'analytics-events:' || auth.current_user_id());

-- A batch of client events, in one statement: who acts and whether their session holds,
-- their consent (none: nothing is kept, and nothing is spent), their rate limit, then one
-- insert of every event (each row through the insert policy: their own, source client).
-- Returns how many were kept, or, past the limit, nothing kept and the seconds to wait.
-- Invoker rights: the policies decide, as for any of the person's writes.
CREATE FUNCTION analytics.ingest_events(
    acting_user uuid, session uuid, api_key uuid, batch jsonb, unit_seconds double precision,
    ceiling_seconds double precision
) RETURNS TABLE (accepted integer, retry_after integer)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        bucket text := 'analytics-events:' || acting_user::text;
        size integer := jsonb_array_length(batch);
        spend interval := make_interval(secs => unit_seconds * jsonb_array_length(batch));
        due timestamptz;
    BEGIN
        PERFORM auth.act_for_request(acting_user, session, api_key);
        IF size = 0 OR NOT compliance.has_consent(acting_user, 'privacy_policy') THEN
            RETURN QUERY SELECT 0, NULL::integer;
            RETURN;
        END IF;
        INSERT INTO auth.rate_limits AS r (key, tat)
        VALUES (bucket, now() + spend)
        ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, now()) + spend
         WHERE greatest(r.tat, now()) + spend <= now() + make_interval(secs => ceiling_seconds)
        RETURNING r.tat INTO due;
        IF NOT FOUND THEN
            SELECT r.tat INTO due FROM auth.rate_limits r WHERE r.key = bucket;
            RETURN QUERY SELECT 0, greatest(1, ceil(extract(epoch FROM due - now())
                + unit_seconds * size - ceiling_seconds))::integer;
            RETURN;
        END IF;
        INSERT INTO analytics.events (
            user_id, session_id, event_name, event_category, source, event_timestamp, properties,
            platform, device_type, device_model, os_name, os_version, app_version, country, region, city,
            utm_source, utm_medium, utm_campaign, utm_term, utm_content, network_type, network_quality,
            duration_ms, load_time_ms)
        SELECT acting_user, e.session_id, e.event_name, e.event_category, 'client',
               coalesce(e.event_timestamp, now()), coalesce(e.properties, '{}'::jsonb),
               e.platform, e.device_type, e.device_model, e.os_name, e.os_version, e.app_version,
               e.country, e.region, e.city, e.utm_source, e.utm_medium, e.utm_campaign, e.utm_term,
               e.utm_content, e.network_type, e.network_quality, e.duration_ms, e.load_time_ms
          FROM jsonb_to_recordset(batch) AS e (
              session_id uuid, event_name text, event_category text, event_timestamp timestamptz,
              properties jsonb, platform text, device_type text, device_model text, os_name text,
              os_version text, app_version text, country text, region text, city text, utm_source text,
              utm_medium text, utm_campaign text, utm_term text, utm_content text, network_type text,
              network_quality text, duration_ms integer, load_time_ms integer);
        RETURN QUERY SELECT size, NULL::integer;
    END
    $$;
COMMENT ON FUNCTION analytics.ingest_events(uuid, uuid, uuid, jsonb, double precision, double precision) IS
    'Keep a batch of the acting user''s client events (a JSON array of objects named as the columns), '
    'in one statement: the session, the privacy_policy consent (without it nothing is kept), the rate '
    'limit (unit_seconds per event, up to ceiling_seconds ahead), one insert. Returns how many were kept '
    'and, when refused by the limit, the seconds to wait.';
REVOKE ALL ON FUNCTION analytics.ingest_events(uuid, uuid, uuid, jsonb, double precision, double precision)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics.ingest_events(uuid, uuid, uuid, jsonb, double precision, double precision)
    TO rapport_app;

-- How far in the outbox Rapport's own events have been recorded (rapport.analytics._server_events).
CREATE TABLE analytics.cursor (
    name text NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_cursor PRIMARY KEY (name),
    CONSTRAINT ck_cursor_name CHECK (length(name) BETWEEN 1 AND 40)
);
COMMENT ON TABLE analytics.cursor IS
    'How far in the outbox the server-event recorder has read (its durable cursor): system work''s alone.';
ALTER TABLE analytics.cursor ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics.cursor FORCE ROW LEVEL SECURITY;
CREATE POLICY cursor_system ON analytics.cursor USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT, UPDATE ON analytics.cursor TO rapport_worker;
"""


def upgrade() -> None:
    run_sql(SCHEMA + EVENTS + SESSIONS + CRASHES + INGEST)


def downgrade() -> None:
    run_sql(
        """
        DROP POLICY rate_limits_own_analytics ON auth.rate_limits;
        DELETE FROM auth.rate_limits WHERE key LIKE 'analytics-events:%';
        DELETE FROM kernel.monthly_partitions WHERE parent = 'analytics.events'::regclass;
        DROP SCHEMA analytics CASCADE;
        """
    )
