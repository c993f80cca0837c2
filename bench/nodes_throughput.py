"""Throughput with 1, 2 and 3 Rapport nodes, on the multi-node environment of tests/scale
(a PostgreSQL primary and its streaming replica, PgBouncer in transaction pooling, NATS,
three `rapport serve` nodes of one worker process each), and where each second of CPU went.

    .venv/bin/python -m bench.nodes_throughput                      # 200k messages, 16 clients, 8 s
    .venv/bin/python -m bench.nodes_throughput --messages 1000000 --clients 16 --duration 10

It starts the environment in a throw-away folder, loads a data set into the primary with
`rapport bench generate` (the replica replays it), signs `rapport bench`'s clients in, and
then, for the first 1, 2 and 3 nodes in turn, runs three of `rapport bench`'s measures
through them (client i speaks to node i mod n): send (POST a message), history (GET the
newest page) and fan-out (a message to a group whose members hold sockets spread over the
same nodes, timed until every socket has it; deliveries/s = sends/s × members). Around
each measure it reads the CPU time of every process: the nodes in use, the idle nodes,
PgBouncer, the primary, the replica, NATS and this process (the load generator), so that
the table says where the two cores went. Figures and the CPU split go to stdout and to
`bench/results/nodes_throughput.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from tests.scale.environment import DATABASE, Environment, start_environment

from bench._report import machine
from rapport.benchmark._bench import wait_until_quiet
from rapport.benchmark._http import Client
from rapport.benchmark._run import FanOut, Measures, Sides, choose_world, closed_loop
from rapport.kernel.provisioning import asyncpg_dsn

RESULTS = Path(__file__).resolve().parent / "results" / "nodes_throughput.json"
MEASURED = ("send", "history", "fanout")


def _tree(pid: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _postmaster(folder: Path) -> int | None:
    """The pid of the PostgreSQL server whose data folder is `folder`."""
    pid_file = folder / "postmaster.pid"
    if not pid_file.exists():
        return None
    return int(pid_file.read_text().split()[0])


def _groups(environment: Environment, in_use: int) -> dict[str, list[psutil.Process]]:
    """The processes of each part of the environment, found anew before each measure
    (PostgreSQL starts a backend per connection)."""
    cluster = environment.cluster
    nodes = [node.process.pid for node in environment.nodes if node.process is not None]
    groups: dict[str, list[psutil.Process]] = {
        "nodes in use": [p for pid in nodes[:in_use] for p in _tree(pid)],
        "idle nodes": [p for pid in nodes[in_use:] for p in _tree(pid)],
        "pgbouncer": [p for p in psutil.process_iter(["name"]) if p.info["name"] == "pgbouncer"],
        "primary": [],
        "replica": [],
        "nats": _tree(environment.nats.pid) if environment.nats is not None else [],
        "load generator": [psutil.Process(os.getpid())],
    }
    for name, folder in (("primary", cluster.primary_dir), ("replica", cluster.replica_dir)):
        pid = _postmaster(folder)
        if pid is not None:
            groups[name] = _tree(pid)
    return groups


def _cpu(processes: list[psutil.Process]) -> dict[int, float]:
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return seconds


class CpuSplit:
    """CPU seconds per part of the environment over a window."""

    def __init__(self, environment: Environment, in_use: int) -> None:
        self.groups = _groups(environment, in_use)
        self.before = {name: _cpu(processes) for name, processes in self.groups.items()}
        self.began = time.perf_counter()

    def end(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.began
        split: dict[str, float] = {}
        for name, processes in self.groups.items():
            after = _cpu(processes)
            # A process that ended in the window is lost; one that started in it counts from 0.
            split[name] = round(sum(after[pid] - self.before[name].get(pid, 0.0) for pid in after), 2)
        total = sum(split.values())
        return {
            "elapsed_s": round(elapsed, 2),
            "cpu_s": split,
            "cores_busy": round(total / elapsed, 2),
            "machine_cores": psutil.cpu_count(),
        }


def generate(environment: Environment, messages: int) -> None:
    admin = environment.cluster.admin_url().render_as_string(hide_password=False)
    command = [sys.executable, "-m", "rapport", "bench", "generate", "--messages", str(messages)]
    command += ["--database", admin, "--database-name", DATABASE]
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAPPORT_")}
    subprocess.run(command, env=env, check=True)


async def measure(environment: Environment, *, clients: int, duration: float) -> list[dict[str, Any]]:
    urls = environment.urls.direct
    admin = await asyncpg.connect(asyncpg_dsn(urls.admin.set(database=DATABASE)))
    rows: list[dict[str, Any]] = []
    try:
        for in_use in (1, 2, 3):
            nodes = [node.url for node in environment.nodes[:in_use]]
            sides = Sides(nodes=nodes, app_dsn=asyncpg_dsn(urls.app), worker_dsn=asyncpg_dsn(urls.worker))
            sides.http = [Client(nodes[i % in_use]) for i in range(clients)]
            setup = httpx.AsyncClient(base_url=nodes[0], timeout=60)
            try:
                world = await choose_world(admin, setup, clients)
                measures = Measures(world, sides)  # only service sides run: no pool for the straight side
                fanout = FanOut(world, sides)
                for name in MEASURED:
                    if name == "fanout":
                        await fanout.open_sockets()
                    op = {"send": measures.send_service, "history": measures.history_service}.get(name, fanout.service)
                    waited = await wait_until_quiet(admin)
                    split = CpuSplit(environment, in_use)
                    figures = await closed_loop(clients, duration=duration, max_requests=None, op=op)
                    cpu = split.end()
                    if name == "fanout":
                        await fanout.close()
                    rate = figures["requests_per_s"] or 0.0
                    row = {"nodes": in_use, "measure": name, **figures, **cpu, "before": waited}
                    if name == "fanout":
                        row["members"] = len(world.members)
                        row["deliveries_per_s"] = round(rate * len(world.members), 1)
                    rows.append(row)
                    print(_line(row), flush=True)
            finally:
                for http in sides.http:
                    http.close()
                await setup.aclose()
    finally:
        await admin.close()
    return rows


def _line(row: dict[str, Any]) -> str:
    cpu = ", ".join(f"{name} {seconds:.1f}" for name, seconds in row["cpu_s"].items())
    extra = f", {row['deliveries_per_s']:,.0f} deliveries/s" if "deliveries_per_s" in row else ""
    return (
        f"{row['nodes']} node(s) {row['measure']:<8} {row['requests_per_s'] or 0:>8,.0f}/s{extra}"
        f"  p50 {row['p50']} p99 {row['p99']} ms  errors {row['errors']}"
        f"  cores busy {row['cores_busy']} of {row['machine_cores']}  CPU s: {cpu}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--keep", action="store_true", help="Leave the environment's folder for a look after.")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="rapport-nodes-"))
    environment = start_environment(base)
    try:
        generate(environment, args.messages)
        rows = asyncio.run(measure(environment, clients=args.clients, duration=args.duration))
    finally:
        environment.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    result = {
        "command": "python -m bench.nodes_throughput " + " ".join(argv if argv is not None else sys.argv[1:]),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "messages": args.messages,
        "clients": args.clients,
        "duration_s": args.duration,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Written to {RESULTS}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
