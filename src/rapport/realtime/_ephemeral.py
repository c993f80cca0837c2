"""Typing and presence for the sockets of one process: `Ephemeral`, what the stream's hub
calls and listens to. Nothing here is stored but last seen (see `_presence`, `_typing`).

    ephemeral = Ephemeral(runtime, bus)        # the process's bus (`bus_for`)
    await ephemeral.start()                     # opens the bus, starts the heartbeat
    ephemeral.subscribe(deliver)                # deliver(delivery: Delivery) -> None
    ephemeral.device_connected(user_id, device_id)      # a socket is authenticated
    ephemeral.device_disconnected(user_id, device_id)   # it closed
    await ephemeral.typing(actor, conversation_id, True)            # a `typing` frame
    ephemeral.set_status(actor, device_id, "away")                   # a `presence` frame
    ephemeral.message_sent(user_id, conversation_id)                 # a send was acked
    await ephemeral.close()                     # before `wakeup.detach()`, which closes the bus

`deliver` is called in the event loop, synchronously, for every frame a socket of this
process may have to send, from this process or another:

- `Delivery(frame, conversation_id=c)`: a `typing` frame; send it to the sockets of
  conversation c's participants (the hub knows them).
- `Delivery(frame, audience=people)`: a `presence` frame; send it to the sockets of those
  people, all of whom have a socket here and may see it.

The frames are the protocol's `typing` and `presence` frames, ready to send. Device ids
are the hub's own (one per socket); `device_id` must be unique per user in this process.
HTTP clients without a socket say their status with `put_status` (it lapses unless
repeated) and ask others' with `presence_of`.

`StreamSignals(ephemeral, hub)` is the same seen from the stream: the `Signals` its
client frames and followers go to, delivering to the hub's `to_conversation`/`to_users`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.runtime import Runtime
from rapport.realtime._bus import Bus, Signal
from rapport.realtime._presence import (
    STATUSES,
    VISIBLE,
    PresenceBook,
    Status,
    get_audience,
    get_visibility,
    iso,
    monotonic,
    presence_frame,
    record_last_seen,
    shown,
    utc_now,
)
from rapport.realtime._typing import TYPING_TTL_MS, TypingLimiter, may_signal_typing, typing_frame, wall_ms
from rapport.realtime.schemas_presence import PresenceOut

logger = logging.getLogger(__name__)

# A process repeats its people's statuses this often; what is not repeated within TTL_S lapses.
HEARTBEAT_S = 10.0
TTL_S = 30.0
# A status said over HTTP lasts this long unless said again.
HTTP_PRESENCE_TTL_S = 60.0
# At most one write of someone's last seen per this many seconds.
LAST_SEEN_EVERY_S = 60.0
# Most people one GET /v1/presence asks about.
MAX_PRESENCE_IDS = 100


@dataclass(frozen=True)
class Delivery:
    """A frame for some of this process's sockets: a conversation's, or some people's."""

    frame: dict[str, Any]
    conversation_id: UUID | None = None
    audience: frozenset[UUID] | None = None


Listener = Callable[[Delivery], None]


