"""The `community` schema as SQLAlchemy Core tables for queries: tags, stories, habits and
their check-ins, gardens and profile extras. Migration 2026_11_30_0030 creates them with
their policies, functions and triggers; these mirror their columns
(tests/kernel/test_catalogue.py)."""

from sqlalchemy import Column, Computed, Date, ForeignKey, SmallInteger, Table, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID

from rapport.kernel.models import EMPTY_OBJECT, EMPTY_TEXT_ARRAY, NOW, metadata, timestamp, user_column, uuid_column


def _tag() -> Column[str]:
    return Column("tag", Text, ForeignKey("community.tags.name"), nullable=False, primary_key=True)


tags = Table(
    "tags",
    metadata,
    Column("name", Text, primary_key=True),
    user_column("created_by", nullable=True, ondelete="SET NULL"),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="community",
)

user_tags = Table(
    "user_tags",
    metadata,
    user_column("user_id", primary_key=True),
    _tag(),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="community",
)

stories = Table(
    "stories",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("title", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("visibility", Text, nullable=False, server_default=text("'private'::text")),
    Column("tags_cached", ARRAY(Text), nullable=False, server_default=EMPTY_TEXT_ARRAY),
    Column(
        "search",
        TSVECTOR,
        Computed("to_tsvector('simple'::regconfig, ((title || ' '::text) || content))", persisted=True),
    ),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="community",
)

story_tags = Table(
    "story_tags",
    metadata,
    Column("story_id", UUID(as_uuid=True), ForeignKey("community.stories.id", ondelete="CASCADE"), primary_key=True),
    _tag(),
    schema="community",
)

habits = Table(
    "habits",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("name", Text, nullable=False),
    Column("frequency", Text, nullable=False, server_default=text("'daily'::text")),
    Column("custom_days", SmallInteger),
    Column("meta", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="community",
)

habit_checkins = Table(
    "habit_checkins",
    metadata,
    Column("habit_id", UUID(as_uuid=True), ForeignKey("community.habits.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    user_column("user_id"),
    Column("note", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="community",
)

gardens = Table(
    "gardens",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("name", Text, nullable=False),
    Column("theme", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    UniqueConstraint("user_id"),
    schema="community",
)

profile_extras = Table(
    "profile_extras",
    metadata,
    user_column("user_id", primary_key=True),
    Column("journaling_frequency", SmallInteger, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="community",
)
