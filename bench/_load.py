"""A closed-loop HTTP/1.1 load generator light enough to share two cores with the server.

Why not httpx: on this machine an httpx request costs about a millisecond of the client's
CPU, which at a few thousand requests a second would take a core from the server it
measures. Here each client is one keep-alive connection (an asyncio protocol on uvloop)
that writes a prepared request, parses the answer with httptools (uvicorn's parser) and
sends the next one as soon as the answer is in: tens of microseconds of CPU per request.
Every client waits for its answer before the next request (closed loop), so the offered
load is the concurrency, and the latency is what a client sees, queueing included.

To show that the generator is not what limits a figure, every run reports the CPU this
process used against the wall time (`generator_busy` is the share of one core it kept
busy), and `calibrate()` runs the same clients against a server that answers every request
at once with a fixed body: the rate the generator reaches when the server costs nothing.

The meters here count the CPU of a process tree (the server and its worker processes),
of the embedded PostgreSQL (postmaster and backends) and of this process, from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httptools

from bench._report import percentile
from rapport.benchmark._http import Connection, connect

# A request body is made per request (unique ids); the rest of the request is fixed per client.
RequestMaker = Callable[[int, int], bytes]  # (client index, request number) -> the whole request


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    finished_at: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    sample_error: str | None = None

    def error(self, kind: str, detail: bytes | str = b"") -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if self.sample_error is None:
            self.sample_error = f"{kind}: {detail[:300]!r}"


def latency_summary(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def ms(value: float | None) -> float | None:
        return round(value, 2) if value is not None else None

    return {
        "p50": ms(percentile(ordered, 0.50)),
        "p95": ms(percentile(ordered, 0.95)),
        "p99": ms(percentile(ordered, 0.99)),
        "max": ms(ordered[-1] if ordered else None),
        "mean": ms(sum(ordered) / len(ordered) if ordered else None),
    }


async def closed_loop(
    host: str,
    port: int,
    *,
    clients: int,
    make_request: RequestMaker,
    duration: float,
    ok_statuses: tuple[int, ...] = (200, 201),
    warmup_requests: int = 2,
) -> dict[str, Any]:
    """`clients` connections, each sending its next request when the last is answered, for
    `duration` seconds after every connection has made its warm-up requests. Returns the
    rate (answers completed inside the window), the latencies and the generator's own CPU.

    A connection the server closed while it was idle (its keep-alive timeout) is opened
    again before the next request, as a real client would, and counted in `reconnects`."""
    connections = await _connect(host, port, clients)
    tally = Tally()
    counter = [0] * clients
    await asyncio.gather(
        *(_warm_up(i, c, make_request, counter, ok_statuses, warmup_requests) for i, c in enumerate(connections))
    )
    deadline = [0.0]
    reconnects = [0]

    async def client(index: int) -> None:
        while True:
            counter[index] += 1
            request = make_request(index, counter[index])
            if connections[index].lost is not None:
                connections[index] = (await _connect(host, port, 1))[0]
                reconnects[0] += 1
            started = time.perf_counter()
            if started >= deadline[0]:
                return
            try:
                status, body = await connections[index].send(request)
            except (OSError, httptools.HttpParserError) as error:
                tally.error(type(error).__name__, str(error))
                return
            finished = time.perf_counter()
            if status in ok_statuses:
                tally.latencies_ms.append((finished - started) * 1000)
                tally.finished_at.append(finished)
            else:
                tally.error(f"HTTP {status}", body)

    cpu_before = _self_cpu()
    began = time.perf_counter()
    deadline[0] = began + duration
    await asyncio.gather(*(client(i) for i in range(clients)))
    ended = time.perf_counter()
    cpu_used = _self_cpu() - cpu_before
    for connection in connections:
        connection.close()
    in_window = sum(1 for t in tally.finished_at if t <= deadline[0])
    requests = len(tally.latencies_ms)
    return {
        "clients": clients,
        "window_s": round(duration, 3),
        "elapsed_s": round(ended - began, 3),
        "requests_ok": requests,
        "errors": sum(tally.errors.values()),
        "error_kinds": tally.errors,
        "sample_error": tally.sample_error,
        "reconnects": reconnects[0],
        "requests_per_s": round(in_window / duration, 1),
        "latency_ms": latency_summary(tally.latencies_ms),
        "generator": {
            "cpu_s": round(cpu_used, 3),
            "cpu_us_per_request": round(cpu_used * 1e6 / requests, 1) if requests else None,
            # Share of one core the generator kept busy (it runs on one thread).
            "busy": round(cpu_used / (ended - began), 3),
        },
    }


async def _connect(host: str, port: int, clients: int) -> list[Connection]:
    return [await connect(host, port) for _ in range(clients)]


async def _warm_up(
    index: int,
    connection: Connection,
    make_request: RequestMaker,
    counter: list[int],
    ok_statuses: tuple[int, ...],
    requests: int,
) -> None:
    """A few unmeasured requests on a connection: connections, pools and caches ready."""
    for _ in range(requests):
        counter[index] += 1
        status, body = await connection.send(make_request(index, counter[index]))
        if status not in ok_statuses:
            raise RuntimeError(f"warm-up request answered {status}: {body[:300]!r}")


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- calibration


def _null_server(port: int, body: bytes, ready: Any) -> None:
    """A server that answers every request at once with `body`: what the generator reaches
    when the server costs (almost) nothing."""
    import uvloop

    response = (
        b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )

    class Answer(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)
            self.parser = httptools.HttpRequestParser(self)

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            self.transport.write(response)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    uvloop.run(main())


@contextlib.contextmanager
def null_server(body: bytes) -> Any:
    """A null server in a process of its own on a free port; yields the port."""
    port = free_port()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=_null_server, args=(port, body, ready), daemon=True)
    process.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the null server did not start")
        yield port
    finally:
        process.terminate()
        process.join(10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env_argument(parser: argparse.ArgumentParser) -> None:
    """`--server-env RAPPORT_NAME=VALUE` (repeatable): settings for the server a benchmark
    starts, as `args.server_env`, a list of (name, value)."""
    parser.add_argument(
        "--server-env",
        type=server_setting,
        action="append",
        default=[],
        metavar="RAPPORT_NAME=VALUE",
        help="a setting for the server (repeatable), e.g. RAPPORT_DATABASE_HOT_READERS=4",
    )


def server_setting(text: str) -> tuple[str, str]:
    """`RAPPORT_NAME=VALUE` from the command line, for the server a benchmark starts."""
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("RAPPORT_"):
        raise argparse.ArgumentTypeError("expected RAPPORT_NAME=VALUE")
    return name, value


# --------------------------------------------------------------------------- CPU meters


_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu_of(fields: list[str], *, reaped: bool = False) -> float:
    """utime + stime of all the process's threads; with `reaped`, also what its children
    that have ended used (cutime + cstime): PostgreSQL backends that ended inside the
    window, as pgbench's do, are counted in their postmaster's."""
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = int(fields[1])
    return parents


def tree_pids(root: int, parents: dict[int, int] | None = None) -> list[int]:
    """`root` and all its descendants."""
    parents = parents if parents is not None else _parents()
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


@dataclass
class Meter:
    """CPU seconds of the server's process tree, the embedded PostgreSQL, this process and
    the machine. Processes that start and end between two snapshots are counted only as
    `other` (the machine's busy time less the rest)."""

    server_pid: int | None = None
    pgdata: Path | None = None

    def snapshot(self) -> dict[str, float]:
        parents = _parents()
        snap = {"client": _self_cpu()}
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        snap["machine_total"] = sum(fields[:8]) / _TICK
        snap["machine_idle"] = (fields[3] + fields[4]) / _TICK
        postmaster, postgres = self._postgres_pids(parents)
        if self.server_pid is not None:
            snap["server"] = sum(
                _cpu_of(f, reaped=pid == self.server_pid)
                for pid in tree_pids(self.server_pid, parents)
                if pid not in postgres and (f := _stat(pid))
            )
        snap["postgres"] = sum(_cpu_of(f, reaped=pid == postmaster) for pid in postgres if (f := _stat(pid)))
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        snap["children"] = children.ru_utime + children.ru_stime  # pgbench, once it has been waited for
        return snap

    def _postgres_pids(self, parents: dict[int, int]) -> tuple[int | None, set[int]]:
        if self.pgdata is None:
            return None, set()
        try:
            postmaster = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None, set()
        return postmaster, set(tree_pids(postmaster, parents))

    @staticmethod
    def usage(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
        used = {key: after[key] - before[key] for key in after if key in before}
        report: dict[str, float] = {}
        for key in ("server", "postgres", "client", "children"):
            if key in used:
                report[f"{key}_cpu_s"] = round(used[key], 2)
                if requests:
                    report[f"{key}_cpu_ms_per_request"] = round(used[key] * 1000 / requests, 3)
        busy = used["machine_total"] - used["machine_idle"]
        ours = sum(used.get(key, 0.0) for key in ("server", "postgres", "client", "children"))
        report["machine_core_s"] = round(used["machine_total"], 2)
        report["machine_busy_core_s"] = round(busy, 2)
        report["other_processes_core_s"] = round(max(0.0, busy - ours), 2)
        return report
