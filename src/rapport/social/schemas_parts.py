"""Request and response shapes of the extended profile parts, devices and status updates.

Every field has a bound the database also enforces, so that bad input is refused here
with a 422 and never reaches a CHECK constraint (which would be a 500)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator, model_validator

from rapport.kernel.schemas import (
    CountryCode,
    CurrencyCode,
    JsonDate,
    JsonDecimal,
    LanguageTag,
    Line40,
    Line60,
    Line100,
    Line200,
    Name100,
    Prose500,
    Prose700,
    Prose1000,
    Prose2000,
    Strict,
    Text,
)

Money = Annotated[
    JsonDecimal,
    Field(
        ge=0, max_digits=12, decimal_places=2, description="An amount with at most two decimals; answered as a string."
    ),
]


class _PartOut(BaseModel):
    user_id: UUID
    updated_at: datetime | None = Field(None, description="Null until the part is first saved.")


# Parts: PUT replaces the whole part; a field left out is cleared. Their responses are
# built from stored rows (see _parts), never validated against these input rules.


class DemographicsIn(Strict):
    preferred_name: Name100 | None = None
    pronouns: Line40 | None = None
    gender_identity: Line60 | None = None
    birthdate: JsonDate | None = None
    relationship_status: (
        Literal["single", "partnered", "married", "separated", "divorced", "widowed", "other"] | None
    ) = None
    number_of_children: Annotated[int, Field(ge=0, le=30)] | None = None
    city: Line100 | None = None
    region: Line100 | None = None
    country: CountryCode | None = Field(default=None, description="ISO 3166-1 alpha-2 code, such as FR.")

    @field_validator("birthdate")
    @classmethod
    def _past_date(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= date.today():
            raise ValueError("must be a date between 1900-01-01 and today")
        return value


class DemographicsOut(_PartOut, DemographicsIn):
    pass


class EmploymentIn(Strict):
    employment_status: (
        Literal["employed", "self_employed", "unemployed", "student", "retired", "homemaker", "unable_to_work", "other"]
        | None
    ) = None
    occupation: Line100 | None = None
    employer: Line100 | None = None
    industry: Line100 | None = None
    work_schedule: Literal["regular", "shifts", "nights", "weekends", "flexible", "part_time", "irregular"] | None = (
        None
    )
    schedule_notes: Prose500 | None = None
    commute_minutes: Annotated[int, Field(ge=0, le=600)] | None = None
    works_remotely: bool | None = None


class EmploymentOut(_PartOut, EmploymentIn):
    pass


class HealthIn(Strict):
    physical_conditions: Prose2000 | None = None
    mental_health_conditions: Prose2000 | None = None
    medications: Prose2000 | None = None
    treatment: Prose2000 | None = None
    recovery_notes: Prose2000 | None = None
    accessibility_needs: Prose1000 | None = None


class HealthOut(_PartOut, HealthIn):
    pass


class FinancialsIn(Strict):
    income_range: (
        Literal["under_25k", "25k_50k", "50k_75k", "75k_100k", "100k_150k", "over_150k", "prefer_not_to_say"] | None
    ) = None
    housing_status: Literal["own", "rent", "with_family", "shared", "temporary", "unhoused", "other"] | None = None
    monthly_housing_cost: Money | None = None
    child_support_status: Literal["none", "pays", "receives", "both"] | None = None
    child_support_amount: Money | None = None
    currency: CurrencyCode | None = Field(default=None, description="ISO 4217 code of the amounts, such as EUR.")
    debt_notes: Prose2000 | None = None
    financial_notes: Prose2000 | None = None


class FinancialsOut(_PartOut, FinancialsIn):
    pass


class BackgroundIn(Strict):
    culture: Line200 | None = None
    ethnicity: Line200 | None = None
    religion: Line100 | None = None
    hometown: Line100 | None = None
    education_level: (
        Literal[
            "none", "primary", "secondary", "vocational", "some_college", "bachelor", "master", "doctorate", "other"
        ]
        | None
    ) = None
    field_of_study: Line100 | None = None
    languages: Annotated[list[LanguageTag], Field(max_length=20, description="Language tags, such as pt-BR.")] = Field(
        default_factory=list
    )

    @field_validator("languages")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class BackgroundOut(_PartOut, BackgroundIn):
    pass


class SensitiveAccessOut(BaseModel):
    id: int
    accessed_by: UUID | None = Field(description="Who acted; null for system work.")
    table_name: str
    action: Literal["read", "write", "delete"]
    fields: list[str]
    created_at: datetime


# Devices


class DeviceRegisterRequest(Strict):
    """A device is known by its name: registering the same name again updates it."""

    name: Name100
    device_type: Literal["mobile", "tablet", "desktop", "web"]
    platform: Literal["ios", "ipados", "android", "windows", "macos", "linux", "chromeos", "web", "other"]
    app_version: Line40 | None = None
    os_version: Line40 | None = None


class DeviceOut(BaseModel):
    id: UUID
    name: str
    device_type: str
    platform: str
    app_version: str | None
    os_version: str | None
    last_seen_at: datetime
    created_at: datetime
    updated_at: datetime


# Status updates


class StatusCreateRequest(Strict):
    """Text, a picture or both; it expires 24 hours after it is posted."""

    content: Prose700 | None = None
    media_url: Annotated[str, Text(2048, pattern=r"^https://\S+$")] | None = Field(
        default=None, description="An https address of the picture."
    )
    background_color: (
        Annotated[
            str,
            StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$"),
            AfterValidator(str.lower),
            Field(description="A colour like #1a2b3c behind text."),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _something(self) -> StatusCreateRequest:
        if self.content is None and self.media_url is None:
            raise ValueError("a status needs content, a media_url or both")
        return self


class StatusOut(BaseModel):
    id: UUID
    user_id: UUID
    content: str | None
    media_url: str | None
    background_color: str | None
    created_at: datetime
    expires_at: datetime
