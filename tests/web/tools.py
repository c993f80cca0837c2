"""What the browser tests run on besides Rapport: Debian's Chromium, driven by Playwright
(never a browser of Playwright's own download), and axe-core from the lock file in this
folder, installed with `npm ci`.

Both are installed on first use. Test processes may start at once (pytest-xdist), so each
installation runs under a file lock: the second process waits and then finds it done.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Headless in a container: no sandbox (it needs user namespaces), no GPU, and nothing the
# browser would fetch on its own (updates, sync, QUIC probes) while a test runs.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_CHROMIUM = "apt-get update && apt-get install -y chromium"

WEB_TESTS = Path(__file__).resolve().parent
AXE = WEB_TESTS / "node_modules" / "axe-core" / "axe.min.js"


@contextmanager
def _installing(name: str) -> Iterator[None]:
    """One installer at a time across the test processes of this machine."""
    with (Path(tempfile.gettempdir()) / f"rapport-web-tests-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _apt_get(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", *arguments],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        check=False,
    )


def chromium() -> str:
    """The path of Debian's Chromium, installed with apt when missing."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            f"The browser tests need Debian's Chromium at {CHROMIUM}. Install it with: sudo sh -c '{INSTALL_CHROMIUM}'"
        )
    with _installing("chromium"):
        if not CHROMIUM.exists():
            installed = _apt_get("install", "-y", "chromium")
            if installed.returncode != 0:
                # A fresh system has no package lists yet.
                _apt_get("update")
                installed = _apt_get("install", "-y", "chromium")
            if installed.returncode != 0 or not CHROMIUM.exists():
                output = installed.stdout[-2000:] + installed.stderr[-2000:]
                pytest.fail(f"Installing Chromium failed (run: {INSTALL_CHROMIUM}):\n{output}")
    return str(CHROMIUM)


def axe_script() -> Path:
    """axe-core's browser build, installed from tests/web/package-lock.json when missing."""
    if AXE.exists():
        return AXE
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"The accessibility tests need npm (Node.js) to install axe-core: run `npm ci` in {WEB_TESTS}")
    with _installing("axe"):
        if not AXE.exists():
            done = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=WEB_TESTS,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0 or not AXE.exists():
                pytest.fail(f"`npm ci` in {WEB_TESTS} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return AXE
