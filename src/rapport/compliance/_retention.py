"""Applying the retention policies (rapport.compliance._policies): by hand
(`rapport retention run [--dry-run]`) and once a day by the `compliance.retention` job.

Every function takes the moment to apply the horizons to (`now`) rather than reading a
clock, so that what a run removes follows from its arguments alone. System work, as
`rapport_worker`: rows go in batches, each batch a transaction of its own, so that a first
run on a large database holds no lock for long and a crash keeps what was done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.compliance._policies import BY_NAME, CONVERSATION_SETTING, MAX_CONVERSATION_DAYS, POLICIES, Policy
from rapport.config import Settings
from rapport.kernel import jobs
from rapport.kernel.db import SystemEngine, system_transaction
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime

log = structlog.get_logger(__name__)

QUEUE = "compliance"
# Rows one transaction removes; a policy runs batches until fewer come back.
BATCH = 5000
# Messages of one conversation removed per call of compliance.expire_conversation_messages.
CONVERSATION_BATCH = 10000
# A scheduled run is due once the last run started this long ago: about once a day, at
# about the same hour.
PERIOD = timedelta(hours=23)
# The schedule looks whether a run is due this long after a process starts (not at once:
# a process that only runs for a moment, a test's, has no run to start), then hourly.
FIRST_CHECK_SECONDS = 15 * 60.0
CHECK_EVERY_SECONDS = 60 * 60.0
# How many conversations a report names one by one.
LISTED = 20
_UNREACHABLE = (OSError, TimeoutError, OperationalError, InterfaceError)
# pg_advisory_xact_lock's key for "starting a retention run" ("rretn" in ASCII).
_RUN_LOCK = 0x727265746E


class RetentionSettingRefused(ValueError):
    """A horizon that cannot be set: an unknown policy, a duration PostgreSQL does not read,
    or one shorter than the policy's minimum."""


@dataclass(frozen=True)
class Outcome:
    """What one policy removed (or, in a dry run, would remove)."""

    policy: str
    removes: str
    keep: str | None
    cutoff: datetime | None
    count: int
    details: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class RetentionReport:
    now: datetime
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.error is not None]

    def removed(self) -> dict[str, int]:
        return {outcome.policy: outcome.count for outcome in self.outcomes}


@dataclass(frozen=True)
class PolicySetting:
    """A policy as this deployment applies it: its default, whether a row of
    compliance.retention_policies overrides it, and the horizon that results."""

    name: str
    removes: str
    default: str | None
    configured: bool
    keep: str | None
    minimum: str


@dataclass(frozen=True)
class RunRecord:
    id: UUID
    started_at: datetime
    finished_at: datetime | None
    removed: dict[str, int]
    error: str | None


# --- horizons -------------------------------------------------------------------------

_CONFIGURED = text("SELECT name, keep::text AS keep FROM compliance.retention_policies")
_INTERVAL = text("SELECT CAST(CAST(CAST(:keep AS text) AS interval) AS text)")
_SHORTER = text("SELECT CAST(CAST(:keep AS text) AS interval) < CAST(CAST(:minimum AS text) AS interval)")
_CUTOFF = text("SELECT CAST(:now AS timestamptz) - CAST(CAST(:keep AS text) AS interval)")
_UPSERT = text(
    """
    INSERT INTO compliance.retention_policies (name, keep, updated_at)
    VALUES (:name, CAST(CAST(:keep AS text) AS interval), now())
    ON CONFLICT (name) DO UPDATE SET keep = EXCLUDED.keep, updated_at = EXCLUDED.updated_at
    """
)
_RESET = text("DELETE FROM compliance.retention_policies WHERE name = :name")


async def _configured(db: AsyncConnection) -> dict[str, str | None]:
    return {row.name: row.keep for row in await db.execute(_CONFIGURED)}


async def list_policy_settings(db: AsyncConnection, *, settings: Settings) -> list[PolicySetting]:
    """Every policy with the horizon this deployment applies. `db` is a system transaction."""
    configured = await _configured(db)
    listed = []
    for policy in POLICIES:
        keep = configured.get(policy.name, policy.default)
        listed.append(
            PolicySetting(
                name=policy.name,
                removes=policy.removes,
                default=policy.default,
                configured=policy.name in configured,
                keep=keep,
                minimum=policy.minimum_for(settings),
            )
        )
    return listed


