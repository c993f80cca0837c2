"""matching nearest: the daily job's candidates come from a nearest-first index.

Why: issue 15's daily job for 100k people. Ranking every person within someone's
distance grows with how many live nearby, so a city of a few thousand made the job
quadratic. The job now takes each person's nearest eligible people first, walking a GiST
index on the profile's point that also carries the columns the eligibility checks read
(an index-only walk, nothing fetched from the table for the people it passes over), and
scores only those (docs/decisions/0026). It replaces `matching.in_box` and the B-tree on
(latitude, longitude), which only the daily job used.

Revision ID: 2026_11_30_0034
Revises: 2026_11_30_0033
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0034"
down_revision = "2026_11_30_0033"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


NEAREST = r"""
-- Nearest first (ORDER BY point <-> point). INCLUDE carries what the daily job's checks
-- read, so the people it passes over cost an index tuple each and no visit to the table.
-- (A box bound is of no use here: the point-in-box operator is not leakproof, so under
-- row-level security PostgreSQL cannot put it in an index condition.)
CREATE INDEX ix_profiles_place ON matching.profiles
    USING gist (point(longitude, latitude))
    INCLUDE (user_id, latitude, longitude, gender, birth_date, pref_genders, pref_age_min, pref_age_max,
             pref_distance_km)
    WHERE latitude IS NOT NULL AND is_active;
DROP INDEX matching.ix_profiles_latitude_longitude;
DROP FUNCTION matching.in_box(double precision, double precision, double precision, double precision,
                              double precision);
"""


def upgrade() -> None:
    run_sql(NEAREST)


def downgrade() -> None:
    run_sql(
        """
        CREATE FUNCTION matching.in_box(lat double precision, lon double precision,
                                        center_lat double precision, center_lon double precision,
                                        km double precision)
            RETURNS boolean
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$
                SELECT lat BETWEEN center_lat - km / 111.19508 AND center_lat + km / 111.19508
                   AND (abs(center_lat) + km / 111.19508 >= 89.0
                        OR least(abs(lon - center_lon), 360 - abs(lon - center_lon))
                           <= km / (111.19508 * cos(radians(least(89.0, abs(center_lat) + km / 111.19508)))))
            $$;
        CREATE INDEX ix_profiles_latitude_longitude ON matching.profiles (latitude, longitude)
            WHERE latitude IS NOT NULL;
        DROP INDEX matching.ix_profiles_place;
        """
    )
