"""What every benchmark reports: percentiles, the machine it ran on, and the dated section
and JSON file `rapport bench run` leaves in docs/."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
import warnings
from pathlib import Path
from typing import Any


def percentile(ordered: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), `ordered` sorted."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def machine() -> dict[str, Any]:
    """CPU, memory, Python and the embedded PostgreSQL's version."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_total_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pgserver's platformdirs: XDG_RUNTIME_DIR is not set
        import pgserver

        postgres = Path(pgserver.__file__).parent / "pginstall" / "bin" / "postgres"
        info["embedded_postgres"] = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    return info


def scale_name(messages: int) -> str:
    """10000000 → "10M", 2000 → "2k"."""
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if messages >= size and messages % (size // 10) == 0:
            return f"{messages / size:g}{suffix}"
    return str(messages)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def _busy(share: float | None) -> str:
    return "–" if share is None else f"{share:.2f}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def markdown(result: dict[str, Any]) -> str:
    """The dated section for docs/PERFORMANCE.md."""
    m = result["machine"]
    lines = [
        f"## rapport bench at {result['scale']} ({result['date']})",
        "",
        "```",
        result["command"],
        "```",
        "",
        f"Machine: {m.get('cpu_model', 'unknown CPU')}, `nproc` = {m.get('nproc')}, "
        f"{m.get('mem_total_gib', '?')} GiB of memory, {m.get('platform')}, Python {m.get('python')}"
        + (f", {m['embedded_postgres']}" if m.get("embedded_postgres") else "")
        + f"; load average at the start {m.get('loadavg')}.",
        "",
        f"Data set: {_counts(result['dataset'])}. Nodes: {len(result['nodes'])}"
        + (" (started by the run)" if result.get("server_started") else "")
        + f"; {result['duration_s']} s per side and concurrency"
        + (f", at most {result['max_requests']:,} requests" if result.get("max_requests") else "")
        + ".",
        "",
        "Each measure through the service (HTTP or WebSocket) beside the same work straight in PostgreSQL "
        "(the statement the service runs, as `rapport_app`, one connection per client); the ratio is "
        "service p50 / straight p50. Latencies in ms. `gen` is the share of one core the load "
        "generator (this process, one event loop) kept busy on the service side: near 1.0, it is what "
        "limits the service figure.",
        "",
        "| measure | clients | service req/s | p50 | p95 | p99 | gen | straight req/s | p50 | p95 | p99 | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, by_clients in result["measures"].items():
        for clients, pair in by_clients.items():
            s, d = pair["service"], pair["straight"]
            ratio = "–" if pair.get("ratio") is None else f"{pair['ratio']:.1f}×"
            lines.append(
                f"| {name} | {clients} | {_rate(s['requests_per_s'])} | {_ms(s['p50'])} | {_ms(s['p95'])} | "
                f"{_ms(s['p99'])} | {_busy(s.get('generator_busy'))} | {_rate(d['requests_per_s'])} | "
                f"{_ms(d['p50'])} | {_ms(d['p95'])} | "
                f"{_ms(d['p99'])} | {ratio} |"
            )
    wal = _wal_lines(result)
    if wal:
        lines += ["", *wal]
    lines += [
        "",
        "Seed 004's targets (p95 of the statement run straight as `rapport_app` under row-level "
        "security; throughput: the most reads a second the service answered, history or the "
        "conversation list, at any concurrency):",
        "",
        "| target | measured | limit | met |",
        "| --- | ---: | ---: | --- |",
    ]
    for target in result["targets"]:
        unit = target["unit"]
        measured = "not measured" if target["measured"] is None else f"{target['measured']:,.2f} {unit}"
        met = {True: "yes", False: "**no**", None: "–"}[target["met"]]
        name = target["name"] + (f" ({target['at']})" if target.get("at") else "")
        lines.append(f"| {name} | {measured} | {target['limit']:,} {unit} | {met} |")
    lines += [
        "",
        f"Plans (`EXPLAIN (ANALYZE, BUFFERS)`) and every figure: `{result['json_path']}`.",
        "",
    ]
    return "\n".join(lines)


def _wal_lines(result: dict[str, Any]) -> list[str]:
    """WAL per send at each concurrency, when the run measured sends."""
    sends = result["measures"].get("send", {})
    figures = [
        (clients, pair["service"].get("wal_bytes_per_request"), pair["straight"].get("wal_bytes_per_request"))
        for clients, pair in sends.items()
    ]
    if not any(service or straight for _, service, straight in figures):
        return []
    shown = "; ".join(
        f"{clients_label(clients)}: {_bytes(service)} through the service, {_bytes(straight)} straight"
        for clients, service, straight in figures
    )
    return [
        "WAL per send (`pg_current_wal_insert_lsn()` before and after each side, over the sends it "
        "answered; either side includes what the running server wrote meanwhile, such as the "
        f"notifications the sends caused and their jobs): {shown}."
    ]


def clients_label(level: str) -> str:
    """'1 client', '16 clients': a concurrency as the report names it."""
    return f"{level} {'client' if level == '1' else 'clients'}"


def _bytes(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} bytes"


def redact(argument: str) -> str:
    """A URL's password masked, for a command line written into the docs."""
    return re.sub(r"(://[^:/@\s]*:)[^@\s]+@", r"\1***@", argument)


def _counts(dataset: dict[str, Any]) -> str:
    counts = dataset.get("counts", {})
    wanted = ("messaging.messages", "auth.users", "messaging.conversations", "messaging.participants",
              "social.contacts", "messaging.reactions")  # fmt: skip
    return ", ".join(f"{counts[t]:,} {t.split('.')[1]}" for t in wanted if t in counts)


def write(result: dict[str, Any], *, performance_md: Path, json_dir: Path) -> Path:
    """Write the JSON beside the docs and append the section to PERFORMANCE.md."""
    json_dir.mkdir(parents=True, exist_ok=True)
    path = json_dir / f"{result['date']}-{result['scale']}.json"
    if path.exists():  # a second run the same day at the same scale keeps the first
        path = json_dir / f"{result['date']}-{result['scale']}-{result['time'][11:16].replace(':', '')}.json"
    result["json_path"] = _relative(path, performance_md.parent.parent)
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    text = performance_md.read_text() if performance_md.exists() else "# Performance\n"
    performance_md.write_text(text.rstrip("\n") + "\n\n" + markdown(result))
    return path


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