def _policy(name: str) -> Policy:
    policy = BY_NAME.get(name)
    if policy is None:
        raise RetentionSettingRefused(f"No retention policy is named {name!r}: one of {', '.join(BY_NAME)}.")
    return policy


async def do_set_policy(db: AsyncConnection, *, name: str, keep: str | None, settings: Settings) -> PolicySetting:
    """Set a policy's horizon for this deployment: a PostgreSQL interval ('90 days',
    '2 years'), or None to keep its rows forever. `db` is a system transaction.

    Raises:
        RetentionSettingRefused: an unknown policy, a duration PostgreSQL does not read, or
            one shorter than the policy's minimum.
    """
    policy = _policy(name)
    if keep is not None:
        minimum = policy.minimum_for(settings)
        try:
            async with db.begin_nested():
                keep = (await db.execute(_INTERVAL, {"keep": keep})).scalar_one()
                shorter = (await db.execute(_SHORTER, {"keep": keep, "minimum": minimum})).scalar_one()
        except DBAPIError as exc:
            raise RetentionSettingRefused(
                f"{keep!r} is not a duration: write it as PostgreSQL reads an interval, e.g. '90 days' or '2 years'."
            ) from exc
        if shorter:
            raise RetentionSettingRefused(f"The {name} policy keeps rows at least {minimum}; {keep} is shorter.")
    await db.execute(_UPSERT, {"name": name, "keep": keep})
    return next(setting for setting in await list_policy_settings(db, settings=settings) if setting.name == name)


async def do_reset_policy(db: AsyncConnection, *, name: str, settings: Settings) -> PolicySetting:
    """Go back to a policy's default horizon. `db` is a system transaction.

    Raises:
        RetentionSettingRefused: no policy has that name.
    """
    _policy(name)
    await db.execute(_RESET, {"name": name})
    return next(setting for setting in await list_policy_settings(db, settings=settings) if setting.name == name)


async def _horizon(
    db: AsyncConnection, policy: Policy, configured: dict[str, str | None], *, settings: Settings
) -> tuple[str | None, str | None]:
    """The horizon to apply and, when the configured one is below the minimum (the
    minimum can grow with settings), a note that the minimum applies instead."""
    keep = configured.get(policy.name, policy.default)
    if keep is None:
        return None, None
    minimum = policy.minimum_for(settings)
    if (await db.execute(_SHORTER, {"keep": keep, "minimum": minimum})).scalar_one():
        return minimum, f"the {keep} configured is below the minimum: {minimum} applied"
    return keep, None


async def _cutoff(db: AsyncConnection, *, now: datetime, keep: str) -> datetime:
    cutoff: datetime = (await db.execute(_CUTOFF, {"now": now, "keep": keep})).scalar_one()
    return cutoff


# --- the policies' kinds ----------------------------------------------------------------


async def _apply_rows(engine: SystemEngine, policy: Policy, *, cutoff: datetime, dry_run: bool) -> Outcome:
    total = 0
    details = []
    for target in policy.targets:
        count = 0
        if dry_run:
            async with system_transaction(engine) as db:
                count = (
                    await db.execute(
                        text(f"SELECT count(*) FROM {target.table} WHERE {target.where}"), {"cutoff": cutoff}
                    )
                ).scalar_one()
        else:
            # By physical address: every table alike, whatever its key, in batches.
            delete = text(
                f"DELETE FROM {target.table} WHERE ctid = ANY(ARRAY("
                f"SELECT ctid FROM {target.table} WHERE {target.where} LIMIT :batch))"
            )
            while True:
                async with system_transaction(engine) as db:
                    removed = (await db.execute(delete, {"cutoff": cutoff, "batch": BATCH})).rowcount
                count += removed
                if removed < BATCH:
                    break
        total += count
        if len(policy.targets) > 1:
            details.append(f"{target.table}: {count}")
    return Outcome(policy.name, policy.removes, None, cutoff, total, tuple(details))


_CHAINS = text(
    """
    SELECT h.table_name,
           (SELECT c.column_name FROM information_schema.columns c
             WHERE c.table_schema = split_part(h.table_name, '.', 1) AND c.table_name = split_part(h.table_name, '.', 2)
               AND c.column_name IN ('occurred_at', 'created_at')
             ORDER BY c.column_name = 'occurred_at' DESC LIMIT 1) AS time_column
      FROM audit.chain_heads h
     ORDER BY h.table_name
    """
)
_PRUNE = text("SELECT audit.prune_chain(:chain, :cutoff)")


