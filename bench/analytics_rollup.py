"""The daily analytics rollup over 10M events: Rapport's job (analytics.rollup_day, as
system work) against the same aggregate SQL run straight in PostgreSQL, in one run.

    .venv/bin/python -m bench.analytics_rollup                                   # 10M events, 100k people
    .venv/bin/python -m bench.analytics_rollup --events 200000 --people 2000      # a short run
    .venv/bin/python -m bench.analytics_rollup --keep /tmp/analytics-rollup      # keep (or reuse) the data

Without `--keep` the benchmark makes a throw-away data folder, starts an embedded
PostgreSQL in it, provisions the roles, migrates to head and removes the folder at the end.

Generation (as the embedded server's superuser, triggers and foreign-key checks off):
`--people` accounts who signed up over the `--days` days before the measured day, and
`--events` events COPYed into analytics.events (a partition per month, made here for the
past months), spread over those days with a busier measured day (`--day-share` of all
events, default 1/`--days` x 3), by people drawn with a skewed frequency, in sessions, with
a dozen event names (`feature_used` with a `feature` property among them); then VACUUM
ANALYZE.

Measurement, `--repeat` times each (default 3), the first run cold:

- rapport: `SELECT analytics.rollup_day(day)` in a system transaction as `rapport_worker`
  (rapport.analytics.service_reports.rollup_day): the day's figures, its feature usage and
  the retention cohorts it touches, replaced whole, under row-level security.
- straight: the same aggregate statements run by the superuser with no function, no
  policy and no write: the figures of the day (one pass over its events), its feature
  usage and the cohorts' retention query. The figures of both are compared: they must agree.

The table goes to stdout, the figures to bench/results/analytics_rollup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from rich.console import Console
from rich.table import Table

from bench._database import open_bench_database
from bench._report import machine

out = Console()
err = Console(stderr=True)
RESULTS_PATH = Path(__file__).resolve().parent / "results" / "analytics_rollup.json"
NAMES = (
    "app_open",
    "screen_view",
    "screen_view",
    "screen_view",
    "profile_view",
    "message_sent",
    "message_sent",
    "feature_used",
    "search",
    "notification_open",
    "logged_in",
    "app_background",
)
FEATURES = ("search", "stickers", "voice_note", "reactions", "polls", "translate")
CHUNK = 100_000

# The statements of analytics.rollup_day and analytics.rollup_retention (migration
# 2026_11_30_0046), as plain reads: $1 is the day.
STRAIGHT_FIGURES = """
WITH bounds AS (
    SELECT ($1::date)::timestamp AT TIME ZONE 'UTC' AS lo, ($1::date + 1)::timestamp AT TIME ZONE 'UTC' AS hi
),
e AS MATERIALIZED (
    SELECT event_name, user_id, session_id, properties FROM analytics.events, bounds
     WHERE created_at >= bounds.lo AND created_at < bounds.hi
)
SELECT 'events' AS metric, '' AS dimension, count(*) AS value FROM e
UNION ALL SELECT 'active_users', '', count(DISTINCT user_id) FROM e
UNION ALL SELECT 'sessions', '', count(DISTINCT session_id) FROM e
UNION ALL SELECT 'events_by_name', event_name, count(*) FROM e GROUP BY event_name
UNION ALL SELECT 'new_users', '', count(*) FROM auth.users u, bounds
           WHERE u.created_at >= bounds.lo AND u.created_at < bounds.hi AND u.kind = 'person'
UNION ALL SELECT 'messages_sent', '', count(*) FROM messaging.messages m, bounds
           WHERE m.created_at >= bounds.lo AND m.created_at < bounds.hi AND m.type <> 'system'
UNION ALL SELECT 'active_senders', '', count(DISTINCT m.sender_id) FROM messaging.messages m, bounds
           WHERE m.created_at >= bounds.lo AND m.created_at < bounds.hi AND m.type <> 'system'
UNION ALL SELECT 'conversations_created', '', count(*) FROM messaging.conversations c, bounds
           WHERE c.created_at >= bounds.lo AND c.created_at < bounds.hi
UNION ALL SELECT 'files_uploaded', '', count(*) FROM media.files f, bounds
           WHERE f.created_at >= bounds.lo AND f.created_at < bounds.hi
UNION ALL SELECT 'bytes_uploaded', '', coalesce(sum(f.size_bytes), 0) FROM media.files f, bounds
           WHERE f.created_at >= bounds.lo AND f.created_at < bounds.hi
UNION ALL SELECT 'feature:' || left(btrim(properties ->> 'feature'), 100), '', count(*) FROM e
           WHERE event_name = 'feature_used' AND nullif(btrim(properties ->> 'feature'), '') IS NOT NULL GROUP BY 1
