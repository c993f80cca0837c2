"""Request and response shapes of calls: starting one, rating it, and the call as its
conversation's participants see it. Media signalling is out of scope: these are the
records."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field

from rapport.kernel.schemas import Strict
from rapport.messaging.models_calls import CallParticipantStatus, CallStatus, CallType


class StartCall(Strict):
    """A call to start: the caller joins it, and everyone else who may take part is rung."""

    type: CallType = Field(description="audio, video or screen_share.")


class RateCall(Strict):
    quality_rating: Annotated[int, Field(ge=1, le=5, description="How the call went for the caller, 1 to 5.")]


class CallParticipantOut(BaseModel):
    user_id: UUID
    status: CallParticipantStatus = Field(
        description="invited (not rung: they muted the conversation), ringing, joined, left, declined or missed."
    )
    joined_at: datetime | None = Field(description="When they first joined.")
    left_at: datetime | None


class CallOut(BaseModel):
    id: UUID
    conversation_id: UUID
    type: CallType
    status: CallStatus = Field(
        description="ringing, ongoing (a second person joined), ended, missed (nobody answered) or declined."
    )
    started_by: UUID | None = Field(description="None once the starter's account is gone.")
    started_at: datetime
    answered_at: datetime | None = Field(description="When a second person joined.")
    ended_at: datetime | None
    duration_seconds: int | None = Field(
        description="Once it is over: from answering to the end, in whole seconds; 0 when nobody answered."
    )
    created_at: datetime
    quality_rating: int | None = Field(description="The caller's own rating of the call.")
    participants: list[CallParticipantOut]
