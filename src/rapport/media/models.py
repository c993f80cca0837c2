"""The `media` schema's tables as SQLAlchemy Core sees them, mirroring migration
2026_11_30_0020 (its indexes, CHECKs, policies, views and definer functions live there
only; tests/kernel/test_catalogue.py compares the two)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from rapport.kernel.models import EMPTY_OBJECT, NOW, metadata, timestamp, user_column, uuid_column

# The values the CHECK constraints allow.
StorageProvider = Literal["local", "s3"]
Kind = Literal["image", "video", "audio", "document", "other"]
Purpose = Literal["attachment", "profile_photo", "album", "comment", "general"]
FileStatus = Literal["processing", "ready", "quarantined", "failed"]
ScanStatus = Literal["pending", "clean", "infected", "error"]
ThumbnailSize = Literal["small", "medium", "large"]
ThumbnailType = Literal["image/webp", "image/jpeg"]
Step = Literal["scan", "metadata", "thumbnails"]
StepStatus = Literal["queued", "running", "completed", "failed"]
Permission = Literal["view", "comment"]


def _file_column(name: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> Column[object]:
    """A column naming a file, with what happens when the file row goes."""
    return Column(name, UUID(as_uuid=True), ForeignKey("media.files.id", ondelete=ondelete), nullable=nullable)


def _blob_column(name: str, *, nullable: bool = False) -> Column[bytes]:
    """A column naming stored bytes by their SHA-256."""
    return Column(name, LargeBinary, ForeignKey("media.blobs.sha256"), nullable=nullable)


# Bytes once per content. No grant to the server's role: definer functions and system work only.
blobs = Table(
    "blobs",
    metadata,
    Column("sha256", LargeBinary, primary_key=True),
    Column("size_bytes", BigInteger, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("storage_provider", Text, nullable=False),
    Column("storage_key", Text, nullable=False),
    timestamp("reserved_at", nullable=False, server_default=NOW),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="media",
)

# One row per upload; read as media.may_read_file says.
files = Table(
    "files",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("owner_id"),
    Column("file_name", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("declared_type", Text),
    Column("kind", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    _blob_column("sha256"),
    _blob_column("public_sha256", nullable=True),
    Column("purpose", Text, nullable=False, server_default="general"),
    Column("status", Text, nullable=False, server_default="processing"),
    Column("scan_status", Text, nullable=False, server_default="pending"),
    Column("scan_signature", Text),
    Column("width", Integer),
    Column("height", Integer),
    Column("has_alpha", Boolean),
    Column("dominant_color", Text),
    Column("blurhash", Text),
    Column("duration_seconds", Numeric),
    Column("codec", Text),
    Column("frame_rate", Numeric),
    Column("audio_channels", Integer),
    Column("sample_rate", Integer),
    Column("bitrate", Integer),
    Column("page_count", Integer),
    Column("word_count", Integer),
    Column("metadata", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("download_count", BigInteger, nullable=False, server_default=text("0")),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    timestamp("deleted_at"),
    schema="media",
)

thumbnails = Table(
    "thumbnails",
    metadata,
    Column("file_id", UUID(as_uuid=True), ForeignKey("media.files.id", ondelete="CASCADE"), primary_key=True),
    Column("size", Text, primary_key=True),
    _blob_column("sha256"),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("content_type", Text, nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="media",
)

processing = Table(
    "processing",
    metadata,
    Column("file_id", UUID(as_uuid=True), ForeignKey("media.files.id", ondelete="CASCADE"), primary_key=True),
    Column("step", Text, primary_key=True),
    Column("status", Text, nullable=False, server_default="queued"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("error", Text),
    timestamp("queued_at", nullable=False, server_default=NOW),
    timestamp("started_at"),
    timestamp("completed_at"),
    schema="media",
)

# tus uploads in progress; their bytes are in the staging folder.
uploads = Table(
    "uploads",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("owner_id"),
    Column("length", BigInteger, nullable=False),
    Column("offset", BigInteger, nullable=False, server_default=text("0")),
    Column("file_name", Text),
    Column("declared_type", Text),
    Column("purpose", Text, nullable=False, server_default="general"),
    Column("metadata", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    _file_column("file_id", nullable=True, ondelete="SET NULL"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    timestamp("expires_at", nullable=False, server_default=text("(now() + '24:00:00'::interval)")),
    schema="media",
)

# Written by the send alone (a definer function of messaging's).
attachments = Table(
    "attachments",
    metadata,
    Column("message_id", UUID(as_uuid=True), primary_key=True),
    timestamp("message_created_at", nullable=False),
    Column(
        "conversation_id",
        UUID(as_uuid=True),
        ForeignKey("messaging.conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", BigInteger, nullable=False),
    Column("file_id", UUID(as_uuid=True), ForeignKey("media.files.id", ondelete="CASCADE"), primary_key=True),
    Column("position", SmallInteger, nullable=False, server_default=text("0")),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="media",
)

profile_photos = Table(
    "profile_photos",
    metadata,
    user_column("user_id", primary_key=True),
    Column("position", SmallInteger, primary_key=True),
    _file_column("file_id"),
    timestamp("created_at", nullable=False, server_default=NOW),
    UniqueConstraint("user_id", "file_id"),
    schema="media",
)

albums = Table(
    "albums",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("owner_id"),
    Column("title", Text, nullable=False),
    Column("description", Text),
    _file_column("cover_file_id", nullable=True, ondelete="SET NULL"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    timestamp("deleted_at"),
    schema="media",
)

album_items = Table(
    "album_items",
    metadata,
    Column("album_id", UUID(as_uuid=True), ForeignKey("media.albums.id", ondelete="CASCADE"), primary_key=True),
    Column("file_id", UUID(as_uuid=True), ForeignKey("media.files.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("caption", Text),
    timestamp("added_at", nullable=False, server_default=NOW),
    UniqueConstraint("album_id", "position", deferrable=True, initially="DEFERRED"),
    schema="media",
)

shared_files = Table(
    "shared_files",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("owner_id"),
    _file_column("file_id", nullable=True),
    Column("album_id", UUID(as_uuid=True), ForeignKey("media.albums.id", ondelete="CASCADE")),
    user_column("shared_with", nullable=True),
    Column("link_token_hash", LargeBinary),
    Column("permission", Text, nullable=False, server_default="view"),
    timestamp("expires_at"),
    timestamp("revoked_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="media",
)

file_versions = Table(
    "file_versions",
    metadata,
    Column("file_id", UUID(as_uuid=True), ForeignKey("media.files.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    _blob_column("sha256"),
    Column("size_bytes", BigInteger, nullable=False),
    Column("content_type", Text, nullable=False),
    user_column("created_by", nullable=True, ondelete="SET NULL"),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="media",
)

file_comments = Table(
    "file_comments",
    metadata,
    uuid_column("id", primary_key=True),
    _file_column("file_id"),
    user_column("author_id"),
    Column("body", Text, nullable=False),
    _file_column("attachment_file_id", nullable=True, ondelete="SET NULL"),
    Column("parent_id", UUID(as_uuid=True), ForeignKey("media.file_comments.id", ondelete="CASCADE")),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("edited_at"),
    timestamp("deleted_at"),
    schema="media",
)