"""
STRAIGHT_RETENTION = """
WITH members AS (
    SELECT u.id, (u.created_at AT TIME ZONE 'UTC')::date AS signup_day FROM auth.users u
     WHERE u.kind = 'person' AND u.created_at >= (date_trunc('week', $1::date - 30)::date)::timestamp AT TIME ZONE 'UTC'
       AND u.created_at < ($1::date + 1)::timestamp AT TIME ZONE 'UTC'
), seen AS (
    SELECT m.signup_day,
           EXISTS (SELECT 1 FROM analytics.events e WHERE e.user_id = m.id
                      AND e.created_at >= (m.signup_day + 1)::timestamp AT TIME ZONE 'UTC'
                      AND e.created_at < (m.signup_day + 2)::timestamp AT TIME ZONE 'UTC') AS d1,
           EXISTS (SELECT 1 FROM analytics.events e WHERE e.user_id = m.id
                      AND e.created_at >= (m.signup_day + 7)::timestamp AT TIME ZONE 'UTC'
                      AND e.created_at < (m.signup_day + 8)::timestamp AT TIME ZONE 'UTC') AS d7,
           EXISTS (SELECT 1 FROM analytics.events e WHERE e.user_id = m.id
                      AND e.created_at >= (m.signup_day + 30)::timestamp AT TIME ZONE 'UTC'
                      AND e.created_at < (m.signup_day + 31)::timestamp AT TIME ZONE 'UTC') AS d30
      FROM members m
), cohorts AS (
    SELECT 'day' AS period, s.signup_day AS start, s.d1, s.d7, s.d30 FROM seen s WHERE s.signup_day >= $1::date - 30
    UNION ALL SELECT 'week', date_trunc('week', s.signup_day)::date, s.d1, s.d7, s.d30 FROM seen s
)
SELECT c.period, c.start, count(*) AS size, count(*) FILTER (WHERE c.d1) AS d1, count(*) FILTER (WHERE c.d7) AS d7,
       count(*) FILTER (WHERE c.d30) AS d30
  FROM cohorts c GROUP BY 1, 2
