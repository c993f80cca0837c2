"""`rapport location import`, run as an operator runs it: the sample GeoLite2 files into
the test's database, a second run writing nothing, and a file that is no IP database
refused with a message and exit status 1."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import URL

from rapport.kernel.provisioning import DatabaseUrls
from tests.location.support import MAXMIND
from tests.support import rapport_env

ROOT = Path(__file__).resolve().parents[2]


def _command(admin_url: URL, database: DatabaseUrls, *args: str) -> subprocess.CompletedProcess[str]:
    script = "from rapport.location.cli import location_app; location_app(prog_name='rapport location')"
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env=rapport_env(admin_url, database, COLUMNS="200"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_command_imports_the_sample_files_once(admin_url: URL, database: DatabaseUrls) -> None:
    files = [str(path) for path in MAXMIND]

    done = await asyncio.to_thread(_command, admin_url, database, "import", *files)
    again = await asyncio.to_thread(_command, admin_url, database, "import", *files)

    assert done.returncode == 0, done.stderr
    assert "networks read 10, rows written 10" in done.stdout
    assert "networks read 10, rows written 0" in again.stdout


async def test_the_command_refuses_a_file_that_is_no_ip_database(
    admin_url: URL, database: DatabaseUrls, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.csv"
    notes.write_text("name,phone\nalice,123\n")

    refused = await asyncio.to_thread(_command, admin_url, database, "import", str(notes))

    assert refused.returncode == 1
    assert "not a MaxMind" in refused.stderr
