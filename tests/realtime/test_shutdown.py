"""A server that stops (SIGTERM) closes open streams with 1001, going away, and says why:
clients reconnect with their last position to another server, or to this one once back."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Iterator

import pytest
from sqlalchemy.engine import URL

from rapport.kernel.provisioning import DatabaseUrls
from tests.realtime.support import Follower, Server
from tests.support import Persona

pytestmark = pytest.mark.module_database


@pytest.fixture(scope="module")
def server(admin_url: URL, module_database: DatabaseUrls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own: the test stops it."""
    running = Server(admin_url, module_database, tmp_path_factory.mktemp("serve"))
    running.start()
    yield running
    running.stop()


async def test_sigterm_closes_open_streams_with_going_away(
    server: Server, person: Callable[..., Awaitable[Persona]]
) -> None:
    alice = await person("alice")
    followers = [await Follower.open(server, alice) for _ in range(4)]  # most likely on both workers
    for follower in followers:
        await follower.until("caught_up")
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    for follower in followers:
        assert await follower.closed_with(within=20) == 1001
        assert follower.socket.close_reason == "server-shutting-down"
