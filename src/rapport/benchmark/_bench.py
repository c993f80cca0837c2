"""One `rapport bench run`: the world chosen and signed in, every measure at every
concurrency on both sides, seed 004's targets, and the result as a dict for the report."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from rich.progress import Progress

from rapport.benchmark._http import Client
from rapport.benchmark._run import MEASURES, FanOut, Measures, Sides, choose_world, closed_loop
from rapport.benchmark._targets import check_targets
from rapport.benchmark.report import clients_label, machine, scale_name

Op = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True)
class RunOptions:
    concurrency: list[int]
    duration: float
    max_requests: int | None
    nodes: list[str]
    admin_dsn: str  # to choose the world and read the data set's size (no row-level security)
    app_dsn: str
    worker_dsn: str
    command: str
    server_started: bool = False
    measures: tuple[str, ...] = MEASURES


async def run_bench(options: RunOptions, progress: Progress) -> dict[str, Any]:
    clients = max(options.concurrency)
    admin = await asyncpg.connect(options.admin_dsn)
    sides = Sides(nodes=options.nodes, app_dsn=options.app_dsn, worker_dsn=options.worker_dsn)
    sides.http = [Client(options.nodes[i % len(options.nodes)]) for i in range(clients)]
    setup = httpx.AsyncClient(base_url=options.nodes[0], timeout=60)
    worker_pool: asyncpg.Pool | None = None
    fanout: FanOut | None = None
    try:
        dataset = await _dataset(admin)
        with progress.console.status("Signing the clients in…"):
            world = await choose_world(admin, setup, clients)
        # The straight side's connections exist only while it runs: with 64 clients, 64 more
        # connections beside the server's pools would pass a default max_connections (100).
        measures = Measures(world, sides)
        fanout = FanOut(world, sides)
        pairs: dict[str, tuple[Op, Op]] = {
            "send": (measures.send_service, measures.send_straight),
            "history": (measures.history_service, measures.history_straight),
            "search": (measures.search_service, measures.search_straight),
            "unread": (measures.unread_service, measures.unread_straight),
            "fanout": (fanout.service, fanout.straight),
            "login": (measures.login_service, measures.login_straight),
        }
        results: dict[str, dict[str, Any]] = {}
        task = progress.add_task("measures", total=len(options.measures) * len(options.concurrency) * 2)
        for name in options.measures:
            service, straight = pairs[name]
            results[name] = {}
            for level in options.concurrency:
                if name == "fanout":
                    await fanout.open_sockets()
                progress.update(task, description=f"{name} at {level} (waiting for a quiet server)")
                quiet = await wait_until_quiet(admin)
                progress.update(task, description=f"{name} at {level} (service)")
                written_from = await _wal_position(admin)
                service_side = await _side(options, level, service)
                service_side["before"] = quiet
                service_side["wal_bytes_per_request"] = await _wal_per_request(admin, written_from, service_side)
                if name == "fanout":
                    await fanout.close()
                    await fanout.open_listeners()
                progress.advance(task)
                progress.update(task, description=f"{name} at {level} (straight)")
                straight_quiet = await wait_until_quiet(admin)
                sides.sql = [await asyncpg.connect(options.app_dsn) for _ in range(level)]
                worker_pool = measures.worker_pool = await asyncpg.create_pool(
                    options.worker_dsn, min_size=0, max_size=level
                )
                try:
                    written_from = await _wal_position(admin)
                    straight_side = await _side(options, level, straight)
                    straight_side["wal_bytes_per_request"] = await _wal_per_request(admin, written_from, straight_side)
                finally:
                    await _close_all(sides)
                    await worker_pool.close()
                    worker_pool = None
                straight_side["before"] = straight_quiet
                if name == "fanout":
                    await fanout.close()
                progress.advance(task)
                results[name][str(level)] = {
                    "service": service_side,
                    "straight": straight_side,
                    "ratio": _ratio(service_side, straight_side),
                }
        # A node's capacity: the most reads a second it served at any concurrency (past
        # the cores' count, more clients only add waiting).
        reads = [
            (
                results[name][level]["service"]["requests_per_s"] or 0.0,
                f"{name} at {clients_label(level)}",
            )
            for name in ("history", "unread")
            if name in results
            for level in results[name]
        ]
        best = max(reads) if reads else None
        user, conversation, message = world.probe
        sides.sql = [await asyncpg.connect(options.app_dsn)]
        with progress.console.status("Seed 004's targets…"):
            targets = await check_targets(
                sides.sql[0],
                user=user,
                session=world.clients[0].session_id,
                conversation=conversation,
                message=message,
                best_read_per_node=None if best is None else best[0] / len(options.nodes),
                best_read_at=None if best is None else best[1],
            )
        return {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "scale": scale_name(dataset["messages"]),
            "command": options.command,
            "machine": machine(),
            "dataset": dataset,
            "nodes": options.nodes,
            "server_started": options.server_started,
            "concurrency": options.concurrency,
            "duration_s": options.duration,
            "max_requests": options.max_requests,
            "world": {
                "clients": len(world.clients),
                "fanout_group": world.group,
                "fanout_members": len(world.members),
                "history_conversations_per_client": len(world.history[0]),
            },
            "measures": results,
            "targets": targets,
        }
    finally:
        if fanout is not None:
            await fanout.close()
        for client in sides.http:
            client.close()
        await setup.aclose()
        await _close_all(sides)
        if worker_pool is not None:
            await worker_pool.close()
        await admin.close()


# Each side starts on a quiet server when it can: the background work an earlier side left
# (the notifications of its messages, their push jobs) done first, so that it is not
# counted against the next side's figures. At most this long; then the side starts anyway,
# and its figures say how much work was still due (a send into a large conversation can
# leave more push jobs than a few seconds run).
QUIET_WITHIN_S = 20.0
_DUE = """
SELECT (SELECT count(*) FROM kernel.jobs WHERE status = 'running' OR (status = 'queued' AND run_at <= now()))
     + (SELECT count(*) FROM notifications.consumer c
         WHERE c.position < (SELECT coalesce(max(position), 0) FROM kernel.events))
