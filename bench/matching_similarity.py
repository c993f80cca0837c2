"""A person's top-N most similar people at 1M feature vectors, with pgvector (HNSW) and
with the exact SQL scan the servers without pgvector use.

    .venv/bin/python -m bench.matching_similarity                          # 1,000,000 vectors
    .venv/bin/python -m bench.matching_similarity --vectors 5000 --repeat 10  # a quick run

The benchmark makes a throw-away data folder, starts an embedded PostgreSQL in it,
provisions the roles (which installs pgvector, as every start of Rapport does), migrates
to head (migration 2026_11_30_0031 then adds `user_features.embedding` and its HNSW
index) and generates the people as the superuser (the only time it is used): accounts in
`auth.users` and active dating profiles in `matching.profiles` copied with triggers off,
and one random unit vector of 32 dimensions per person in `matching.user_features`, made
by SQL. The HNSW index is dropped during the load and built again afterwards (its build
time is reported). Random unit vectors are the hard case for an approximate index: real
feature vectors cluster, which helps it.

Measurement (as `rapport_worker`, as the job and the refresh route run it): for
`--repeat` random people, `rapport.modules.matching._similarity.top_similar` in a
`system_transaction` (BEGIN, the system context, the search, COMMIT), once through the
index and once by the exact scan, and the recall of the index's answer against the exact
one. The table goes to stdout, the figures to bench/results/matching_similarity.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from rich.console import Console
from rich.table import Table

from bench._database import open_bench_database
from bench._report import machine, percentile

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "matching_similarity.json"
CHUNK = 50_000
GENDERS = ("woman", "man", "nonbinary", "other")

out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)

# One random unit vector per person, made in the database. The inner query names the
# person so that PostgreSQL draws a vector per row rather than one for everyone.
_FEATURES = """
INSERT INTO matching.user_features (user_id, version, features)
SELECT p.user_id, 1,
       (SELECT array_agg((q.x / q.norm)::real ORDER BY q.i)
          FROM (SELECT r.i, r.x, sqrt(sum(r.x * r.x) OVER ()) AS norm
                  FROM (SELECT g.i, random() - 0.5 AS x FROM generate_series(1, 32) AS g(i)
                         WHERE p.user_id IS NOT NULL) r) q)
  FROM matching.profiles p
