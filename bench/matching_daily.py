"""The daily-match job for many people: its time, and matches proposed per second.

    .venv/bin/python -m bench.matching_daily                    # 100,000 people
    .venv/bin/python -m bench.matching_daily --people 2000      # a quick run

The benchmark makes a throw-away data folder, starts an embedded PostgreSQL in it,
provisions the roles, migrates to head and generates the people as the superuser (the
only time it is used): accounts in `auth.users` and dating profiles in
`matching.profiles` copied with triggers off, spread over a few dozen cities (a point
within 30 km of each), with genders, ages, preferences and interests drawn at random.
Then `rapport.modules.matching._daily.propose_daily` runs as `rapport_worker`, as the
job does, and the figures (people, pairs, wall time, pairs and rows per second) go to
stdout and bench/results/matching_daily.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from rich.console import Console

from bench._database import open_bench_database
from bench._report import machine

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "matching_daily.json"
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)

CITIES = [(48.8566 + i * 0.9, 2.3522 + (i % 7) * 1.3) for i in range(40)]
GENDERS = ["woman", "man", "nonbinary", "other"]
INTERESTS = ["jazz", "hiking", "chess", "cooking", "films", "running", "books", "yoga", "travel", "music", "art"]
_CHUNK = 20_000


def _person(rng: random.Random, today: date) -> tuple[Any, ...]:
    lat0, lon0 = CITIES[rng.randrange(len(CITIES))]
    km, bearing = 30 * math.sqrt(rng.random()), rng.random() * 2 * math.pi
    lat = lat0 + km / 111.195 * math.cos(bearing)
    lon = lon0 + km / (111.195 * math.cos(math.radians(lat0))) * math.sin(bearing)
    age = rng.randint(18, 70)
    gender = rng.choices(GENDERS, weights=[45, 45, 5, 5])[0]
    wanted = rng.choice([[], ["man"], ["woman"], ["woman", "nonbinary"], ["man", "nonbinary"]])
    low = max(18, age - rng.randint(3, 10))
    return (
        date(today.year - age, rng.randint(1, 12), 1),
        gender,
        rng.sample(INTERESTS, rng.randint(0, 5)),
        lat,
        lon,
        wanted,
        low,
        min(120, age + rng.randint(3, 10)),
        rng.choice([10, 25, 50, 100]),
    )


async def generate(admin: asyncpg.Connection, people: int, seed: int) -> list[UUID]:
    from rapport.kernel.ids import uuid7

    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    ids = [uuid7() for _ in range(people)]
    await admin.execute("SET session_replication_role = replica")
    for start in range(0, people, _CHUNK):
        chunk = ids[start : start + _CHUNK]
        await admin.copy_records_to_table(
            "users",
            schema_name="auth",
            columns=["id", "email", "status", "email_verified_at"],
            records=[(i, f"m{start + n}@bench.example", "active", datetime.now(UTC)) for n, i in enumerate(chunk)],
        )
        await admin.copy_records_to_table(
            "profiles",
            schema_name="matching",
            columns=[
                "user_id",
                "birth_date",
                "gender",
                "interests",
                "latitude",
                "longitude",
                "pref_genders",
                "pref_age_min",
                "pref_age_max",
                "pref_distance_km",
            ],
            records=[(i, *_person(rng, today)) for i in chunk],
        )
    await admin.execute("SET session_replication_role = DEFAULT")
    await admin.execute("VACUUM ANALYZE auth.users, matching.profiles")
    return ids


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    from rapport.kernel import provisioning
    from rapport.kernel.db import create_system_engine
    from rapport.modules.matching import _daily

    load_at_start = [round(x, 2) for x in os.getloadavg()]
    database = await open_bench_database(data_dir)
    urls, admin = database.urls, database.admin
    try:
        with err.status(f"Generating {args.people:,} people…"):
            started = time.perf_counter()
            await generate(admin, args.people, args.seed)
            generated_in = time.perf_counter() - started
    finally:
        await admin.close()
    engine = create_system_engine(urls.worker, pool_size=2)
    days = []
    try:
        first = datetime.now(UTC).date()
        for day in range(args.days):
            with err.status(f"Proposing day {day + 1}'s matches…"):
                started = time.perf_counter()
                report = await _daily.propose_daily(engine, for_date=first + timedelta(days=day), batch_size=args.batch)
                seconds = time.perf_counter() - started
            days.append(
                {
                    "day": day + 1,
                    "people": report.people,
                    "pairs": report.pairs,
                    "rows": 2 * report.pairs,
                    "seconds": round(seconds, 2),
                    "pairs_per_second": round(report.pairs / seconds, 1) if seconds else None,
                    "people_per_second": round(report.people / seconds, 1) if seconds else None,
                }
            )
    finally:
        await engine.dispose()
    return {
        "benchmark": "matching_daily",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.matching_daily", *sys.argv[1:]]),
        "people": args.people,
        "generated_in_s": round(generated_in, 1),
        "batch": args.batch,
        "daily_limit": _daily.DAILY_LIMIT,
        "pool": _daily.POOL,
        "days": days,
        "raw_insert": await raw_insert(provisioning.asyncpg_dsn(urls.admin.set(database=urls.owner.database))),
        "machine": machine() | {"loadavg_at_start": load_at_start},
    }


async def raw_insert(dsn: str) -> dict[str, Any]:
    """The same rows written straight in PostgreSQL: every match the job made, copied by
    one INSERT … SELECT into a table shaped like matching.matches (its indexes too). The
    floor under the job: what writing its answer costs with no choosing at all."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TEMP TABLE raw_matches (LIKE matching.matches INCLUDING INDEXES INCLUDING DEFAULTS)")
        started = time.perf_counter()
        status = await conn.execute("INSERT INTO raw_matches SELECT * FROM matching.matches")
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    rows = int(status.split()[-1])
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds, 1) if seconds else None,
    }


def stop_embedded_server(data_dir: Path) -> None:
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        pgserver.get_server(data_dir / "pgdata").cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=100_000, help="people to generate (default 100,000)")
    parser.add_argument("--batch", type=int, default=500, help="people per transaction of the job (default 500)")
    parser.add_argument("--days", type=int, default=2, help="days proposed one after the other (default 2)")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="rapport-matching-"))
    try:
        results = asyncio.run(run(args, data_dir))
    finally:
        stop_embedded_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    for day in results["days"]:
        out.print(
            f"{results['people']:,} people, day {day['day']}: {day['pairs']:,} pairs ({day['rows']:,} rows) in "
            f"{day['seconds']} s — {day['pairs_per_second']} pairs/s, {day['people_per_second']} people/s"
        )
    raw = results["raw_insert"]
    out.print(f"Straight in PostgreSQL, the same {raw['rows']:,} rows by one INSERT … SELECT: {raw['seconds']} s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    out.print(f"Figures written to {args.output}")


if __name__ == "__main__":
    main()
