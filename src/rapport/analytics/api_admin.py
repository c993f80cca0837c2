"""The platform administrators' analytics under /v1/admin/analytics: the daily metrics and
their rollup, feature usage, retention cohorts, funnels, A/B tests and one route per view
of the seed's (user growth, active users, engagement, messaging, conversations, media
storage, slow queries); and the dashboard page that draws them, at /admin/analytics.

Only platform administrators may, through a signed-in session (not an API key). Ranges
are UTC days, both ends included, at most 366 days; a bad range is a 400
`analytics-report-range-invalid`. The reads may run on the replica (rapport.kernel.replica),
all but the slow statements, which are the primary's own."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import HTMLResponse

from rapport.analytics import schemas_reports as s
from rapport.analytics import service_reports as service
from rapport.kernel.db import system_transaction
from rapport.kernel.deps import NO_CONTENT, CallerDep

router = APIRouter(prefix="/v1/admin/analytics", tags=["analytics administration"])
pages = APIRouter(tags=["analytics administration"])

DASHBOARD = (FilePath(__file__).parent / "dashboard.html").read_text(encoding="utf-8")

SinceQuery = Annotated[date | None, Query(description="The first UTC day (default: 29 days before `until`).")]
UntilQuery = Annotated[date | None, Query(description="The last UTC day, included (default: today).")]
DayQuery = Annotated[date | None, Query(description="The UTC day (default: today).")]
KeyPath = Annotated[str, Path(pattern=s.KEY_PATTERN, max_length=64, description="The key.")]
LimitQuery = Annotated[int, Query(ge=1, le=500, description="How many rows.")]


@router.get("/daily-metrics", response_model=s.DailyMetricsOut)
async def get_daily_metrics(
    caller: CallerDep,
    since: SinceQuery = None,
    until: UntilQuery = None,
    metric: Annotated[s.Metric | None, Query(description="Only this metric.")] = None,
) -> s.DailyMetricsOut:
    """The daily figures (analytics.daily_metrics): events, events by name, active users,
    sessions, new users, messages sent, active senders, conversations and files."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        items = await service.list_daily_metrics(db, since=since, until=until, metric=metric)
    return s.DailyMetricsOut(items=items)


@router.post("/rollups", response_model=s.RollupOut)
async def post_rollup(body: s.RollupIn, caller: CallerDep) -> s.RollupOut:
    """Compute one UTC day's figures again now (today's so far, or any past day); the
    hourly job does it for today and yesterday by itself."""
    async with caller.transaction(session_required=True) as (db, _):
        await service.do_rollup_day(db, day=body.day)
    async with system_transaction(caller.runtime.system_engine) as db:
        done = await service.rollup_day(db, day=body.day)
    return s.RollupOut(day=done.day, metrics_written=done.metrics_written)


@router.get("/feature-usage", response_model=s.FeatureUsagePage)
async def get_feature_usage(
    caller: CallerDep,
    since: SinceQuery = None,
    until: UntilQuery = None,
    feature: Annotated[str | None, Query(max_length=100, description="Only this feature.")] = None,
) -> s.FeatureUsagePage:
    """Uses and people per feature and day, from the events named `feature_used` by their
    `properties.feature`."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        items = await service.list_feature_usage(db, since=since, until=until, feature=feature)
    return s.FeatureUsagePage(items=items)


@router.get("/retention", response_model=s.RetentionOut)
async def get_retention(
    caller: CallerDep,
    period: Annotated[s.CohortPeriod, Query(description="Cohorts by sign-up day or ISO week.")] = "week",
    since: SinceQuery = None,
    until: UntilQuery = None,
) -> s.RetentionOut:
    """Sign-up cohorts and how many were back on their day 1, 7 and 30 (default: the
    cohorts of the last 12 weeks)."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        items = await service.list_cohorts(db, period=period, since=since, until=until)
    return s.RetentionOut(items=items)


# Funnels


@router.get("/funnels", response_model=s.FunnelsOut)
async def get_funnels(caller: CallerDep) -> s.FunnelsOut:
    """Every funnel defined."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        return s.FunnelsOut(items=await service.list_funnels(db))


@router.post("/funnels", response_model=s.FunnelOut, status_code=status.HTTP_201_CREATED)
async def post_funnel(body: s.FunnelIn, caller: CallerDep) -> s.FunnelOut:
    """Define a funnel: its steps are event names, in order, each within `window_seconds`
    of the first."""
    async with caller.transaction(session_required=True) as (db, _):
        return await service.do_create_funnel(db, body=body)


@router.get("/funnels/{key}", response_model=s.FunnelReportOut)
async def get_funnel(
    key: KeyPath,
    caller: CallerDep,
    since: Annotated[datetime | None, Query(description="Entries from (default: 30 UTC days ago).")] = None,
    until: Annotated[datetime | None, Query(description="Entries before (default: the end of today).")] = None,
) -> s.FunnelReportOut:
    """A funnel's conversion: people per step, from the start and from the step before."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        return await service.funnel_report(db, key=key, since=since, until=until)