"""


async def wait_until_quiet(admin: asyncpg.Connection) -> dict[str, float]:
    """Waits for the server's due jobs to run and its notifications to catch up; the
    seconds waited and the work still due when the side began."""
    began = time.monotonic()
    while True:
        due = int(await admin.fetchval(_DUE))
        if not due or time.monotonic() - began >= QUIET_WITHIN_S:
            return {"waited_s": round(time.monotonic() - began, 1), "still_due": due}
        await asyncio.sleep(0.2)


async def _wal_position(admin: asyncpg.Connection) -> int:
    # asyncpg reads a pg_lsn as the byte position it is
    return int(await admin.fetchval("SELECT pg_current_wal_insert_lsn()"))


async def _wal_per_request(admin: asyncpg.Connection, since: int, side: dict[str, Any]) -> float | None:
    """The WAL written while a side ran, per request it answered: for sends, what a
    primary's WAL stream (and so a replica and the archive) carries per message. Either
    side's figure includes what the running server wrote meanwhile (the notifications the
    sends caused, their jobs, its readers' cursors); the service side's sends go through
    the API, whose send may write more than the statement alone."""
    if not side["requests"]:
        return None
    written = await admin.fetchval("SELECT pg_current_wal_insert_lsn() - $1::pg_lsn", since)
    return round(float(written) / int(side["requests"]), 1)


async def _close_all(sides: Sides) -> None:
    for connection in sides.sql:
        await connection.close()
    sides.sql = []


async def _side(options: RunOptions, level: int, op: Op) -> dict[str, Any]:
    return await closed_loop(level, duration=options.duration, max_requests=options.max_requests, op=op)


def _ratio(service: dict[str, Any], straight: dict[str, Any]) -> float | None:
    if not service["p50"] or not straight["p50"]:
        return None
    return round(float(service["p50"]) / float(straight["p50"]), 2)


async def _dataset(admin: asyncpg.Connection) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for table in ("messaging.messages", "auth.users", "messaging.conversations", "messaging.participants",
                  "social.contacts", "messaging.reactions"):  # fmt: skip
        # The planner's estimate at scale (exact counts of 100M rows take minutes); exact when small.
        # A partitioned table's own estimate already sums its partitions': it counts once.
        estimate = await admin.fetchval(
            "SELECT sum(greatest(c.reltuples, 0))::bigint"
            "  FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid"
            " WHERE (c.oid = $1::regclass AND c.relkind <> 'p') OR i.inhparent = $1::regclass",
            table,
        )
        if estimate is None or estimate < 1_000_000:
            estimate = await admin.fetchval(f"SELECT count(*) FROM {table}")
        counts[table] = int(estimate)
    shape = None
    with contextlib.suppress(asyncpg.UndefinedTableError):
        shape = await admin.fetchval("SELECT shape::text FROM rapport_bench.dataset")
    generated = json.loads(shape) if shape else None
    # The scale is what was generated; the runs' own sends come on top.
    messages = generated["messages"] if generated else counts["messaging.messages"]
    return {"messages": messages, "counts": counts, "shape": generated}
