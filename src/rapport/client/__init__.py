"""rapport.client: a typed async Python client of Rapport, for apps, bots and scripts.

It signs in (e-mail and password, two-factor, or an API key), refreshes its access token
by itself, wraps the common calls of the HTTP API in typed methods returning frozen
models, and follows the WebSocket stream, reconnecting by itself from the last position
it received: nothing missed, nothing twice. It imports nothing of the server.

An echo bot::

    import asyncio
    from rapport.client import Client, Event

    async def main() -> None:
        async with Client("http://127.0.0.1:8000") as rapport:
            me = await rapport.login("alice@example.com", "rapport-demo-password")
            async for event in rapport.stream():
                if isinstance(event, Event) and event.type == "message.created" and event.actor_id != me.user_id:
                    said = await rapport.message(event.scope.id, event.payload["message_id"])
                    await rapport.send(said.conversation_id, f"You said: {said.content}")

    asyncio.run(main())

Errors are one hierarchy (`RapportError` and its `NotFound`, `Forbidden`, `Conflict`,
`ValidationError`, `RateLimited`, …) carrying the server's problem+json.
"""

from rapport.client._client import Client
from rapport.client._stream import Backoff, Stream
from rapport.client.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    NotSignedIn,
    RapportError,
    RateLimited,
    ServerError,
    StreamClosed,
    TwoFactorRequired,
    Unauthorized,
    ValidationError,
)
from rapport.client.events import (
    CaughtUp,
    Connected,
    Event,
    Presence,
    Resync,
    ServerProblem,
    StreamEvent,
    Typing,
)
from rapport.client.models import (
    ApiKey,
    Contact,
    ContactRequest,
    Conversation,
    ConversationSummary,
    EventScope,
    Membership,
    Message,
    Reaction,
    ReadState,
    SyncEvent,
    SyncPage,
    TokenPair,
    User,
)

__all__ = [
    "ApiKey",
    "Backoff",
    "BadRequest",
    "CaughtUp",
    "Client",
    "Conflict",
    "Connected",
    "Contact",
    "ContactRequest",
    "Conversation",
    "ConversationSummary",
    "Event",
    "EventScope",
    "Forbidden",
    "Membership",
    "Message",
    "NotFound",
    "NotSignedIn",
    "Presence",
    "RapportError",
    "RateLimited",
    "Reaction",
    "ReadState",
    "Resync",
    "ServerError",
    "ServerProblem",
    "Stream",
    "StreamClosed",
    "StreamEvent",
    "SyncEvent",
    "SyncPage",
    "TokenPair",
    "TwoFactorRequired",
    "Typing",
    "Unauthorized",
    "User",
    "ValidationError",
]
