"""The `auth` schema's tables, as SQLAlchemy Core tables for queries.

The migrations create them (with their policies, triggers and comments); these mirror
the columns, keys and server defaults (tests/kernel/test_catalogue.py compares them).
"""

import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB, UUID

from rapport.kernel.models import EMPTY_OBJECT, NOW, metadata, timestamp


def _user_fk() -> Column[uuid.UUID]:
    return Column("user_id", UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False)


users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    # NULL for an account registered with a phone number alone.
    Column("email", Text),
    Column("password_hash", Text),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    timestamp("email_verified_at"),
    Column("failed_login_attempts", Integer, nullable=False, server_default=text("0")),
    # Seed 004's account lock. Rapport never locks an account (locks hold one client, in
    # auth.login_throttle: docs/decisions/0003), so it stays empty for operators' tools.
    timestamp("locked_until"),
    timestamp("last_login_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    timestamp("deleted_at"),
    # E.164; verified once an SMS code came back (identity._phones).
    Column("phone_number", Text),
    timestamp("phone_verified_at"),
    # person, bot or guest (migration 2026_11_30_0035): only a person has a password.
    Column("kind", Text, nullable=False, server_default="person"),
    schema="auth",
)

identities = Table(
    "identities",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("provider", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("email", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("last_login_at"),
    UniqueConstraint("provider", "subject"),
    schema="auth",
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("device_type", Text, nullable=False, server_default="unknown"),
    Column("device_name", Text),
    Column("user_agent", Text),
    Column("ip_address", INET),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    timestamp("last_active_at", nullable=False, server_default=NOW),
    timestamp("expires_at", nullable=False),
    timestamp("revoked_at"),
    Column("revoked_reason", Text),
    schema="auth",
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("session_id", UUID(as_uuid=True), ForeignKey("auth.sessions.id", ondelete="CASCADE"), nullable=False),
    _user_fk(),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("expires_at", nullable=False),
    timestamp("used_at"),
    schema="auth",
)

otp_verifications = Table(
    "otp_verifications",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("purpose", Text, nullable=False),
    Column("identifier", Text, nullable=False),
    Column("code_hash", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False),
    timestamp("expires_at", nullable=False),
    timestamp("consumed_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    Column("identifier_type", Text, nullable=False, server_default="email"),
    schema="auth",
)

totp_credentials = Table(
    "totp_credentials",
    metadata,
    Column("user_id", UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE"), primary_key=True),
    Column("secret_encrypted", LargeBinary, nullable=False),
    timestamp("confirmed_at"),
    Column("last_used_step", BigInteger),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    # A code by SMS may stand in for the authenticator app at sign-in (identity._phone_signin).
    Column("sms_fallback", Boolean, nullable=False, server_default=false()),
    schema="auth",
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("code_hash", LargeBinary, nullable=False),
    timestamp("used_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="auth",
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("name", Text, nullable=False),
    Column("prefix", Text, nullable=False),
    Column("key_hash", LargeBinary, nullable=False, unique=True),
    timestamp("expires_at"),
    timestamp("last_used_at"),
    timestamp("revoked_at"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="auth",
)

login_history = Table(
    "login_history",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("session_id", UUID(as_uuid=True), ForeignKey("auth.sessions.id", ondelete="SET NULL")),
    Column("method", Text, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Column("failure_reason", Text),
    Column("ip_address", INET),
    Column("user_agent", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="auth",
)

security_events = Table(
    "security_events",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _user_fk(),
    Column("event_type", Text, nullable=False),
    Column("severity", Text, nullable=False, server_default="info"),
    Column("ip_address", INET),
    Column("user_agent", Text),
    Column("details", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="auth",
)

login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", Text, primary_key=True),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    timestamp("window_started_at", nullable=False, server_default=NOW),
    timestamp("locked_until"),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="auth",
)

rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", Text, primary_key=True),
    timestamp("tat", nullable=False),
    schema="auth",
)

spent_tokens = Table(
    "spent_tokens",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    timestamp("expires_at", nullable=False),
    schema="auth",
)

# SMS queued per UTC day, against the deployment's daily cap (identity._phone_codes).
sms_daily_usage = Table(
    "sms_daily_usage",
    metadata,
    Column("day", Date, primary_key=True),
    Column("sent", Integer, nullable=False, server_default=text("0")),
    schema="auth",
)
