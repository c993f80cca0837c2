"""Request and response shapes of the family part: a contact's child or co-parent details,
tasks, and topic suggestions.

Every field has a bound the database also enforces, so that bad input is refused here
with a 422 and never reaches a CHECK constraint (which would be a 500)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator, model_validator

from rapport.kernel.schemas import (
    JsonDate,
    JsonDateTime,
    JsonUuid,
    Line40,
    Line100,
    Line200,
    NotNull,
    PatchBody,
    Prose500,
    Prose1000,
    Prose2000,
    Strict,
    Text,
)

# The relationships of seed 000's contacts ("My Child", "My Co-Parent", ...): social's
# `relationship` is free text, and these are the spellings that make a contact a child or
# a co-parent here (compared trimmed, in lower case, with "-" and "_" read as spaces).
CHILD_RELATIONSHIPS = frozenset({"my child", "child", "son", "daughter", "my son", "my daughter", "stepchild"})
COPARENT_RELATIONSHIPS = frozenset(
    {
        "my co parent",
        "co parent",
        "coparent",
        "my coparent",
        "my partner",
        "partner",
        "my ex",
        "ex partner",
        "my ex partner",
        "ex spouse",
        "spouse",
        "my spouse",
    }
)

TaskStatus = Literal["open", "in_progress", "completed", "canceled"]
TaskPriority = Literal["low", "medium", "high", "urgent"]
TaskType = Annotated[str, Text(40, pattern=r"^[a-z][a-z0-9_]{0,39}$")]
CustodyArrangement = Literal["joint", "sole_mine", "sole_theirs", "split", "bird_nesting", "undecided", "other"]
SuggestionKind = Literal["place", "new"]
SuggestionState = Literal["placed", "pending", "accepted", "dismissed"]


def _past(value: date | None) -> date | None:
    if value is not None and not date(1900, 1, 1) <= value <= date.today():
        raise ValueError("must be a date between 1900-01-01 and today")
    return value


# Details of a contact: PUT replaces them whole; a field left out is cleared.


class Activity(Strict):
    name: Line100
    schedule: Line200 | None = None
    location: Line200 | None = None


class Appointment(Strict):
    title: Line100
    starts_at: JsonDateTime
    location: Line200 | None = None
    notes: Prose500 | None = None


class ChildDetailsIn(Strict):
    birth_date: JsonDate | None = None
    school: Line200 | None = None
    grade: Line40 | None = None
    health_conditions: Prose2000 | None = None
    allergies: Prose1000 | None = None
    medications: Prose2000 | None = None
    healthcare_providers: Prose1000 | None = None
    activities: Annotated[list[Activity], Field(max_length=50)] = Field(default_factory=list)
    appointments: Annotated[list[Appointment], Field(max_length=100)] = Field(default_factory=list)
    notes: Prose2000 | None = None

    _birth_date = field_validator("birth_date")(_past)


class ChildDetailsOut(BaseModel):
    contact_id: UUID
    birth_date: date | None = None
    school: str | None = None
    grade: str | None = None
    health_conditions: str | None = None
    allergies: str | None = None
    medications: str | None = None
    healthcare_providers: str | None = None
    activities: list[dict[str, Any]] = Field(default_factory=list)
    appointments: list[dict[str, Any]] = Field(default_factory=list)
    notes: str | None = None
    updated_at: datetime | None = Field(None, description="Null until the details are first saved.")


class CoparentDetailsIn(Strict):
    relationship_start: JsonDate | None = None
    separation_date: JsonDate | None = None
    divorce_date: JsonDate | None = None
    lived_together: bool | None = None
    custody_arrangement: CustodyArrangement | None = None
    custody_schedule: Prose1000 | None = None
    communication_preferences: Prose1000 | None = None
    legal_notes: Prose2000 | None = None
    relationship_notes: Prose2000 | None = None

    _dates = field_validator("relationship_start", "separation_date", "divorce_date")(_past)

    @model_validator(mode="after")
    def _in_order(self) -> CoparentDetailsIn:
        start = self.relationship_start
        for name in ("separation_date", "divorce_date"):
            value = getattr(self, name)
            if start is not None and value is not None and value < start:
                raise ValueError(f"{name} must not be before relationship_start")
        return self


class CoparentDetailsOut(BaseModel):
    contact_id: UUID
    relationship_start: date | None = None
    separation_date: date | None = None
    divorce_date: date | None = None
    lived_together: bool | None = None
    custody_arrangement: CustodyArrangement | None = None
    custody_schedule: str | None = None
    communication_preferences: str | None = None
    legal_notes: str | None = None
    relationship_notes: str | None = None
    updated_at: datetime | None = Field(None, description="Null until the details are first saved.")


# Tasks


class TaskCreate(Strict):
    title: Line200
    description: Annotated[str, Text(4000, multiline=True)] | None = None
    priority: TaskPriority = "medium"
    type: TaskType = Field(default="general", description="A free category in lower case, such as school or health.")
    due_date: JsonDateTime | None = None
    conversation_id: JsonUuid | None = Field(
        default=None, description="The shared room whose participants share the task; left out: yours alone."
    )
    assignee_id: JsonUuid | None = Field(
        default=None, description="Who does it: you, or someone taking part in the task's room."
    )
    related_contact_ids: Annotated[list[JsonUuid], Field(max_length=20)] = Field(
        default_factory=list, description="People of your contacts the task is about (a child, a co-parent)."
    )

    @field_validator("due_date")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone offset")
        return value


class TaskUpdate(PatchBody):
    title: NotNull[Line200] = None
    description: Annotated[str, Text(4000, multiline=True)] | None = None
    status: NotNull[TaskStatus] = Field(default=None, description="completed sets completed_at; leaving it clears it.")
    priority: NotNull[TaskPriority] = None
    type: NotNull[TaskType] = None
    due_date: JsonDateTime | None = Field(default=None, description="A new due date is reminded of again.")
    assignee_id: JsonUuid | None = None

    @field_validator("due_date")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone offset")
        return value


class RelatedPersonIn(Strict):
    contact_id: JsonUuid


class RelatedPerson(BaseModel):
    contact_id: UUID
    name: str
    added_by: UUID


class TaskOut(BaseModel):
    id: UUID
    user_id: UUID = Field(description="Who made the task.")
    conversation_id: UUID | None
    title: str
    description: str | None
    status: TaskStatus
    priority: TaskPriority
    type: str
    due_date: datetime | None
    completed_at: datetime | None
    assignee_id: UUID | None
    reminded_at: datetime | None
    related_people: list[RelatedPerson]
    created_at: datetime
    updated_at: datetime


# Topics


class TopicRoomOut(BaseModel):
    conversation_id: UUID
    enabled_by: UUID | None
    created_at: datetime


class TopicSuggestionOut(BaseModel):
    id: UUID
    conversation_id: UUID
    message_id: UUID
    sender_id: UUID
    kind: SuggestionKind = Field(description="place: put in an existing topic thread; new: a new topic proposed.")
    thread_id: UUID | None
    title: str | None
    category: str | None
    terms: list[str]
    score: float
    state: SuggestionState
    decided_by: UUID | None
    decided_at: datetime | None
    created_at: datetime


class AcceptSuggestion(Strict):
    title: Line200 | None = Field(default=None, description="Another title for the new topic thread.")
