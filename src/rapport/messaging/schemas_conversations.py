"""Request and response shapes of conversations, participants and invite links.

PATCH bodies follow the kernel's one rule (`PatchBody`): a field left out is left alone,
`null` clears an optional field, and a field that cannot be empty refuses `null`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, HttpUrl, UrlConstraints, field_validator, model_validator

from rapport.kernel.schemas import JsonDateTime, JsonUuid, NotNull, PatchBody, Strict, Text
from rapport.messaging.models import ConversationStatus, ConversationType, ParticipantRole

# Also the participant list's filter, which the router takes from here.
from rapport.messaging.models import ParticipantStatus as ParticipantStatus

# The CHECKs of migration 2026_11_29_0014 say the same.
MAX_SETTINGS_BYTES = 8000
MAX_INITIAL_PARTICIPANTS = 100
MAX_PARTICIPANTS = 100_000
# An invite link lives at most a year.
MAX_INVITE_SECONDS = 366 * 24 * 3600
MAX_INVITE_USES = 100_000

ConversationName = Annotated[str, Text(200, name=True)]
Description = Annotated[str, Text(4000, multiline=True)]
AvatarUrl = Annotated[HttpUrl, UrlConstraints(max_length=2000)]
Nickname = Annotated[str, Text(100, name=True)]
Settings = Annotated[
    dict[str, Any],
    Field(
        description=f"The app's own settings of the conversation: a JSON object, {MAX_SETTINGS_BYTES} bytes at most."
    ),
]
MaxParticipants = Annotated[int, Field(ge=2, le=MAX_PARTICIPANTS, description="A hard limit on who takes part.")]


def _settings_fit(settings: dict[str, Any] | None) -> dict[str, Any] | None:
    # Measured as PostgreSQL prints jsonb (", " and ": " between items), which is what
    # ck_conversations_settings measures; numbers PostgreSQL writes out longer are caught
    # by the constraint itself (rapport.messaging._conversations).
    if settings is not None and len(json.dumps(settings, ensure_ascii=False).encode()) > MAX_SETTINGS_BYTES:
        raise ValueError(f"must be at most {MAX_SETTINGS_BYTES} bytes of JSON")
    return settings


class ConversationCreate(Strict):
    """A new conversation. The caller becomes its owner. A `direct` conversation is with
    exactly one other person (in `participant_ids`), has no name, description, avatar,
    limit or parent, and exists at most once per pair. A `channel` is public (findable
    and joinable) and needs a name. An `escalated` room is the support desk's to open."""

    type: ConversationType
    name: ConversationName | None = None
    description: Description | None = None
    avatar_url: AvatarUrl | None = None
    settings: Settings = Field(default_factory=dict)
    max_participants: MaxParticipants | None = None
    parent_id: JsonUuid | None = Field(default=None, description="A conversation the caller can see.")
    participant_ids: list[JsonUuid] = Field(
        default_factory=list,
        max_length=MAX_INITIAL_PARTICIPANTS,
        description="People to add as members (besides the caller). For `direct`: exactly one.",
    )
    is_encrypted: bool = Field(
        default=False,
        description="End-to-end encrypted (`direct` and `group` only; fixed at creation): messages go as "
        "ciphertexts to each device (`POST /v1/conversations/{id}/encrypted-messages`). A pair has at most "
        "one plain and one encrypted direct conversation.",
    )

    _settings = field_validator("settings")(_settings_fit)

    @model_validator(mode="after")
    def _shape_of_type(self) -> ConversationCreate:
        if self.is_encrypted and self.type not in ("direct", "group"):
            raise ValueError("only a direct or a group conversation is end-to-end encrypted (is_encrypted)")
        if self.type == "direct":
            if len(set(self.participant_ids)) != 1:
                raise ValueError("a direct conversation is with exactly one other person (participant_ids)")
            extra = [
                field
                for field in ("name", "description", "avatar_url", "max_participants", "parent_id")
                if getattr(self, field) is not None
            ]
            if extra:
                raise ValueError(f"a direct conversation has no {', '.join(extra)}")
        if self.type == "channel" and self.name is None:
            raise ValueError("a channel needs a name: it is found by it")
        if self.type == "escalated":
            raise ValueError("an escalated room is opened by the support desk when it escalates a support room")
        return self


