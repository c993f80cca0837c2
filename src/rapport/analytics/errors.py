"""Analytics' problems, each with its stable type (kernel.errors)."""

from __future__ import annotations

from rapport.kernel.errors import BadRequest, Conflict, NotFound, TooManyRequests


class TooManyEvents(TooManyRequests):
    """The person's clients sent more events than the hourly limit allows
    (`RAPPORT_ANALYTICS_EVENTS_PER_USER_PER_HOUR`): nothing of the batch was kept."""

    slug = "analytics-too-many-events"
    title = "Too many analytics events; wait before sending more"


class CrashNotFound(NotFound):
    slug = "analytics-crash-not-found"
    title = "No such crash report"


# Reports (rapport.analytics.service_reports)


class ReportRangeInvalid(BadRequest):
    """A report's range ends before it starts, or spans more days than a report reads."""

    slug = "analytics-report-range-invalid"
    title = "The report's range is not valid"


class FunnelNotFound(NotFound):
    slug = "analytics-funnel-not-found"
    title = "No such funnel"


class FunnelKeyTaken(Conflict):
    slug = "analytics-funnel-key-taken"
    title = "A funnel already has this key"


class ExperimentNotFound(NotFound):
    slug = "analytics-experiment-not-found"
    title = "No such A/B test"


class ExperimentKeyTaken(Conflict):
    slug = "analytics-experiment-key-taken"
    title = "An A/B test already has this key"


class ExperimentStopped(Conflict):
    slug = "analytics-experiment-stopped"
    title = "The A/B test has already stopped"


class SessionNotFound(NotFound):
    slug = "analytics-session-not-found"
    title = "No such analytics session"
