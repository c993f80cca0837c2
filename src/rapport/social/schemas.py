"""Request and response shapes of the social API.

PATCH bodies follow the kernel's one rule (`PatchBody`): a field left out is left alone,
`null` clears an optional field, and a field that cannot be empty refuses `null`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, HttpUrl, StringConstraints, UrlConstraints, field_validator

from rapport.kernel.schemas import (
    Email,
    JsonDate,
    JsonUuid,
    LanguageTag,
    Line40,
    Line100,
    Name60,
    Name80,
    Name100,
    NotNull,
    PatchBody,
    Prose500,
    Prose2000,
    Strict,
    Text,
    TimeZone,
)

Username = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.]{3,30}$")]
Visibility = Literal["public", "contacts", "private"]
Audience = Literal["everyone", "contacts", "nobody"]
Theme = Literal["system", "light", "dark"]
# An empty bio is how a bio is cleared: the column cannot be null.
Bio = Annotated[str, Text(500, min_length=0, multiline=True)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40, pattern=r"^[0-9+() .-]*$")]
Interests = Annotated[list[Line40], Field(max_length=30)]


class Link(Strict):
    title: Name60
    url: HttpUrl


class ProfileUpdate(PatchBody):
    username: NotNull[Username] = None
    display_name: NotNull[Name80] = None
    bio: NotNull[Bio] = None
    # The column holds at most 2048 characters; HttpUrl alone allows 2083.
    avatar_url: Annotated[HttpUrl, UrlConstraints(max_length=2048)] | None = None
    pronouns: Line40 | None = None
    birth_date: JsonDate | None = None
    language_code: LanguageTag | None = None
    timezone: TimeZone | None = None
    links: NotNull[Annotated[list[Link], Field(max_length=10)]] = None
    interests: NotNull[Interests] = None
    profile_visibility: NotNull[Visibility] = None

    @field_validator("birth_date")
    @classmethod
    def _not_in_future(cls, value: date | None) -> date | None:
        if value is not None and (value > date.today() or value.year < 1900):
            raise ValueError("must be a past date after 1900")
        return value


class ProfileOut(BaseModel):
    user_id: UUID
    username: str
    display_name: str
    bio: str
    avatar_url: str | None
    pronouns: str | None
    birth_date: date | None
    language_code: str | None
    timezone: str | None
    links: list[dict[str, Any]]
    interests: list[str]
    profile_visibility: Visibility
    is_verified: bool
    created_at: datetime
    updated_at: datetime


class VerifiedBadge(Strict):
    is_verified: bool


class SettingsUpdate(PatchBody):
    last_seen_visibility: NotNull[Audience] = None
    online_status_visibility: NotNull[Audience] = None
    read_receipts_enabled: NotNull[bool] = None
    typing_indicators_enabled: NotNull[bool] = None
    notification_defaults: NotNull[Annotated[dict[Line40, bool], Field(max_length=20)]] = Field(
        default=None, description="Merged into the current ones: the kinds not sent keep their value."
    )
    theme: NotNull[Theme] = None
    phone_discoverability: NotNull[Audience] = Field(
        default=None,
        description="Who may find this account by its verified phone number (`POST /v1/users/lookup-phones`); "
        "to anyone else the number looks like one without an account.",
    )


class SettingsOut(BaseModel):
    last_seen_visibility: Audience
    online_status_visibility: Audience
    read_receipts_enabled: bool
    typing_indicators_enabled: bool
    notification_defaults: dict[str, bool]
    theme: str
    phone_discoverability: Audience
    updated_at: datetime


ContactRequestStatus = Literal["pending", "accepted", "rejected", "cancelled"]


class ContactRequestCreate(Strict):
    user_id: JsonUuid
    message: Prose500 | None = None


class ContactRequestOut(BaseModel):
    id: UUID
    requester_id: UUID
    addressee_id: UUID
    status: ContactRequestStatus
    message: str | None
    created_at: datetime
    responded_at: datetime | None


class ContactCreate(Strict):
    """Someone without an account here (a child, a co-parent by e-mail)."""

    first_name: Name100 | None = None
    last_name: Name100 | None = None
    email: Email | None = None
    phone: Phone | None = None
    relationship: Line100 | None = None
    nickname: Name100 | None = None
    notes: Prose2000 | None = None


class ContactUpdate(PatchBody, ContactCreate):
    is_favorite: NotNull[bool] = None
    is_muted: NotNull[bool] = None


class ContactOut(BaseModel):
    id: UUID
    contact_user_id: UUID | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    relationship: str | None
    nickname: str | None
    notes: str | None
    is_favorite: bool
    is_muted: bool
    linked_at: datetime | None
    created_at: datetime


class ContactGroupCreate(Strict):
    name: Name60


class ContactGroupUpdate(PatchBody):
    name: NotNull[Name60] = None


class ContactGroupOut(BaseModel):
    id: UUID
    name: str
    created_at: datetime


class BlockCreate(Strict):
    reason: Prose500 | None = None


class BlockOut(BaseModel):
    blocked_id: UUID
    reason: str | None
    created_at: datetime


class ActivityOut(BaseModel):
    id: int
    action: str
    changes: dict[str, Any]
    created_at: datetime
