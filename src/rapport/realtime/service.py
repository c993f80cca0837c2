"""The realtime domain's public service: what its routers and the app call."""

from rapport.realtime._bus import Bus, bus_for
from rapport.realtime._connection import QUEUE_LIMIT
from rapport.realtime._ephemeral import MAX_PRESENCE_IDS, Ephemeral, StreamSignals
from rapport.realtime._follow import parse_position
from rapport.realtime._hub import Hub
from rapport.realtime._realtime import Realtime
from rapport.realtime._server_sent import HEARTBEAT_S, server_sent_events
from rapport.realtime._signals import NoSignals, PresenceStatus, Signals
from rapport.realtime._stream import (
    PING_S,
    SUBPROTOCOL,
    Channel,
    Disconnected,
    offered_token,
    serve_stream,
)

__all__ = [
    "HEARTBEAT_S",
    "MAX_PRESENCE_IDS",
    "PING_S",
    "QUEUE_LIMIT",
    "SUBPROTOCOL",
    "Bus",
    "Channel",
    "Disconnected",
    "Ephemeral",
    "Hub",
    "NoSignals",
    "PresenceStatus",
    "Realtime",
    "Signals",
    "StreamSignals",
    "bus_for",
    "offered_token",
    "parse_position",
    "serve_stream",
    "server_sent_events",
]
