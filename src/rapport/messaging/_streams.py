"""Streamed messages: a message sent with `streaming` grows in place, step by step, the
way an assistant's answer arrives, until its sender ends it delivered or failed.

A step is one statement on the hot paths' pool, `messaging.stream_message` (migration
2026_11_30_0037): who acts, the message as they may read it (locked, so one message's
steps queue), the checks (only its sender; only while it streams; appends need the right
to send and keep it within the length limit), the append and the step's events:
`message.streamed` with the text appended and the new length, so that every reader sees
the answer grow; at the end `message.stream.ended` with its status and, once delivered,
`message.created`, which notifications, bots and everything else that reads it hear once,
with the whole text. No version is kept per step: the trigger
messaging.guard_message_update takes a streaming message's growth for no edit.
"""

from __future__ import annotations

from uuid import UUID

from rapport.kernel.actor import Actor
from rapport.kernel.outbox import wakeup
from rapport.kernel.runtime import Runtime
from rapport.messaging._refusals import refusals
from rapport.messaging.schemas_streams import StreamStep

_STREAM = "SELECT messaging.stream_message($1, $2, $3, $4, $5, $6, $7) AS state"


async def do_stream(
    runtime: Runtime, actor: Actor, *, conversation_id: UUID, message_id: UUID, step: StreamStep
) -> str:
    """Append to one's streaming message and, with `done` or `failed`, end it. Returns the
    message's state as JSON (`StreamState`).

    Raises:
        ConversationNotFound: the caller takes no part in the conversation.
        MessageNotFound: not a message of it they can read, or deleted.
        NotAllowed: someone else's message.
        MessageNotStreaming: an ordinary message, or one delivered or failed already.
        CannotSend, ConversationNotActive: an append the caller may not send now.
        MessageTooLong: the message would pass the length limit.
        InvalidToken: the session or key no longer holds.
    """
    async with refusals():
        row = await runtime.direct.fetchrow(
            _STREAM,
            actor.user_id,
            actor.session_id,
            actor.api_key_id,
            conversation_id,
            message_id,
            step.append,
            step.finish,
        )
    assert row is not None  # the function returns one value or raises
    # The statement has committed: its events are there for readers to read.
    wakeup.announce()
    return str(row["state"])
