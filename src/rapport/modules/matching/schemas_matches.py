"""Response shapes of daily matches, likes and passes (no request bodies: a decision is
its route)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel, Field

from rapport.modules.matching.models_matches import MatchStatus


class MatchBreakdown(BaseModel):
    """The parts of a compatibility score, each 0-1."""

    attachment: float = Field(description="How secure the two are together, by their ECR-R scores (0.5: unknown).")
    interests: float = Field(description="Interests in common over interests named by either.")
    values: float = Field(description="Similarity of the two people's feature vectors (0.5: unknown).")
    demographics: float = Field(description="Closeness in distance and in age.")


class MatchProfile(BaseModel):
    """The person proposed, as anyone with a profile may see them: an age, never a birth
    date; a distance in whole km, never a place."""

    user_id: UUID
    age: int
    gender: str
    bio: str | None
    interests: list[str]
    distance_km: int | None
    photos: list[UUID] = Field(description="Media ids of their photos, in order.")


class MatchOut(BaseModel):
    """One proposal, as its person sees it."""

    id: UUID
    matched_user_id: UUID
    score: float = Field(description="Compatibility, 0-1.")
    breakdown: MatchBreakdown
    status: MatchStatus = Field(description="`proposed`; `liked` or `passed` by the caller; `mutual` once both liked.")
    for_date: date
    created_at: datetime
    decided_at: datetime | None
    conversation_id: UUID | None = Field(description="The two people's direct conversation, once mutual.")
    profile: MatchProfile | None = Field(
        description="The person proposed; null once they no longer take part in matching."
    )


class DailyOut(BaseModel):
    """A day's matches, best first."""

    for_date: date
    matches: list[MatchOut]
