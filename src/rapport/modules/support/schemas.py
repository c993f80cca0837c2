"""Request and response shapes of the support desk."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rapport.identity import service as identity_service
from rapport.kernel.schemas import JsonUuid, Name80, NotNull, PatchBody, Strict, Text
from rapport.modules.support.models import EscalationMode, EscalationStatus, RoomStatus

# Routers spell levels through the schemas (they import no models).
from rapport.modules.support.models import Level as Level

Priority = Annotated[int, Field(ge=1, le=5, description="1 (high) to 5 (low).")]
IssueDescription = Annotated[str, Text(4000, multiline=True)]
IssueId = Annotated[str, Text(200)]
Reason = Annotated[str, Text(4000, multiline=True)]
Minutes = Annotated[int, Field(ge=1, le=525_600, description="Minutes, up to a year.")]
# ck_rooms_max_participants and messaging's own limit say the same.
MaxParticipants = Annotated[
    int, Field(ge=2, le=100_000, description="How many people may take part, the customer and agents included.")
]

# A guest link lives a day by default, a week at most.
DEFAULT_LINK_SECONDS = 24 * 3600
MAX_LINK_SECONDS = 7 * 24 * 3600
MAX_LINK_USES = 100


class RoomCreate(Strict):
    """A support room about one issue, opened by the caller (its customer)."""

    issue_description: IssueDescription = Field(description="What the customer needs help with.")
    issue_id: IssueId | None = Field(default=None, description="The issue's reference in another system, if any.")
    priority: Priority = 3
    guests_allowed: bool = Field(default=True, description="Whether guest links to the room may be made and used.")
    max_participants: MaxParticipants | None = Field(default=None, description="No limit when left out.")


class RoomUpdate(PatchBody):
    """The customer or an agent taking part in it opens or shuts the room to guests and
    sets how many may take part (null: no limit; not below how many take part now); an
    agent also sets its priority."""

    guests_allowed: NotNull[bool] = None
    priority: NotNull[Priority] = None
    max_participants: MaxParticipants | None = None


class RoomBotAdd(Strict):
    bot_id: JsonUuid = Field(description="A bot the caller manages.")


class RoomOut(BaseModel):
    conversation_id: UUID = Field(description="The room's conversation: its messages are read and sent there.")
    customer_id: UUID | None
    issue_id: str | None
    issue_description: str
    level: Level
    priority: int
    guests_allowed: bool
    max_participants: int | None = Field(description="How many may take part; null: no limit.")
    status: RoomStatus
    escalated_from: UUID | None = Field(description="For an escalated room, the room it was escalated from.")
    opened_at: datetime
    first_response_at: datetime | None = Field(description="When an agent first wrote in the room.")
    first_response_due_at: datetime = Field(description="When the first response is due by the SLA.")
    closed_at: datetime | None
    updated_at: datetime


class ConversationSummary(BaseModel):
    """The room's messaging conversation, as far as the desk shows it."""

    model_config = ConfigDict(extra="ignore")

    id: UUID
    type: str
    name: str | None
    status: str
    parent_id: UUID | None
    member_count: int
    created_at: datetime


class RoomCreated(BaseModel):
    room: RoomOut
    conversation: ConversationSummary


class GuestLinkCreate(Strict):
    """A link letting someone without an account join the room as a guest."""

    expires_in_seconds: Annotated[int, Field(ge=60, le=MAX_LINK_SECONDS)] = DEFAULT_LINK_SECONDS
    max_uses: Annotated[int, Field(ge=1, le=MAX_LINK_USES, description="How many guests it may admit.")] = 1


class GuestLinkOut(BaseModel):
    id: UUID
    conversation_id: UUID
    created_by: UUID | None
    expires_at: datetime
    max_uses: int
    uses: int
    revoked_at: datetime | None
    created_at: datetime


class GuestLinkCreated(GuestLinkOut):
    token: str = Field(
        description="Shown once: Rapport keeps only its hash. Redeem it at POST /v1/support/guest-sessions."
    )


class GuestSessionCreate(Strict):
    token: Annotated[str, Text(200)] = Field(description="The guest link's token.")
    display_name: Name80 = Field(description="The name the room's people see.")


class GuestSession(BaseModel):
    """A guest's tokens (refresh them at POST /v1/auth/refresh) and the one room they may use."""

    tokens: identity_service.TokenPair
    room: RoomOut


class EscalationCreate(Strict):
    """Escalate the room to a higher level. `same_room` raises the room itself to the
    level; `new_room` opens an escalated room below it, with the customer in it."""

    reason: Reason
    to_level: Level
    priority: Priority | None = Field(default=None, description="The room's priority when left out.")
    mode: EscalationMode = "same_room"


class EscalationAssign(Strict):
    assignee_id: JsonUuid | None = Field(
        default=None, description="An agent of the escalation's level or higher; the caller when left out."
    )


class EscalationResolve(Strict):
    notes: Reason = Field(description="How it was resolved.")


class EscalationOut(BaseModel):
    id: UUID
    source_room_id: UUID
    target_room_id: UUID | None
    room_id: UUID = Field(description="Where it is worked: the escalated room, or the source room raised.")
    mode: EscalationMode
    reason: str
    from_level: Level
    to_level: Level
    priority: int
    status: EscalationStatus
    created_by: UUID | None
    assigned_to: UUID | None
    resolution_notes: str | None
    assigned_at: datetime | None
    started_at: datetime | None
    resolved_at: datetime | None
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class QueueItem(BaseModel):
    """What waits in a level's queue: a room no agent has answered, or an open escalation."""

    kind: Literal["room", "escalation"]
    id: UUID = Field(description="The room's conversation id, or the escalation's id.")
    room_id: UUID = Field(description="The room to work in.")
    priority: int
    state: str = Field(description="`unanswered` for a room; the escalation's status for an escalation.")
    waiting_since: datetime
    due_at: datetime = Field(
        description="A room's first response, an unassigned escalation's assignment, else its resolution, by the SLA."
    )
    breached: bool


class QueuePage(BaseModel):
    level: Level
    items: list[QueueItem]
    next: str | None = None


class SlaOut(BaseModel):
    priority: int
    first_response_minutes: int
    resolution_minutes: int
    updated_by: UUID | None
    updated_at: datetime


class SlaUpdate(Strict):
    first_response_minutes: Minutes
    resolution_minutes: Minutes

    @model_validator(mode="after")
    def _resolution_after_response(self) -> SlaUpdate:
        if self.resolution_minutes < self.first_response_minutes:
            raise ValueError("resolution_minutes cannot be less than first_response_minutes")
        return self


class ObservedPage(BaseModel):
    """A page of a room's messages, newest first, as the messaging API shows them."""

    items: list[dict[str, Any]]
    next: str | None = Field(default=None, description="Pass as `cursor` for the older page.")
