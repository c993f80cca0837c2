"""Every retention policy of Rapport, in one place: what it removes, after how long by
default, and the shortest horizon a deployment may set.

A deployment overrides a default in `compliance.retention_policies` (`rapport retention
set NAME KEEP`); `rapport.compliance._retention` applies them. Horizons are PostgreSQL
intervals, applied by PostgreSQL with calendar arithmetic ('10 years' is ten years to the
day, leap days included), and `None` keeps rows forever.

Where the defaults come from: seed 002's retention table (refresh tokens 7 days,
application logs 90 days, compliance logs 7 years), seed 004's cleanup jobs (expired
sessions, old codes, processed media queue, old audit) and seed 003's horizons (messages 2
years online, audit 10 years). Messages are kept forever unless a deployment sets a
horizon: seed 002 keeps them ("part of user data") where seed 003 moves them offline after
two years, and a default that deletes people's conversations on upgrade is not one to
choose for an operator. A conversation may set a shorter horizon of its own
(`settings.message_retention_days`, below), whatever the deployment's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rapport.config import Settings

# The key of a conversation's settings (messaging.conversations.settings) that sets its own
# horizon: a whole number of days, 1 to MAX_CONVERSATION_DAYS. It can only shorten the
# deployment's: a conversation cannot keep what the deployment's policy removes (whole
# monthly partitions go), and an admin of one conversation cannot keep it longer than the
# operator allows. Any other value is ignored.
CONVERSATION_SETTING = "message_retention_days"
MAX_CONVERSATION_DAYS = 36500


@dataclass(frozen=True)
class Target:
    """Rows of one table that a policy removes: those matching `where`, in which `:cutoff`
    is the moment before which rows are past the horizon."""

    table: str
    where: str


@dataclass(frozen=True)
class Policy:
    """One retention policy. `kind` says how it is applied: `rows` deletes the targets'
    rows in batches; `messages` drops monthly partitions of messages and applies the
    conversations' own horizons; `audit` prunes the oldest rows of every hash-chained audit
    table through `audit.prune_chain`, which keeps the chain verifiable."""

    name: str
    removes: str
    default: str | None
    kind: str = "rows"
    targets: tuple[Target, ...] = ()
    minimum: str | Callable[[Settings], str] = "1 day"

    def minimum_for(self, settings: Settings) -> str:
        return self.minimum(settings) if callable(self.minimum) else self.minimum


def _sign_in_minimum(settings: Settings) -> str:
    # Sign-in asks whether a client signed in to the account within this many days
    # (identity's known clients): the history must reach that far back.
    return f"{settings.login_known_client_days} days"


POLICIES: tuple[Policy, ...] = (
    Policy(
        name="sessions",
        removes="sessions that ended (expired or signed out) longer ago than this, with their refresh tokens",
        default="7 days",
        targets=(Target("auth.sessions", "least(coalesce(revoked_at, expires_at), expires_at) < :cutoff"),),
    ),
    Policy(
        name="refresh_tokens",
        # A used token is kept while it could still be presented: its coming back is how a
        # stolen token is detected (identity revokes the session), so only expiry counts.
        removes="refresh tokens expired longer ago than this",
        default="7 days",
        targets=(Target("auth.refresh_tokens", "expires_at < :cutoff"),),
    ),
    Policy(
        name="one_time_codes",
        removes="e-mail verification and password reset codes expired longer ago than this",
        default="1 day",
        targets=(Target("auth.otp_verifications", "expires_at < :cutoff"),),
    ),
    Policy(
        name="sign_in_history",
        removes="sign-in attempts older than this (the audit keeps its own copy, audit.auth_events)",
        default="1 year",
        targets=(Target("auth.login_history", "created_at < :cutoff"),),
        minimum=_sign_in_minimum,
    ),
    Policy(
        name="security_events",
        removes="an account's security events (password, two-factor, keys) older than this",
        default="2 years",
        targets=(Target("auth.security_events", "created_at < :cutoff"),),
    ),
    Policy(
        name="dead_jobs",
        removes="background jobs whose attempts were spent longer ago than this (succeeded jobs leave at once)",
        default="14 days",
        targets=(Target("kernel.jobs", "status = 'dead' AND updated_at < :cutoff"),),
    ),
    Policy(
        name="media_processing",
        removes="completed processing steps of uploaded files (seed 004's processed media queue)",
        default="7 days",
        targets=(Target("media.processing", "status = 'completed' AND completed_at < :cutoff"),),
    ),
    Policy(
        name="delivery_records",
        removes="records of push notifications, e-mails and text messages sent (or given up) longer ago than this",
        default="90 days",
        targets=(
            Target(
                "notifications.push_delivery_log",
                "status IN ('sent', 'delivered', 'failed', 'gone') AND created_at < :cutoff",
            ),
            Target("notifications.email_notifications", "status IN ('sent', 'failed') AND created_at < :cutoff"),
            Target("notifications.sms_notifications", "status IN ('sent', 'failed') AND created_at < :cutoff"),
        ),
    ),
    Policy(
        name="bot_interactions",
        # Each holds a copy of the message delivered to a bot's webhook, and the webhook's answer.
        removes="what was delivered to bots' webhooks (each message's copy, its attempts and the answers) longer "
        "ago than this",
        default="90 days",
        targets=(Target("bots.robot_interactions", "created_at < :cutoff"),),
    ),
    Policy(
        name="messages",
        removes=(
            "messages older than this, a whole month at a time (each monthly partition once all of it is past "
            "the horizon), with their reactions, pins, versions and attachments; conversations may set a "
            f"shorter horizon of their own (settings.{CONVERSATION_SETTING})"
        ),
        default=None,
        kind="messages",
        minimum="1 month",
    ),
    Policy(
        name="audit",
        removes="audit rows older than this, oldest first, keeping the hash chain verifiable",
        default="10 years",
        kind="audit",
        minimum="1 year",
    ),
    Policy(
        name="compliance_logs",
        removes="compliance events (exports, deletions, consents, breaches) older than this",
        default="7 years",
        targets=(Target("compliance.compliance_logs", "created_at < :cutoff"),),
        minimum="1 year",
    ),
    Policy(
        name="retention_runs",
        removes="the record of earlier retention runs",
        default="1 year",
        targets=(Target("compliance.retention_runs", "started_at < :cutoff"),),
    ),
)

BY_NAME = {policy.name: policy for policy in POLICIES}