class ConversationUpdate(PatchBody):
    """What owners and admins change. `null` clears the name (not a channel's), the
    description, the avatar, the limit and the parent."""

    name: ConversationName | None = None
    description: Description | None = None
    avatar_url: AvatarUrl | None = None
    settings: NotNull[Settings] = None
    status: NotNull[ConversationStatus] = Field(
        default=None, description="`archived` or `closed`: nobody sends any more; `active` again to reopen."
    )
    max_participants: MaxParticipants | None = None
    parent_id: JsonUuid | None = None

    _settings = field_validator("settings")(_settings_fit)


class MembershipOut(BaseModel):
    """The caller's own part in a conversation."""

    role: ParticipantRole
    status: ParticipantStatus
    can_send: bool
    can_invite: bool
    can_see_history: bool
    is_muted: bool = Field(description="The caller's own mute: no notifications from here.")
    is_pinned: bool
    nickname: str | None
    read_seq: int
    joined_at: datetime


class ConversationOut(BaseModel):
    id: UUID
    type: ConversationType
    name: str | None
    description: str | None
    avatar_url: str | None
    settings: dict[str, Any]
    status: ConversationStatus
    is_public: bool
    is_encrypted: bool = Field(description="End-to-end encrypted: fixed at creation.")
    max_participants: int | None
    parent_id: UUID | None
    creator_id: UUID | None
    direct_with: UUID | None = Field(description="In a direct conversation, the other person.")
    member_count: int
    last_seq: int
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime
    membership: MembershipOut | None = Field(description="The caller's part in it; null when they take no part.")


class ParticipantAdd(Strict):
    user_id: JsonUuid
    role: ParticipantRole = Field(
        default="member", description="Below the caller's own role (owners may add admins); never `owner`."
    )
    can_see_history: bool = Field(default=True, description="false: they see only what is sent after they join.")


class ParticipantChange(PatchBody):
    """Owners and admins set roles and permissions of people ranked below them; moderators
    silence (`muted`), bring back (`active`) and remove (`removed`). Handing over ownership
    (`role: owner`, owners only) makes the giver an admin. On oneself, only `status: left`."""

    role: NotNull[ParticipantRole] = None
    status: NotNull[ParticipantStatus] = None
    can_send: NotNull[bool] = None
    can_invite: NotNull[bool] = None
    can_see_history: NotNull[bool] = Field(
        default=None, description="true shows them the whole history; false hides what was sent before now."
    )


class ParticipantOut(BaseModel):
    user_id: UUID
    role: ParticipantRole
    status: ParticipantStatus
    can_send: bool
    can_invite: bool
    can_see_history: bool
    nickname: str | None
    invited_by: UUID | None
    joined_at: datetime
    left_at: datetime | None


class MembershipUpdate(PatchBody):
    """The caller's own settings in a conversation. The nickname is shown to the others."""

    is_muted: NotNull[bool] = None
    is_pinned: NotNull[bool] = None
    nickname: Nickname | None = None


class InviteCreate(Strict):
    """An invite link: it expires after `expires_in_seconds` or at `expires_at` (give at
    most one; neither: it never expires) and serves `max_uses` joins (none: no limit)."""

    expires_in_seconds: Annotated[int, Field(ge=60, le=MAX_INVITE_SECONDS)] | None = None
    expires_at: JsonDateTime | None = None
    max_uses: Annotated[int, Field(ge=1, le=MAX_INVITE_USES)] | None = None

    @model_validator(mode="after")
    def _one_expiry(self) -> InviteCreate:
        if self.expires_in_seconds is not None and self.expires_at is not None:
            raise ValueError("give expires_in_seconds or expires_at, not both")
        if self.expires_at is not None:
            if self.expires_at.tzinfo is None:
                raise ValueError("expires_at needs a time zone")
            now = datetime.now(UTC)
            if not now < self.expires_at <= now + timedelta(seconds=MAX_INVITE_SECONDS):
                raise ValueError("expires_at must be in the future, within a year")
        return self


class InviteOut(BaseModel):
    id: UUID
    conversation_id: UUID
    created_by: UUID | None
    expires_at: datetime | None
    max_uses: int | None
    uses: int
    revoked_at: datetime | None
    created_at: datetime
    is_live: bool = Field(description="Not revoked, not expired, not used up.")


class InviteCreated(InviteOut):
    token: str = Field(description="Shown once: Rapport keeps only its hash. Join with POST /v1/invites/{token}/join.")