@router.delete("/funnels/{key}", **NO_CONTENT)
async def delete_funnel(key: KeyPath, caller: CallerDep) -> None:
    """Remove a funnel's definition."""
    async with caller.transaction(session_required=True) as (db, _):
        await service.do_delete_funnel(db, key=key)


# A/B tests


@router.get("/experiments", response_model=s.ExperimentsOut)
async def get_experiments(caller: CallerDep) -> s.ExperimentsOut:
    """Every A/B test, running ones first."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        return s.ExperimentsOut(items=await service.list_experiments(db))


@router.post("/experiments", response_model=s.ExperimentOut, status_code=status.HTTP_201_CREATED)
async def post_experiment(body: s.ExperimentIn, caller: CallerDep) -> s.ExperimentOut:
    """Start an A/B test: people ask for their variant at GET /v1/analytics/experiments/{key}."""
    async with caller.transaction(session_required=True) as (db, _):
        return await service.do_create_experiment(db, body=body)


@router.get("/experiments/{key}", response_model=s.ExperimentReportOut)
async def get_experiment(key: KeyPath, caller: CallerDep) -> s.ExperimentReportOut:
    """An A/B test and its result per variant: exposures, conversions, rate and the 95 %
    Wilson confidence interval."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        return await service.experiment_report(db, key=key)


@router.post("/experiments/{key}/stop", response_model=s.ExperimentOut)
async def stop_experiment(key: KeyPath, caller: CallerDep) -> s.ExperimentOut:
    """Stop an A/B test: nobody new is exposed, later conversions no longer count."""
    async with caller.transaction(session_required=True) as (db, _):
        return await service.do_stop_experiment(db, key=key)


# The seed's views


@router.get("/user-growth", response_model=s.UserGrowthPage)
async def get_user_growth(caller: CallerDep, since: SinceQuery = None, until: UntilQuery = None) -> s.UserGrowthPage:
    """views.user_growth: sign-ups per day and the running total of accounts."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        return s.UserGrowthPage(items=await service.user_growth(db, since=since, until=until))


@router.get("/active-users", response_model=s.ActiveUsersOut)
async def get_active_users(caller: CallerDep, day: DayQuery = None) -> s.ActiveUsersOut:
    """views.active_users_summary: DAU, WAU, MAU and stickiness (DAU / MAU) of a day."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        return await service.active_users(db, day=day)


@router.get("/engagement", response_model=s.EngagementOut)
async def get_engagement(caller: CallerDep, day: DayQuery = None) -> s.EngagementOut:
    """views.user_engagement, summed: how many people are power, active, casual and
    inactive users (the thresholds are in the answer)."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        return await service.engagement(db, day=day)


@router.get("/messaging", response_model=s.MessagingStatsOut)
async def get_messaging(caller: CallerDep, since: SinceQuery = None, until: UntilQuery = None) -> s.MessagingStatsOut:
    """views.messaging_stats: messages, messages with files, senders and new conversations per day."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        return s.MessagingStatsOut(items=await service.messaging_stats(db, since=since, until=until))


@router.get("/conversations", response_model=s.ConversationAnalyticsOut)
async def get_conversations(caller: CallerDep, limit: LimitQuery = 50) -> s.ConversationAnalyticsOut:
    """views.conversation_analytics: the busiest conversations of the last 7 days."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        return s.ConversationAnalyticsOut(items=await service.conversation_analytics(db, limit=limit))


@router.get("/media-storage", response_model=s.MediaStorageOut)
async def get_media_storage(
    caller: CallerDep,
    grouped_by: Annotated[s.StorageGrouping | None, Query(description="Only this grouping.")] = None,
    limit: LimitQuery = 100,
) -> s.MediaStorageOut:
    """views.media_storage_summary: files and bytes by owner, kind, month and in all."""
    async with caller.transaction(session_required=True, tolerate_lag=True) as (db, _):
        return s.MediaStorageOut(items=await service.media_storage(db, grouped_by=grouped_by, limit=limit))


@router.get("/slow-queries", response_model=s.SlowQueriesOut)
async def get_slow_queries(caller: CallerDep, limit: LimitQuery = 50) -> s.SlowQueriesOut:
    """views.slow_queries: the slowest statements on average, from pg_stat_statements; where
    the server lacks it, `available` is false and `reason` says why."""
    async with caller.transaction(session_required=True) as (db, _):
        return await service.slow_queries(db, limit=limit)


@pages.get("/admin/analytics", include_in_schema=False, response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    """The analytics dashboard: a page of its own that signs an administrator in and draws
    the routes above (no script or style from elsewhere)."""
    return HTMLResponse(DASHBOARD, headers={"Cache-Control": "no-store"})
