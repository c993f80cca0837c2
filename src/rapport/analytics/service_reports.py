"""The analytics reports' public functions: the daily rollup and its job, retention,
feature usage, funnels, A/B tests and the seed's views. Re-exported from small private
modules; every read is for platform administrators alone, except `expose` (a person's own
variant of an A/B test)."""

from rapport.analytics._experiments import (
    Z_95,
    assign_variant,
    do_create_experiment,
    do_stop_experiment,
    experiment_report,
    expose,
    list_experiments,
    wilson_interval,
)
from rapport.analytics._funnels import do_create_funnel, do_delete_funnel, funnel_report, list_funnels
from rapport.analytics._gate import require_platform_admin
from rapport.analytics._retention import list_cohorts
from rapport.analytics._rollups import (
    RolledUp,
    do_rollup_day,
    list_daily_metrics,
    list_feature_usage,
    rollup_day,
    rollup_days,
)
from rapport.analytics._views import (
    ENGAGEMENT_THRESHOLDS,
    active_users,
    conversation_analytics,
    engagement,
    media_storage,
    messaging_stats,
    slow_queries,
    user_growth,
)
from rapport.analytics.tasks_reports import QUEUE, enqueue_due, enqueue_rollup, rollup_round

__all__ = [
    "ENGAGEMENT_THRESHOLDS",
    "QUEUE",
    "Z_95",
    "RolledUp",
    "active_users",
    "assign_variant",
    "conversation_analytics",
    "do_create_experiment",
    "do_create_funnel",
    "do_delete_funnel",
    "do_rollup_day",
    "do_stop_experiment",
    "engagement",
    "enqueue_due",
    "enqueue_rollup",
    "experiment_report",
    "expose",
    "funnel_report",
    "list_cohorts",
    "list_daily_metrics",
    "list_experiments",
    "list_feature_usage",
    "list_funnels",
    "media_storage",
    "messaging_stats",
    "require_platform_admin",
    "rollup_day",
    "rollup_days",
    "rollup_round",
    "slow_queries",
    "user_growth",
    "wilson_interval",
]
