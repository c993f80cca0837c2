"""Request and response shapes of the people part of matching: dating profiles and their
photos, what others see of a profile, ECR-R assessments, and the people most like you.

Every field has a bound the database also enforces, so that bad input is refused here
with a 422 and never reaches a CHECK constraint."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator, model_validator

from rapport.kernel.schemas import JsonDate, Line100, Prose500, Strict, Text

Gender = Literal["woman", "man", "nonbinary", "other"]
AttachmentStyle = Literal["secure", "anxious", "avoidant", "fearful"]

MAX_INTERESTS = 30
MAX_PHOTOS = 6
ECR_R_ITEMS = 36
EARLIEST_BIRTH_DATE = date(1900, 1, 1)

Interest = Annotated[str, Text(50, name=True)]
Answer = Annotated[int, Field(ge=1, le=7)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class DatingProfileIn(Strict):
    """A whole dating profile: what is left out takes its default (PUT replaces)."""

    birth_date: JsonDate = Field(description="You must be 18 or older. Never shown to anyone else: they see your age.")
    gender: Gender
    bio: Prose500 | None = None
    interests: list[Interest] = Field(
        default_factory=list,
        max_length=MAX_INTERESTS,
        description="Free words, kept in lower case, each once, in the order given.",
    )
    latitude: Latitude | None = Field(
        default=None, description="With longitude or not at all; never shown: others see a distance."
    )
    longitude: Longitude | None = None
    city: Line100 | None = Field(default=None, description="Never shown to anyone else.")
    country: Line100 | None = Field(default=None, description="Never shown to anyone else.")
    pref_genders: list[Gender] = Field(default_factory=list, description="Whom you want to meet; empty: anyone.")
    pref_age_min: int = Field(default=18, ge=18, le=120)
    pref_age_max: int = Field(default=99, ge=18, le=120)
    pref_distance_km: int = Field(default=50, ge=1, le=20000)
    is_active: bool = Field(default=True, description="Whether you take part in matching now.")

    @field_validator("interests")
    @classmethod
    def _distinct_interests(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(interest.casefold() for interest in value))

    @field_validator("pref_genders")
    @classmethod
    def _distinct_genders(cls, value: list[Gender]) -> list[Gender]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _consistent(self) -> DatingProfileIn:
        if self.birth_date < EARLIEST_BIRTH_DATE:
            raise ValueError(f"birth_date must be {EARLIEST_BIRTH_DATE.isoformat()} or later")
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give latitude and longitude together, or neither")
        if self.pref_age_min > self.pref_age_max:
            raise ValueError("pref_age_min must not be above pref_age_max")
        return self


class DatingProfileOut(BaseModel):
    """Your own profile, as only you see it."""

    user_id: UUID
    birth_date: JsonDate
    age: int
    gender: Gender
    bio: str | None
    interests: list[str]
    latitude: float | None
    longitude: float | None
    city: str | None
    country: str | None
    pref_genders: list[Gender]
    pref_age_min: int
    pref_age_max: int
    pref_distance_km: int
    is_active: bool
    photos: list[UUID] = Field(description="The media ids of your photos, in order.")
    created_at: datetime
    updated_at: datetime


class ProfileCard(BaseModel):
    """Someone's profile as others see it: an age, not a birth date; a distance in whole
    kilometres (null unless you both gave a location), never where they are."""

    user_id: UUID
    age: int
    gender: Gender
    bio: str | None
    interests: list[str]
    distance_km: int | None
    photos: list[UUID]


class AssessmentIn(Strict):
    responses: list[Answer] = Field(
        min_length=ECR_R_ITEMS,
        max_length=ECR_R_ITEMS,
        description="Your 36 answers to the ECR-R, 1 (strongly disagree) to 7 (strongly agree), in the "
        "instrument's order: items 1-18 attachment-related anxiety, 19-36 avoidance (Fraley, Waller & "
        "Brennan 2000). Answer every item as worded; reverse-keyed items are reversed in scoring.",
    )


class AssessmentOut(BaseModel):
    id: UUID
    responses: list[int]
    anxiety_score: float = Field(description="1-7, the mean of the anxiety items (two decimals).")
    avoidance_score: float = Field(description="1-7, the mean of the avoidance items (two decimals).")
    style: AttachmentStyle = Field(
        description="By the scale midpoint 4 (above it is high): secure (low anxiety, low avoidance), "
        "anxious (high anxiety), avoidant (high avoidance), fearful (both high)."
    )
    created_at: datetime


class SimilarOut(BaseModel):
    """Someone whose interests and attachment are like yours, with their card."""

    score: float = Field(description="0-1: the cosine similarity of your feature vectors, as (1 + cos) / 2.")
    profile: ProfileCard
    computed_at: datetime
