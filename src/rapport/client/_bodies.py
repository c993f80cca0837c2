"""Request bodies shared by the HTTP calls and the stream's frames."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID


def new_client_message_id() -> str:
    """A fresh id for one message: every retry of that message carries the same one, so
    the server makes it once."""
    return uuid.uuid4().hex


def message_body(
    content: str,
    *,
    client_message_id: str,
    type: str = "text",
    reply_to: UUID | str | None = None,
    thread_id: UUID | str | None = None,
    mentions: Iterable[UUID | str] = (),
    content_metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of `POST /v1/conversations/{id}/messages` (and of a `send` frame)."""
    body: dict[str, Any] = {"content": content, "client_message_id": client_message_id, "type": type}
    if reply_to is not None:
        body["reply_to"] = str(reply_to)
    if thread_id is not None:
        body["thread_id"] = str(thread_id)
    mentioned = [str(user) for user in mentions]
    if mentioned:
        body["mentions"] = mentioned
    if content_metadata:
        body["content_metadata"] = dict(content_metadata)
    return body
