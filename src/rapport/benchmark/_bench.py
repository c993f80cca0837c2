"""One `rapport bench run`: the world chosen and signed in, every measure at every
concurrency on both sides, seed 004's targets, and the result as a dict for the report."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from rich.progress import Progress

from rapport.benchmark._run import MEASURES, FanOut, Measures, Sides, choose_world, closed_loop
from rapport.benchmark._targets import check_targets
from rapport.benchmark.report import machine, scale_name

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
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    sides.http = [httpx.AsyncClient(base_url=options.nodes[i % len(options.nodes)], limits=limits, timeout=60)
                  for i in range(clients)]  # fmt: skip
    worker_pool: asyncpg.Pool | None = None
    fanout: FanOut | None = None
    try:
        dataset = await _dataset(admin)
        with progress.console.status("Signing the clients in…"):
            world = await choose_world(admin, sides.http[0], clients)
        sides.sql = [await asyncpg.connect(options.app_dsn) for _ in range(clients)]
        worker_pool = await asyncpg.create_pool(options.worker_dsn, min_size=1, max_size=clients)
        measures = Measures(world, sides, worker_pool)
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
                progress.update(task, description=f"{name} at {level} (service)")
                if name == "fanout":
                    await fanout.open_sockets()
                service_side = await _side(options, level, service)
                if name == "fanout":
                    await fanout.close()
                    await fanout.open_listeners()
                progress.advance(task)
                progress.update(task, description=f"{name} at {level} (straight)")
                straight_side = await _side(options, level, straight)
                if name == "fanout":
                    await fanout.close()
                progress.advance(task)
                results[name][str(level)] = {
                    "service": service_side,
                    "straight": straight_side,
                    "ratio": _ratio(service_side, straight_side),
                }
        top = str(max(options.concurrency))
        reads = [
            results[name][top]["service"]["requests_per_s"] or 0.0 for name in ("history", "unread") if name in results
        ]
        best = max(reads) / len(options.nodes) if reads else None
        user, conversation, message = world.probe
        with progress.console.status("Seed 004's targets…"):
            targets = await check_targets(
                sides.sql[0],
                user=user,
                session=world.clients[0].session_id,
                conversation=conversation,
                message=message,
                best_read_per_node=best,
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
            await client.aclose()
        for connection in sides.sql:
            await connection.close()
        if worker_pool is not None:
            await worker_pool.close()
        await admin.close()


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
