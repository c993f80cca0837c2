"""Login and token-refresh throughput through HTTP, against a real `rapport serve`.

    .venv/bin/python -m bench.auth_throughput                      # both scenarios, 10 s each
    .venv/bin/python -m bench.auth_throughput --scenario refresh --duration 20 --concurrency 16
    .venv/bin/python -m bench.auth_throughput --url http://127.0.0.1:8000   # a running server

Without `--url` the benchmark makes a throw-away data folder, creates `--accounts` bench
accounts with `rapport admin create-user`, starts `rapport serve` on a free port of
127.0.0.1 with the production password hashing (the settings' argon2id defaults), runs the
scenarios and stops the server (and with it the embedded PostgreSQL). Inherited `RAPPORT_*`
variables are not passed on, so nothing weakens the hashing or points at another database.

With `--url` it benches a server already running on this machine, signing in with the
demo accounts unless `--account EMAIL:PASSWORD` is given. Only loopback addresses are
accepted: the benchmark never sends traffic anywhere else.

Scenarios, each run by `--concurrency` clients (one `httpx.AsyncClient` and one keep-alive
connection each) for `--duration` seconds or `--max-requests` requests, whichever ends first:

- login:   POST /v1/auth/login over and over (every sign-in succeeds, so the per-IP
           failed-login limiter never trips);
- refresh: each client signs in once (not measured), then POST /v1/auth/refresh over and
           over with the refresh token the previous answer returned (rotation).

The table goes to stdout; the figures to bench/results/auth_throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.console import Console, JustifyMethod
from rich.table import Table

from bench._report import machine, percentile

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "auth_throughput.json"
DEMO_ACCOUNTS = [
    (email, "rapport-demo-password") for email in ("alice@example.com", "bob@example.com", "carol@example.com")
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
SCENARIOS = ("login", "refresh")

out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)


# --------------------------------------------------------------------------- measuring


@dataclass
class Tally:
    """What one scenario measured, shared by its clients."""

    latencies_ms: list[float] = field(default_factory=list)
    finished_at: list[float] = field(default_factory=list)  # perf_counter() of each success
    errors: dict[str, int] = field(default_factory=dict)
    issued: int = 0
    ready: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def summarise(
    name: str, tally: Tally, *, began: float, ended: float, duration: float, concurrency: int, max_requests: int
) -> dict[str, Any]:
    """Throughput counts the successes inside the measuring window: `duration` seconds, or
    up to the last answer when `--max-requests` ended the run first. Requests still in
    flight at the deadline are let finish: their latencies count, their completions do
    not (the clients were winding down, which would understate the rate)."""
    ordered = sorted(tally.latencies_ms)
    window_end = began + duration
    if tally.issued >= max_requests and tally.finished_at:
        window_end = min(window_end, max(tally.finished_at))
    window = window_end - began
    in_window = sum(1 for t in tally.finished_at if t <= window_end)

    def ms(value: float | None) -> float | None:
        return round(value, 2) if value is not None else None

    return {
        "scenario": name,
        "concurrency": concurrency,
        "window_s": round(window, 3),
        "elapsed_s": round(ended - began, 3),
        "requests_ok": len(ordered),
        "requests_ok_in_window": in_window,
        "errors": sum(tally.errors.values()),
        "error_kinds": tally.errors,
        "requests_per_s": round(in_window / window, 2),
        "latency_ms": {
            "p50": ms(percentile(ordered, 0.50)),
            "p95": ms(percentile(ordered, 0.95)),
            "p99": ms(percentile(ordered, 0.99)),
            "min": ms(ordered[0] if ordered else None),
            "max": ms(ordered[-1] if ordered else None),
            "mean": ms(sum(ordered) / len(ordered) if ordered else None),
        },
    }


# --------------------------------------------------------------------------- the clients


async def login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    try:
        response = await client.post(
            "/v1/auth/login", json={"email": email, "password": password, "device_name": "bench"}
        )
    except httpx.HTTPError as exc:
        raise RuntimeError(f"login {email}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise RuntimeError(f"login {email}: HTTP {response.status_code}: {response.text[:200]}")
    body: dict[str, Any] = response.json()
    if "refresh_token" not in body:
        raise RuntimeError(f"login {email}: no tokens in the answer (two-factor account?): {body}")
    return body


async def _timed(tally: Tally, request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response | None:
    """Send one request; record its latency when it succeeds, its kind of error when not."""
    started = time.perf_counter()
    try:
        response = await request()
    except httpx.HTTPError as exc:
        tally.error(type(exc).__name__)
        return None
    finished = time.perf_counter()
    if response.status_code != 200:
        tally.error(f"HTTP {response.status_code}")
        return None
    tally.latencies_ms.append((finished - started) * 1000)
    tally.finished_at.append(finished)
    return response


def _discard_last(tally: Tally, kind: str) -> None:
    """The last success was not one after all (its answer was wrong)."""
    tally.latencies_ms.pop()
    tally.finished_at.pop()
    tally.error(kind)


async def login_client(
    url: str, account: tuple[str, str], tally: Tally, start: asyncio.Event, stop_at: list[float], max_requests: int
) -> None:
    email, password = account
    payload = {"email": email, "password": password, "device_name": "bench"}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await login(client, email, password)  # warm-up: connection open, pool filled
        tally.ready += 1
        await start.wait()
        while time.perf_counter() < stop_at[0] and tally.issued < max_requests:
            tally.issued += 1
            response = await _timed(tally, lambda: client.post("/v1/auth/login", json=payload))
            if response is not None and "access_token" not in response.json():
                _discard_last(tally, "no tokens")


async def refresh_client(
    url: str, account: tuple[str, str], tally: Tally, start: asyncio.Event, stop_at: list[float], max_requests: int
) -> None:
    email, password = account
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        token = (await login(client, email, password))["refresh_token"]  # not measured
        tally.ready += 1
        await start.wait()
        while time.perf_counter() < stop_at[0] and tally.issued < max_requests:
            tally.issued += 1
            body = {"refresh_token": token}
            response = await _timed(tally, functools.partial(client.post, "/v1/auth/refresh", json=body))
            new_token = response.json().get("refresh_token") if response is not None else None
            if response is not None and (not new_token or new_token == token):
                _discard_last(tally, "token not rotated")
            if not new_token or new_token == token:
                # The chain is broken (a used or revoked token): sign in again, unmeasured.
                try:
                    token = (await login(client, email, password))["refresh_token"]
                except RuntimeError:
                    tally.error("sign-in again failed")
                    return
                continue
            token = new_token


async def run_scenario(
    name: str,
    url: str,
    accounts: list[tuple[str, str]],
    *,
    concurrency: int,
    duration: float,
    max_requests: int,
    meter: CpuMeter,
) -> dict[str, Any]:
    tally = Tally()
    start = asyncio.Event()
    stop_at = [float("inf")]
    worker = login_client if name == "login" else refresh_client
    tasks = [
        asyncio.create_task(worker(url, accounts[i % len(accounts)], tally, start, stop_at, max_requests))
        for i in range(concurrency)
    ]
    # Every client has signed in once (its warm-up) before the clock starts.
    with err.status(f"[{name}] warming up {concurrency} clients…"):
        all_ready = asyncio.create_task(_wait_ready(tally, concurrency))
        await asyncio.wait([all_ready, *tasks], return_when=asyncio.FIRST_COMPLETED)
    failed = [task for task in tasks if task.done() and task.exception() is not None]
    if failed or not all_ready.done():
        all_ready.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(all_ready, *tasks, return_exceptions=True)
        error = failed[0].exception() if failed else None
        raise error or RuntimeError(f"[{name}] a client ended during warm-up")
    with err.status(f"[{name}] {concurrency} clients for up to {duration:g} s / {max_requests} requests…"):
        cpu_before = meter.snapshot()
        began = time.perf_counter()
        stop_at[0] = began + duration
        start.set()
        await asyncio.gather(*tasks)
        ended = time.perf_counter()
        cpu_after = meter.snapshot()
    result = summarise(
        name, tally, began=began, ended=ended, duration=duration, concurrency=concurrency, max_requests=max_requests
    )
    result["cpu"] = meter.usage(cpu_before, cpu_after, len(tally.latencies_ms))
    # The machine may be shared: a high load here means other work competed for the CPU.
    result["loadavg_1min_at_end"] = round(os.getloadavg()[0], 2)
    return result


async def _wait_ready(tally: Tally, concurrency: int) -> None:
    # Polled rather than signalled: the clients only count themselves ready, and a
    # 20 ms poll before an unmeasured start costs nothing worth an Event per client.
    while tally.ready < concurrency:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- CPU accounting


class CpuMeter:
    """CPU seconds spent by the server process, the embedded PostgreSQL (postmaster and
    backends), this benchmark process, and the whole machine. On a shared machine the
    time per request is steadier than the rate, which other work drags down."""

    def __init__(self, server_pid: int | None = None, pgdata: Path | None = None) -> None:
        self.server_pid = server_pid
        self.pgdata = pgdata
        self._tick = os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> dict[str, float]:
        snap = {"client": sum(resource.getrusage(resource.RUSAGE_SELF)[:2])}
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            snap["machine_total"] = sum(fields) / self._tick
            snap["machine_idle"] = (fields[3] + fields[4]) / self._tick
        if self.server_pid is not None:
            snap["server"] = self._process_cpu(self.server_pid)
        if self.pgdata is not None:
            snap["postgres"] = sum(self._process_cpu(pid) for pid in self._postgres_pids())
        return snap

    def usage(self, before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
        used = {key: after[key] - before[key] for key in after if key in before}
        report: dict[str, float] = {}
        for key in ("server", "postgres", "client"):
            if key in used:
                report[f"{key}_cpu_s"] = round(used[key], 2)
                if requests:
                    report[f"{key}_cpu_ms_per_request"] = round(used[key] * 1000 / requests, 2)
        if "machine_total" in used and used["machine_total"] > 0:
            busy = used["machine_total"] - used["machine_idle"]
            ours = sum(used.get(key, 0.0) for key in ("server", "postgres", "client"))
            report["machine_core_s"] = round(used["machine_total"], 2)
            report["machine_busy_core_s"] = round(busy, 2)
            if "server" in used:  # without it (--url) the server would count as "other"
                report["other_processes_core_s"] = round(max(0.0, busy - ours), 2)
        return report

    def _process_cpu(self, pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime, all threads

    def _postgres_pids(self) -> list[int]:
        if self.pgdata is None:  # a server started elsewhere (--url): its PostgreSQL is not ours to count
            return []
        try:
            postmaster = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        pids = [postmaster]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                        pids.append(int(entry.name))
        return pids


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAPPORT_")}
    env.update(
        RAPPORT_DATA_DIR=str(data_dir),
        RAPPORT_HOST="127.0.0.1",
        RAPPORT_PORT=str(port),
        RAPPORT_LOG_LEVEL="WARNING",
        RAPPORT_ENVIRONMENT="development",
        # One process: the figures recorded so far are one event loop's, and the CPU meter
        # reads the server's own pid (with several, the work is in its children).
        RAPPORT_WORKERS="1",
    )
    return env


def password_hashing_defaults() -> dict[str, int]:
    """The argon2id parameters a server uses when nothing overrides them (read, not set)."""
    try:
        from rapport.config import Settings
    except ImportError:
        return {}
    fields = Settings.model_fields
    return {
        name: fields[name].default
        for name in ("password_time_cost", "password_memory_cost_kib", "password_parallelism")
    }


def create_accounts(count: int, env: dict[str, str], cwd: Path) -> list[tuple[str, str]]:
    password = "bench-" + secrets.token_urlsafe(12)
    accounts = []
    with err.status("") as status:
        for i in range(count):
            email = f"bench-{i:02d}@example.com"
            status.update(f"Creating bench account {i + 1}/{count} ({email})…")
            done = subprocess.run(
                [sys.executable, "-m", "rapport", "admin", "create-user", "--email", email, "--password", password],
                env=env,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                raise RuntimeError(f"rapport admin create-user failed:\n{done.stdout}{done.stderr}")
            accounts.append((email, password))
    return accounts


class Server:
    """`rapport serve` in its own process group, with its output in a log file."""

    def __init__(self, data_dir: Path, env: dict[str, str], port: int) -> None:
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = data_dir / "serve.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rapport", "serve", "--no-demo"],
            env=env,
            cwd=data_dir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # A benchmark started in the background (`make bench &`) ignores SIGINT and its
            # children would inherit that; stop() relies on SIGINT.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        with err.status(f"Starting rapport serve on {self.url}…"):
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"rapport serve exited with {self.process.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        return
                time.sleep(0.2)
        raise RuntimeError(f"rapport serve was not healthy after {timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server, then make sure the embedded PostgreSQL is gone.

        SIGINT first, as Ctrl-C would: uvicorn shuts down, re-raises the signal, Python
        exits through KeyboardInterrupt and pgserver's exit handler stops PostgreSQL.
        (SIGTERM is re-raised too, but with its default action it kills the process
        before any exit handler runs, leaving PostgreSQL behind: the fallback below.)
        """
        for sig, grace in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if self.process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        self._log.close()
        self._stop_leftover_postgres()

    def _stop_leftover_postgres(self) -> None:
        """The postmaster runs in its own session; if the server died without stopping it
        (SIGTERM or SIGKILL), stop it by the pid its data folder records: it is ours."""
        pid_file = self.data_dir / "pgdata" / "postmaster.pid"
        deadline = time.monotonic() + 2  # pgserver stops it before the server process exits
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not pid_file.exists():
            return
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGTERM)  # smart shutdown
            deadline = time.monotonic() + 20
            while pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.2)


