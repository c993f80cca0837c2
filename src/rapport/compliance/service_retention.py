"""Retention, as the rest of Rapport sees it: the policies (rapport.compliance._policies),
applying them by hand or on a schedule, and this deployment's horizons."""

from rapport.compliance._policies import CONVERSATION_SETTING, POLICIES, Policy
from rapport.compliance._retention import (
    QUEUE,
    Outcome,
    PolicySetting,
    RetentionReport,
    RetentionSchedule,
    RetentionSettingRefused,
    RunRecord,
    apply_policies,
    do_reset_policy,
    do_set_policy,
    enqueue_if_due,
    get_last_run,
    list_policy_settings,
    retention_task,
    run_retention,
    run_scheduled,
)

__all__ = [
    "CONVERSATION_SETTING",
    "POLICIES",
    "QUEUE",
    "Outcome",
    "Policy",
    "PolicySetting",
    "RetentionReport",
    "RetentionSchedule",
    "RetentionSettingRefused",
    "RunRecord",
    "apply_policies",
    "do_reset_policy",
    "do_set_policy",
    "enqueue_if_due",
    "get_last_run",
    "list_policy_settings",
    "retention_task",
    "run_retention",
    "run_scheduled",
]
