"""What both benchmarks report: percentiles and the machine they ran on."""

from __future__ import annotations

import contextlib
import os
import platform
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
    """CPU, memory, Python and the embedded PostgreSQL's version, for the report."""
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