"""


def _uuid7(rng: random.Random, n: int) -> UUID:
    # Time-ordered like the application's ids; unique by the counter in the low bits.
    millis = 1_760_000_000_000 + n
    value = (millis << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | n
    return UUID(int=value)


async def load(admin: asyncpg.Connection, count: int, seed: int) -> dict[str, float]:
    """Generate `count` people with vectors; seconds spent loading and indexing."""
    rng = random.Random(seed)
    ids = [_uuid7(rng, n) for n in range(count)]
    started = time.perf_counter()
    index_def = await admin.fetchval("SELECT pg_get_indexdef('matching.ix_user_features_embedding'::regclass)")
    await admin.execute("DROP INDEX matching.ix_user_features_embedding")
    for table in ("auth.users", "matching.profiles"):
        await admin.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        with err.status("COPY auth.users and matching.profiles…") as status:
            for start in range(0, count, CHUNK):
                chunk = ids[start : start + CHUNK]
                await admin.copy_records_to_table(
                    "users",
                    schema_name="auth",
                    columns=["id", "email", "status", "email_verified_at"],
                    records=[
                        (i, f"s{start + n}@bench.example", "active", datetime.now(UTC)) for n, i in enumerate(chunk)
                    ],
                )
                await admin.copy_records_to_table(
                    "profiles",
                    schema_name="matching",
                    columns=["user_id", "birth_date", "gender"],
                    records=[
                        (i, date(1980 + rng.randrange(25), 1 + rng.randrange(12), 1), rng.choice(GENDERS))
                        for i in chunk
                    ],
                )
                status.update(f"COPY auth.users and matching.profiles… {start + len(chunk):,}/{count:,}")
    finally:
        for table in ("auth.users", "matching.profiles"):
            await admin.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    with err.status("Vectors…"):
        await admin.execute("SELECT setseed($1)", (seed % 1000) / 1000)
        await admin.execute(_FEATURES)
    loaded = time.perf_counter()
    with err.status("Building the HNSW index…"):
        await admin.execute("SET maintenance_work_mem = '1GB'")
        await admin.execute(index_def)
    indexed = time.perf_counter()
    with err.status("VACUUM ANALYZE…"):
        await admin.execute("VACUUM ANALYZE auth.users, matching.profiles, matching.user_features")
    return {"load_s": round(loaded - started, 1), "index_build_s": round(indexed - loaded, 1)}


async def measure(worker_url: Any, callers: list[UUID], *, top: int) -> dict[str, Any]:
    from rapport.kernel.db import create_system_engine, system_transaction
    from rapport.modules.matching import service

    engine = create_system_engine(worker_url, pool_size=1)
    times: dict[str, list[float]] = {"pgvector": [], "exact": []}
    recalls: list[float] = []
    try:
        # One search each way first: connections, plans and caches warm.
        for use_pgvector in (True, False):
            async with system_transaction(engine) as db:
                await service.top_similar(db, user_id=callers[0], limit=top, use_pgvector=use_pgvector)
        for n, caller in enumerate(callers, start=1):
            found: dict[str, list[UUID]] = {}
            for name, use_pgvector in (("pgvector", True), ("exact", False)):
                started = time.perf_counter()
                async with system_transaction(engine) as db:
                    result = await service.top_similar(db, user_id=caller, limit=top, use_pgvector=use_pgvector)
                times[name].append((time.perf_counter() - started) * 1000)
                found[name] = [item.user_id for item in result]
            recalls.append(len(set(found["pgvector"]) & set(found["exact"])) / max(1, len(found["exact"])))
            err.print(f"  {n}/{len(callers)}", end="\r")
    finally:
        await engine.dispose()
    report: dict[str, Any] = {}
    for name, values in times.items():
        ordered = sorted(values)
        report[name] = {
            "searches": len(ordered),
            "p50_ms": round(percentile(ordered, 0.5) or 0, 2),
            "p95_ms": round(percentile(ordered, 0.95) or 0, 2),
            "max_ms": round(ordered[-1], 2) if ordered else None,
        }
    report["pgvector"]["recall_at_n_mean"] = round(sum(recalls) / len(recalls), 4) if recalls else None
    report["pgvector"]["recall_at_n_min"] = round(min(recalls), 4) if recalls else None
    return report


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    database = await open_bench_database(data_dir)
    urls, admin = database.urls, database.admin
    try:
        loading = await load(admin, args.vectors, args.seed)
        sizes = await admin.fetch(
            """SELECT c.relname, pg_total_relation_size(c.oid) AS bytes FROM pg_class c
                WHERE c.relnamespace = 'matching'::regnamespace
                  AND c.relname IN ('user_features', 'ix_user_features_embedding')"""
        )
        callers = [
            row["user_id"]
            for row in await admin.fetch(
                "SELECT user_id FROM matching.user_features ORDER BY hashtext(user_id::text || $1) LIMIT $2",
                str(args.seed),
                args.repeat,
            )
        ]
    finally:
        await admin.close()
    results = await measure(urls.worker, callers, top=args.top)
    return {
        "benchmark": "matching_similarity",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.matching_similarity", *sys.argv[1:]]),
        "vectors": args.vectors,
        "dimensions": 32,
        "top_n": args.top,
        **loading,
        "relation_mib": {row["relname"]: round(row["bytes"] / 2**20, 1) for row in sizes},
        "machine": machine() | {"loadavg_at_start": load_at_start},
        "results": results,
    }


def stop_embedded_server(data_dir: Path) -> None:
    """Stop the PostgreSQL this process started (pgserver would at exit, after the folder
    is gone)."""
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        pgserver.get_server(data_dir / "pgdata").cleanup()


def print_table(results: dict[str, Any]) -> None:
    table = Table(title=f"Top-{results['top_n']} similar people among {results['vectors']:,} vectors")
    for column in ("path", "searches", "p50 ms", "p95 ms", "max ms", "recall@N"):
        table.add_column(column, justify="right" if column != "path" else "left")
    for name, row in results["results"].items():
        recall = row.get("recall_at_n_mean")
        table.add_row(
            name,
            str(row["searches"]),
            str(row["p50_ms"]),
            str(row["p95_ms"]),
            str(row["max_ms"]),
            "exact" if recall is None else f"{recall:.3f} (min {row['recall_at_n_min']:.2f})",
        )
    out.print(table)
    out.print(
        f"load {results['load_s']} s, HNSW build {results['index_build_s']} s, sizes {results['relation_mib']} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vectors", type=int, default=1_000_000, help="people with vectors (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=50, help="people whose top N is searched (default 50)")
    parser.add_argument("--top", type=int, default=20, help="N (default 20)")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()
    if args.vectors < 100 or not 1 <= args.repeat <= args.vectors:
        parser.error("--vectors must be at least 100 and --repeat from 1 to --vectors")
    data_dir = Path(tempfile.mkdtemp(prefix="rapport-similarity-"))
    try:
        results = asyncio.run(run(args, data_dir))
    finally:
        stop_embedded_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    print_table(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
