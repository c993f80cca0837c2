"""Request and response shapes of moderation: reports of messages and what moderators do
about them, flags, the moderation queue of a conversation, and the platform's blocked
terms."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from rapport.kernel.pagination import Page
from rapport.kernel.schemas import NotNull, PatchBody, Prose2000, Strict, Text

# Re-exported for the routers, which import no models.
from rapport.messaging.models_calls import ReportReason as ReportReason
from rapport.messaging.models_calls import ReportStatus as ReportStatus
from rapport.messaging.schemas import MessageOut

# What a moderator does with a report: nothing (dismiss), or delete the message for everyone.
ModerationAction = Literal["dismiss", "delete_message"]

# ck_blocked_terms_term: 1 to 200 characters, lower-case (the service lower-cases).
BlockedTerm = Annotated[str, Text(200)]


class ReportMessage(Strict):
    """A report of a message to the conversation's moderators and the platform's administrators."""

    reason: ReportReason
    details: Prose2000 | None = Field(default=None, description="What the moderators should know.")


class ReportOut(BaseModel):
    id: UUID
    conversation_id: UUID
    message_id: UUID
    message_sender_id: UUID | None
    message_content: str = Field(description="The message as it was when reported.")
    reporter_id: UUID | None = Field(description="None once the reporter's account is gone.")
    reason: ReportReason
    details: str | None
    status: ReportStatus = Field(description="open, dismissed, or actioned (the message was deleted).")
    resolved_by: UUID | None
    resolved_at: datetime | None
    resolution_note: str | None
    created_at: datetime


class ResolveReport(Strict):
    action: ModerationAction = Field(
        description="`dismiss`, or `delete_message`: delete it for everyone, which resolves every open report of it."
    )
    note: Prose2000 | None = Field(default=None, description="Why, for the record.")


class FlagMessage(PatchBody):
    """A message's moderation flag; left out, it stays as it is."""

    moderation_flagged: NotNull[bool] = Field(
        default=None, description="Flag the message for moderators, or clear the flag."
    )


class ModerationQueue(BaseModel):
    """What a conversation's moderators have to look at, newest first: the first page of each
    list (the `next` of each continues at .../moderation/flagged and .../moderation/reports)."""

    flagged: Page[MessageOut] = Field(description="Messages flagged by a blocked term or by a moderator.")
    reports: Page[ReportOut] = Field(description="Open reports.")


class BlockedTermCreate(Strict):
    term: BlockedTerm = Field(description="Matched anywhere in a message, ignoring case; stored lower-cased.")


class BlockedTermOut(BaseModel):
    id: UUID
    term: str
    created_by: UUID | None
    created_at: datetime
