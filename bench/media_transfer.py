"""Uploading and downloading a 100 MB file through HTTP, beside a plain copy of the same
file on the same disk, with the server's memory sampled throughout.

    make bench-media              # = .venv/bin/python -m bench.media_transfer
    .venv/bin/python -m bench.media_transfer --runs 10 --size-mb 250
    .venv/bin/python -m bench.media_transfer --workers 1 --dir /mnt/ssd     # another disk

The benchmark makes a throw-away data folder (under `--dir`, default the temporary
folder; or `--keep DIR`), starts the embedded PostgreSQL in it, provisions and migrates,
creates one account and starts `rapport serve` on a free port of 127.0.0.1 with
`--workers` server processes (default 2, one per core) and the media under the same data
folder (the default, `<data dir>/media`, local storage). It writes a file of `--size-mb`
MB (10^6 bytes) of random bytes behind an MP4 header (a video: under the video limit of
1 GiB, and random so no layer can compress it) into the same folder, signs in through the
API, then, `--runs` times each, back to back:

- copy cp:        `cp` of the file to a new file beside it (no fsync, as cp does);
- copy shutil:    `shutil.copyfile` in this process (no fsync);
- copy + fsync:   `shutil.copyfile`, then fsync of the copy: what storing durably costs;
- upload:         `POST /v1/media`, multipart with the field `file`, the file sent from
                  disk by `sendfile(2)` (the client never reads it), until the 201 answer;
                  each run's file differs in its first bytes after the header, so every
                  upload is stored (nothing is deduplicated);
- download:       `GET /v1/media/{id}/content`, until the last byte, counted and dropped.

One upload and one download are made first and not counted (warm-up); the bytes of that
download are hashed and compared with the file's. The file and the stored blobs are in
the page cache throughout: the figures are the software's cost, not the disk's (the
copies and the server's fsync of what it stores, which does reach the disk, aside).

During every timed transfer a thread samples the resident set (RSS) of each process of
the server's tree (the server processes; PostgreSQL is not in it) every 5 ms: the baseline
is the last sample before the transfer, the peak the largest during it. The job worker is
off (RAPPORT_WORKER_IN_PROCESS=false), so no scan or metadata job reads the file while
transfers are timed. CPU seconds of the server's tree and of this process are reported
per transfer, to show the client is not what limits a figure.

The table goes to stdout, the figures and the machine to bench/results/media_transfer.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httptools
import httpx
import psutil
from rich.console import Console
from rich.table import Table

from bench import messaging_data as data
from bench._load import free_port
from bench._report import machine
from bench.messaging_send import Server, bench_password_hash

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "media_transfer.json"
EMAIL = "media@bench.example"
MB = 1_000_000
MIB = 1024 * 1024
SAMPLE_EVERY_S = 0.005
# An MP4 file's first box (`ftyp`, brand isom): the bytes make it a video whatever follows.
MP4_HEADER = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
RECEIVE_BUFFER = 1 << 20

out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


# --------------------------------------------------------------------------- the file


def write_file(path: Path, size: int) -> str:
    """`size` bytes, an MP4 header then random bytes, written a MiB at a time; its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as sink:
        sink.write(MP4_HEADER)
        digest.update(MP4_HEADER)
        left = size - len(MP4_HEADER)
        while left:
            piece = os.urandom(min(MIB, left))
            sink.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def make_distinct(path: Path, run: int) -> None:
    # New bytes right after the header: a new SHA-256, so the upload is stored, not deduplicated.
    with path.open("r+b") as handle:
        handle.seek(len(MP4_HEADER))
        handle.write(f"run {run:08d} {uuid4()}".encode())


def filesystem_of(path: Path) -> dict[str, str]:
    """The mount holding `path`: its device, mount point and type, from /proc/mounts."""
    best: tuple[str, str, str] = ("?", "/", "?")
    resolved = str(path.resolve())
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind = line.split()[:3]
            inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best[1]):
                best = (device, mount, kind)
    return {"device": best[0], "mount": best[1], "type": best[2]}


# --------------------------------------------------------------------------- memory and CPU


