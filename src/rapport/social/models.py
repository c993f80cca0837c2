"""The `social` schema's core tables, as SQLAlchemy Core tables for queries; the
migrations create them with their policies and triggers, and these mirror their columns,
keys and server defaults (tests/kernel/test_catalogue.py compares them)."""

from sqlalchemy import BigInteger, Boolean, Column, Date, ForeignKey, Identity, Table, Text, false, text, true
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from rapport.kernel.models import EMPTY_OBJECT, EMPTY_TEXT_ARRAY, NOW, metadata, timestamp, user_column, uuid_column

# search_vector, generated from username, display name and bio, is left out: only the
# SQL function social.search_profiles reads it, and select(profiles) should not carry it.
profiles = Table(
    "profiles",
    metadata,
    user_column("user_id", primary_key=True),
    Column("username", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("bio", Text, nullable=False, server_default=""),
    Column("avatar_url", Text),
    Column("pronouns", Text),
    Column("birth_date", Date),
    Column("language_code", Text),
    Column("timezone", Text),
    Column("links", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("interests", ARRAY(Text), nullable=False, server_default=EMPTY_TEXT_ARRAY),
    Column("profile_visibility", Text, nullable=False, server_default="public"),
    Column("is_verified", Boolean, nullable=False, server_default=false()),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="social",
)

settings = Table(
    "settings",
    metadata,
    user_column("user_id", primary_key=True),
    Column("last_seen_visibility", Text, nullable=False, server_default="contacts"),
    Column("online_status_visibility", Text, nullable=False, server_default="contacts"),
    Column("read_receipts_enabled", Boolean, nullable=False, server_default=true()),
    Column("typing_indicators_enabled", Boolean, nullable=False, server_default=true()),
    Column(
        "notification_defaults",
        JSONB,
        nullable=False,
        server_default=text("""'{"messages": true, "mentions": true, "contact_requests": true}'::jsonb"""),
    ),
    Column("theme", Text, nullable=False, server_default="system"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    # Who finds the account by its verified phone number (social._phone_lookup).
    Column("phone_discoverability", Text, nullable=False, server_default="nobody"),
    schema="social",
)

blocks = Table(
    "blocks",
    metadata,
    user_column("blocker_id", primary_key=True),
    # No foreign key (2026_11_29_0008): any id may be blocked, an account's or not.
    uuid_column("blocked_id", primary_key=True),
    Column("reason", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="social",
)

contact_requests = Table(
    "contact_requests",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("requester_id"),
    user_column("addressee_id"),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("message", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("responded_at"),
    schema="social",
)

contacts = Table(
    "contacts",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("owner_id"),
    # Outlives the other account: the row stays, as a contact without one.
    user_column("contact_user_id", nullable=True, ondelete="SET NULL"),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("email", Text),
    Column("phone", Text),
    Column("relationship", Text),
    Column("nickname", Text),
    Column("notes", Text),
    Column("is_favorite", Boolean, nullable=False, server_default=false()),
    Column("is_muted", Boolean, nullable=False, server_default=false()),
    timestamp("linked_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="social",
)

contact_groups = Table(
    "contact_groups",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("owner_id"),
    Column("name", Text, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="social",
)

contact_group_members = Table(
    "contact_group_members",
    metadata,
    Column(
        "group_id",
        UUID(as_uuid=True),
        ForeignKey("social.contact_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("contact_id", UUID(as_uuid=True), ForeignKey("social.contacts.id", ondelete="CASCADE"), primary_key=True),
    user_column("owner_id"),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="social",
)

activity_log = Table(
    "activity_log",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    user_column("user_id"),
    Column("action", Text, nullable=False),
    Column("changes", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="social",
)
