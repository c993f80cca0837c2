"""Request and response shapes of the social API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, HttpUrl, StringConstraints, UrlConstraints, field_validator

from rapport.identity.schemas import Strict, normalise_email

Username = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.]{3,30}$")]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Visibility = Literal["public", "contacts", "private"]
Audience = Literal["everyone", "contacts", "nobody"]
OptionalEmail = Annotated[str, StringConstraints(max_length=320), AfterValidator(normalise_email)]


class Link(Strict):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    url: HttpUrl


class ProfileUpdate(Strict):
    """Only the fields sent change; send null to clear an optional one."""

    username: Username | None = None
    display_name: DisplayName | None = None
    bio: Annotated[str, StringConstraints(max_length=500)] | None = None
    # The column holds at most 2048 characters; HttpUrl alone allows 2083.
    avatar_url: Annotated[HttpUrl, UrlConstraints(max_length=2048)] | None = None
    pronouns: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    birth_date: date | None = None
    language_code: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = None
    links: Annotated[list[Link], Field(max_length=10)] | None = None
    interests: (
        Annotated[
            list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]],
            Field(max_length=30),
        ]
        | None
    ) = None
    profile_visibility: Visibility | None = None

    @field_validator("birth_date")
    @classmethod
    def _not_in_future(cls, value: date | None) -> date | None:
        if value is not None and (value > date.today() or value.year < 1900):
            raise ValueError("must be a past date after 1900")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("not an IANA time zone such as Europe/Paris") from exc
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
    links: list[dict]
    interests: list[str]
    profile_visibility: Visibility
    is_verified: bool
    created_at: datetime
    updated_at: datetime


class VerifiedBadge(Strict):
    is_verified: bool


class SettingsUpdate(Strict):
    last_seen_visibility: Audience | None = None
    online_status_visibility: Audience | None = None
    read_receipts_enabled: bool | None = None
    typing_indicators_enabled: bool | None = None
    notification_defaults: dict[Annotated[str, StringConstraints(max_length=40)], bool] | None = Field(
        default=None, max_length=20
    )
    theme: Literal["system", "light", "dark"] | None = None


class SettingsOut(BaseModel):
    last_seen_visibility: Audience
    online_status_visibility: Audience
    read_receipts_enabled: bool
    typing_indicators_enabled: bool
    notification_defaults: dict[str, bool]
    theme: str
    updated_at: datetime


class ContactRequestCreate(Strict):
    user_id: UUID
    message: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class ContactRequestOut(BaseModel):
    id: UUID
    requester_id: UUID
    addressee_id: UUID
    status: str
    message: str | None
    created_at: datetime
    responded_at: datetime | None


class ContactCreate(Strict):
    """Someone without an account here (a child, a co-parent by e-mail)."""

    first_name: ShortText | None = None
    last_name: ShortText | None = None
    email: OptionalEmail | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40, pattern=r"^[0-9+() .-]*$")] | None = (
        None
    )
    relationship: ShortText | None = None
    nickname: ShortText | None = None
    notes: Annotated[str, StringConstraints(max_length=2000)] | None = None


class ContactUpdate(ContactCreate):
    is_favorite: bool | None = None
    is_muted: bool | None = None


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
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


class ContactGroupOut(BaseModel):
    id: UUID
    name: str
    created_at: datetime


class BlockCreate(Strict):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class BlockOut(BaseModel):
    blocked_id: UUID
    reason: str | None
    created_at: datetime


class ActivityOut(BaseModel):
    id: int
    action: str
    changes: dict
    created_at: datetime