@dataclass
class Sampler:
    """RSS of every process of the server's tree, every few milliseconds, in a thread."""

    processes: list[psutil.Process]
    samples: list[tuple[float, dict[int, int]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def of_tree(cls, pid: int) -> Sampler:
        root = psutil.Process(pid)
        return cls([root, *root.children(recursive=True)])

    def rss(self) -> dict[int, int]:
        sizes = {}
        for process in self.processes:
            with contextlib.suppress(psutil.Error):
                sizes[process.pid] = process.memory_info().rss
        return sizes

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in self.processes:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self.rss()))
            self._stop.wait(SAMPLE_EVERY_S)

    @contextlib.contextmanager
    def during(self) -> Iterator[dict[str, Any]]:
        """Sample while the block runs; the dict it yields is filled with the figures after."""
        figures: dict[str, Any] = {}
        baseline = self.rss()
        self.samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        try:
            yield figures
        finally:
            self._stop.set()
            self._thread.join()
        peaks = dict(baseline)
        peak_total = sum(baseline.values())
        for _, sizes in self.samples:
            peak_total = max(peak_total, sum(sizes.values()))
            for pid, size in sizes.items():
                peaks[pid] = max(peaks.get(pid, 0), size)
        growth = {pid: peaks[pid] - baseline.get(pid, peaks[pid]) for pid in peaks}
        grown = max(growth, key=lambda pid: growth[pid])
        figures.update(
            samples=len(self.samples),
            rss_baseline_mib=round(sum(baseline.values()) / MIB, 1),
            rss_peak_mib=round(peak_total / MIB, 1),
            # The process that took the request: the one that grew most.
            busiest_process_baseline_mib=round(baseline.get(grown, 0) / MIB, 1),
            busiest_process_peak_mib=round(peaks[grown] / MIB, 1),
            busiest_process_growth_mib=round(growth[grown] / MIB, 1),
        )


# --------------------------------------------------------------------------- HTTP, lean


class _Answer:
    """httptools callbacks: the status, the headers, and the body counted (or kept when small)."""

    def __init__(self, keep_body: bool) -> None:
        self.keep_body = keep_body
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.received = 0
        self.done = False
        self.digest: Any = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.received += len(body)
        if self.digest is not None:
            self.digest.update(body)
        if self.keep_body:
            self.body += body

    def on_message_complete(self) -> None:
        self.done = True


def _read_answer(sock: socket.socket, answer: _Answer) -> int:
    parser = httptools.HttpResponseParser(answer)
    buffer = bytearray(RECEIVE_BUFFER)
    view = memoryview(buffer)
    while not answer.done:
        count = sock.recv_into(buffer)
        if not count:
            break
        parser.feed_data(view[:count])
    status: int = parser.get_status_code()
    return status


