"""Request and response shapes of habits, check-ins, the garden and the profile extras.

Every field has a bound the database also enforces, so that bad input is refused here
with a 422 and never reaches a CHECK constraint (which would be a 500)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, model_validator

from rapport.kernel.schemas import JsonDate, Line40, Name80, NotNull, PatchBody, Prose500, Strict

Frequency = Literal["daily", "weekly", "monthly", "custom"]
PlantStage = Literal["seed", "sprout", "bud", "bloom"]

META_MAX_LENGTH = 4000


def _small_meta(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value, separators=(",", ":"), ensure_ascii=False)) > META_MAX_LENGTH:
        raise ValueError(f"must be at most {META_MAX_LENGTH} characters as JSON")
    return value


Meta = Annotated[dict[str, Any], AfterValidator(_small_meta)]
CustomDays = Annotated[int, Field(ge=1, le=366)]


class HabitCreate(Strict):
    name: Name80 = Field(description="Unique among your habits, regardless of case.")
    frequency: Frequency = "daily"
    custom_days: CustomDays | None = Field(
        default=None,
        description="For a custom habit (and only then): at most this many days between two check-ins "
        "keep its streak going.",
    )
    meta: Meta = Field(default_factory=dict, description='What the app keeps with the habit, such as {"minutes": 10}.')

    @model_validator(mode="after")
    def _custom_days(self) -> HabitCreate:
        if (self.frequency == "custom") != (self.custom_days is not None):
            raise ValueError("custom_days is given for a custom habit, and only for one")
        return self


class HabitUpdate(PatchBody):
    name: NotNull[Name80] = None
    frequency: NotNull[Frequency] = None
    custom_days: CustomDays | None = Field(default=None, description="Required when the habit is (made) custom.")
    meta: NotNull[Meta] = None


class HabitOut(BaseModel):
    id: UUID
    name: str
    frequency: Frequency
    custom_days: int | None
    meta: dict[str, Any]
    checkins: int = Field(description="How many days it was done.")
    last_day: date | None = Field(description="The last day it was done.")
    current_streak: int = Field(
        description="Consecutive periods (days, weeks, months; check-ins for a custom habit) up to this one or "
        "the one before."
    )
    longest_streak: int
    created_at: datetime
    updated_at: datetime


class CheckinIn(Strict):
    day: JsonDate | None = Field(
        default=None, description="The day it was done (from 2000-01-01 up to tomorrow); today (UTC) when left out."
    )
    note: Prose500 | None = None


class CheckinOut(BaseModel):
    habit_id: UUID
    day: date
    note: str | None
    created_at: datetime


class CheckinPage(BaseModel):
    items: list[CheckinOut]
    next: date | None = Field(None, description="Pass as `before` for the following page; null at the end.")


class GardenIn(Strict):
    name: Name80
    theme: Line40 | None = Field(default=None, description="How the app draws it, such as vineyard or zen.")


class Plant(BaseModel):
    habit_id: UUID
    name: str
    stage: PlantStage = Field(description="seed (never done), sprout (1+ days), bud (7+), bloom (30+).")
    thriving: bool = Field(description="Its streak is running.")


class GardenState(BaseModel):
    level: int = Field(description="1 + the integer square root of points / 5.")
    points: int = Field(description="One per check-in, three per story written.")
    plants: list[Plant] = Field(description="One per habit.")
    flowers: int = Field(description="One per story written.")


class GardenOut(BaseModel):
    id: UUID
    name: str
    theme: str | None
    state: GardenState = Field(description="How it has grown: derived from your habits, check-ins and stories.")
    created_at: datetime
    updated_at: datetime


class ProfileExtrasIn(Strict):
    journaling_frequency: Annotated[int, Field(ge=0, le=7, description="Days a week you journal.")]


class ProfileExtrasOut(BaseModel):
    journaling_frequency: int | None = Field(description="Null until you say.")
    updated_at: datetime | None
