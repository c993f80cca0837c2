"""The people part of the `matching` schema as SQLAlchemy Core tables for queries:
dating profiles and their photos, ECR-R assessments, feature vectors and the cached
similarity results. Migration 2026_11_30_0031 creates them with their policies and
triggers; these mirror their columns (tests/kernel/test_catalogue.py).

On a server with pgvector, `user_features` also has a generated `embedding` column; it
is left out here (only rapport.modules.matching._similarity reads it, in SQL of its own)."""

from sqlalchemy import (
    REAL,
    Boolean,
    Column,
    Date,
    Double,
    Integer,
    Numeric,
    SmallInteger,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from rapport.kernel.models import EMPTY_TEXT_ARRAY, NOW, metadata, timestamp, user_column, uuid_column

profiles = Table(
    "profiles",
    metadata,
    user_column("user_id", primary_key=True),
    Column("birth_date", Date, nullable=False),
    Column("gender", Text, nullable=False),
    Column("bio", Text),
    Column("interests", ARRAY(Text), nullable=False, server_default=EMPTY_TEXT_ARRAY),
    Column("latitude", Double),
    Column("longitude", Double),
    Column("city", Text),
    Column("country", Text),
    Column("pref_genders", ARRAY(Text), nullable=False, server_default=EMPTY_TEXT_ARRAY),
    Column("pref_age_min", Integer, nullable=False, server_default=text("18")),
    Column("pref_age_max", Integer, nullable=False, server_default=text("99")),
    Column("pref_distance_km", Integer, nullable=False, server_default=text("50")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="matching",
)

assessments = Table(
    "assessments",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("responses", ARRAY(SmallInteger), nullable=False),
    Column("anxiety_score", Numeric(3, 2), nullable=False),
    Column("avoidance_score", Numeric(3, 2), nullable=False),
    Column("style", Text, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="matching",
)

user_features = Table(
    "user_features",
    metadata,
    user_column("user_id", primary_key=True),
    Column("version", Integer, nullable=False),
    Column("features", ARRAY(REAL), nullable=False),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="matching",
)

match_results = Table(
    "match_results",
    metadata,
    user_column("user_id", primary_key=True),
    user_column("target_user_id", primary_key=True),
    Column("score", Double, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="matching",
)
