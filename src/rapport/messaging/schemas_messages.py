"""Request and response shapes of what is done to messages after sending: edits, deletes,
hiding, reactions, pins, drafts, threads, forwarding and receipts. Messages themselves are
answered in the shape of `rapport.messaging.schemas.MessageOut`, built by
messaging.render_message as history builds them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from rapport.kernel.schemas import JsonUuid, Line100, NotNull, PatchBody, Strict, Text
from rapport.messaging.models import HistoryOperation
from rapport.messaging.schemas import MAX_MENTIONS, ContentMetadata, MessageOut, MessageText

# How many conversations one forward may reach: each is a send of its own.
MAX_FORWARD_TARGETS = 20

Mentions = Annotated[list[JsonUuid], Field(max_length=MAX_MENTIONS)]
ThreadTitle = Annotated[str, Text(200, name=True)]


class EditMessage(PatchBody):
    """The new text, metadata or mentions of one's own message; what is left out stays.
    The earlier version is kept (GET .../edits)."""

    content: NotNull[MessageText] = None
    content_metadata: NotNull[ContentMetadata] = None
    mentions: NotNull[Mentions] = Field(default=None, description="Participants mentioned (others are left out).")


class MessageVersion(BaseModel):
    """An earlier version of a message, as it was before an edit."""

    id: int = Field(description="Versions are numbered in the order they were made.")
    operation: HistoryOperation
    content: str
    content_metadata: dict[str, Any]
    changed_by: UUID | None
    changed_at: datetime


class MessageVersions(BaseModel):
    items: list[MessageVersion] = Field(description="Oldest first; none once the message is deleted.")


class ForwardMessage(Strict):
    conversation_ids: Annotated[list[JsonUuid], Field(min_length=1, max_length=MAX_FORWARD_TARGETS)] = Field(
        description="The conversations to send a copy to (each at most once)."
    )
    client_message_id: Line100 | None = Field(
        default=None, description="Makes each copy idempotent: a retry finds the copies already sent."
    )

    @model_validator(mode="after")
    def _each_once(self) -> ForwardMessage:
        if len(set(self.conversation_ids)) != len(self.conversation_ids):
            raise ValueError("name each conversation once")
        return self


class ForwardResult(BaseModel):
    conversation_id: UUID
    status: int = Field(
        description="201 sent; 200 a retry found the copy already sent; else the refusal's status, as in `problem`."
    )
    message: MessageOut | None = Field(description="The copy, when there is one.")
    problem: dict[str, Any] | None = Field(description="Why this conversation was refused (problem+json).")


class ForwardResults(BaseModel):
    results: list[ForwardResult] = Field(description="One per conversation, in the order asked.")


class ReadReceipt(BaseModel):
    user_id: UUID
    read_at: datetime | None = Field(description="When the reader's read marker last moved.")


class DeliveryReceipt(BaseModel):
    user_id: UUID


class MessageReceipts(BaseModel):
    message_id: UUID
    read_by: list[ReadReceipt]
    delivered_to: list[DeliveryReceipt] = Field(
        description="Reached a device of theirs, not read; or read by someone who does not share read receipts."
    )
    next: str | None = Field(default=None, description="The `cursor` of the next page of receipts; null at the end.")


class MarkDelivered(Strict):
    message_id: JsonUuid = Field(description="Every message up to this one reached a device of the caller.")


class PinOut(BaseModel):
    message: MessageOut
    pinned_by: UUID | None
    pinned_at: datetime


class DraftIn(Strict):
    content: MessageText = ""
    reply_to_id: JsonUuid | None = Field(default=None, description="A message of this conversation replied to.")
    thread_id: JsonUuid | None = Field(default=None, description="An open thread of this conversation.")


class DraftOut(BaseModel):
    conversation_id: UUID
    content: str
    reply_to_id: UUID | None
    thread_id: UUID | None
    updated_at: datetime


class CreateThread(Strict):
    """Either the reply thread of a message (`root_message_id`), or a topic thread (`title`,
    with an optional `category` and `parent_thread_id`)."""

    root_message_id: JsonUuid | None = None
    title: ThreadTitle | None = None
    category: Line100 | None = None
    parent_thread_id: JsonUuid | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CreateThread:
        if (self.root_message_id is None) == (self.title is None):
            raise ValueError("give either root_message_id (a reply thread) or title (a topic thread)")
        if self.root_message_id is not None and (self.category is not None or self.parent_thread_id is not None):
            raise ValueError("category and parent_thread_id belong to topic threads")
        return self


class UpdateThread(PatchBody):
    title: NotNull[ThreadTitle] = None
    category: Line100 | None = None
    parent_thread_id: JsonUuid | None = Field(default=None, description="null makes it a top-level thread.")
    archived: NotNull[bool] = Field(default=None, description="Archived threads take no new messages.")


class MoveToThread(Strict):
    thread_id: JsonUuid | None = Field(
        description="The open topic thread of this conversation the message goes to; null takes it out of its thread."
    )


class ThreadOut(BaseModel):
    id: UUID
    conversation_id: UUID
    root_message_id: UUID | None
    title: str | None
    category: str | None
    parent_thread_id: UUID | None
    creator_id: UUID | None
    message_count: int
    last_message_id: UUID | None
    last_message_at: datetime | None
    is_archived: bool
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime
