"""The `realtime` schema's one table, as a SQLAlchemy Core table (migration
2026_11_29_0018 creates it with its policies and definer functions)."""

from sqlalchemy import Table

from rapport.kernel.models import metadata, timestamp, user_column

# When each person was last visibly present, to the minute (rapport.realtime._presence).
presence = Table(
    "presence",
    metadata,
    user_column("user_id", primary_key=True),
    timestamp("last_seen_at", nullable=False),
    schema="realtime",
)
