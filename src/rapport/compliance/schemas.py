"""Request and response shapes of consents, compliance logs, breaches, administrator
actions and the audit.

Every field has a bound the database also enforces, so that bad input is refused here
with a 422 and never reaches a CHECK constraint."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, model_validator

from rapport.compliance.models import Audience, ConsentType, EventType, NotificationChannel, Severity
from rapport.kernel.schemas import JsonDateTime, JsonUuid, Line200, Strict, Text

# The audit tables an administrator reads, by the name the routes take.
AuditTable = Literal[
    "record_changes", "sensitive_data_access", "admin_actions", "auth_events", "data_exports", "redactions"
]
# An account's status as administrators set it.
AccountStatus = Literal["pending", "active", "suspended", "banned", "deleted"]

Reason = Annotated[str, Text(2000, multiline=True)]
DocumentVersion = Annotated[str, Text(64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:+-]*$")]
DataCategory = Annotated[str, Text(100)]
BreachDescription = Annotated[str, Text(10000, multiline=True)]
Notes = Annotated[str, Text(10000, multiline=True)]


def _with_zone(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must say its time zone (2026-11-30T08:00:00Z, or an offset such as +01:00)")
    return value


# A moment in time: with its zone, so that it is one moment wherever it is read.
Moment = Annotated[JsonDateTime, AfterValidator(_with_zone)]

# At most this many people named in one breach notification (a larger audience is
# notified in several records).
MAX_NOTIFIED_USERS = 1000


# Consents


class ConsentIn(Strict):
    consent_type: ConsentType = Field(description="Which consent.")
    granted: bool = Field(description="true gives it, false withdraws it.")
    document_version: DocumentVersion | None = Field(
        None, description="The version of the terms or policy the person saw, as the app names it."
    )


class ConsentRecordOut(BaseModel):
    """One consent given or withdrawn: the history is made of these."""

    id: UUID
    consent_type: ConsentType
    granted: bool
    document_version: str | None
    ip_address: str | None = Field(description="The client address it came from.")
    user_agent: str | None
    created_at: datetime


class ConsentStateOut(BaseModel):
    """Where one consent stands now: the newest record of its type, or never asked."""

    consent_type: ConsentType
    granted: bool = Field(description="false also when never given.")
    document_version: str | None
    updated_at: datetime | None = Field(description="When it was last given or withdrawn; null: never.")


class ConsentsOut(BaseModel):
    user_id: UUID
    consents: list[ConsentStateOut] = Field(description="Every consent type, in a fixed order.")


class ConsentHistoryPage(BaseModel):
    items: list[ConsentRecordOut]
    next: str | None = Field(None, description="Pass it as `cursor` for the next (older) page; null at the end.")


# Compliance logs


class ComplianceLogOut(BaseModel):
    id: UUID
    user_id: UUID | None
    event_type: EventType
    details: dict[str, Any]
    created_at: datetime


class ComplianceLogPage(BaseModel):
    items: list[ComplianceLogOut]
    next: str | None = Field(None, description="Pass it as `cursor` for the next (older) page; null at the end.")


# Administrator actions on accounts


class AccountActionIn(Strict):
    reason: Reason = Field(description="Why: recorded in the audit with who and what.")


class AccountStatusOut(BaseModel):
    user_id: UUID
    account_status: AccountStatus = Field(description="The account's status now.")
    previous_status: AccountStatus
    sessions_revoked: int = Field(description="How many signed-in sessions were ended.")
    admin_action_id: int = Field(description="The audit.admin_actions row that records it.")


# The audit


class AuditRowOut(BaseModel):
    """One row of an audit table, as stored, with its place in the table's hash chain."""

    table: AuditTable
    id: int
    chain_position: int
    content: dict[str, Any] = Field(description="The row's columns (hashes aside).")
    content_hash: str = Field(description="SHA-256 of the row's content, hex.")
    chain_hash: str = Field(description="SHA-256 of the previous chain hash and this content hash, hex.")
    redacted_at: datetime | None = Field(description="When erasure blanked its personal content.")


class AuditPage(BaseModel):
    items: list[AuditRowOut]
    next: str | None = Field(None, description="Pass it as `cursor` for the next (older) page; null at the end.")


# Export and deletion requests, as administrators list them


class ExportRequestOut(BaseModel):
    """An export a person asked for: who, when and how it stands (never the archive)."""

    id: UUID
    user_id: UUID
    status: str = Field(description="pending, running, completed, failed or expired.")
    requested_at: datetime
    completed_at: datetime | None
    expires_at: datetime | None
    size_bytes: int | None


class ExportRequestPage(BaseModel):
    items: list[ExportRequestOut]
    next: str | None = Field(None, description="Pass it as `cursor` for the next (older) page; null at the end.")


class DeletionRequestOut(BaseModel):
    """An account waiting for its erasure."""

    user_id: UUID
    requested_at: datetime
    erase_after: datetime = Field(description="When the grace period ends and the account is erased.")
    confirmed_by: str = Field(description="How the person confirmed: password or recent_sign_in.")


class DeletionRequestPage(BaseModel):
    items: list[DeletionRequestOut]
    next: str | None = Field(None, description="Pass it as `cursor` for the next page; null at the end.")


# Breaches


class BreachIn(Strict):
    title: Line200
    description: BreachDescription
    severity: Severity
    data_categories: list[DataCategory] = Field(
        default_factory=list, max_length=50, description="Which kinds of personal data: e-mail addresses, messages..."
    )
    affected_users: int | None = Field(None, ge=0, le=2_147_483_647, description="How many people, as far as known.")
    detected_at: Moment
    contained_at: Moment | None = None
    reason: Reason | None = Field(None, description="Why it is recorded now, if anything to add; kept in the audit.")

    @model_validator(mode="after")
    def _contained_after_detected(self) -> BreachIn:
        if self.contained_at is not None and self.contained_at < self.detected_at:
            raise ValueError("contained_at cannot be before detected_at")
        return self


class BreachNotificationIn(Strict):
    audience: Audience
    channel: NotificationChannel
    recipients: int = Field(0, ge=0, le=2_147_483_647, description="How many were notified.")
    notes: Notes | None = None
    sent_at: Moment | None = Field(None, description="When it was sent; now when absent.")
    user_ids: list[JsonUuid] = Field(
        default_factory=list,
        max_length=MAX_NOTIFIED_USERS,
        description="The people notified (for `affected_users`): each finds it in their compliance log.",
    )
    reason: Reason | None = None


class BreachNotificationOut(BaseModel):
    id: UUID
    audience: Audience
    channel: NotificationChannel
    recipients: int
    notes: str | None
    sent_by: UUID | None
    sent_at: datetime


class BreachOut(BaseModel):
    id: UUID
    title: str
    description: str
    severity: Severity
    data_categories: list[str]
    affected_users: int | None
    detected_at: datetime
    contained_at: datetime | None
    recorded_by: UUID | None
    created_at: datetime
    notifications: list[BreachNotificationOut]


class BreachPage(BaseModel):
    items: list[BreachOut]
    next: str | None = Field(None, description="Pass it as `cursor` for the next (older) page; null at the end.")


class AdminConsentsOut(BaseModel):
    current: ConsentsOut
    history: ConsentHistoryPage
