"""Analytics events in: batches through HTTP (POST /v1/analytics/events) against COPY of the
same rows straight into PostgreSQL, in one run.

    .venv/bin/python -m bench.analytics_ingest                      # batches of 100, 1 and 16 clients, 10 s each
    .venv/bin/python -m bench.analytics_ingest --clients 1 --duration 2    # a quick run

The benchmark makes a throw-away data folder (or keeps it at `--keep DIR`), starts the
embedded PostgreSQL in it, provisions and migrates, and starts `rapport serve` on a free
port of 127.0.0.1 with `RAPPORT_WORKERS` server processes (`--workers`, default 2) and a
rate limit of events high enough never to refuse. Its people (one per client, copied
into auth.users as the superuser, each with the privacy_policy consent analytics honours)
sign in through the API.

Scenarios, each at every concurrency of `--clients` (default 1 and 16) for `--duration`
seconds (default 10):

- http: each client, one keep-alive connection (bench/_load.py), sends a batch of
  `--batch` events (default 100) of its person's, in a session of its own, and sends the
  next when the answer (202) is in. The server validates the batch, then one statement
  (analytics.ingest_events) checks the session, the consent and the rate limit and
  inserts the rows, whose statement trigger folds them into analytics.user_sessions.
- copy: each client, one asyncpg connection as the superuser, COPYs the same rows into
  analytics.events, batch after batch (the trigger still folds sessions; row-level
  security does not apply to the superuser, and COPY cannot run under it).

What http costs beyond copy is Rapport's: HTTP, authentication, validation, the JSON the
rows travel in, the checks of the one statement and the policies. Events per second are
batches per second times the batch size. The table goes to stdout, the figures (CPU per
batch of the server, PostgreSQL and the generator, the machine) to
bench/results/analytics_ingest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson
import uvloop
from rich.console import Console
from rich.table import Table

from bench import messaging_data as data
from bench._load import Meter, closed_loop, free_port, latency_summary, server_env_argument
from bench._report import machine
from bench.messaging_send import Sender, Server, bench_password_hash, processes_serving, sign_in
from rapport.benchmark._http import http_request
from rapport.kernel.ids import uuid7

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "analytics_ingest.json"
NAMES = ["screen_view", "button_click", "app_open", "scroll", "search", "purchase.started"]
COLUMNS = [
    "user_id", "session_id", "event_name", "event_category", "source", "event_timestamp", "properties",
    "platform", "device_type", "os_name", "os_version", "app_version", "country", "network_type", "duration_ms",
]  # fmt: skip

out = Console(width=None if sys.stdout.isatty() else 170)
err = Console(stderr=True)


def say(text: str) -> None:
    err.print(f"[dim]{datetime.now():%H:%M:%S}[/dim] {text}")


def email_of(k: int) -> str:
    return f"analyst-{k}@bench.example"


def events_of(k: int, batch: int) -> list[dict[str, Any]]:
    """A client's batch: its person's session, names in turn, small properties."""
    session = str(UUID(int=k + 1))
    return [
        {
            "event_name": NAMES[i % len(NAMES)],
            "event_category": "engagement",
            "session_id": session,
            "properties": {"screen": f"screen-{i % 7}", "position": i},
            "platform": "android",
            "device_type": "phone",
            "os_name": "Android",
            "os_version": "15",
            "app_version": "3.2.0",
            "country": "FR",
            "network_type": "wifi",
            "duration_ms": 100 + i,
        }
        for i in range(batch)
    ]


def copy_records(sender: Sender, k: int, batch: int) -> list[tuple[Any, ...]]:
    """The same rows as the HTTP batch, as COPY writes them."""
    now = datetime.now(UTC)
    return [
        (
            sender.user_id,
            UUID(event["session_id"]),
            event["event_name"],
            event["event_category"],
            "client",
            now,
            orjson.dumps(event["properties"]).decode(),
            event["platform"],
            event["device_type"],
            event["os_name"],
            event["os_version"],
            event["app_version"],
            event["country"],
            event["network_type"],
            event["duration_ms"],
        )
        for event in events_of(k, batch)
    ]


async def make_people(admin: asyncpg.Connection, count: int, password_hash: str) -> None:
    """The people, as the superuser (auth.users admits no other role's inserts), each with
    the consent analytics honours."""
    people = [(uuid7(), email_of(k)) for k in range(count)]
    await admin.copy_records_to_table(
        "users",
        schema_name="auth",
        columns=["id", "email", "password_hash", "status", "email_verified_at"],
        records=[(i, e, password_hash, "active", datetime.now(UTC)) for i, e in people],
    )
    await admin.copy_records_to_table(
        "consent_logs",
        schema_name="compliance",
        columns=["id", "user_id", "consent_type", "granted"],
        records=[(uuid7(), i, "privacy_policy", True) for i, _ in people],
    )


async def http_scenario(
    server: Server, senders: list[Sender], meter: Meter, *, clients: int, batch: int, duration: float
) -> dict[str, Any]:
    bodies = [orjson.dumps({"events": events_of(k, batch)}) for k in range(clients)]
    host = f"127.0.0.1:{server.port}"
    requests = [
        http_request("POST", "/v1/analytics/events", host=host, token=senders[k].token, body=bodies[k])
        for k in range(clients)
    ]
    before = meter.snapshot()
    result = await closed_loop(
        "127.0.0.1",
        server.port,
        clients=clients,
        make_request=lambda index, _n: requests[index],
        duration=duration,
        ok_statuses=(202,),
    )
    result["cpu"] = meter.usage(before, meter.snapshot(), result["requests_ok"])
    return result


async def copy_scenario(
    admin_url: Any, senders: list[Sender], meter: Meter, *, clients: int, batch: int, duration: float
) -> dict[str, Any]:
    connections = [await data.connect(admin_url) for _ in range(clients)]
    latencies: list[float] = []
    done = [0]
    errors: dict[str, int] = {}
    try:
        before = meter.snapshot()
        began = time.perf_counter()
        deadline = began + duration

        async def client(k: int) -> None:
            while time.perf_counter() < deadline:
                records = copy_records(senders[k], k, batch)
                started = time.perf_counter()
                try:
                    await connections[k].copy_records_to_table(
                        "events", schema_name="analytics", columns=COLUMNS, records=records
                    )
                except asyncpg.PostgresError as error:
                    errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                    return
                finished = time.perf_counter()
                if finished <= deadline:
                    done[0] += 1
                latencies.append((finished - started) * 1000)

        await asyncio.gather(*(client(k) for k in range(clients)))
        ended = time.perf_counter()
        cpu = meter.usage(before, meter.snapshot(), done[0])
    finally:
        for connection in connections:
            await connection.close()
    return {
        "clients": clients,
        "window_s": round(duration, 3),
        "elapsed_s": round(ended - began, 3),
        "requests_ok": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "requests_per_s": round(done[0] / duration, 1),
        "latency_ms": latency_summary(latencies),
        "cpu": cpu,
    }


async def run(args: argparse.Namespace, data_dir: Path, report: dict[str, Any]) -> None:
    urls = await data.prepare(data_dir)
    admin_url = urls.admin.set(database=data.DATABASE)
    people = max(args.clients)
    admin = await data.connect(admin_url)
    try:
        with err.status("Creating the bench accounts…"):
            await make_people(admin, people, bench_password_hash())
    finally:
        await admin.close()
    env = {"RAPPORT_ANALYTICS_EVENTS_PER_USER_PER_HOUR": "1000000000", **dict(args.server_env)}
    server = Server(data_dir, free_port(), args.workers, extra_env=env)
    try:
        server.wait_healthy()
        serving = processes_serving(server, args.workers)
        report["server"] = {"workers_asked": args.workers, "processes_listening": serving, "url": server.url}
        senders = await sign_in(server.url, [email_of(k) for k in range(people)])
        meter = Meter(server.process.pid, data_dir / "pgdata")
        rows: dict[str, Any] = {}
        for clients in args.clients:
            say(f"http, {clients} client(s)")
            rows[f"http c{clients}"] = await http_scenario(
                server, senders, meter, clients=clients, batch=args.batch, duration=args.duration
            )
            say(f"copy, {clients} client(s)")
            rows[f"copy c{clients}"] = await copy_scenario(
                admin_url, senders, meter, clients=clients, batch=args.batch, duration=args.duration
            )
        for row in rows.values():
            row["events_per_s"] = round(row["requests_per_s"] * args.batch, 1)
        report["scenarios"] = rows
        admin = await data.connect(admin_url)
        try:
            report["events_in_table"] = await admin.fetchval("SELECT count(*) FROM analytics.events")
            report["sessions_in_table"] = await admin.fetchval("SELECT count(*) FROM analytics.user_sessions")
        finally:
            await admin.close()
    finally:
        with err.status("Stopping the server…"):
            server.stop()


def print_table(report: dict[str, Any]) -> None:
    table = Table(title=f"Analytics ingestion, batches of {report['parameters']['batch']} events")
    for column in ("scenario", "batches/s", "events/s", "p50 ms", "p99 ms", "server ms/batch", "pg ms/batch", "errors"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for name, row in report.get("scenarios", {}).items():
        latency, cpu = row["latency_ms"], row.get("cpu", {})
        table.add_row(
            name,
            f"{row['requests_per_s']:.0f}",
            f"{row['events_per_s']:.0f}",
            f"{latency.get('p50') or 0:.2f}",
            f"{latency.get('p99') or 0:.2f}",
            str(cpu.get("server_cpu_ms_per_request", "-")),
            str(cpu.get("postgres_cpu_ms_per_request", "-")),
            str(row["errors"]),
        )
    out.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.analytics_ingest",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16], help="concurrencies (default 1 16)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario (default 10)")
    parser.add_argument("--batch", type=int, default=100, help="events per batch, at most 100 (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="RAPPORT_WORKERS for the server (default 2)")
    server_env_argument(parser)
    parser.add_argument("--keep", type=Path, help="keep the data folder here (must not exist yet)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 100:
        parser.error("--batch is 1 to 100 (the API's limit)")
    if args.keep and args.keep.exists():
        parser.error(f"{args.keep} exists: the benchmark starts from an empty folder")
    data_dir = (
        args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix=f"rapport-analytics-{uuid4().hex[:6]}-"))
    )
    report: dict[str, Any] = {
        "benchmark": "analytics_ingest",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.analytics_ingest", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "parameters": {
            "clients": args.clients,
            "duration_s": args.duration,
            "batch": args.batch,
            "workers": args.workers,
        },
        "load_generator": "bench/_load.py: one keep-alive HTTP/1.1 connection per client, closed loop, uvloop",
    }
    try:
        uvloop.run(run(args, data_dir, report))
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/yellow]")
        return 130
    finally:
        data.stop_embedded(data_dir)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    err.print(f"Results in {args.output}")
    return 0 if all(row["errors"] == 0 for row in report.get("scenarios", {}).values()) else 2


if __name__ == "__main__":
    sys.exit(main())
