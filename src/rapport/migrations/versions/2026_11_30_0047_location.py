"""location.

Seed 004's `location` schema: an importable IP geolocation database (`ip_addresses`, one
row per network), each person's location history (`user_locations`, from their sign-ins
and from their devices), the sign-ins flagged as impossible travel or from a risky
address (`suspicious_locations`), geofences (a circle or a polygon, a person's own or
platform-wide) and the entering and leaving of them (`location_events`), and seed 004's
`location.calculate_distance` (haversine).

Why: where a person signs in from is how a stolen password shows (a sign-in from the
other side of the world an hour after the last one, or through Tor); the database keeps a
person's whereabouts theirs alone, whatever a query gets wrong.

Revision ID: 2026_11_30_0047
Revises: 2026_11_30_0046
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0047"
down_revision = "2026_11_30_0046"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


SCHEMA = """
CREATE SCHEMA location;
COMMENT ON SCHEMA location IS
    'Location (seed 004): IP geolocation, location history, suspicious sign-ins, geofences and their events.';
GRANT USAGE ON SCHEMA location TO rapport_app, rapport_worker;
"""

TABLES = """
CREATE TABLE location.ip_addresses (
    id uuid NOT NULL,
    network cidr NOT NULL,
    ip_version smallint NOT NULL,
    country_code text,
    country_name text,
    region text,
    city text,
    postal_code text,
    latitude double precision,
    longitude double precision,
    accuracy_radius_km integer,
    time_zone text,
    isp text,
    asn bigint,
    organization text,
    is_proxy boolean NOT NULL DEFAULT false,
    is_vpn boolean NOT NULL DEFAULT false,
    is_tor boolean NOT NULL DEFAULT false,
    is_hosting boolean NOT NULL DEFAULT false,
    threat_level text NOT NULL DEFAULT 'low',
    risk_score integer NOT NULL DEFAULT 0,
    connection_type text NOT NULL DEFAULT 'unknown',
    source text NOT NULL,
    lookup_count bigint NOT NULL DEFAULT 0,
    last_seen_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_ip_addresses PRIMARY KEY (id),
    CONSTRAINT uq_ip_addresses_network UNIQUE (network),
    CONSTRAINT ck_ip_addresses_ip_version CHECK (ip_version = family(network)),
    CONSTRAINT ck_ip_addresses_country_code CHECK (country_code ~ '^[A-Z]{2}$'),
    CONSTRAINT ck_ip_addresses_latitude CHECK (latitude BETWEEN -90 AND 90),
    CONSTRAINT ck_ip_addresses_longitude CHECK (longitude BETWEEN -180 AND 180),
    CONSTRAINT ck_ip_addresses_coordinates CHECK ((latitude IS NULL) = (longitude IS NULL)),
    CONSTRAINT ck_ip_addresses_accuracy_radius_km CHECK (accuracy_radius_km >= 0),
    CONSTRAINT ck_ip_addresses_asn CHECK (asn >= 0),
    CONSTRAINT ck_ip_addresses_threat_level CHECK (threat_level IN ('low', 'medium', 'high', 'critical')),
    CONSTRAINT ck_ip_addresses_risk_score CHECK (risk_score BETWEEN 0 AND 100),
    CONSTRAINT ck_ip_addresses_connection_type CHECK (
        connection_type IN ('unknown', 'residential', 'mobile', 'business', 'hosting', 'satellite')),
    CONSTRAINT ck_ip_addresses_source CHECK (source IN ('maxmind_csv', 'dbip_csv', 'mmdb')),
    CONSTRAINT ck_ip_addresses_lookup_count CHECK (lookup_count >= 0)
);
COMMENT ON TABLE location.ip_addresses IS
    'IP geolocation (seed 004 ip_addresses): one row per network, from an imported database '
    '(`rapport location import`: MaxMind GeoLite2 or DB-IP CSV, or MMDB). System work only.';
COMMENT ON COLUMN location.ip_addresses.network IS
    'The network (a single address is a /32 or /128). An address is looked up by the networks containing '
    'it, the longest prefix first (rapport.location._lookup).';
COMMENT ON COLUMN location.ip_addresses.accuracy_radius_km IS
    'How far from the coordinates the address may be (MaxMind accuracy_radius): impossible travel allows for it.';
COMMENT ON COLUMN location.ip_addresses.risk_score IS
    '0-100, from the anonymity flags at import: Tor exit 90, public proxy 80, VPN 60, hosting 40.';
