"""The Rapport nodes a run speaks to: ones given by URL, or one `rapport serve` the run
starts on the bench's database and stops at the end."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx


@dataclass
class Account:
    user_id: str
    email: str
    token: str
    session_id: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def started_server(*, database_url: str | None, database_name: str, workers: int, timeout: float = 90) -> Iterator[str]:
    """`rapport serve` on a free port of 127.0.0.1 over the bench's database; yields its URL."""
    port = free_port()
    env = dict(os.environ)
    if database_url:
        env["RAPPORT_DATABASE_URL"] = database_url
    env["RAPPORT_DATABASE_NAME"] = database_name
    env["RAPPORT_WORKERS"] = str(workers)
    command = [sys.executable, "-m", "rapport", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-demo"]
    # The server's log goes to a file: a pipe nobody reads fills after 64 KiB, and then
    # the server blocks on its next log line, holding whatever transaction it has open.
    log = tempfile.NamedTemporaryFile(prefix="rapport-bench-serve-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.flush()
                with open(log.name, encoding="utf-8", errors="replace") as written:
                    detail = written.read()[-2000:]
                raise RuntimeError(f"rapport serve stopped at start: {detail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("rapport serve did not answer /healthz in time")
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def session_of(token: str) -> str:
    """The session id inside an access token (its `sid` claim): the straight side acts in
    the same session as the service side."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sid"])


async def sign_in(http: httpx.AsyncClient, user_id: str, email: str, password: str) -> Account:
    answer = await http.post("/v1/auth/login", json={"email": email, "password": password})
    if answer.status_code != 200:
        raise RuntimeError(f"signing {email} in answered {answer.status_code}: {answer.text[:300]}")
    token = answer.json()["access_token"]
    return Account(user_id=user_id, email=email, token=token, session_id=session_of(token))