async def _apply_audit(engine: SystemEngine, policy: Policy, *, cutoff: datetime, dry_run: bool) -> Outcome:
    """Each hash-chained audit table loses the rows before its first row inside the horizon
    (audit.prune_chain, which keeps the hash the remaining chain starts from)."""
    async with system_transaction(engine) as db:
        chains = [(row.table_name, row.time_column) for row in await db.execute(_CHAINS)]
    total = 0
    details = []
    for chain, time_column in chains:
        if dry_run:
            # What audit.prune_chain would delete: the chain's prefix before its first row to keep.
            count_prefix = text(
                f"SELECT count(*) FROM {chain} WHERE chain_position < coalesce("
                f"(SELECT min(chain_position) FROM {chain} WHERE {time_column} >= :cutoff), "
                f"(SELECT max(chain_position) + 1 FROM {chain}))"
            )
            async with system_transaction(engine) as db:
                count = (await db.execute(count_prefix, {"cutoff": cutoff})).scalar_one()
        else:
            async with system_transaction(engine) as db:
                count = (await db.execute(_PRUNE, {"chain": chain, "cutoff": cutoff})).scalar_one()
        total += count
        if count:
            details.append(f"{chain}: {count}")
    return Outcome(policy.name, policy.removes, None, cutoff, total, tuple(details))


_PARTITIONS = text(
    "SELECT partition_name, range_start, range_end, messages "
    "FROM compliance.expire_message_partitions(:cutoff, :dry_run)"
)
# The conversations that set a horizon of their own that Rapport can apply: a whole number
# of days within range (any other value is ignored).
_OWN_HORIZONS = text(
    f"""
    SELECT o.id, o.days FROM (
        SELECT c.id,
               CASE WHEN jsonb_typeof(c.settings -> '{CONVERSATION_SETTING}') = 'number'
                         AND (c.settings ->> '{CONVERSATION_SETTING}') ~ '^[0-9]{{1,5}}$'
                    THEN (c.settings ->> '{CONVERSATION_SETTING}')::integer END AS days
          FROM messaging.conversations c
         WHERE c.settings ? '{CONVERSATION_SETTING}'
    ) o
     WHERE o.days BETWEEN 1 AND {MAX_CONVERSATION_DAYS}
     ORDER BY o.id
    """
)
_CONVERSATION_CUTOFF = text("SELECT CAST(:now AS timestamptz) - make_interval(days => :days)")
_EXPIRE_CONVERSATION = text("SELECT compliance.expire_conversation_messages(:conversation, :cutoff, :dry_run, :batch)")


async def _drop_partitions(engine: SystemEngine, *, cutoff: datetime, dry_run: bool) -> tuple[int, list[str]]:
    """The monthly partitions wholly past the deployment's horizon: a dry run has them all
    named at once; a real one drops one per call (and transaction)."""
    partitions: list[Any] = []
    while True:
        async with system_transaction(engine) as db:
            dropped = (await db.execute(_PARTITIONS, {"cutoff": cutoff, "dry_run": dry_run})).all()
        partitions += dropped
        if dry_run or not dropped:
            break
    details = [
        f"{row.partition_name} ({row.range_start.astimezone(UTC):%Y-%m}): {row.messages} messages" for row in partitions
    ]
    return sum(row.messages for row in partitions), details


async def _expire_conversation(engine: SystemEngine, conversation: UUID, *, cutoff: datetime, dry_run: bool) -> int:
    """One conversation's messages made before `cutoff`, in calls of CONVERSATION_BATCH."""
    count = 0
    while True:
        async with system_transaction(engine) as db:
            step: int = (
                await db.execute(
                    _EXPIRE_CONVERSATION,
                    {"conversation": conversation, "cutoff": cutoff, "dry_run": dry_run, "batch": CONVERSATION_BATCH},
                )
            ).scalar_one()
        count += step
        if dry_run or step < CONVERSATION_BATCH:
            return count


