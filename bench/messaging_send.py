"""Sending messages through HTTP, side by side with a raw INSERT of the same rows.

    make bench-messaging          # = .venv/bin/python -m bench.messaging_send
    .venv/bin/python -m bench.messaging_send --clients 16 --duration 5
    .venv/bin/python -m bench.messaging_send --workers 1           # one server process

The benchmark makes a throw-away data folder (or uses `--keep DIR`), starts the embedded
PostgreSQL in it, provisions and migrates, creates the bench accounts and conversations
(below), starts `rapport serve` on a free port of 127.0.0.1 with `RAPPORT_WORKERS` server
processes (default 2, one per core), signs every sender in through the API, and then, for
each concurrency of `--clients` (default 1, 16 and 64), runs back to back for `--duration`
seconds each:

- http spread:    POST /v1/conversations/{id}/messages, each request to one of 16 group
                  conversations at random, each with its own client_message_id;
- raw plain:      pgbench -M prepared, the same row (a UUIDv7 id, created_at from it, the
                  same content) by a single-row INSERT into a plain, unpartitioned copy of
                  messaging.messages: same columns, CHECKs and indexes; no trigger, no
                  foreign keys, no row-level security, seq from a sequence;
- raw trigger:    pgbench, the same INSERT into messaging.messages itself as its owner, so
                  the numbering trigger runs (next seq under the conversation's row lock, the
                  sender's read marker), with the foreign keys and the partition routing;
- sql function:   pgbench, `messaging.send_message(...)` as rapport_app, the one statement the
                  server sends per request (session check, permission, idempotency key, insert,
                  event), without HTTP and Python;
- http one / raw trigger one: the same, every sender into ONE conversation (contention).

After each HTTP row the benchmark waits for the notifications consumer to have read every
event the row made (each member of a group who is away hears of a message: the work a
send leaves for later) and reports how long after the row that took and its CPU per send,
so that the next row does not pay for it unseen.

Then the size comparison: a 2-person and a 1,000-person group conversation, sent to through
HTTP at 1 and 16 clients, and by the raw trigger INSERT at 1 client.

pgbench connects over the embedded server's Unix socket, as the server does. The HTTP load
comes from bench._load: one keep-alive connection per client, closed loop, on this process's
one thread; `calibrate` rows give the rate the same generator reaches against a server that
answers at once (see bench/_load.py), and every row gives the generator's CPU.

The table goes to stdout, the figures (CPU split per request, PostgreSQL time inside
messaging.send_message from pg_stat_user_functions, the machine) to
bench/results/messaging_send.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import orjson
import uvloop
from rich.console import Console
from rich.table import Table

from bench import messaging_data as data
from bench._load import Meter, closed_loop, free_port, latency_summary, null_server, server_env_argument
from bench._report import machine
from rapport.benchmark._http import http_request
from rapport.kernel.outbox import ORDINAL_BITS

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "messaging_send.json"
_CONSUMER_POSITION = "SELECT position FROM notifications.consumer WHERE name = 'notifications'"
SENDERS = 64
SPREAD = 16  # conversations 0..15
HOT, PAIR, CROWD = 16, 17, 18  # one busy conversation; 2 people; 1,000 people
CROWD_SIZE = 1000
CONTENT = "the quick brown fox jumps over the lazy dog"

out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


def md5_uuid(text: str) -> UUID:
    """The id PostgreSQL computes as md5(text)::uuid: pgbench scripts name the bench's
    conversations and senders by number this way, with no lookup."""
    return UUID(hashlib.md5(text.encode()).hexdigest())


def conversation_id(n: int) -> UUID:
    return md5_uuid(f"conversation-{n}")


def sender_id(k: int) -> UUID:
    return md5_uuid(f"sender-{k}")


def member_id(k: int) -> UUID:
    return md5_uuid(f"member-{k}")


# --------------------------------------------------------------------------- fixtures


async def make_fixtures(urls: Any, password_hash: str) -> None:
    """64 senders, 1,000 more people, the conversations; and the bench_raw schema pgbench
    writes to. Accounts as the superuser (auth.users admits no other role's inserts);
    conversations and participants too, with their triggers on, as the API would leave them."""
    admin = await data.connect(urls.admin.set(database=data.DATABASE))
    owner = await data.connect(urls.owner)
    try:
        people = [(sender_id(k), f"sender-{k}@bench.example") for k in range(SENDERS)]
        people += [(member_id(k), f"member-{k}@bench.example") for k in range(CROWD_SIZE - SENDERS)]
        await admin.copy_records_to_table(
            "users",
            schema_name="auth",
            columns=["id", "email", "password_hash", "status", "email_verified_at"],
            records=[(i, e, password_hash, "active", datetime.now(UTC)) for i, e in people],
        )
        rooms: dict[int, list[UUID]] = {n: [sender_id(k) for k in range(SENDERS)] for n in range(SPREAD)}
        rooms[HOT] = [sender_id(k) for k in range(SENDERS)]
        rooms[PAIR] = [sender_id(0), sender_id(1)]
        rooms[CROWD] = [sender_id(k) for k in range(SENDERS)] + [member_id(k) for k in range(CROWD_SIZE - SENDERS)]
        for n, members in rooms.items():
            await admin.execute(
                "INSERT INTO messaging.conversations (id, type, name, creator_id) VALUES ($1, 'group', $2, $3)",
                conversation_id(n),
                f"Bench {n}",
                members[0],
            )
            await admin.executemany(
                "INSERT INTO messaging.participants (conversation_id, user_id, role, can_invite)"
                " VALUES ($1, $2, $3, $4)",
                [(conversation_id(n), m, "owner" if i == 0 else "member", i == 0) for i, m in enumerate(members)],
            )
        await owner.execute(
            """CREATE SCHEMA bench_raw;
               COMMENT ON SCHEMA bench_raw IS 'bench.messaging_send: what pgbench writes to.';
               CREATE TABLE bench_raw.messages (LIKE messaging.messages
                   INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS INCLUDING INDEXES);
               CREATE SEQUENCE bench_raw.seq;
               CREATE TABLE bench_raw.sessions (k integer PRIMARY KEY, user_id uuid NOT NULL, session_id uuid NOT NULL);
               GRANT USAGE ON SCHEMA bench_raw TO rapport_app;
               GRANT SELECT ON bench_raw.sessions TO rapport_app;"""
        )
        # PostgreSQL time per call of the PL/pgSQL functions (pg_stat_user_functions).
        await admin.execute(f"ALTER DATABASE {data.DATABASE} SET track_functions = 'pl'")
    finally:
        await admin.close()
        await owner.close()


def bench_password_hash() -> str:
    from argon2 import PasswordHasher

    from rapport.config import Settings

    fields = Settings.model_fields
    return PasswordHasher(
        time_cost=fields["password_time_cost"].default,
        memory_cost=fields["password_memory_cost_kib"].default,
        parallelism=fields["password_parallelism"].default,
    ).hash(data.BENCH_PASSWORD)


@dataclass
class Sender:
    user_id: UUID
    token: str
    session_id: UUID


async def sign_in(url: str, emails: list[str]) -> list[Sender]:
    """Sign every sender in through the API, two at a time (each costs an argon2id hash)."""

    async def one(client: httpx.AsyncClient, email: str) -> Sender:
        response = await client.post(
            "/v1/auth/login", json={"email": email, "password": data.BENCH_PASSWORD, "device_name": "bench"}
        )
        if response.status_code != 200:
            raise RuntimeError(f"login {email}: HTTP {response.status_code}: {response.text[:300]}")
        token = response.json()["access_token"]
        claims = orjson.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        return Sender(user_id=UUID(claims["sub"]), token=token, session_id=UUID(claims["sid"]))

    senders: list[Sender] = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        with err.status(f"Signing in {len(emails)} senders…"):
            for start in range(0, len(emails), 2):
                senders += await asyncio.gather(*(one(client, e) for e in emails[start : start + 2]))
    return senders


# --------------------------------------------------------------------------- the server


class Server:
    """`rapport serve` on a data folder whose PostgreSQL this process has started (so the
    database outlives the server), in its own process group, output to a log file."""

    def __init__(self, data_dir: Path, port: int, workers: int, extra_env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = data_dir / "serve.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("RAPPORT_")}
        env.update(
            RAPPORT_DATA_DIR=str(data_dir),
            RAPPORT_HOST="127.0.0.1",
            RAPPORT_PORT=str(port),
            RAPPORT_WORKERS=str(workers),
            RAPPORT_LOG_LEVEL="WARNING",
            RAPPORT_ENVIRONMENT="development",
            # Long enough for the whole run: the access tokens are signed in once.
            RAPPORT_ACCESS_TOKEN_TTL_SECONDS="14400",
        )
        env.update(extra_env or {})
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rapport", "serve", "--no-demo"],
            env=env,
            cwd=data_dir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def wait_healthy(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        with err.status(f"Starting rapport serve on {self.url}…"):
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"rapport serve exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
        raise RuntimeError(f"rapport serve was not healthy after {timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        for sig, grace in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


def processes_serving(server: Server, expected: int, timeout: float = 60) -> int:
    """How many processes of the server's tree listen on its port (1, or the workers),
    waiting up to `timeout` seconds for `expected`: the first worker to start answers the
    health check before the others listen."""
    deadline = time.monotonic() + timeout
    while (count := _listening(server)) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    return count


def _listening(server: Server) -> int:
    from bench._load import tree_pids

    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == server.port:
                listening.add(f"socket:[{fields[9]}]")
    count = 0
    for pid in tree_pids(server.process.pid):
        try:
            links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        except OSError:
            continue
        count += bool(links & listening)
    return count


# --------------------------------------------------------------------------- pgbench


def pgbench_path() -> str:
    """pgbench of the embedded server's own version, else one on PATH."""
    import pgserver

    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("pgbench")
    if found is None:
        raise RuntimeError("pgbench not found")
    return found


def _row(conversation: str, seq: str) -> tuple[str, str]:
    """The columns and values of the same message row the HTTP path makes."""
    columns = "id, conversation_id, seq, sender_id, content, client_message_id, created_at"
    values = (
        f"i, md5('conversation-' || {conversation})::uuid, {seq}, md5('sender-' || (:client_id % {SENDERS}))::uuid, "
        f"'Bench message ' || :n || ' from client ' || :client_id || ': {CONTENT}', "
        "'pg-' || :client_id || '-' || :n, messaging.id_time(i)"
    )
    return columns, values


def pgbench_script(kind: str, conversation: str) -> tuple[str, str]:
    """(role, script) for one kind of raw send."""
    pick = "\\set c random(0, 15)\n" if conversation == ":c" else ""
    head = f"{pick}\\set n random(1, 9000000000000000000)\n"
    if kind == "raw plain":
        columns, values = _row(conversation, "nextval('bench_raw.seq')")
        insert = f"INSERT INTO bench_raw.messages ({columns}) SELECT {values} FROM (SELECT kernel.uuid7_like() AS i) x;"
        return "rapport_owner", head + insert + "\n"
    if kind == "raw trigger":
        columns, values = _row(conversation, "0")
        columns = columns.replace(" seq,", "")
        values = values.replace(" 0,", "")
        insert = f"INSERT INTO messaging.messages ({columns}) SELECT {values} FROM (SELECT kernel.uuid7_like() AS i) x;"
        return "rapport_owner", head + insert + "\n"
    if kind == "sql function":
        call = (
            "SELECT f.created FROM bench_raw.sessions s, messaging.send_message("
            f"s.user_id, s.session_id, NULL, md5('conversation-' || {conversation})::uuid, "
            "'pg-' || :client_id || '-' || :n, 'text', "
            f"'Bench message ' || :n || ' from client ' || :client_id || ': {CONTENT}', "
            f"'{{}}', NULL, NULL, NULL, '{{}}', '{{}}') f WHERE s.k = :client_id % {SENDERS};"
        )
        return "rapport_app", head + call + "\n"
    raise ValueError(kind)


def run_pgbench(socket_dir: str, role: str, script: str, *, clients: int, duration: float) -> dict[str, Any]:
    """pgbench -M prepared over the Unix socket; the rate from its report, the latencies
    from its per-transaction log."""
    with tempfile.TemporaryDirectory(prefix="rapport-pgbench-") as work:
        script_path = Path(work) / "send.sql"
        script_path.write_text(script)
        command = [
            pgbench_path(),
            "-h",
            socket_dir,
            "-U",
            role,
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(int(duration)),
            "-f",
            str(script_path),
            "-l",
            "--log-prefix",
            str(Path(work) / "tx"),
            data.DATABASE,
        ]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        latencies: list[float] = []
        for log in Path(work).glob("tx*"):
            latencies.extend(int(line.split()[2]) / 1000 for line in log.read_text().splitlines())
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    return {
        "clients": clients,
        "window_s": duration,
        "elapsed_s": round(elapsed, 3),
        "requests_ok": len(latencies),
        "errors": int(failed.group(1)) if failed else 0,
        "requests_per_s": round(float(tps.group(1)), 1) if tps else None,
        "latency_ms": latency_summary(latencies),
    }


# --------------------------------------------------------------------------- scenarios


@dataclass
class Bench:
    server: Server
    senders: list[Sender]
    socket_dir: str
    meter: Meter
    admin: asyncpg.Connection
    duration: float
    run_tag: str

    def http_maker(self, conversations: list[int], senders: list[int]) -> Any:
        """Requests for client i as sender senders[i % len], each to a conversation of
        `conversations` at random, with a client_message_id of its own."""
        host = f"127.0.0.1:{self.server.port}"
        paths = [f"/v1/conversations/{conversation_id(n)}/messages" for n in conversations]
        rng = random.Random(7)
        tag = self.run_tag

        def make(client: int, n: int) -> bytes:
            sender = self.senders[senders[client % len(senders)]]
            body = orjson.dumps(
                {
                    "content": f"Bench message {n} from client {client}: {CONTENT}",
                    "client_message_id": f"{tag}-{client}-{n}",
                }
            )
            path = paths[rng.randrange(len(paths))] if len(paths) > 1 else paths[0]
            return http_request("POST", path, host=host, token=sender.token, body=body)

        return make

    async def http(self, conversations: list[int], clients: int, senders: list[int] | None = None) -> dict[str, Any]:
        self.run_tag = f"{self.run_tag.split('.')[0]}.{time.monotonic_ns()}"
        make = self.http_maker(conversations, senders or list(range(SENDERS)))
        functions_before = await self.function_stats()
        before = self.meter.snapshot()
        result = await closed_loop(
            "127.0.0.1", self.server.port, clients=clients, make_request=make, duration=self.duration
        )
        after = self.meter.snapshot()
        result["cpu"] = Meter.usage(before, after, result["requests_ok"])
        result["notifications"] = await self.notifications_drained(result["requests_ok"])
        # Idle backends report their function statistics within about ten seconds.
        await asyncio.sleep(11)
        result["send_message_in_postgres"] = _function_delta(functions_before, await self.function_stats())
        return result

    async def notifications_drained(self, sends: int, within: float = 600) -> dict[str, Any]:
        """Wait until the notifications consumer has read every event committed so far: the
        work a send leaves for later (each group member who is away hears of it). How long
        after the row that took, and the CPU it used per send."""
        target = await self.admin.fetchval(
            f"SELECT (pg_snapshot_xmax(pg_current_snapshot())::text::bigint << {ORDINAL_BITS}) - 1"
        )
        before = self.meter.snapshot()
        began = time.perf_counter()
        reached = None
        while time.perf_counter() - began < within:
            reached = await self.admin.fetchval(_CONSUMER_POSITION)
            if reached is not None and reached >= target:
                break
            await asyncio.sleep(0.05)
        after = self.meter.snapshot()
        return {
            "caught_up": reached is not None and reached >= target,
            "after_row_s": round(time.perf_counter() - began, 2),
            "cpu": Meter.usage(before, after, sends),
        }

    def pgbench(self, kind: str, conversation: str, clients: int) -> dict[str, Any]:
        role, script = pgbench_script(kind, conversation)
        before = self.meter.snapshot()
        result = run_pgbench(self.socket_dir, role, script, clients=clients, duration=self.duration)
        after = self.meter.snapshot()
        result["cpu"] = Meter.usage(before, after, result["requests_ok"])
        result["cpu"]["pgbench_cpu_s"] = result["cpu"].pop("children_cpu_s", 0.0)
        result["cpu"].pop("children_cpu_ms_per_request", None)
        return result

    async def function_stats(self) -> dict[str, float]:
        row = await self.admin.fetchrow(
            "SELECT calls, total_time FROM pg_stat_user_functions"
            " WHERE schemaname = 'messaging' AND funcname = 'send_message'"
        )
        return {"calls": row["calls"], "total_ms": row["total_time"]} if row else {"calls": 0, "total_ms": 0.0}


def _function_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    calls = after["calls"] - before["calls"]
    return {
        "calls": calls,
        "ms_per_call": round((after["total_ms"] - before["total_ms"]) / calls, 3) if calls else None,
    }


async def scenarios(bench: Bench, client_counts: list[int], progress: Any) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for clients in client_counts:
        plan: list[tuple[str, Any]] = [
            ("http spread", lambda c=clients: bench.http(list(range(SPREAD)), c)),
            ("raw plain", lambda c=clients: bench.pgbench("raw plain", ":c", c)),
            ("raw trigger", lambda c=clients: bench.pgbench("raw trigger", ":c", c)),
            ("sql function", lambda c=clients: bench.pgbench("sql function", ":c", c)),
            ("http one", lambda c=clients: bench.http([HOT], c)),
            ("raw trigger one", lambda c=clients: bench.pgbench("raw trigger", str(HOT), c)),
        ]
        for name, run in plan:
            progress(f"{name}, {clients} clients")
            outcome = run()
            rows[f"{name} c{clients}"] = {
                "scenario": name,
                **(await outcome if asyncio.iscoroutine(outcome) else outcome),
            }
    return rows


async def size_scenarios(bench: Bench, progress: Any) -> dict[str, Any]:
    """The 2-person and the 1,000-person conversation, one after the other at each step
    (so that drift, such as an autovacuum, falls on both alike); the raw INSERTs twice."""
    rooms = (("2 people", PAIR, [0, 1]), ("1,000 people", CROWD, list(range(SENDERS))))
    rows: dict[str, Any] = {}
    for clients in (1, 16):
        for label, room, senders in rooms:
            progress(f"http {label}, {clients} clients")
            rows[f"http {label} c{clients}"] = {
                "scenario": f"http {label}",
                **(await bench.http([room], clients, senders)),
            }
    for attempt in (1, 2):
        for label, room, _ in rooms:
            progress(f"raw trigger {label} ({attempt})")
            rows[f"raw trigger {label} c1 #{attempt}"] = {
                "scenario": f"raw trigger {label}",
                **bench.pgbench("raw trigger", str(room), 1),
            }
    return rows


async def calibrate(body: bytes, client_counts: list[int], duration: float) -> dict[str, Any]:
    """The generator against a server that answers at once with a send's answer."""
    rows: dict[str, Any] = {}
    with null_server(body) as port:
        request = http_request(
            "POST", "/v1/conversations/x/messages", host="127.0.0.1", token="t" * 300, body=b"{}" * 60
        )
        for clients in client_counts:
            rows[f"calibrate c{clients}"] = {
                "scenario": "calibrate",
                **(
                    await closed_loop(
                        "127.0.0.1", port, clients=clients, make_request=lambda i, n: request, duration=duration
                    )
                ),
            }
    return rows


# --------------------------------------------------------------------------- the report


def print_table(report: dict[str, Any]) -> None:
    table = Table(title="Rapport: sending a message (HTTP and raw INSERT, same run)")
    for column in (
        "scenario",
        "clients",
        "sends",
        "errors",
        "sends/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server CPU ms/send",
        "PG CPU ms/send",
        "generator busy",
        "other core-s",
        "notified after s",
        "notify CPU ms/send",
    ):
        table.add_column(column, justify="left" if column == "scenario" else "right")

    def fmt(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    for row in report["scenarios"].values():
        cpu = row.get("cpu", {})
        generator = row.get("generator", {})
        notified = row.get("notifications", {})
        notify_cpu = notified.get("cpu", {})
        table.add_row(
            row["scenario"],
            str(row["clients"]),
            f"{row['requests_ok']:,}",
            str(row["errors"]),
            fmt(row["requests_per_s"]),
            fmt(row["latency_ms"]["p50"], 2),
            fmt(row["latency_ms"]["p99"], 2),
            fmt(row["latency_ms"]["max"], 1),
            fmt(cpu.get("server_cpu_ms_per_request"), 3),
            fmt(cpu.get("postgres_cpu_ms_per_request"), 3),
            fmt(generator.get("busy"), 2),
            fmt(cpu.get("other_processes_core_s"), 2),
            fmt(notified.get("after_row_s"), 1),
            fmt(_notify_cpu(notify_cpu), 3),
        )
    out.print(table)
    for line in report.get("summary", []):
        out.print(line)


def _notify_cpu(cpu: dict[str, float]) -> float | None:
    """Server and PostgreSQL CPU per send spent notifying after the row, or None."""
    if not cpu:
        return None
    return (cpu.get("server_cpu_ms_per_request") or 0) + (cpu.get("postgres_cpu_ms_per_request") or 0)


def summarise(report: dict[str, Any]) -> list[str]:
    rows = report["scenarios"]
    lines = []
    for clients in report["parameters"]["clients"]:
        http = rows.get(f"http spread c{clients}")
        for reference in ("raw plain", "raw trigger"):
            raw = rows.get(f"{reference} c{clients}")
            if http and raw and raw["requests_per_s"]:
                share = http["requests_per_s"] / raw["requests_per_s"]
                lines.append(f"{clients} clients: HTTP send = {share:.1%} of the {reference} INSERT rate")
                report.setdefault("ratios", {})[f"http/{reference} c{clients}"] = round(share, 4)
    pair, crowd = rows.get("http 2 people c1"), rows.get("http 1,000 people c1")
    if pair and crowd:
        for key in ("p50",):
            ratio = crowd["latency_ms"][key] / pair["latency_ms"][key]
            lines.append(f"1,000 people / 2 people, {key} at 1 client: {ratio:.2f}")
            report.setdefault("ratios", {})["crowd/pair p50 c1"] = round(ratio, 3)
    pair, crowd = rows.get("http 2 people c16"), rows.get("http 1,000 people c16")
    if pair and crowd:
        ratio = crowd["requests_per_s"] / pair["requests_per_s"]
        lines.append(f"1,000 people / 2 people, sends/s at 16 clients: {ratio:.2f}")
        report.setdefault("ratios", {})["crowd/pair rate c16"] = round(ratio, 3)
    pairs = [rows[k]["latency_ms"]["p50"] for k in rows if k.startswith("raw trigger 2 people c1")]
    crowds = [rows[k]["latency_ms"]["p50"] for k in rows if k.startswith("raw trigger 1,000 people c1")]
    if pairs and crowds:
        ratio = (sum(crowds) / len(crowds)) / (sum(pairs) / len(pairs))
        lines.append(f"1,000 people / 2 people, raw trigger INSERT p50 at 1 client: {ratio:.2f}")
        report.setdefault("ratios", {})["crowd/pair raw p50 c1"] = round(ratio, 3)
    return lines


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, data_dir: Path, report: dict[str, Any]) -> None:
    urls = await data.prepare(data_dir)
    socket_dir = str(urls.admin.query["host"])
    with err.status("Creating the bench accounts and conversations…"):
        await make_fixtures(urls, bench_password_hash())
    if args.apply:
        # A change to try before it goes into a migration, e.g. a new version of a function.
        owner = await data.connect(urls.owner)
        try:
            await owner.execute(args.apply.read_text())
        finally:
            await owner.close()
        report["applied"] = str(args.apply)
    server = Server(data_dir, free_port(), args.workers, extra_env=dict(args.server_env))
    admin = await data.connect(urls.admin.set(database=data.DATABASE))
    try:
        server.wait_healthy()
        serving = processes_serving(server, args.workers)
        report["server"] = {"workers_asked": args.workers, "processes_listening": serving, "url": server.url}
        if serving != args.workers:
            err.print(f"[yellow]Asked for {args.workers} server processes, {serving} listen.[/yellow]")
        senders = await sign_in(server.url, [f"sender-{k}@bench.example" for k in range(SENDERS)])
        await admin.executemany(
            "INSERT INTO bench_raw.sessions (k, user_id, session_id) VALUES ($1, $2, $3)",
            [(k, s.user_id, s.session_id) for k, s in enumerate(senders)],
        )
        meter = Meter(server.process.pid, data_dir / "pgdata")
        bench = Bench(server, senders, socket_dir, meter, admin, args.duration, run_tag=f"r{os.getpid()}")

        def say(text: str) -> None:
            err.print(f"[dim]{datetime.now():%H:%M:%S}[/dim] {text}")

        rows: dict[str, Any] = {}
        say("calibrating the load generator")
        async with httpx.AsyncClient(base_url=server.url) as client:
            sample = await client.post(
                f"/v1/conversations/{conversation_id(0)}/messages",
                json={"content": CONTENT, "client_message_id": "calibration"},
                headers={"authorization": f"Bearer {senders[0].token}"},
            )
        rows |= await calibrate(sample.content, args.clients, min(args.duration, 5))
        rows |= await scenarios(bench, args.clients, say)
        if not args.no_sizes:
            rows |= await size_scenarios(bench, say)
        report["scenarios"] = rows
        report["messages_in_table"] = await admin.fetchval("SELECT count(*) FROM messaging.messages")
    finally:
        await admin.close()
        with err.status("Stopping the server…"):
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.messaging_send",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64], help="concurrencies (default 1 16 64)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="RAPPORT_WORKERS for the server (default 2)")
    server_env_argument(parser)
    parser.add_argument("--no-sizes", action="store_true", help="leave out the 2- and 1,000-person comparison")
    parser.add_argument("--keep", type=Path, help="keep the data folder here (must not exist yet)")
    parser.add_argument(
        "--apply", type=Path, help="SQL to run as rapport_owner after migrating (to try a change to the SQL first)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    if args.keep and args.keep.exists():
        parser.error(f"{args.keep} exists: the send benchmark starts from an empty folder")
    data_dir = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="rapport-send-"))
    report: dict[str, Any] = {
        "benchmark": "messaging_send",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.messaging_send", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "parameters": {"clients": args.clients, "duration_s": args.duration, "workers": args.workers},
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
    report["summary"] = summarise(report)
    print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    err.print(f"Results in {args.output}")
    return 0 if all(row["errors"] == 0 for row in report["scenarios"].values()) else 2


if __name__ == "__main__":
    sys.exit(main())