COMMENT ON COLUMN location.ip_addresses.source IS 'The format it was imported from.';
COMMENT ON COLUMN location.ip_addresses.lookup_count IS 'Sign-ins located through this network (seed 004 usage tracking).';
-- Serves rapport.location._lookup.lookup_ip: the networks containing an address (>>=). SP-GiST's
-- radix tree over the address bits: at 3M networks a lookup reads about 11 buffers in 0.06 ms,
-- where GiST's inet_ops read about 140 in 1.5 ms (bench/location_lookup.py).
CREATE INDEX ix_ip_addresses_network_spgist ON location.ip_addresses USING spgist (network inet_ops);

CREATE TABLE location.user_locations (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    location_type text NOT NULL,
    latitude double precision NOT NULL,
    longitude double precision NOT NULL,
    accuracy_m double precision,
    country_code text,
    region text,
    city text,
    ip_address inet,
    previous_location_id uuid,
    distance_km double precision,
    seconds_since_previous double precision,
    speed_kmh double precision,
    is_moving boolean NOT NULL DEFAULT false,
    is_new_country boolean NOT NULL DEFAULT false,
    captured_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_user_locations PRIMARY KEY (id),
    CONSTRAINT fk_user_locations_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_user_locations_previous_location_id_user_locations FOREIGN KEY (previous_location_id)
        REFERENCES location.user_locations (id) ON DELETE SET NULL,
    CONSTRAINT ck_user_locations_location_type CHECK (location_type IN ('ip_based', 'gps', 'wifi', 'cell_tower')),
    CONSTRAINT ck_user_locations_latitude CHECK (latitude BETWEEN -90 AND 90),
    CONSTRAINT ck_user_locations_longitude CHECK (longitude BETWEEN -180 AND 180),
    CONSTRAINT ck_user_locations_accuracy_m CHECK (accuracy_m >= 0),
    CONSTRAINT ck_user_locations_country_code CHECK (country_code ~ '^[A-Z]{2}$'),
    CONSTRAINT ck_user_locations_distance_km CHECK (distance_km >= 0),
    CONSTRAINT ck_user_locations_ip_based CHECK ((location_type = 'ip_based') = (ip_address IS NOT NULL))
);
COMMENT ON TABLE location.user_locations IS
    'Where a person was (seed 004 user_locations): from a sign-in''s address (ip_based, written by system '
    'work) or sent by their device (gps, wifi, cell_tower). Their own alone.';
COMMENT ON COLUMN location.user_locations.accuracy_m IS
    'Radius in metres within which the person was (from the device, or the IP database''s accuracy radius).';
COMMENT ON COLUMN location.user_locations.previous_location_id IS
    'Their location captured just before this one, which distance_km, seconds_since_previous and speed_kmh measure from.';
COMMENT ON COLUMN location.user_locations.is_moving IS
    'Moved farther than both accuracies allow, faster than walking pace (5 km/h), since the previous location.';