async def _apply_messages(
    engine: SystemEngine, policy: Policy, *, now: datetime, cutoff: datetime | None, dry_run: bool
) -> Outcome:
    """Whole partitions past the deployment's horizon, then each conversation's own horizon
    where it is shorter."""
    total, details = (0, []) if cutoff is None else await _drop_partitions(engine, cutoff=cutoff, dry_run=dry_run)
    async with system_transaction(engine) as db:
        own = (await db.execute(_OWN_HORIZONS)).all()
    unlisted = 0
    for conversation, days in own:
        async with system_transaction(engine) as db:
            own_cutoff: datetime = (await db.execute(_CONVERSATION_CUTOFF, {"now": now, "days": days})).scalar_one()
        if cutoff is not None and own_cutoff <= cutoff:
            continue  # the deployment's horizon is the shorter: its partitions go
        count = await _expire_conversation(engine, conversation, cutoff=own_cutoff, dry_run=dry_run)
        total += count
        if count and len(details) < LISTED:
            details.append(f"conversation {conversation} ({days} days): {count} messages")
        elif count:
            unlisted += 1
    if unlisted:
        details.append(f"and {unlisted} more conversations")
    return Outcome(policy.name, policy.removes, None, cutoff, total, tuple(details))


# --- runs -------------------------------------------------------------------------------


async def _apply(
    engine: SystemEngine,
    policy: Policy,
    configured: dict[str, str | None],
    *,
    settings: Settings,
    now: datetime,
    dry_run: bool,
) -> Outcome:
    async with system_transaction(engine) as db:
        keep, note = await _horizon(db, policy, configured, settings=settings)
        cutoff = await _cutoff(db, now=now, keep=keep) if keep is not None else None
    if policy.kind == "messages":
        outcome = await _apply_messages(engine, policy, now=now, cutoff=cutoff, dry_run=dry_run)
    elif cutoff is None:
        outcome = Outcome(policy.name, policy.removes, None, None, 0)
    elif policy.kind == "audit":
        outcome = await _apply_audit(engine, policy, cutoff=cutoff, dry_run=dry_run)
    else:
        outcome = await _apply_rows(engine, policy, cutoff=cutoff, dry_run=dry_run)
    details = outcome.details if note is None else (note, *outcome.details)
    return Outcome(policy.name, policy.removes, keep, cutoff, outcome.count, details)


def _selected(only: Collection[str] | None) -> list[Policy]:
    if only is None:
        return list(POLICIES)
    return [_policy(name) for name in only]


async def apply_policies(
    engine: SystemEngine,
    *,
    settings: Settings,
    now: datetime,
    dry_run: bool = False,
    only: Collection[str] | None = None,
) -> RetentionReport:
    """Apply every policy (or those named in `only`) to the horizons as of `now`; with
    `dry_run`, count what would go and change nothing. A policy that fails is reported
    with its error and the others still run. Records nothing: see `run_retention`.

    Raises:
        RetentionSettingRefused: `only` names a policy that does not exist.
    """
    policies = _selected(only)
    async with system_transaction(engine) as db:
        configured = await _configured(db)
    report = RetentionReport(now=now, dry_run=dry_run)
    for policy in policies:
        try:
            outcome = await _apply(engine, policy, configured, settings=settings, now=now, dry_run=dry_run)
        except Exception as exc:  # one policy's failure (a lock not granted in time) is the operator's to see
            log.error("retention.policy_failed", policy=policy.name, error=f"{type(exc).__name__}: {exc}")
            outcome = Outcome(policy.name, policy.removes, None, None, 0, error=f"{type(exc).__name__}: {exc}")
        report.outcomes.append(outcome)
    return report


_START_RUN = text("INSERT INTO compliance.retention_runs (id, started_at) VALUES (:id, :now)")
_END_RUN = text(
    "UPDATE compliance.retention_runs SET finished_at = clock_timestamp(), removed = CAST(:removed AS jsonb), "
    "error = :error WHERE id = :id"
)
_RECENT_RUN = text("SELECT max(started_at) FROM compliance.retention_runs")
_LOCK_RUNS = text("SELECT pg_advisory_xact_lock(:key)")


async def _finish(engine: SystemEngine, run_id: UUID, report: RetentionReport) -> None:
    errors = "; ".join(f"{outcome.policy}: {outcome.error}" for outcome in report.failed)
    async with system_transaction(engine) as db:
        await db.execute(
            _END_RUN,
            {"id": run_id, "removed": orjson.dumps(report.removed()).decode(), "error": errors[:2000] or None},
        )
    if report.failed:
        log.error("retention.run_failed", failed=[outcome.policy for outcome in report.failed])
    log.info("retention.run", removed={name: count for name, count in report.removed().items() if count})


