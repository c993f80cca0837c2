"""The `social` schema's core tables, as SQLAlchemy Core tables for queries; the
migrations create them with their policies and triggers."""

from sqlalchemy import BigInteger, Boolean, Column, Date, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from rapport.kernel.models import metadata, timestamp


def _uuid(name: str, *, nullable: bool = False, primary_key: bool = False) -> Column:
    return Column(name, UUID(as_uuid=True), nullable=nullable, primary_key=primary_key)


profiles = Table(
    "profiles",
    metadata,
    _uuid("user_id", primary_key=True),
    Column("username", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("bio", Text, nullable=False),
    Column("avatar_url", Text),
    Column("pronouns", Text),
    Column("birth_date", Date),
    Column("language_code", Text),
    Column("timezone", Text),
    Column("links", JSONB, nullable=False),
    Column("interests", ARRAY(Text), nullable=False),
    Column("profile_visibility", Text, nullable=False),
    Column("is_verified", Boolean, nullable=False),
    timestamp("created_at", nullable=False),
    timestamp("updated_at", nullable=False),
    schema="social",
)

settings = Table(
    "settings",
    metadata,
    _uuid("user_id", primary_key=True),
    Column("last_seen_visibility", Text, nullable=False),
    Column("online_status_visibility", Text, nullable=False),
    Column("read_receipts_enabled", Boolean, nullable=False),
    Column("typing_indicators_enabled", Boolean, nullable=False),
    Column("notification_defaults", JSONB, nullable=False),
    Column("theme", Text, nullable=False),
    timestamp("created_at", nullable=False),
    timestamp("updated_at", nullable=False),
    schema="social",
)

blocks = Table(
    "blocks",
    metadata,
    _uuid("blocker_id", primary_key=True),
    _uuid("blocked_id", primary_key=True),
    Column("reason", Text),
    timestamp("created_at", nullable=False),
    schema="social",
)

contact_requests = Table(
    "contact_requests",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("requester_id"),
    _uuid("addressee_id"),
    Column("status", Text, nullable=False),
    Column("message", Text),
    timestamp("created_at", nullable=False),
    timestamp("responded_at"),
    schema="social",
)

contacts = Table(
    "contacts",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("owner_id"),
    _uuid("contact_user_id", nullable=True),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("email", Text),
    Column("phone", Text),
    Column("relationship", Text),
    Column("nickname", Text),
    Column("notes", Text),
    Column("is_favorite", Boolean, nullable=False),
    Column("is_muted", Boolean, nullable=False),
    timestamp("linked_at"),
    timestamp("created_at", nullable=False),
    timestamp("updated_at", nullable=False),
    schema="social",
)

contact_groups = Table(
    "contact_groups",
    metadata,
    _uuid("id", primary_key=True),
    _uuid("owner_id"),
    Column("name", Text, nullable=False),
    timestamp("created_at", nullable=False),
    timestamp("updated_at", nullable=False),
    schema="social",
)

contact_group_members = Table(
    "contact_group_members",
    metadata,
    _uuid("group_id", primary_key=True),
    _uuid("contact_id", primary_key=True),
    _uuid("owner_id"),
    timestamp("created_at", nullable=False),
    schema="social",
)

activity_log = Table(
    "activity_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    _uuid("user_id"),
    Column("action", Text, nullable=False),
    Column("changes", JSONB, nullable=False),
    timestamp("created_at", nullable=False),
    schema="social",
)
