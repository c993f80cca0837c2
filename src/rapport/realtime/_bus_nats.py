"""The bus over NATS (`RAPPORT_NATS_URL`): core subjects, at most once, which is what
announcements and signals need. The client reconnects by itself; what is published while
it is away is buffered by it or lost, and either is fine here (see `_bus`)."""

from __future__ import annotations

import contextlib

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from rapport.realtime._bus import SIGNALS_CHANNEL, WAKEUP_CHANNEL, BaseBus

# NATS subjects are dotted; the channel names serve as their last part.
SUBJECT_PREFIX = "rapport."


class NatsBus(BaseBus):
    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._client: Client | None = None

    async def _connect(self) -> None:
        client = await nats.connect(
            self._url,
            name=f"rapport-{self.token}",
            max_reconnect_attempts=-1,
            reconnected_cb=self._reconnected,
            connect_timeout=5,
        )
        await client.subscribe(SUBJECT_PREFIX + WAKEUP_CHANNEL, cb=self._wakeup)
        await client.subscribe(SUBJECT_PREFIX + SIGNALS_CHANNEL, cb=self._signals)
        # The server knows the subscriptions once this returns: nothing sent after is missed.
        await client.flush()
        self._client = client

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.drain()

    async def _send_raw(self, channel: str, payloads: list[bytes]) -> None:
        client = self._client
        if client is None:
            return
        for payload in payloads:
            await client.publish(SUBJECT_PREFIX + channel, payload)
        await client.flush()

    async def _wakeup(self, message: Msg) -> None:
        self._heard_wakeup(message.data)

    async def _signals(self, message: Msg) -> None:
        self._heard_signals(message.data)

    async def _reconnected(self) -> None:
        # Announcements may have been lost meanwhile: let the readers look now.
        if self._on_remote is not None:
            self._on_remote()