# --------------------------------------------------------------------------- the report


def print_table(results: dict[str, Any]) -> None:
    table = Table(title="Rapport auth throughput (HTTP)")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("scenario", "left"),
        ("clients", "right"),
        ("requests", "right"),
        ("errors", "right"),
        ("req/s", "right"),
        ("p50 ms", "right"),
        ("p95 ms", "right"),
        ("p99 ms", "right"),
        ("max ms", "right"),
        ("server CPU ms/req", "right"),
        ("other procs core-s", "right"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify)

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f}"

    for row in results["scenarios"].values():
        lat, cpu = row["latency_ms"], row["cpu"]
        table.add_row(
            row["scenario"],
            str(row["concurrency"]),
            f"{row['requests_ok']:,}",
            str(row["errors"]),
            fmt(row["requests_per_s"]),
            fmt(lat["p50"]),
            fmt(lat["p95"]),
            fmt(lat["p99"]),
            fmt(lat["max"]),
            fmt(cpu.get("server_cpu_ms_per_request")),
            fmt(cpu.get("other_processes_core_s")),
        )
    out.print(table)
    if (ratio := results.get("refresh_to_login_ratio")) is not None:
        out.print(f"refresh / login throughput: [bold]{ratio:.1f}x[/bold] (budget: at least 10x)")
    if (ratio := results.get("login_to_refresh_server_cpu_ratio")) is not None:
        out.print(f"server CPU per login / per refresh: [bold]{ratio:.1f}x[/bold]")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.auth_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=(*SCENARIOS, "all"), default="all")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario (default 10)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument(
        "--max-requests", type=int, default=50_000, help="stop a scenario after this many requests (default 50000)"
    )
    parser.add_argument("--url", help="bench a running server on this machine instead, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--account",
        action="append",
        metavar="EMAIL:PASSWORD",
        help="with --url: an account to sign in with (repeatable; default: the demo accounts)",
    )
    parser.add_argument(
        "--accounts", type=int, default=8, help="without --url: bench accounts to create (default 8, about 1.5 s each)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help=f"JSON results (default {RESULTS_PATH})")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1 or args.max_requests < 1 or args.accounts < 1:
        parser.error("--duration, --concurrency, --max-requests and --accounts must be positive")
    if args.url:
        parts = urlsplit(args.url)
        if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
            parser.error("--url must be a loopback address such as http://127.0.0.1:8000")
        args.url = args.url.rstrip("/")
    if args.account and not args.url:
        parser.error("--account goes with --url (without it the benchmark creates its own accounts)")
    if any(":" not in account for account in args.account or ()):
        parser.error("--account takes EMAIL:PASSWORD")
    return args


async def bench(
    url: str, accounts: list[tuple[str, str]], args: argparse.Namespace, meter: CpuMeter | None = None
) -> dict[str, dict[str, Any]]:
    scenarios = SCENARIOS if args.scenario == "all" else (args.scenario,)
    results = {}
    for name in scenarios:
        results[name] = await run_scenario(
            name,
            url,
            accounts,
            concurrency=args.concurrency,
            duration=args.duration,
            max_requests=args.max_requests,
            meter=meter or CpuMeter(),
        )
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m bench.auth_throughput " + " ".join(sys.argv[1:] if argv is None else argv)
    report: dict[str, Any] = {
        "benchmark": "auth_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command.strip(),
        "machine": machine(),
        "parameters": {
            "scenario": args.scenario,
            "duration_s": args.duration,
            "concurrency": args.concurrency,
            "max_requests": args.max_requests,
        },
    }

    server: Server | None = None
    data_dir: Path | None = None
    try:
        if args.url:
            url = args.url
            accounts = [tuple(account.split(":", 1)) for account in args.account] if args.account else DEMO_ACCOUNTS
            meter = CpuMeter()
            report["server"] = {"started_by_bench": False, "url": url}
        else:
            data_dir = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
            env = server_env(data_dir, free_port())
            started = time.perf_counter()
            accounts = create_accounts(args.accounts, env, data_dir)
            server = Server(data_dir, env, int(env["RAPPORT_PORT"]))
            server.wait_healthy()
            url = server.url
            meter = CpuMeter(server.process.pid, data_dir / "pgdata")
            report["server"] = {
                "started_by_bench": True,
                "url": url,
                "accounts": len(accounts),
                "setup_s": round(time.perf_counter() - started, 1),
                "password_hashing": {"algorithm": "argon2id", **password_hashing_defaults()},
            }
        report["scenarios"] = asyncio.run(bench(url, accounts, args, meter))
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/yellow]")
        return 130
    except RuntimeError as exc:
        err.print(f"[red]{exc}[/red]")
        return 1
    finally:
        if server is not None:
            with err.status("Stopping the server and the embedded PostgreSQL…"):
                server.stop()
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)

    login_rate = report["scenarios"].get("login", {}).get("requests_per_s")
    refresh_rate = report["scenarios"].get("refresh", {}).get("requests_per_s")
    if login_rate and refresh_rate:
        report["refresh_to_login_ratio"] = round(refresh_rate / login_rate, 1)
        login_cpu = report["scenarios"]["login"]["cpu"].get("server_cpu_ms_per_request")
        refresh_cpu = report["scenarios"]["refresh"]["cpu"].get("server_cpu_ms_per_request")
        if login_cpu and refresh_cpu:
            report["login_to_refresh_server_cpu_ratio"] = round(login_cpu / refresh_cpu, 1)
    print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    err.print(f"Results in {args.output}")
    return 0 if all(row["errors"] == 0 for row in report["scenarios"].values()) else 2


if __name__ == "__main__":
    sys.exit(main())