class Ephemeral:
    def __init__(
        self,
        runtime: Runtime,
        bus: Bus,
        *,
        heartbeat_s: float = HEARTBEAT_S,
        ttl_s: float = TTL_S,
        last_seen_every_s: float = LAST_SEEN_EVERY_S,
    ) -> None:
        self._runtime = runtime
        self._bus = bus
        self._heartbeat_s = heartbeat_s
        self._ttl_s = ttl_s
        self._last_seen_every_s = last_seen_every_s
        # This process's name in presence signals (a bus may outlive one Ephemeral).
        self.token = secrets.token_hex(8)
        self.book = PresenceBook()
        self._typing = TypingLimiter()
        self._listeners: list[Listener] = []
        # What this process last told the others of each of its people.
        self._told: dict[UUID, Status] = {}
        # Last seen to write, and when each person's was last written (monotonic).
        self._to_record: dict[UUID, datetime] = {}
        self._recorded_at: dict[UUID, float] = {}
        # People whose status changed, to announce to the sockets here, in order of change.
        self._to_announce: dict[UUID, None] = {}
        self._announcer: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._beat_soon: asyncio.Task[None] | None = None
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self._bus.open()
        self._bus.listen(self._heard)
        self._started = True
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat_forever())
        # The others repeat their people at once, rather than at their next heartbeat.
        self._bus.publish({"k": "hello", "p": self.token})

    async def close(self) -> None:
        """Stop; the other processes forget this one's people at once, whose last seen is
        written now."""
        if not self._started:
            return
        self._started = False
        for task in (self._heartbeat, self._announcer, self._beat_soon):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        now = utc_now()
        for user_id in self.book.local_people():
            if shown(self.book.local(user_id, now=monotonic())) in VISIBLE:
                self._to_record[user_id] = now
        try:
            await self._record(force=True)
        except Exception:  # shutting down: the last minute's last seen is all that is lost
            logger.warning("could not write last seen on the way out", exc_info=True)
        self._bus.publish({"k": "gone", "p": self.token})
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._bus.flush(), 2.0)
        self._listeners.clear()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every Delivery; returns what unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # -- typing ------------------------------------------------------------------------

    async def typing(self, actor: Actor, conversation_id: UUID, typing: bool) -> bool:
        """The actor types, or stopped, in a conversation. Whether it was forwarded: not
        when too frequent, nor (silently) when they may not signal there."""
        now = monotonic()
        if not self._typing.admit(actor.user_id, conversation_id, typing, now=now):
            return False
        async with user_transaction(self._runtime.engine, actor.user_id) as db:
            allowed = await may_signal_typing(db, actor=actor, conversation_id=conversation_id)
        if not allowed:
            self._typing.forget(actor.user_id, conversation_id)
            return False
        self._send_typing(actor.user_id, conversation_id, typing)
        return True

    def message_sent(self, user_id: UUID, conversation_id: UUID) -> None:
        """A message from them ends their typing there."""
        for conversation in self._typing.stop(user_id, conversation_id, now=monotonic()):
            self._send_typing(user_id, conversation, False)

    def _send_typing(self, user_id: UUID, conversation_id: UUID, typing: bool) -> None:
        expires = TYPING_TTL_MS if typing else 0
        frame = typing_frame(conversation_id=conversation_id, user_id=user_id, typing=typing, expires_in_ms=expires)
        self._deliver(Delivery(frame, conversation_id=conversation_id))
        self._bus.publish(
            {"k": "typing", "c": str(conversation_id), "u": str(user_id), "t": typing, "at": wall_ms(), "ms": expires}
        )

    def _heard_typing(self, signal: Signal) -> None:
        conversation_id, user_id = UUID(signal["c"]), UUID(signal["u"])
        typing, lasts = bool(signal["t"]), int(signal["ms"])
        if typing:
            # What remains of its life after its trip; a clock ahead of ours gives no more.
            lasts = min(lasts, lasts - (wall_ms() - int(signal["at"])))
            if lasts <= 0:
                return
        frame = typing_frame(conversation_id=conversation_id, user_id=user_id, typing=typing, expires_in_ms=lasts)
        self._deliver(Delivery(frame, conversation_id=conversation_id))

    # -- presence: devices -------------------------------------------------------------

    def device_connected(self, user_id: UUID, device_id: str) -> None:
        self.book.connect(user_id, device_id)
        self._local_changed(user_id)

    def device_disconnected(self, user_id: UUID, device_id: str) -> None:
        self.book.disconnect(user_id, device_id)
        if user_id not in self.book.sockets:
            self._stop_typing_everywhere(user_id)
        self._local_changed(user_id)

    def set_status(self, actor: Actor, device_id: str, status: Status) -> None:
        """A connected device's status (online, away, busy or invisible)."""
        if status not in STATUSES or status == "offline":
            raise ValueError(f"not a device status: {status!r}")
        if self.book.set_socket_status(actor.user_id, device_id, status):
            self._local_changed(actor.user_id)

    def put_status(self, actor: Actor, status: Status) -> None:
        """The status of the actor's session while it holds no socket: lasts
        HTTP_PRESENCE_TTL_S unless said again; `offline` ends it, on every process."""
        device_id = f"http:{actor.session_id or actor.api_key_id or actor.user_id}"
        self.book.set_timed(actor.user_id, device_id, status, until=monotonic() + HTTP_PRESENCE_TTL_S)
        if status == "offline":
            self._bus.publish({"k": "drop", "u": str(actor.user_id), "d": device_id})
        self._local_changed(actor.user_id)

    def _stop_typing_everywhere(self, user_id: UUID) -> None:
        for conversation in self._typing.stop(user_id, now=monotonic()):
            self._send_typing(user_id, conversation, False)

    # -- presence: reading -------------------------------------------------------------

    def status_of(self, user_id: UUID) -> Status:
        """Someone's status as this process knows it, `invisible` included: for themself."""
        return self.book.status(user_id, now=monotonic())

    async def presence_of(self, db: AsyncConnection, *, viewer: Actor, user_ids: list[UUID]) -> list[PresenceOut]:
        """What the viewer may see of each person's presence, in the order asked (each once).
        Someone they may not see, or who is no account, looks offline with no last seen:
        nothing tells the two apart. Run it in the viewer's own transaction.

        Raises:
            ValueError: more than MAX_PRESENCE_IDS people.
        """
        wanted = list(dict.fromkeys(user_ids))
        if len(wanted) > MAX_PRESENCE_IDS:
            raise ValueError(f"at most {MAX_PRESENCE_IDS} people at a time")
        visible = await get_visibility(db, user_ids=wanted) if wanted else {}
        now = monotonic()
        answers = []
        for user_id in wanted:
            seen = visible.get(user_id)
            if seen is None or not seen.sees_status:
                answers.append(PresenceOut(user_id=user_id, status="offline", last_seen_at=None))
                continue
            status = self.book.status(user_id, now=now)
            if user_id != viewer.user_id:
                status = shown(status)
            last_seen = None
            if seen.sees_last_seen and status in ("offline", "invisible"):
                moments = [m for m in (self.book.last_seen.get(user_id), seen.last_seen_at) if m is not None]
                last_seen = max(moments, default=None)
            answers.append(PresenceOut(user_id=user_id, status=status, last_seen_at=last_seen))
        return answers

    # -- presence: changes -------------------------------------------------------------

    def _local_changed(self, user_id: UUID) -> None:
        """This process's devices of someone changed: tell the others if their status here
        did, and work out their status everywhere."""
        local = self.book.local(user_id, now=monotonic())
        told = self._told.get(user_id, "offline")
        if local == told:
            return
        seen_at = None
        if shown(told) in VISIBLE and shown(local) not in VISIBLE:
            seen_at = utc_now()
            self._to_record[user_id] = seen_at
        if local == "offline":
            self._told.pop(user_id, None)
        else:
            self._told[user_id] = local
        self._bus.publish({"k": "presence", "p": self.token, "u": str(user_id), "s": local, "seen": iso(seen_at)})
        self._recompute(user_id, seen_at=seen_at)

    def _recompute(self, user_id: UUID, *, seen_at: datetime | None = None) -> None:
        status = self.book.status(user_id, now=monotonic())
        before = self.book.current.get(user_id, "offline")
        if status == before:
            return
        if status == "offline":
            self.book.current.pop(user_id, None)
        else:
            self.book.current[user_id] = status
        if shown(before) == shown(status):
            return
        if shown(before) in VISIBLE and shown(status) not in VISIBLE:
            self.book.saw(user_id, seen_at or utc_now())
        self._announce(user_id)

    def _announce(self, user_id: UUID) -> None:
        self._to_announce[user_id] = None
        if self._started and (self._announcer is None or self._announcer.done()):
            self._announcer = asyncio.get_running_loop().create_task(self._announce_queued())

    async def _announce_queued(self) -> None:
        while self._to_announce:
            user_id = next(iter(self._to_announce))
            del self._to_announce[user_id]
            try:
                await self._announce_now(user_id)
            except Exception:  # one person's announcement failing must not stop the others'
                logger.exception("could not announce a presence change")

    async def _announce_now(self, user_id: UUID) -> None:
        here = self.book.sockets  # looked up, not copied: a node may hold 10,000 people
        if not self._listeners or len(here) == (1 if user_id in here else 0):
            return
        async with system_transaction(self._runtime.system_engine) as db:
            audience = await get_audience(db, user_id=user_id)
        # Read after the query: the status as it is now, not as it was when it changed.
        status = self.book.status(user_id, now=monotonic())
        last_seen = self.book.last_seen.get(user_id)
        with_last_seen = frozenset(u for u, sees in audience.items() if sees and u in here and u != user_id)
        without = frozenset(u for u, sees in audience.items() if not sees and u in here and u != user_id)
        frame = presence_frame(user_id, status, last_seen)
        if frame["last_seen_at"] is None:
            with_last_seen, without = with_last_seen | without, frozenset()
        if with_last_seen:
            self._deliver(Delivery(frame, audience=with_last_seen))
        if without:
            self._deliver(Delivery(presence_frame(user_id, status, None), audience=without))

    # -- the bus -----------------------------------------------------------------------

    def _heard(self, signal: Signal) -> None:
        try:
            kind = signal.get("k")
            if kind == "typing":
                self._heard_typing(signal)
            elif kind == "presence":
                self._heard_presence(signal)
            elif kind == "beat":
                self._heard_beat(signal)
            elif kind == "hello":
                self._schedule_beat()
            elif kind == "gone":
                for user_id in self.book.forget_process(str(signal["p"])):
                    self._recompute(user_id)
            elif kind == "drop":
                user_id = UUID(signal["u"])
                if self.book.drop_timed(user_id, str(signal["d"])):
                    self._local_changed(user_id)
        except (KeyError, ValueError, TypeError):
            logger.warning("ignored a malformed %r signal", signal.get("k"))

    def _heard_presence(self, signal: Signal) -> None:
        process, user_id, status = str(signal["p"]), UUID(signal["u"]), signal["s"]
        if process == self.token or status not in STATUSES:
            return
        seen_at = datetime.fromisoformat(signal["seen"]) if signal.get("seen") else None
        if seen_at is not None:
            self.book.saw(user_id, seen_at)
        self.book.heard(process, user_id, status, now=monotonic())
        self._recompute(user_id, seen_at=seen_at)

    def _heard_beat(self, signal: Signal) -> None:
        process = str(signal["p"])
        if process == self.token:
            return
        now = monotonic()
        for key, status in dict(signal["users"]).items():
            if status in STATUSES:
                user_id = UUID(key)
                self.book.heard(process, user_id, status, now=now)
                self._recompute(user_id)

    def _schedule_beat(self) -> None:
        # Several processes starting together ask once each; one beat answers them all.
        if self._beat_soon is None or self._beat_soon.done():
            self._beat_soon = asyncio.get_running_loop().create_task(self._beat_after(0.05))

    async def _beat_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._beat()

    def _beat(self) -> None:
        for chunk in self.book.beats(now=monotonic()):
            self._bus.publish({"k": "beat", "p": self.token, "users": chunk})

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            try:
                await self._tick()
            except Exception:
                logger.exception("the presence heartbeat failed")

    async def _tick(self) -> None:
        """One heartbeat: lapse what was not refreshed, repeat this process's people, and
        write last seen where it is due."""
        now = monotonic()
        for user_id in self.book.expire_timed(now=now):
            self._local_changed(user_id)
        for user_id in self.book.expire_remote(older_than=now - self._ttl_s):
            self._recompute(user_id)
        self._beat()
        self._typing.prune(now=now)
        moment = utc_now()
        for user_id in self.book.local_people():
            if shown(self.book.local(user_id, now=now)) in VISIBLE:
                self._to_record[user_id] = moment
        await self._record()

    async def _record(self, *, force: bool = False) -> None:
        """Write the last seen that is due (each person at most once per LAST_SEEN_EVERY_S)."""
        now = monotonic()
        due = {
            user_id: moment
            for user_id, moment in self._to_record.items()
            if force or now - self._recorded_at.get(user_id, float("-inf")) >= self._last_seen_every_s
        }
        for user_id in [u for u, at in self._recorded_at.items() if now - at >= self._last_seen_every_s]:
            del self._recorded_at[user_id]
        if not due:
            return
        async with system_transaction(self._runtime.system_engine) as db:
            await record_last_seen(db, seen=due)
        for user_id in due:
            del self._to_record[user_id]
            self._recorded_at[user_id] = now

    def _deliver(self, delivery: Delivery) -> None:
        for listener in list(self._listeners):
            try:
                listener(delivery)
            except Exception:  # a listener's bug must not stop the others' deliveries
                logger.exception("a presence or typing listener failed")