COMMENT ON COLUMN location.user_locations.is_new_country IS 'In another country than the previous location.';
-- Serves rapport.location._locations.list_locations: a person's history, newest first.
CREATE INDEX ix_user_locations_user_id ON location.user_locations (user_id, id DESC);
-- Serves rapport.location._locations.previous_location (the last one captured before a new one).
CREATE INDEX ix_user_locations_user_id_captured_at ON location.user_locations (user_id, captured_at DESC);
-- Serves the self foreign key (a location's successors forget it when it goes).
CREATE INDEX ix_user_locations_previous_location_id ON location.user_locations (previous_location_id);

CREATE TABLE location.suspicious_locations (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    user_location_id uuid,
    reason text NOT NULL,
    ip_address inet NOT NULL,
    country_code text,
    city text,
    previous_location_id uuid,
    distance_km double precision,
    speed_kmh double precision,
    risk_score integer NOT NULL DEFAULT 0,
    sign_in_method text NOT NULL,
    second_factor_required boolean NOT NULL DEFAULT false,
    details jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_suspicious_locations PRIMARY KEY (id),
    CONSTRAINT fk_suspicious_locations_user_id_users FOREIGN KEY (user_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_suspicious_locations_user_location_id_user_locations FOREIGN KEY (user_location_id)
        REFERENCES location.user_locations (id) ON DELETE CASCADE,
    CONSTRAINT fk_suspicious_locations_previous_location_id_user_locations FOREIGN KEY (previous_location_id)
        REFERENCES location.user_locations (id) ON DELETE SET NULL,
    CONSTRAINT ck_suspicious_locations_reason CHECK (reason IN ('impossible_travel', 'risky_address')),
    CONSTRAINT ck_suspicious_locations_risk_score CHECK (risk_score BETWEEN 0 AND 100),
    CONSTRAINT ck_suspicious_locations_details CHECK (jsonb_typeof(details) = 'object')
);
COMMENT ON TABLE location.suspicious_locations IS
    'A sign-in flagged (seed 004 suspicious_locations): too far too fast from the previous location '
    '(impossible_travel) or from a high-risk address (risky_address). Written by system work; read by its person.';
COMMENT ON COLUMN location.suspicious_locations.user_location_id IS
    'Where the sign-in was placed; NULL when the IP database knows the address''s risk but not its place.';
COMMENT ON COLUMN location.suspicious_locations.speed_kmh IS
    'The speed the move implies once both locations'' accuracies are allowed for.';
COMMENT ON COLUMN location.suspicious_locations.second_factor_required IS
    'Whether the sign-in was held for the account''s second factor because of this flag.';
-- Serves rapport.location._locations.list_suspicious: a person's flags, newest first.
CREATE INDEX ix_suspicious_locations_user_id ON location.suspicious_locations (user_id, id DESC);
-- Serves the foreign key (a flag goes with its location).
CREATE INDEX ix_suspicious_locations_user_location_id ON location.suspicious_locations (user_location_id);
-- Serves the foreign key to the previous location.
CREATE INDEX ix_suspicious_locations_previous_location_id ON location.suspicious_locations (previous_location_id);

CREATE TABLE location.geofences (
    id uuid NOT NULL,
    owner_id uuid,
    created_by uuid,
    name text NOT NULL,
    shape text NOT NULL,
    center_latitude double precision,
    center_longitude double precision,
    radius_m double precision,
    polygon jsonb,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_geofences PRIMARY KEY (id),
    CONSTRAINT fk_geofences_owner_id_users FOREIGN KEY (owner_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_geofences_created_by_users FOREIGN KEY (created_by) REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_geofences_name CHECK (length(name) BETWEEN 1 AND 120),
    CONSTRAINT ck_geofences_shape CHECK (shape IN ('circle', 'polygon')),
    CONSTRAINT ck_geofences_circle CHECK (shape <> 'circle' OR (
        center_latitude BETWEEN -90 AND 90 AND center_longitude BETWEEN -180 AND 180
        AND radius_m > 0 AND radius_m <= 1000000 AND polygon IS NULL)),
    CONSTRAINT ck_geofences_polygon CHECK (shape <> 'polygon' OR (
        jsonb_typeof(polygon) = 'array' AND jsonb_array_length(polygon) BETWEEN 3 AND 500
        AND center_latitude IS NULL AND center_longitude IS NULL AND radius_m IS NULL))
);
COMMENT ON TABLE location.geofences IS
    'A geographic boundary (seed 004 geofences): a circle (centre and radius in metres) or a polygon '
    '([[lat, lon], ...], at least three points). A person''s own (owner_id), or platform-wide (owner_id NULL, '
    'made by administrators), which everyone''s locations are tested against.';
COMMENT ON COLUMN location.geofences.polygon IS
    'The polygon''s vertices as a JSON array of [latitude, longitude] pairs, closed implicitly.';
-- Serves rapport.location._geofences.list_geofences and the events query: a person's own geofences.
CREATE INDEX ix_geofences_owner_id ON location.geofences (owner_id, id DESC);
-- Serves the events query: the active platform-wide geofences.
CREATE INDEX ix_geofences_platform ON location.geofences (id) WHERE owner_id IS NULL AND is_active;
-- Serves the foreign key to the administrator who made it.
CREATE INDEX ix_geofences_created_by ON location.geofences (created_by);

CREATE TABLE location.location_events (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    geofence_id uuid NOT NULL,
    user_location_id uuid NOT NULL,
    event_type text NOT NULL,
    latitude double precision NOT NULL,
    longitude double precision NOT NULL,
    occurred_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_location_events PRIMARY KEY (id),
    CONSTRAINT fk_location_events_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_location_events_geofence_id_geofences FOREIGN KEY (geofence_id)
        REFERENCES location.geofences (id) ON DELETE CASCADE,
    CONSTRAINT fk_location_events_user_location_id_user_locations FOREIGN KEY (user_location_id)
        REFERENCES location.user_locations (id) ON DELETE CASCADE,
    CONSTRAINT ck_location_events_event_type CHECK (event_type IN ('enter', 'exit'))
);
COMMENT ON TABLE location.location_events IS
    'A person entering or leaving a geofence (seed 004 location_events), computed when a new location of '
    'theirs arrives. Their own alone.';
-- Serves rapport.location._geofences.list_events: a person's events, newest first.
CREATE INDEX ix_location_events_user_id ON location.location_events (user_id, id DESC);
-- Serves the foreign key (a geofence's events go with it).
CREATE INDEX ix_location_events_geofence_id ON location.location_events (geofence_id);
-- Serves the foreign key (an event goes with its location).
CREATE INDEX ix_location_events_user_location_id ON location.location_events (user_location_id);
"""

FUNCTIONS = """
-- Seed 004's function: the great-circle distance in kilometres (haversine, mean Earth
-- radius 6371.0088 km), as a DECIMAL rounded to the metre. No PostGIS needed.
CREATE FUNCTION location.calculate_distance(lat1 double precision, lon1 double precision,
                                            lat2 double precision, lon2 double precision)
    RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT round(CAST(2 * 6371.0088 * asin(least(1.0, sqrt(
            power(sin(radians(lat2 - lat1) / 2), 2)
            + cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians(lon2 - lon1) / 2), 2)))) AS numeric), 3)
    $$;
COMMENT ON FUNCTION location.calculate_distance(double precision, double precision, double precision, double precision)
    IS 'Great-circle distance in km between two points given in degrees (haversine), to the metre.';

-- Point in polygon by ray casting over [[lat, lon], ...] (edges as straight lines in
-- latitude and longitude: right for geofences of city size, not across the antimeridian).
CREATE FUNCTION location.in_polygon(polygon jsonb, lat double precision, lon double precision)
    RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        n integer := jsonb_array_length(polygon);
        inside boolean := false;
        i integer;
        j integer := n - 1;
        yi double precision; xi double precision; yj double precision; xj double precision;
    BEGIN
        FOR i IN 0 .. n - 1 LOOP
            yi := (polygon -> i ->> 0)::double precision; xi := (polygon -> i ->> 1)::double precision;
            yj := (polygon -> j ->> 0)::double precision; xj := (polygon -> j ->> 1)::double precision;
            IF ((yi > lat) <> (yj > lat)) AND (lon < (xj - xi) * (lat - yi) / (yj - yi) + xi) THEN
                inside := NOT inside;
            END IF;
            j := i;
        END LOOP;
        RETURN inside;
    END
    $$;
COMMENT ON FUNCTION location.in_polygon(jsonb, double precision, double precision) IS
    'Whether a point lies inside a polygon of [latitude, longitude] vertices (ray casting).';

-- Whether a point lies in a geofence of either shape.
CREATE FUNCTION location.in_geofence(shape text, center_latitude double precision,
                                     center_longitude double precision, radius_m double precision,
                                     polygon jsonb, lat double precision, lon double precision)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT CASE shape
            WHEN 'circle' THEN location.calculate_distance(center_latitude, center_longitude, lat, lon) * 1000
                               <= radius_m
            WHEN 'polygon' THEN location.in_polygon(polygon, lat, lon)
            ELSE false
        END
    $$;
COMMENT ON FUNCTION location.in_geofence(text, double precision, double precision, double precision, jsonb,
                                         double precision, double precision) IS
    'Whether a point lies in a circle (centre, radius in metres) or a polygon geofence.';

REVOKE ALL ON FUNCTION location.calculate_distance(double precision, double precision, double precision,
    double precision), location.in_polygon(jsonb, double precision, double precision),
    location.in_geofence(text, double precision, double precision, double precision, jsonb, double precision,
    double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION location.calculate_distance(double precision, double precision, double precision,
    double precision), location.in_polygon(jsonb, double precision, double precision),
    location.in_geofence(text, double precision, double precision, double precision, jsonb, double precision,
    double precision) TO rapport_app, rapport_worker;
"""

TRIGGERS = """
CREATE TRIGGER tr_ip_addresses_updated_at BEFORE UPDATE ON location.ip_addresses
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
CREATE TRIGGER tr_geofences_updated_at BEFORE UPDATE ON location.geofences
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
"""

POLICIES = """
-- The geolocation database is no one's data: it is the worker role's alone (the server's
-- role has no privilege on it), written by system work only (the import, sign-ins'
-- usage counts). Its read policy is a plain `true` for that role on purpose: `>>=` is
-- not leakproof, so behind a policy that calls a function (auth.is_system()) PostgreSQL
-- would not take it into the index and would scan every network.
ALTER TABLE location.ip_addresses ENABLE ROW LEVEL SECURITY;
ALTER TABLE location.ip_addresses FORCE ROW LEVEL SECURITY;
CREATE POLICY ip_addresses_read ON location.ip_addresses FOR SELECT TO rapport_worker
    USING (true);
CREATE POLICY ip_addresses_system ON location.ip_addresses
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON location.ip_addresses TO rapport_worker;

-- A person's locations are theirs: they read and add their own; sign-ins add theirs as
-- system work. Nobody changes one.
ALTER TABLE location.user_locations ENABLE ROW LEVEL SECURITY;
ALTER TABLE location.user_locations FORCE ROW LEVEL SECURITY;
CREATE POLICY user_locations_own_read ON location.user_locations FOR SELECT
    USING (user_id = auth.current_user_id());
CREATE POLICY user_locations_own_insert ON location.user_locations FOR INSERT
    WITH CHECK (user_id = auth.current_user_id() AND location_type <> 'ip_based');
CREATE POLICY user_locations_system ON location.user_locations
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT ON location.user_locations TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON location.user_locations TO rapport_worker;

ALTER TABLE location.suspicious_locations ENABLE ROW LEVEL SECURITY;
ALTER TABLE location.suspicious_locations FORCE ROW LEVEL SECURITY;
CREATE POLICY suspicious_locations_own_read ON location.suspicious_locations FOR SELECT
    USING (user_id = auth.current_user_id());
CREATE POLICY suspicious_locations_system ON location.suspicious_locations
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON location.suspicious_locations TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON location.suspicious_locations TO rapport_worker;

-- Everyone reads their own geofences and the active platform-wide ones; a person writes
-- their own, an administrator the platform's.
ALTER TABLE location.geofences ENABLE ROW LEVEL SECURITY;
ALTER TABLE location.geofences FORCE ROW LEVEL SECURITY;
CREATE POLICY geofences_read ON location.geofences FOR SELECT
    USING (owner_id = auth.current_user_id()
           OR (owner_id IS NULL AND (is_active OR access.is_platform_admin())));
CREATE POLICY geofences_insert ON location.geofences FOR INSERT
    WITH CHECK (owner_id = auth.current_user_id() OR (owner_id IS NULL AND access.is_platform_admin()));
CREATE POLICY geofences_update ON location.geofences FOR UPDATE
    USING (owner_id = auth.current_user_id() OR (owner_id IS NULL AND access.is_platform_admin()))
    WITH CHECK (owner_id = auth.current_user_id() OR (owner_id IS NULL AND access.is_platform_admin()));
CREATE POLICY geofences_delete ON location.geofences FOR DELETE
    USING (owner_id = auth.current_user_id() OR (owner_id IS NULL AND access.is_platform_admin()));
CREATE POLICY geofences_system ON location.geofences
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON location.geofences TO rapport_app, rapport_worker;

-- A person's events are theirs; written in the transaction that adds their location,
-- for a location of theirs and a geofence they may see.
ALTER TABLE location.location_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE location.location_events FORCE ROW LEVEL SECURITY;
CREATE POLICY location_events_own_read ON location.location_events FOR SELECT
    USING (user_id = auth.current_user_id());
CREATE POLICY location_events_own_insert ON location.location_events FOR INSERT
    WITH CHECK (user_id = auth.current_user_id()
                AND EXISTS (SELECT 1 FROM location.geofences g WHERE g.id = geofence_id)
                AND EXISTS (SELECT 1 FROM location.user_locations l
                             WHERE l.id = user_location_id AND l.user_id = auth.current_user_id()));
CREATE POLICY location_events_system ON location.location_events
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT ON location.location_events TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON location.location_events TO rapport_worker;
"""


def upgrade() -> None:
    run_sql(SCHEMA)
    run_sql(TABLES)
    run_sql(FUNCTIONS)
    run_sql(TRIGGERS)
    run_sql(POLICIES)


def downgrade() -> None:
    run_sql("DROP SCHEMA location CASCADE;")