async def run_retention(
    engine: SystemEngine,
    *,
    settings: Settings,
    now: datetime,
    dry_run: bool = False,
    only: Collection[str] | None = None,
) -> RetentionReport:
    """`apply_policies`, recorded in compliance.retention_runs unless it is a dry run.

    Raises:
        RetentionSettingRefused: `only` names a policy that does not exist.
    """
    if dry_run:
        return await apply_policies(engine, settings=settings, now=now, dry_run=True, only=only)
    _selected(only)
    run_id = uuid7()
    async with system_transaction(engine) as db:
        await db.execute(_START_RUN, {"id": run_id, "now": now})
    report = await apply_policies(engine, settings=settings, now=now, only=only)
    await _finish(engine, run_id, report)
    return report


async def run_scheduled(engine: SystemEngine, *, settings: Settings, now: datetime) -> RetentionReport | None:
    """A scheduled run: every policy, unless a run started less than PERIOD before `now`
    (another process queued one too, or an operator ran one); None when skipped."""
    run_id = uuid7()
    async with system_transaction(engine) as db:
        # Two jobs starting at once: the second waits here, then finds the first's row.
        await db.execute(_LOCK_RUNS, {"key": _RUN_LOCK})
        last: datetime | None = (await db.execute(_RECENT_RUN)).scalar_one()
        if last is not None and last > now - PERIOD:
            return None
        await db.execute(_START_RUN, {"id": run_id, "now": now})
    report = await apply_policies(engine, settings=settings, now=now)
    await _finish(engine, run_id, report)
    return report


_LAST_RUN = text(
    "SELECT id, started_at, finished_at, removed, error FROM compliance.retention_runs ORDER BY started_at DESC LIMIT 1"
)


async def get_last_run(db: AsyncConnection) -> RunRecord | None:
    """The newest run, or None. `db` is a system transaction."""
    row = (await db.execute(_LAST_RUN)).first()
    if row is None:
        return None
    return RunRecord(row.id, row.started_at, row.finished_at, dict(row.removed), row.error)


# --- the schedule -----------------------------------------------------------------------


@jobs.tasks.task("compliance.retention", queue=QUEUE, max_attempts=3, timeout_seconds=6 * 60 * 60.0)
async def retention_task(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    # A failing policy is recorded in the run and logged, not raised: a retry would find
    # the run just started and skip, and the other policies have done their part.
    await run_scheduled(ctx.runtime.system_engine, settings=ctx.runtime.settings, now=datetime.now(UTC))


_DUE = text(
    """
    SELECT coalesce((SELECT max(r.started_at) FROM compliance.retention_runs r)
                        <= CAST(:now AS timestamptz) - CAST(:period AS interval), true)
       AND NOT EXISTS (SELECT 1 FROM kernel.jobs j WHERE j.task = :task AND j.status IN ('queued', 'running'))
    """
)


async def enqueue_if_due(db: AsyncConnection, *, now: datetime) -> bool:
    """Queue a retention run when the last one started PERIOD ago or more and none is
    waiting; whether one was queued. `db` is a system transaction."""
    due: bool = (await db.execute(_DUE, {"now": now, "period": PERIOD, "task": retention_task.name})).scalar_one()
    if due:
        await jobs.enqueue(db, retention_task, {})
    return due


class RetentionSchedule:
    """Queues a `compliance.retention` job once a day, in each process that runs the
    `compliance` queue's jobs: it looks FIRST_CHECK_SECONDS after the start and then every
    CHECK_EVERY_SECONDS whether the last run started a day ago, so that restarts neither
    skip a day nor run it twice. A loop rather than a job that queues its next run, which
    a long outage would stop for good once its attempts were spent (as media's Collector)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        first_check_seconds: float = FIRST_CHECK_SECONDS,
        check_every_seconds: float = CHECK_EVERY_SECONDS,
    ) -> None:
        self._runtime = runtime
        self._first = first_check_seconds
        self._every = check_every_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._repeat(), name="retention schedule")

    async def _repeat(self) -> None:
        delay = self._first
        while True:
            await asyncio.sleep(delay)
            delay = self._every
            try:
                async with system_transaction(self._runtime.system_engine) as db:
                    await enqueue_if_due(db, now=datetime.now(UTC))
            except _UNREACHABLE as exc:
                log.warning("retention.schedule_unreachable", error=str(exc))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
