"""The `compliance` schema's tables of consents, compliance logs and breaches as SQLAlchemy
Core sees them, mirroring migration 2026_11_30_0023 (its indexes, CHECKs, policies and
the functions compliance.log_event, compliance.has_consent and compliance.is_platform_admin
live there only; tests/kernel/test_catalogue.py compares the two). The audit tables the
same migration makes or chains are the kernel's (rapport.kernel.models)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Boolean, Column, ForeignKey, Integer, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB, UUID

from rapport.kernel.models import EMPTY_OBJECT, EMPTY_TEXT_ARRAY, NOW, metadata, timestamp, user_column, uuid_column

# The values the CHECK constraints allow.
ConsentType = Literal["terms_of_service", "privacy_policy", "ai_features", "ai_coaching", "marketing_emails"]
EventType = Literal[
    "data_export_requested",
    "data_export_completed",
    "data_deletion_requested",
    "data_deletion_completed",
    "data_deletion_cancelled",
    "breach_detected",
    "breach_notified",
    "consent_given",
    "consent_withdrawn",
    "account_suspended",
    "account_banned",
    "account_restored",
]
Severity = Literal["low", "medium", "high", "critical"]
Audience = Literal["supervisory_authority", "affected_users", "public"]
NotificationChannel = Literal["email", "in_app", "letter", "phone", "web", "other"]
AdminAction = Literal[
    "account_suspended",
    "account_banned",
    "account_restored",
    "audit_read",
    "compliance_logs_read",
    "consents_read",
    "export_requests_listed",
    "deletion_requests_listed",
    "breach_recorded",
    "breach_notification_recorded",
    "breaches_listed",
    # An access administrator's changes of roles and grants (rapport.access).
    "role_created",
    "role_changed",
    "role_deleted",
    "role_permissions_set",
    "grant_created",
    "grant_revoked",
]
DataExportEvent = Literal["requested", "completed", "downloaded", "failed", "expired"]

# Append-only: a person gives and withdraws; the newest row per type is the current state.
consent_logs = Table(
    "consent_logs",
    metadata,
    uuid_column("id", primary_key=True),
    user_column("user_id"),
    Column("consent_type", Text, nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("document_version", Text),
    Column("ip_address", INET),
    Column("user_agent", Text),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="compliance",
)

# Written only through compliance.log_event; no foreign key (it outlives the account).
compliance_logs = Table(
    "compliance_logs",
    metadata,
    uuid_column("id", primary_key=True),
    uuid_column("user_id", nullable=True),
    Column("event_type", Text, nullable=False),
    Column("details", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="compliance",
)

breaches = Table(
    "breaches",
    metadata,
    uuid_column("id", primary_key=True),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("data_categories", ARRAY(Text), nullable=False, server_default=EMPTY_TEXT_ARRAY),
    Column("affected_users", Integer),
    timestamp("detected_at", nullable=False),
    timestamp("contained_at"),
    user_column("recorded_by", nullable=True, ondelete="SET NULL"),
    timestamp("created_at", nullable=False, server_default=NOW),
    timestamp("updated_at", nullable=False, server_default=NOW),
    schema="compliance",
)

breach_notifications = Table(
    "breach_notifications",
    metadata,
    uuid_column("id", primary_key=True),
    Column("breach_id", UUID(as_uuid=True), ForeignKey("compliance.breaches.id", ondelete="CASCADE"), nullable=False),
    Column("audience", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("recipients", Integer, nullable=False, server_default="0"),
    Column("notes", Text),
    user_column("sent_by", nullable=True, ondelete="SET NULL"),
    timestamp("sent_at", nullable=False),
    timestamp("created_at", nullable=False, server_default=NOW),
    schema="compliance",
)
