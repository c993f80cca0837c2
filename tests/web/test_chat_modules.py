"""The web client's conversation modules without a browser: Node.js parses each of them,
and drives js/stream.js against a scripted WebSocket (tests/web/stream_harness.mjs): the
bearer subprotocol, each event once and in order, ping answered, acks and error frames,
reconnection from the last position after a drop, offline and back, one refresh on 4401,
resync, and a reload resuming from the kept position."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_JS = ROOT / "src" / "rapport" / "web" / "app" / "js"
HARNESS = Path(__file__).resolve().parent / "stream_harness.mjs"
CHAT_MODULES = [
    APP_JS / "stream.js",
    APP_JS / "views" / "chats.js",
    APP_JS / "views" / "conversation.js",
    *sorted((APP_JS / "chat").glob("*.js")),
]
STREAM_CHECKS = [
    "connects with the bearer subprotocol, from now",
    "dispatches each event once, in order, and says nothing once live",
    "answers ping with pong",
    "resolves a ref by its ack, rejects it by its error frame; typing needs no ack",
    "after a drop: Reconnecting…, then resumes from the last position, nothing twice",
    "offline and back: says Offline until live again, resumes from the last position",
    "4401: refreshes the token once and reconnects with the new one",
    "resync: views told, follows from its position; 4429 reconnects at once",
    "a reload resumes from the position the tab kept",
]


def node() -> str:
    found = shutil.which("node")
    assert found is not None, "the client's modules are checked with Node.js, which is not installed"
    return found


def test_the_chat_modules_are_all_there() -> None:
    names = {path.relative_to(APP_JS).as_posix() for path in CHAT_MODULES}
    assert {"stream.js", "views/chats.js", "views/conversation.js", "chat/people.js", "chat/message.js"} <= names


@pytest.mark.parametrize("module", CHAT_MODULES, ids=lambda path: path.relative_to(APP_JS).as_posix())
def test_node_parses_the_module(module: Path) -> None:
    checked = subprocess.run(
        [node(), "--input-type=module", "--check"],
        input=module.read_bytes(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr.decode()


def test_the_stream_resumes_without_gap_or_duplicate(tmp_path: Path) -> None:
    # The client's files are plain .js: beside a package.json of "type": "module", Node
    # loads them as the browser does, as ES modules.
    for name in ("api.js", "stream.js"):
        shutil.copy(APP_JS / name, tmp_path / name)
    (tmp_path / "package.json").write_text('{"type": "module"}\n')
    ran = subprocess.run(
        [node(), str(HARNESS), str(tmp_path)], capture_output=True, timeout=60, check=False, cwd=tmp_path
    )
    output = ran.stdout.decode()
    assert ran.returncode == 0, output + ran.stderr.decode()
    assert output.splitlines() == [f"ok {check}" for check in STREAM_CHECKS]
