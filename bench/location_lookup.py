"""IP geolocation lookups at GeoLite2 City's size: one address's networks through the SP-GiST
index on `location.ip_addresses.network` (inet_ops), against a sequential scan.

    .venv/bin/python -m bench.location_lookup                     # 3M networks, 2000 lookups
    .venv/bin/python -m bench.location_lookup --networks 500000 --lookups 500

A throw-away embedded PostgreSQL is started, migrated, and filled (as its superuser, the
only time it is used) with `--networks` IPv4 /24 place networks and one /16 operator
network per 256 of them (GeoLite2 City holds about 3.4M IPv4 networks, ASN about 0.5M),
then vacuumed and analysed. Lookups run as system work (`rapport_worker`, through row-level
security) through `rapport.location._lookup.lookup_ip` in one `system_transaction` each
(BEGIN, the context, the lookup, COMMIT); `EXPLAIN (ANALYZE)` of the lookup's statement
gives the time inside PostgreSQL, with the index and with sequential scans only. The
figures go to stdout and to bench/results/location_lookup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench._database import open_bench_database
from bench._report import machine, percentile

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "location_lookup.json"
out = Console()

_FILL = """
INSERT INTO location.ip_addresses (id, network, ip_version, source, country_code, city, latitude, longitude,
                                   accuracy_radius_km)
SELECT kernel.uuid7_like(), set_masklen(CAST('1.0.0.0' AS inet) + (n * 256), 24)::cidr, 4, 'maxmind_csv', 'GB',
       'City ' || (n % 5000), (n % 170) - 85, (n % 350) - 175, 20
  FROM generate_series(0, $1 - 1) AS n;
"""
_FILL_OPERATORS = """
INSERT INTO location.ip_addresses (id, network, ip_version, source, asn, organization)
SELECT kernel.uuid7_like(), set_masklen(CAST('1.0.0.0' AS inet) + (n * 65536), 16)::cidr, 4, 'maxmind_csv',
       64512 + n, 'Operator ' || n
  FROM generate_series(0, ($1 - 1) / 256) AS n;
"""
_EXPLAIN = (
    "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM location.ip_addresses WHERE network >>= CAST($1 AS inet)"
    " ORDER BY masklen(network) DESC"
)


async def _explain(conn: Any, address: str, *, seqscan_only: bool) -> dict[str, Any]:
    async with conn.transaction():
        await conn.execute("SELECT set_config('rapport.system', 'on', true)")
        if seqscan_only:
            await conn.execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off")
        [plan] = json.loads(await conn.fetchval(_EXPLAIN, address))
    node = plan["Plan"]
    while node.get("Plans") and node["Node Type"] in ("Sort", "Limit"):
        node = node["Plans"][0]
    return {"execution_ms": plan["Execution Time"], "node": node["Node Type"], "index": node.get("Index Name")}


async def run(networks: int, lookups: int) -> dict[str, Any]:
    import asyncpg

    from rapport.kernel.db import create_system_engine, system_transaction
    from rapport.kernel.provisioning import asyncpg_dsn
    from rapport.location._lookup import lookup_ip

    folder = Path(tempfile.mkdtemp(prefix="rapport-bench-location-"))
    try:
        bench = await open_bench_database(folder)
        started = time.perf_counter()
        await bench.admin.execute(_FILL, networks)
        await bench.admin.execute(_FILL_OPERATORS, networks)
        await bench.admin.execute("VACUUM ANALYZE location.ip_addresses")
        fill_s = time.perf_counter() - started
        await bench.admin.close()

        rng = random.Random(7)
        addresses = [
            str(ipaddress.IPv4Address(0x01000000 + rng.randrange(networks) * 256 + rng.randrange(256)))
            for _ in range(lookups)
        ]
        engine = create_system_engine(bench.urls.worker, pool_size=1)
        timings = []
        found = 0
        try:
            for address in addresses:
                began = time.perf_counter()
                async with system_transaction(engine) as db:
                    located = await lookup_ip(db, address=address)
                timings.append((time.perf_counter() - began) * 1000)
                found += located is not None and located.asn is not None
        finally:
            await engine.dispose()
        conn = await asyncpg.connect(asyncpg_dsn(bench.urls.worker))
        try:
            indexed = await _explain(conn, addresses[0], seqscan_only=False)
            scanned = await _explain(conn, addresses[0], seqscan_only=True)
        finally:
            await conn.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    timings.sort()
    return {
        "networks": networks,
        "operator_networks": (networks - 1) // 256 + 1,
        "lookups": lookups,
        "found_with_operator": found,
        "fill_seconds": round(fill_s, 1),
        "service_ms": {"p50": percentile(timings, 0.5), "p99": percentile(timings, 0.99)},
        "explain_index": indexed,
        "explain_seqscan": scanned,
        "machine": machine(),
        "at": datetime.now(UTC).isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", type=int, default=3_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    result = asyncio.run(run(args.networks, args.lookups))
    out.print_json(data=result)
    RESULTS_PATH.parent.mkdir(exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
