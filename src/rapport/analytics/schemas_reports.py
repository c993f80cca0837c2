"""Request and response shapes of the administrators' analytics reports: daily metrics,
feature usage, retention cohorts, funnels, A/B tests and the seed's views.

Every field has a bound the database also enforces, so that bad input is refused here
with a 422 and never reaches a CHECK constraint."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from rapport.analytics.models_reports import CohortPeriod as CohortPeriod
from rapport.analytics.models_reports import Metric as Metric
from rapport.analytics.models_reports import TestStatus
from rapport.kernel.schemas import JsonDate, Strict, Text

# A test's or funnel's key, as clients name it in code (migration 0046's CHECK).
KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
Key = Annotated[str, Text(64, pattern=KEY_PATTERN)]
# An event name, as analytics.events allows it.
EventName = Annotated[str, Text(64, pattern=r"^[a-z][a-z0-9_.:-]{0,63}$")]
VariantName = Annotated[str, Text(64, pattern=KEY_PATTERN)]
Name = Annotated[str, Text(200, name=True)]
Description = Annotated[str, Text(2000, min_length=0, multiline=True)]

# At most this many days in one report's range.
MAX_RANGE_DAYS = 366
# The feature event and the property naming the feature (rapport.analytics._rollups).
FEATURE_EVENT = "feature_used"
FEATURE_PROPERTY = "feature"
EngagementLevel = Literal["power_user", "active_user", "casual_user", "inactive_user"]
StorageGrouping = Literal["user", "kind", "month", "total"]


# Daily metrics, feature usage, retention


class DailyMetricOut(BaseModel):
    day: date
    metric: Metric
    dimension: str = Field(description="The event name for events_by_name; empty otherwise.")
    value: int


class DailyMetricsOut(BaseModel):
    items: list[DailyMetricOut]


class RollupIn(Strict):
    day: JsonDate = Field(description="The UTC day to roll up again (today's figures so far, or any past day).")


class RollupOut(BaseModel):
    day: date
    metrics_written: int


class FeatureUsageOut(BaseModel):
    day: date
    feature: str
    uses: int = Field(description=f"Events named {FEATURE_EVENT} with this properties.{FEATURE_PROPERTY}.")
    users: int = Field(description="Distinct people among them.")


class FeatureUsagePage(BaseModel):
    items: list[FeatureUsageOut]


class CohortOut(BaseModel):
    cohort_period: CohortPeriod
    cohort_start: date
    cohort_size: int
    retained_day_1: int | None = Field(description="People with an event on their day 1; null until it is over.")
    retained_day_7: int | None
    retained_day_30: int | None
    rate_day_1: float | None
    rate_day_7: float | None
    rate_day_30: float | None


class RetentionOut(BaseModel):
    items: list[CohortOut]


# Funnels


class FunnelIn(Strict):
    key: Key = Field(description="How reports name the funnel: lower case, digits, _ . -.")
    name: Name
    steps: list[EventName] = Field(min_length=2, max_length=20, description="The event names, in order.")
    window_seconds: int = Field(
        86400, ge=1, le=7776000, description="How long after the first step the last may come (at most 90 days)."
    )


class FunnelOut(BaseModel):
    id: UUID
    key: str
    name: str
    steps: list[str]
    window_seconds: int
    created_at: datetime


class FunnelsOut(BaseModel):
    items: list[FunnelOut]


class FunnelStepOut(BaseModel):
    step: int
    event_name: str
    users: int
    conversion_from_start: float | None = Field(description="users / users of step 1.")
    conversion_from_previous: float | None = Field(description="users / users of the step before.")


class FunnelReportOut(BaseModel):
    funnel: FunnelOut
    since: datetime
    until: datetime
    steps: list[FunnelStepOut]


# A/B tests


class VariantIn(Strict):
    name: VariantName
    weight: int = Field(ge=0, le=10000, description="Its share, relative to the others' weights.")


class ExperimentIn(Strict):
    key: Key = Field(description="How clients ask for their variant: lower case, digits, _ . -.")
    name: Name
    description: Description = ""
    variants: list[VariantIn] = Field(min_length=2, max_length=10, description="The first is the control.")
    conversion_event: EventName = Field(description="The event that counts as a conversion after exposure.")

    @model_validator(mode="after")
    def _variants(self) -> ExperimentIn:
        names = [variant.name for variant in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must differ")
        if not any(variant.weight for variant in self.variants):
            raise ValueError("at least one variant needs a weight above 0")
        return self


class VariantOut(BaseModel):
    name: str
    weight: int


class ExperimentOut(BaseModel):
    id: UUID
    key: str
    name: str
    description: str
    variants: list[VariantOut]
    conversion_event: str
    status: TestStatus
    started_at: datetime
    stopped_at: datetime | None


class ExperimentsOut(BaseModel):
    items: list[ExperimentOut]


class VariantResultOut(BaseModel):
    variant: str
    exposures: int
    conversions: int
    rate: float | None = Field(description="conversions / exposures.")
    ci_low: float | None = Field(description="The 95 % Wilson score interval's lower bound.")
    ci_high: float | None = Field(description="Its upper bound.")


class ExperimentReportOut(BaseModel):
    experiment: ExperimentOut
    results: list[VariantResultOut]


class MyVariantOut(BaseModel):
    key: str
    variant: str
    running: bool = Field(description="false once the test stopped: then the control, unless you saw another.")
    exposed_at: datetime | None


# The seed's views


class UserGrowthOut(BaseModel):
    day: date
    new_users: int
    total_users: int


class UserGrowthPage(BaseModel):
    items: list[UserGrowthOut]


class ActiveUsersOut(BaseModel):
    day: date
    dau: int
    wau: int
    mau: int
    stickiness: float | None = Field(description="DAU / MAU.")


class EngagementLevelOut(BaseModel):
    engagement_level: EngagementLevel
    users: int
    percentage: float


class EngagementOut(BaseModel):
    day: date
    thresholds: dict[str, str]
    levels: list[EngagementLevelOut]


class MessagingDayOut(BaseModel):
    day: date
    messages: int
    messages_with_media: int
    active_senders: int
    conversations_created: int


class MessagingStatsOut(BaseModel):
    items: list[MessagingDayOut]


class ConversationStatsOut(BaseModel):
    conversation_id: UUID
    type: str
    member_count: int
    message_count: int
    messages_7d: int
    senders_7d: int
    created_at: datetime
    last_message_at: datetime | None


class ConversationAnalyticsOut(BaseModel):
    items: list[ConversationStatsOut]


class StorageRowOut(BaseModel):
    grouped_by: StorageGrouping
    key: str
    files: int
    bytes: int


class MediaStorageOut(BaseModel):
    items: list[StorageRowOut]


class SlowQueryOut(BaseModel):
    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int


class SlowQueriesOut(BaseModel):
    available: bool
    reason: str | None = Field(description="Why there is nothing to show, when pg_stat_statements is missing.")
    items: list[SlowQueryOut]