"""


def stop_embedded_server(data_dir: Path) -> None:
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        pgserver.get_server(data_dir / "pgdata").cleanup()


def _months(first: date, last: date) -> Iterator[date]:
    month = first.replace(day=1)
    while month <= last:
        yield month
        month = (month + timedelta(days=32)).replace(day=1)


async def _generate(admin: asyncpg.Connection, args: argparse.Namespace, day: date) -> dict[str, Any]:
    """People and events, as the superuser with triggers and foreign-key checks off."""
    rng = random.Random(args.seed)
    first = day - timedelta(days=args.days - 1)
    started = time.perf_counter()
    await admin.execute("SET session_replication_role = replica")
    for month in _months(first - timedelta(days=1), day):
        end = (month + timedelta(days=32)).replace(day=1)
        await admin.execute(
            f"SET ROLE rapport_owner; CREATE TABLE IF NOT EXISTS analytics.events_p{month:%Y%m} PARTITION OF"
            f" analytics.events FOR VALUES FROM ('{month} 00:00+00') TO ('{end} 00:00+00');"
            f" ALTER TABLE analytics.events_p{month:%Y%m} FORCE ROW LEVEL SECURITY; RESET ROLE"
        )
    start_ts = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    span = args.days * 86400
    people = [UUID(int=rng.getrandbits(128) & ~(0xF << 76) | (0x4 << 76)) for _ in range(args.people)]
    await admin.copy_records_to_table(
        "users",
        schema_name="auth",
        columns=["id", "email", "status", "created_at", "updated_at"],
        records=(
            (p, f"p{n}@bench.example", "active", at, at)
            for n, p in enumerate(people)
            for at in [start_ts + timedelta(seconds=rng.random() * span)]
        ),
    )
    # Skewed activity: a few people send most events.
    weights = [1.0 / (k + 1) ** 0.8 for k in range(len(people))]
    cumulative = list(_accumulate(weights))
    day_start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    on_day = int(args.events * args.day_share)
    made = 0
    while made < args.events:
        n = min(CHUNK, args.events - made)
        chosen = rng.choices(people, cum_weights=cumulative, k=n)
        records = []
        for k, person in enumerate(chosen):
            index = made + k
            if index < on_day:
                at = day_start + timedelta(seconds=rng.random() * 86400)
            else:
                at = start_ts + timedelta(seconds=rng.random() * (span - 86400))
            name = rng.choice(NAMES)
            properties = {"feature": rng.choice(FEATURES)} if name == "feature_used" else {}
            session = UUID(int=(person.int ^ (int(at.timestamp()) // 1800)) & ((1 << 128) - 1))
            records.append(
                (
                    UUID(int=rng.getrandbits(128)),
                    at,
                    at,
                    person,
                    session,
                    name,
                    "client",
                    orjson.dumps(properties).decode(),
                )
            )
        await admin.copy_records_to_table(
            "events",
            schema_name="analytics",
            columns=[
                "id",
                "created_at",
                "event_timestamp",
                "user_id",
                "session_id",
                "event_name",
                "source",
                "properties",
            ],
            records=records,
        )
        made += n
        err.print(f"  {made:,} events")
    await admin.execute("RESET session_replication_role")
    with err.status("VACUUM ANALYZE…"):
        await admin.execute("VACUUM ANALYZE analytics.events")
        await admin.execute("VACUUM ANALYZE auth.users")
    return {"seconds": round(time.perf_counter() - started, 1), "events_on_day": on_day}


def _accumulate(weights: list[float]) -> Iterator[float]:
    total = 0.0
    for weight in weights:
        total += weight
        yield total


async def _rapport(urls: Any, day: date, repeat: int) -> tuple[list[float], dict[str, int]]:
    from sqlalchemy import text

    from rapport.analytics import service_reports
    from rapport.kernel.db import create_system_engine, system_transaction

    engine = create_system_engine(urls.worker, pool_size=1)
    timings = []
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            async with system_transaction(engine) as db:
                await service_reports.rollup_day(db, day=day)
            timings.append(time.perf_counter() - started)
        async with system_transaction(engine) as db:
            rows = await db.execute(
                text("SELECT metric, dimension, value FROM analytics.daily_metrics WHERE day = :d"), {"d": day}
            )
            figures = {f"{r.metric}:{r.dimension}" if r.dimension else r.metric: r.value for r in rows}
            features = await db.execute(
                text("SELECT feature, uses FROM analytics.feature_usage WHERE day = :d"), {"d": day}
            )
            figures |= {f"feature:{r.feature}": r.uses for r in features}
    finally:
        await engine.dispose()
    return timings, figures


async def _straight(admin: asyncpg.Connection, day: date, repeat: int) -> tuple[list[float], dict[str, int]]:
    timings = []
    figures: dict[str, int] = {}
    for _ in range(repeat):
        started = time.perf_counter()
        rows = await admin.fetch(STRAIGHT_FIGURES, day)
        await admin.fetch(STRAIGHT_RETENTION, day)
        timings.append(time.perf_counter() - started)
        figures = {f"{r['metric']}:{r['dimension']}" if r["dimension"] else r["metric"]: int(r["value"]) for r in rows}
    return timings, figures


def _summary(timings: list[float]) -> dict[str, float]:
    return {
        "cold_s": round(timings[0], 3),
        "warm_median_s": round(statistics.median(timings[1:] or timings), 3),
        "runs": len(timings),
    }


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    bench = await open_bench_database(data_dir)
    day = datetime.now(UTC).date() - timedelta(days=1)
    try:
        [have] = await bench.admin.fetch("SELECT count(*) AS n FROM analytics.events")
        generation: dict[str, Any] = {"reused": True}
        if have["n"] == 0:
            err.print(f"Generating {args.events:,} events of {args.people:,} people over {args.days} days…")
            generation = await _generate(bench.admin, args, day)
        rapport, rapport_figures = await _rapport(bench.urls, day, args.repeat)
        straight, straight_figures = await _straight(bench.admin, day, args.repeat)
    finally:
        await bench.admin.close()
    assert rapport_figures == straight_figures, (rapport_figures, straight_figures)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "events": args.events,
        "people": args.people,
        "days": args.days,
        "day": day.isoformat(),
        "events_on_day": rapport_figures.get("events"),
        "generation": generation,
        "rapport": _summary(rapport),
        "straight": _summary(straight),
        "figures_agree": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000, help="events to generate (default 10,000,000)")
    parser.add_argument("--people", type=int, default=100_000, help="people (default 100,000)")
    parser.add_argument("--days", type=int, default=40, help="days the events span, to yesterday (default 40)")
    parser.add_argument("--day-share", type=float, default=None, help="share of events on the measured day")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each way (default 3; the first is cold)")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--keep", type=Path, default=None, help="keep (or reuse) the data folder here")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()
    if args.day_share is None:
        args.day_share = min(1.0, 3.0 / args.days)
    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="rapport-analytics-rollup-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        results = asyncio.run(run(args, data_dir))
    finally:
        stop_embedded_server(data_dir)
        if args.keep is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    table = Table(title=f"Daily rollup of {results['events_on_day']:,} events (of {args.events:,}) on {results['day']}")
    for column in ("way", "cold (s)", "warm median (s)", "runs"):
        table.add_column(column)
    for way in ("rapport", "straight"):
        figures = results[way]
        table.add_row(way, str(figures["cold_s"]), str(figures["warm_median_s"]), str(figures["runs"]))
    out.print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    out.print(f"Figures written to {args.output}")


if __name__ == "__main__":
    main()
