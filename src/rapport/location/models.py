"""The `location` schema's tables as SQLAlchemy Core sees them, mirroring migration
2026_11_30_0047 (its indexes, CHECKs, policies and functions live there only;
tests/kernel/test_catalogue.py compares the two)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Integer,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import CIDR, INET, JSONB, UUID

from rapport.kernel.models import EMPTY_OBJECT, NOW, metadata, timestamp, user_column, uuid_column

ip_addresses = Table(
    "ip_addresses",
    metadata,
    uuid_column("id", primary_key=True),
    Column("network", CIDR, nullable=False),
    Column("ip_version", SmallInteger, nullable=False),
    Column("country_code", Text),
    Column("country_name", Text),
    Column("region", Text),
    Column("city", Text),
    Column("postal_code", Text),
    Column("latitude", Double),
    Column("longitude", Double),
    Column("accuracy_radius_km", Integer),
    Column("time_zone", Text),
    Column("isp", Text),
    Column("asn", BigInteger),
    Column("organization", Text),
    Column("is_proxy", Boolean, nullable=False, server_default=false()),
    Column("is_vpn", Boolean, nullable=False, server_default=false()),
    Column("is_tor", Boolean, nullable=False, server_default=false()),
    Column("is_hosting", Boolean, nullable=False, server_default=false()),
    Column("threat_level", Text, nullable=False, server_default="low"),
    Column("risk_score", Integer, nullable=False, server_default=text("0")),
    Column("connection_type", Text, nullable=False, server_default="unknown"),
    Column("source", Text, nullable=False),
    Column("lookup_count", BigInteger, nullable=False, server_default=text("0")),
    timestamp("last_seen_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    UniqueConstraint("network"),
    schema="location",
)

user_locations = Table(
    "user_locations",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("location_type", Text, nullable=False),
    Column("latitude", Double, nullable=False),
    Column("longitude", Double, nullable=False),
    Column("accuracy_m", Double),
    Column("country_code", Text),
    Column("region", Text),
    Column("city", Text),
    Column("ip_address", INET),
    Column("previous_location_id", UUID(as_uuid=True), ForeignKey("location.user_locations.id", ondelete="SET NULL")),
    Column("distance_km", Double),
    Column("seconds_since_previous", Double),
    Column("speed_kmh", Double),
    Column("is_moving", Boolean, nullable=False, server_default=false()),
    Column("is_new_country", Boolean, nullable=False, server_default=false()),
    timestamp("captured_at", nullable=False, server_default=NOW),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="location",
)

suspicious_locations = Table(
    "suspicious_locations",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column(
        "user_location_id",
        UUID(as_uuid=True),
        ForeignKey("location.user_locations.id", ondelete="CASCADE"),
    ),
    Column("reason", Text, nullable=False),
    Column("ip_address", INET, nullable=False),
    Column("country_code", Text),
    Column("city", Text),
    Column("previous_location_id", UUID(as_uuid=True), ForeignKey("location.user_locations.id", ondelete="SET NULL")),
    Column("distance_km", Double),
    Column("speed_kmh", Double),
    Column("risk_score", Integer, nullable=False, server_default=text("0")),
    Column("sign_in_method", Text, nullable=False),
    Column("second_factor_required", Boolean, nullable=False, server_default=false()),
    Column("details", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="location",
)

geofences = Table(
    "geofences",
    metadata,
    uuid_column("id", primary_key=True),
    # NULL: platform-wide, made by an administrator.
    user_column("owner_id", nullable=True),
    user_column("created_by", nullable=True, ondelete="SET NULL"),
    Column("name", Text, nullable=False),
    Column("shape", Text, nullable=False),
    Column("center_latitude", Double),
    Column("center_longitude", Double),
    Column("radius_m", Double),
    Column("polygon", JSONB),
    Column("is_active", Boolean, nullable=False, server_default=true()),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="location",
)

location_events = Table(
    "location_events",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("geofence_id", UUID(as_uuid=True), ForeignKey("location.geofences.id", ondelete="CASCADE"), nullable=False),
    Column(
        "user_location_id",
        UUID(as_uuid=True),
        ForeignKey("location.user_locations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_type", Text, nullable=False),
    Column("latitude", Double, nullable=False),
    Column("longitude", Double, nullable=False),
    timestamp("occurred_at", nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="location",
)
