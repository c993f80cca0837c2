"""Request and response shapes of mediation: triggers, the analysis of a draft, rewrite
outcomes, statistics and the communication profile.

Every bound the database enforces is checked here first, so that bad input is a 422 and
never reaches a CHECK constraint."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from rapport.kernel.schemas import JsonDecimal, JsonUuid, NotNull, PatchBody, Strict, Text
from rapport.modules.coparenting.models_mediation import (
    EmojiUsage,
    Engine,
    Outcome,
    ToneTendency,
    TriggerType,
    VocabularyComplexity,
)

# The longest draft analysed: a long letter, not a document.
MAX_DRAFT_LENGTH = 5000

Draft = Annotated[str, Text(MAX_DRAFT_LENGTH, multiline=True)]
TriggerValue = Annotated[str, Text(200)]
Intensity = Annotated[JsonDecimal, Field(ge=0, le=1, max_digits=3, decimal_places=2)]
ToneLabel = Literal["friendly", "neutral", "tense", "hostile"]
Marker = Literal["insult", "profanity", "threat", "contempt", "blame", "command", "shouting", "exclamations"]

# Words (letters, digits, apostrophes, hyphens) separated by spaces; a pattern's words may be *.
_WORDS = r"^[\w'’-]+( [\w'’-]+)*$"
_PATTERN = r"^(\*|[\w'’-]+)( (\*|[\w'’-]+))*$"


def check_trigger_value(trigger_type: str, value: str) -> str:
    """The value, once it is right for its type; ValueError saying why not."""
    if trigger_type == "topic" and not _matches(_WORDS, value, 100):
        raise ValueError("a topic is one to a few words (letters, digits, ' and -), at most 100 characters")
    if trigger_type == "pattern":
        words = value.split(" ")
        if not _matches(_PATTERN, value, 200) or all(word == "*" for word in words) or len(words) > 12:
            raise ValueError(
                "a pattern is up to 12 words separated by single spaces, where * stands for one to three words"
            )
    if trigger_type == "phrase" and not any(char.isalnum() for char in value):
        raise ValueError("a phrase must contain a letter or a digit")
    return value


def _matches(pattern: str, value: str, max_length: int) -> bool:
    return len(value) <= max_length and re.fullmatch(pattern, value) is not None


# Triggers


class TriggerIn(Strict):
    trigger_type: TriggerType = Field(
        description="topic: words that must all appear (any ending); phrase: words in "
        "this order; pattern: words where * stands for one to three words."
    )
    trigger_value: TriggerValue = Field(examples=["money", "you always", "you * late"])
    intensity: Intensity = Field(Decimal("0.5"), description="How strongly it sets you off, 0 to 1.")

    @model_validator(mode="after")
    def _value_fits_type(self) -> TriggerIn:
        check_trigger_value(self.trigger_type, self.trigger_value)
        return self


class TriggerPatch(PatchBody):
    trigger_type: NotNull[TriggerType] = None
    trigger_value: NotNull[TriggerValue] = None
    intensity: NotNull[Intensity] = None


class TriggerOut(BaseModel):
    id: UUID
    trigger_type: TriggerType
    trigger_value: str
    intensity: Decimal
    detection_count: int = Field(description="How many analysed drafts contained it.")
    last_detected: datetime | None
    created_at: datetime
    updated_at: datetime


class TriggerPage(BaseModel):
    items: list[TriggerOut]
    next: str | None = None


# Analysis


class AnalysisIn(Strict):
    text: Draft = Field(description="The draft, as it would be sent.")
    conversation_id: JsonUuid | None = Field(
        None,
        description=(
            "The conversation it is for (one you take part in), kept with a suggested rewrite;"
            " not an end-to-end encrypted one (409 analysis-conversation-encrypted)."
        ),
    )


class ToneOut(BaseModel):
    label: ToneLabel
    compound: float = Field(description="VADER's compound sentiment, -1 (most negative) to 1 (most positive).")
    hostility: float = Field(description="0 to 1, from the sentiment and the markers found; 0.5 and above is hostile.")
    markers: list[Marker] = Field(description="What in the wording reads as hostile.")


class TriggerFoundOut(BaseModel):
    id: UUID
    trigger_type: TriggerType
    trigger_value: str
    intensity: Decimal
    matched: str = Field(description="The words of the draft that matched.")


class SuggestionOut(BaseModel):
    id: UUID = Field(description="Record what you did with it at POST /v1/coparenting/rewrites/{id}/outcome.")
    text: str
    engine: Engine


class AnalysisOut(BaseModel):
    """Only you see this: nothing of it reaches the conversation or the other parent."""

    hostile: bool
    tone: ToneOut
    triggers: list[TriggerFoundOut] = Field(description="Your triggers the draft contains.")
    suggestion: SuggestionOut | None = Field(description="A calmer rewrite, when the draft needs one.")
    engine: Engine = Field(
        description="local: the lexicon and rules; llm: the configured language model judged "
        "the tone and wrote the rewrite."
    )


# Rewrites and their outcomes


class OutcomeIn(Strict):
    outcome: Outcome = Field(
        description="accepted: sent as suggested; modified: sent changed (give final_text); "
        "rejected: sent the draft as it was; ignored: sent neither."
    )
    final_text: Draft | None = Field(None, description="What you sent instead: required with modified, else refused.")

    @model_validator(mode="after")
    def _final_text_with_modified(self) -> OutcomeIn:
        if (self.outcome == "modified") != (self.final_text is not None):
            raise ValueError("final_text is required with outcome modified, and only with it")
        return self


class RewriteOut(BaseModel):
    id: UUID
    conversation_id: UUID | None
    original_text: str
    rewrite_text: str
    final_text: str | None
    outcome: Outcome | None = Field(description="null until you record it.")
    pattern_detected: str | None
    engine: Engine
    outcome_at: datetime | None
    created_at: datetime


class RewritePage(BaseModel):
    items: list[RewriteOut]
    next: str | None = None


class StatisticsOut(BaseModel):
    """Your answered suggestions (intervention_stats_with_rate)."""

    total_interventions: int
    accepted_count: int
    modified_count: int
    rejected_count: int
    ignored_count: int
    acceptance_rate: Decimal | None = Field(description="accepted / total, null before the first.")
    last_intervention_at: datetime | None


# The communication profile


class CommunicationProfileOut(BaseModel):
    tone_tendencies: list[ToneTendency]
    avg_message_length: int = Field(description="In characters.")
    vocabulary_complexity: VocabularyComplexity
    emoji_usage: EmojiUsage
    messages_analysed: int
    profile_version: int
    created_at: datetime
    updated_at: datetime


class LearningQueued(BaseModel):
    queued: bool = True
