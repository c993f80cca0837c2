"""Serving the app from several processes (RAPPORT_WORKERS), each with a listening socket
of its own, and keeping the garbage collector out of the tail latency.

Why a socket per process: uvicorn's own `--workers` shares one listening socket, so its
processes race for one accept queue, and with keep-alive clients one process took 15 of
16 connections while the others idled. Here every process binds its own socket to the
same address with SO_REUSEPORT, and the kernel spreads new connections evenly over them
(by a hash of each connection's addresses).

Why 'spawn' rather than 'fork': the parent has run event loops, threads (migrations run in
one) and the embedded PostgreSQL's handle; a forked child would inherit copies of all of
them, and forking a process that has run threads is unsafe. A spawned child starts a fresh
interpreter, imports the app and opens its own pools; it costs a second or so per start.

The parent prepares the database once, starts the children, restarts one that dies, and
on SIGTERM or SIGINT stops them all gracefully before it exits itself (so the embedded
PostgreSQL, which stops with the process that started it, outlives every connection).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any, Protocol

import structlog
import uvicorn

from rapport.config import Settings

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess
    from multiprocessing.synchronize import Event

log = structlog.get_logger(__name__)

# How long a worker's requests may take to finish once it is asked to stop; the parent
# kills what is still running a little after that.
GRACEFUL_SHUTDOWN_SECONDS = 20
_KILL_AFTER_SECONDS = GRACEFUL_SHUTDOWN_SECONDS + 10
# A worker that dies before it ever served is restarted after a growing delay (a database
# down for a while), up to this; one that had been serving is restarted at once.
_MAX_RESTART_DELAY_SECONDS = 30.0


class AppFactory(Protocol):
    """Builds the ASGI app in the process that serves it; `run_jobs` says whether this
    process runs the in-process job worker (only one of several does)."""

    def __call__(self, *, run_jobs: bool) -> Any: ...


@dataclass(frozen=True)
class ServeSpec:
    """What each process needs to serve; sent to spawned workers, so everything in it
    pickles (a module-level factory, or a functools.partial of one)."""

    app_factory: AppFactory
    host: str
    port: int
    # uvicorn.Config's keyword arguments (rapport.cli.server_options).
    options: Mapping[str, Any] = field(default_factory=dict)


def share_of_pools(settings: Settings, processes: int) -> Settings:
    """Each process's settings when `processes` serve together: the pool sizes configured
    are the server's in all, shared out, so that adding processes (RAPPORT_WORKERS defaults
    to the number of cores) never multiplies the connections PostgreSQL must hold (the
    embedded server allows 100)."""
    if processes <= 1:
        return settings
    return settings.model_copy(
        update={
            "database_pool_size": max(2, -(-settings.database_pool_size // processes)),
            "database_system_pool_size": max(2, -(-settings.database_system_pool_size // processes)),
            "database_hot_readers": max(1, -(-settings.database_hot_readers // processes)),
        }
    )


def freeze_startup_objects() -> None:
    """Move everything alive after start-up out of the collector's sight.

    Why: start-up leaves hundreds of thousands of long-lived objects (modules, the app, its
    routes and pydantic models, SQLAlchemy's caches), and every full collection walks them
    all. Measured on the hot paths, those full collections took 86 to 99 ms and set the
    p99 latency; frozen, they are never scanned again and p99 fell from 94 ms to 29 ms. The
    collect first frees start-up's garbage, so that none of it is kept for good.

    The thresholds stay Python's. Raising the youngest generation's to 50,000 (token
    refresh under load, one process) made collections rarer but each one long: young
    collections of 30 to 72 ms, where the default's stay under 5 ms and full collections,
    once frozen, under 10 ms (101 ms unfrozen). Fewer, longer pauses are what the tail
    latency feels.
    """
    gc.collect()
    gc.freeze()


def listening_socket(host: str, port: int, *, shared: bool) -> socket.socket:
    """A TCP socket bound to host:port, not yet listening: the server listens once the
    app has started, so the kernel sends no connection to a process still starting.
    `shared` sets SO_REUSEPORT, so that every worker binds a socket of its own to the
    same address.

    Raises:
        OSError: the address cannot be bound (in use, or not this machine's).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, which freezes start-up's objects once the app's lifespan has
    started and says so."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            freeze_startup_objects()
            if self._on_started is not None:
                self._on_started()


def serve(
    spec: ServeSpec,
    *,
    run_jobs: bool = True,
    shared: bool = False,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve the app in this process until SIGTERM or SIGINT: the whole server when there
    is one worker, or one of several (`shared`) under `run_workers`.

    Raises:
        OSError: the address cannot be bound.
        SystemExit: the app's lifespan failed to start (uvicorn exits with status 3).
    """
    sock = listening_socket(spec.host, spec.port, shared=shared)
    try:
        config = uvicorn.Config(
            spec.app_factory(run_jobs=run_jobs),
            loop="uvloop",
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            **spec.options,
        )
        _Server(config, on_started).run(sockets=[sock])
    finally:
        sock.close()


def _worker_main(spec: ServeSpec, index: int, parent_pid: int, started: Event) -> None:
    """A spawned worker: serves until told to stop, or until its parent is gone."""
    _stop_with_parent(parent_pid)
    # uvicorn stops gracefully on these, then raises the signal again under the handler it
    # found: exit quietly then, rather than die by the signal or print a traceback.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        serve(spec, run_jobs=index == 0, shared=True, on_started=started.set)


def _stop_with_parent(parent_pid: int) -> None:
    """Ask Linux to send SIGTERM when the parent dies: a parent killed with SIGKILL cannot
    stop its workers, which would otherwise keep serving with no one to restart them."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the request was made
        sys.exit(0)


@dataclass
class _Slot:
    """One worker's place: the process in it now, and how its predecessors fared."""

    index: int
    process: SpawnProcess | None = None
    started: Event | None = None
    # Whether any process in this place finished starting; until then a death is a
    # configuration problem rather than a crash, and stops the server.
    ever_started: bool = False
    failures: int = 0
    restart_at: float | None = None


class _StopRequest:
    """SIGTERM and SIGINT set a flag and wake the supervisor through a pipe."""

    def __init__(self) -> None:
        self._requested = False
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        os.set_blocking(self.read_fd, False)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self.read_fd)
            os.close(self._write_fd)

    def _handle(self, signum: int, _frame: object) -> None:
        self._requested = True

    def requested(self) -> bool:
        return self._requested

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.read_fd, 512):
                pass


def run_workers(spec: ServeSpec, count: int) -> int:
    """Serve with `count` worker processes until SIGTERM or SIGINT; returns the exit status
    (0 after an orderly stop, 1 when a worker could not start at all). Worker 0 runs the
    in-process job worker.

    Raises:
        OSError: the address is in use or cannot be bound.
    """
    # Fail here, clearly, if another server holds the port: with SO_REUSEPORT the workers'
    # sockets would otherwise join a group that another process of this user listens in.
    listening_socket(spec.host, spec.port, shared=False).close()
    context = multiprocessing.get_context("spawn")
    slots = [_Slot(index) for index in range(count)]
    stop = _StopRequest()
    with stop.installed():
        for slot in slots:
            _start(context, spec, slot)
        status = _supervise(context, spec, slots, stop)
        _stop_all(slots)
    return status


def _start(context: multiprocessing.context.SpawnContext, spec: ServeSpec, slot: _Slot) -> None:
    slot.started = context.Event()
    slot.process = context.Process(
        target=_worker_main,
        args=(spec, slot.index, os.getpid(), slot.started),
        name=f"rapport-worker-{slot.index}",
        daemon=True,
    )
    slot.process.start()
    slot.restart_at = None
    log.info("serving.worker_started", worker=slot.index, pid=slot.process.pid)


def _supervise(
    context: multiprocessing.context.SpawnContext, spec: ServeSpec, slots: list[_Slot], stop: _StopRequest
) -> int:
    """Wait for a worker to die or a signal to come; restart the dead. Returns 1 when a
    worker that never started dies before it ever served (the port, the database or the
    app is wrong: restarting would only repeat it), 0 when asked to stop."""
    while not stop.requested():
        now = time.monotonic()
        due = [slot.restart_at for slot in slots if slot.restart_at is not None]
        timeout = max(0.0, min(due) - now) if due else None
        sentinels: list[Any] = [slot.process.sentinel for slot in slots if slot.process is not None]
        wait([*sentinels, stop.read_fd], timeout)
        stop.drain()
        if stop.requested():
            break
        for slot in slots:
            if slot.process is not None and not slot.process.is_alive() and not _reap(slot):
                return 1
            if slot.process is None and slot.restart_at is not None and slot.restart_at <= time.monotonic():
                _start(context, spec, slot)
    return 0


def _reap(slot: _Slot) -> bool:
    """Record a dead worker and schedule its replacement; False when it never served."""
    assert slot.process is not None and slot.started is not None
    slot.process.join()
    exitcode, pid = slot.process.exitcode, slot.process.pid
    had_started = slot.started.is_set()
    slot.process.close()
    slot.process = None
    if not had_started and not slot.ever_started:
        log.error("serving.worker_failed_to_start", worker=slot.index, pid=pid, exitcode=exitcode)
        return False
    slot.ever_started = True
    slot.failures = 0 if had_started else slot.failures + 1
    delay = 0.0 if had_started else min(_MAX_RESTART_DELAY_SECONDS, 0.5 * 2**slot.failures)
    slot.restart_at = time.monotonic() + delay
    log.warning("serving.worker_died", worker=slot.index, pid=pid, exitcode=exitcode, restart_in_seconds=delay)
    return True


def _stop_all(slots: list[_Slot]) -> None:
    """SIGTERM to every worker (uvicorn then finishes the requests in flight), and SIGKILL
    to any still running after the grace period."""
    running = [slot.process for slot in slots if slot.process is not None and slot.process.is_alive()]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + _KILL_AFTER_SECONDS
    for process in running:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.error("serving.worker_killed", pid=process.pid, after_seconds=_KILL_AFTER_SECONDS)
            process.kill()
            process.join()