class FrameSink(Protocol):
    """Where deliveries go: the stream's hub (`rapport.realtime._hub.Hub`)."""

    def to_conversation(self, conversation_id: UUID, body: dict[str, Any]) -> None: ...

    def to_users(self, user_ids: Iterable[UUID], body: dict[str, Any]) -> None: ...


class StreamSignals:
    """The stream's `Signals` (rapport.realtime._signals) over an Ephemeral: the hub's
    client frames and followers come in, deliveries go out to the hub."""

    def __init__(self, ephemeral: Ephemeral, hub: FrameSink) -> None:
        self._ephemeral = ephemeral
        self._hub = hub
        ephemeral.subscribe(self._deliver)

    async def typing(self, actor: Actor, *, conversation_id: UUID, typing: bool) -> None:
        await self._ephemeral.typing(actor, conversation_id, typing)

    async def presence(self, actor: Actor, *, status: Status, connection_id: UUID | None = None) -> None:
        """One device's status; without its connection, every socket of the actor here."""
        if connection_id is not None:
            self._ephemeral.set_status(actor, str(connection_id), status)
            return
        for device_id in list(self._ephemeral.book.sockets.get(actor.user_id, {})):
            self._ephemeral.set_status(actor, device_id, status)

    async def connected(self, actor: Actor, *, connection_id: UUID) -> None:
        self._ephemeral.device_connected(actor.user_id, str(connection_id))

    async def disconnected(self, actor: Actor, *, connection_id: UUID) -> None:
        self._ephemeral.device_disconnected(actor.user_id, str(connection_id))

    def _deliver(self, delivery: Delivery) -> None:
        if delivery.conversation_id is not None:
            self._hub.to_conversation(delivery.conversation_id, delivery.frame)
        elif delivery.audience:
            self._hub.to_users(delivery.audience, delivery.frame)
