"""The bus over Redis pub/sub (`RAPPORT_REDIS_URL`): one subscribing connection per
process, read by a task of its own, and the client's pool for publishing. When the
connection is lost the reader tries again every second; the subscriptions are restored
with it (see `_bus` for why nothing lost meanwhile matters)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from rapport.realtime._bus import SIGNALS_CHANNEL, WAKEUP_CHANNEL, BaseBus

logger = logging.getLogger(__name__)

RECONNECT_S = 1.0


class RedisBus(BaseBus):
    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._client: redis.Redis | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None

    async def _connect(self) -> None:
        client = redis.Redis.from_url(self._url, socket_connect_timeout=5, health_check_interval=15)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(WAKEUP_CHANNEL, SIGNALS_CHANNEL)
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py
            await client.aclose()
            raise
        self._client, self._pubsub = client, pubsub
        self._reader = asyncio.get_running_loop().create_task(self._read(pubsub))

    async def _disconnect(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        pubsub, self._pubsub = self._pubsub, None
        client, self._client = self._client, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def _send_raw(self, channel: str, payloads: list[bytes]) -> None:
        client = self._client
        if client is None:
            return
        if len(payloads) == 1:
            await client.publish(channel, payloads[0])
            return
        async with client.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.publish(channel, payload)
            await pipe.execute()

    async def _read(self, pubsub: PubSub) -> None:
        lost = False
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (RedisError, OSError):
                if not lost:
                    logger.warning("the bus lost its Redis connection; reconnecting")
                lost = True
                await asyncio.sleep(RECONNECT_S)
                continue
            if lost:
                lost = False
                # Announcements may have been lost meanwhile: let the readers look now.
                if self._on_remote is not None:
                    self._on_remote()
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            if channel == WAKEUP_CHANNEL:
                self._heard_wakeup(message["data"])
            elif channel == SIGNALS_CHANNEL:
                self._heard_signals(message["data"])