def upload(port: int, token: str, path: Path, size: int) -> tuple[int, dict[str, Any]]:
    """POST /v1/media, multipart, the file's bytes sent by sendfile(2) from disk."""
    boundary = "rapport-bench-" + secrets.token_hex(12)
    part_head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    part_tail = f"\r\n--{boundary}--\r\n".encode()
    head = (
        f"POST /v1/media HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(part_head) + size + len(part_tail)}\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = _Answer(keep_body=True)
    with socket.create_connection(("127.0.0.1", port)) as sock, path.open("rb") as source:
        try:
            sock.sendall(head + part_head)
            sock.sendfile(source)
            sock.sendall(part_tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early (a 413, say): the answer says why
        status = _read_answer(sock, answer)
    return status, json.loads(answer.body) if answer.body else {}


def download(port: int, token: str, file_id: str, *, verify: bool = False) -> tuple[int, int, str | None]:
    """GET /v1/media/{id}/content; (status, bytes received, their SHA-256 when verifying)."""
    head = (
        f"GET /v1/media/{file_id}/content HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = _Answer(keep_body=False)
    if verify:
        answer.digest = hashlib.sha256()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        status = _read_answer(sock, answer)
    return status, answer.received, answer.digest.hexdigest() if verify else None


# --------------------------------------------------------------------------- timing


def timed(size: int, action: Callable[[], None], sampler: Sampler | None = None) -> dict[str, Any]:
    """One run of `action`: seconds, MB/s, this process's CPU and, with a sampler, the server's."""
    client_before = time.process_time()
    server_before = sampler.cpu_seconds() if sampler else 0.0
    sampling: contextlib.AbstractContextManager[dict[str, Any]] = (
        sampler.during() if sampler else contextlib.nullcontext({})
    )
    with sampling as memory:
        start = time.perf_counter()
        action()
        seconds = time.perf_counter() - start
    row: dict[str, Any] = {
        "seconds": round(seconds, 4),
        "mb_per_s": round(size / MB / seconds, 1),
        "client_cpu_s": round(time.process_time() - client_before, 3),
    }
    if sampler:
        row["server_cpu_s"] = round(sampler.cpu_seconds() - server_before, 3)
        row["memory"] = memory
    return row


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [run["mb_per_s"] for run in runs]
    result: dict[str, Any] = {
        "runs": len(runs),
        "mb_per_s_median": round(statistics.median(rates), 1),
        "mb_per_s_min": min(rates),
        "mb_per_s_max": max(rates),
    }
    memories = [run["memory"] for run in runs if "memory" in run]
    if memories:
        result["server_rss_baseline_mib_max"] = max(m["rss_baseline_mib"] for m in memories)
        result["server_rss_peak_mib_max"] = max(m["rss_peak_mib"] for m in memories)
        # Per run, peak less baseline: how much more memory a transfer took, at most.
        result["server_rss_growth_mib_max"] = max(round(m["rss_peak_mib"] - m["rss_baseline_mib"], 1) for m in memories)
        result["busiest_process_growth_mib_max"] = max(m["busiest_process_growth_mib"] for m in memories)
        result["busiest_process_peak_mib_max"] = max(m["busiest_process_peak_mib"] for m in memories)
        result["server_cpu_s_median"] = round(statistics.median(r["server_cpu_s"] for r in runs), 3)
    result["client_cpu_s_median"] = round(statistics.median(r["client_cpu_s"] for r in runs), 3)
    return result


# --------------------------------------------------------------------------- the run


async def create_account(urls: Any) -> None:
    admin = await data.connect(urls.admin.set(database=data.DATABASE))
    try:
        await admin.execute(
            "INSERT INTO auth.users (id, email, password_hash, status, email_verified_at)"
            " VALUES ($1, $2, $3, 'active', now())",
            uuid4(),
            EMAIL,
            bench_password_hash(),
        )
    finally:
        await admin.close()


def sign_in(url: str) -> str:
    response = httpx.post(
        f"{url}/v1/auth/login",
        json={"email": EMAIL, "password": data.BENCH_PASSWORD, "device_name": "bench"},
        timeout=120,
    )
    if response.status_code != 200:
        raise RuntimeError(f"login: HTTP {response.status_code}: {response.text[:300]}")
    token: str = response.json()["access_token"]
    return token


@dataclass
class Transfers:
    """The timed actions, each one run of one row."""

    port: int
    token: str
    source: Path
    size: int
    target: Path
    uploaded: list[str] = field(default_factory=list)

    def cp(self) -> None:
        subprocess.run(["cp", str(self.source), str(self.target)], check=True)

    def copy(self) -> None:
        shutil.copyfile(self.source, self.target)

    def copy_fsync(self) -> None:
        shutil.copyfile(self.source, self.target)
        with self.target.open("rb") as handle:
            os.fsync(handle.fileno())

    def upload(self) -> None:
        status, body = upload(self.port, self.token, self.source, self.size)
        if status != 201:
            raise RuntimeError(f"upload: HTTP {status}: {body}")
        self.uploaded.append(body["id"])

    def download(self) -> None:
        status, received, _ = download(self.port, self.token, self.uploaded[-1])
        if status != 200 or received != self.size:
            raise RuntimeError(f"download: HTTP {status}, {received} of {self.size} bytes")


def warm_up(transfers: Transfers, expected: str) -> dict[str, Any]:
    """One upload and one download, the downloaded bytes hashed and compared."""
    status, body = upload(transfers.port, transfers.token, transfers.source, transfers.size)
    if status != 201:
        raise RuntimeError(f"upload: HTTP {status}: {body}")
    got, received, digest = download(transfers.port, transfers.token, body["id"], verify=True)
    if got != 200 or received != transfers.size or digest != expected:
        raise RuntimeError(f"download: HTTP {got}, {received} bytes, sha256 {digest} (expected {expected})")
    return {
        "upload_status": status,
        "kind": body.get("kind"),
        "content_type": body.get("content_type"),
        "download_sha256_equal": True,
    }


def measure(args: argparse.Namespace, data_dir: Path, server: Server, token: str, report: dict[str, Any]) -> None:
    size = args.size_mb * MB
    files = data_dir / "bench-files"
    files.mkdir()
    source = files / "video.mp4"
    with err.status(f"Writing {args.size_mb} MB of random bytes…"):
        expected = write_file(source, size)
    media = data_dir / "media"
    media.mkdir(exist_ok=True)
    report["file"] = {"bytes": size, "path": str(source), "filesystem": filesystem_of(source)}
    report["same_filesystem_as_media"] = source.stat().st_dev == media.stat().st_dev
    sampler = Sampler.of_tree(server.process.pid)
    report["server"]["processes_sampled"] = len(sampler.processes)
    transfers = Transfers(server.port, token, source, size, files / "copy.mp4")
    with err.status("Warm-up upload and download (checked, not counted)…"):
        report["checked"] = warm_up(transfers, expected)

    copies = {"copy cp": transfers.cp, "copy shutil": transfers.copy, "copy + fsync": transfers.copy_fsync}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in [*copies, "upload", "download"]}
    for run in range(args.runs):
        err.print(f"[dim]{datetime.now():%H:%M:%S}[/dim] run {run + 1} of {args.runs}")
        for name, action in copies.items():
            rows[name].append(timed(size, action))
            transfers.target.unlink()
        make_distinct(source, run)
        rows["upload"].append(timed(size, transfers.upload, sampler))
        rows["download"].append(timed(size, transfers.download, sampler))
    report["runs"] = rows
    report["summary"] = {name: summary(runs) for name, runs in rows.items()}
    report["blobs_stored"] = sum(1 for path in (media / "blobs").rglob("*") if path.is_file())


async def prepare(data_dir: Path) -> None:
    urls = await data.prepare(data_dir)
    await create_account(urls)


def run(args: argparse.Namespace, data_dir: Path, report: dict[str, Any]) -> None:
    asyncio.run(prepare(data_dir))
    server = Server(
        data_dir,
        free_port(),
        args.workers,
        extra_env={"RAPPORT_WORKER_IN_PROCESS": "false", "RAPPORT_MEDIA_STORAGE": "local"},
    )
    try:
        server.wait_healthy()
        report["server"] = {"workers": args.workers, "url": server.url, "storage": "local"}
        measure(args, data_dir, server, sign_in(server.url), report)
    finally:
        with err.status("Stopping the server…"):
            server.stop()


def print_table(report: dict[str, Any]) -> None:
    parameters = report["parameters"]
    table = Table(title=f"{parameters['size_mb']} MB, {parameters['runs']} runs each")
    columns = ("what", "MB/s median", "min", "max", "server RSS MiB", "all +MiB", "serving +MiB", "server CPU s")
    for column in (*columns, "client CPU s"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for name, row in report["summary"].items():
        table.add_row(
            name,
            f"{row['mb_per_s_median']:.1f}",
            f"{row['mb_per_s_min']:.1f}",
            f"{row['mb_per_s_max']:.1f}",
            str(row.get("server_rss_baseline_mib_max", "")),
            str(row.get("server_rss_growth_mib_max", "")),
            str(row.get("busiest_process_growth_mib_max", "")),
            str(row.get("server_cpu_s_median", "")),
            str(row["client_cpu_s_median"]),
        )
    out.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.media_transfer",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size-mb", type=int, default=100, help="the file's size in MB of 10^6 bytes (default 100)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each transfer (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="RAPPORT_WORKERS for the server (default 2)")
    parser.add_argument("--dir", type=Path, help="where to make the data folder (default: the temporary folder)")
    parser.add_argument("--keep", type=Path, help="keep the data folder here (must not exist yet)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    if args.keep and args.keep.exists():
        parser.error(f"{args.keep} exists: the media benchmark starts from an empty folder")
    if args.keep:
        data_dir = args.keep.resolve()
        data_dir.mkdir(parents=True)
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="rapport-media-", dir=args.dir))
    report: dict[str, Any] = {
        "benchmark": "media_transfer",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.media_transfer", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "parameters": {"size_mb": args.size_mb, "runs": args.runs, "workers": args.workers},
        "client": "blocking sockets: the upload by sendfile(2) from the file, the download into a 1 MiB buffer",
    }
    try:
        run(args, data_dir, report)
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted.[/yellow]")
        return 130
    finally:
        data.stop_embedded(data_dir)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    err.print(f"Results in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
