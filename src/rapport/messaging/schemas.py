"""Request and response shapes of the messaging core: messages, history pages, the
conversation list, read state. The hot paths build their answers as JSON in PostgreSQL
(messaging.render_message and the functions of migration 2026_11_29_0014); these models
are what OpenAPI documents and what the tests read them back as, field for field."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, ValidationError, model_validator

from rapport.kernel.schemas import JsonUuid, Line100, Strict, Text
from rapport.messaging.models import (
    ConversationStatus,
    ConversationType,
    DeliveryStatus,
    ParticipantRole,
    ParticipantStatus,
)

# Routers spell message types through the schemas (they import no models).
from rapport.messaging.models import MessageType as MessageType

# Rapport's message length limit, in characters (the CHECK ck_messages_content says the same).
MAX_CONTENT = 10_000
MAX_MENTIONS = 50
# Files one message carries (migration 2026_11_30_0021 says the same).
MAX_ATTACHMENTS = 10

MessageText = Annotated[str, Text(MAX_CONTENT, min_length=0, multiline=True)]

# ck_messages_content_metadata allows 16,000 bytes of jsonb's text, which PostgreSQL
# writes with a space after each comma and colon, as json.dumps does by default; the
# margin covers numbers it spells differently. A refusal here is a 422, not a CHECK
# violation.
MAX_METADATA_BYTES = 15_000


def _small_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_METADATA_BYTES:
        raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes of JSON")
    return value


ContentMetadata = Annotated[dict[str, Any], AfterValidator(_small_metadata)]

ChartKind = Literal["line", "bar", "area", "pie", "scatter"]


class ChartXY(Strict):
    x: float | Annotated[str, Text(100)] = Field(description="A number, or a label (a category, a date).")
    y: float


# A point is a value, or an {x, y} pair.
ChartPoint = float | ChartXY


class ChartSeries(Strict):
    name: Annotated[str, Text(200)]
    points: list[ChartPoint] = Field(min_length=1, max_length=1000)


class Chart(Strict):
    """What a `graph` message's content_metadata holds: the chart its clients draw."""

    kind: ChartKind
    series: list[ChartSeries] = Field(min_length=1, max_length=20)
    title: Annotated[str, Text(200)] | None = None
    x_label: Annotated[str, Text(100)] | None = None
    y_label: Annotated[str, Text(100)] | None = None


class SendMessage(Strict):
    """A message to send. `client_message_id` makes the send idempotent: a retry with the
    same id from the same sender returns the first message (200) instead of a second."""

    content: MessageText = Field(description="The text; may be empty only for a message that is not `text`.")
    client_message_id: Line100 | None = Field(
        default=None, description="The client's own id for this message: retries with it never send twice."
    )
    type: MessageType = "text"
    content_metadata: ContentMetadata = Field(
        default_factory=dict, description="What the type needs (a location, a file's id, a chart)."
    )
    reply_to: JsonUuid | None = Field(default=None, description="A message of this conversation replied to.")
    thread_id: JsonUuid | None = Field(default=None, description="The thread of this conversation to post in.")
    mentions: list[JsonUuid] = Field(
        default_factory=list, max_length=MAX_MENTIONS, description="Participants mentioned (others are left out)."
    )
    attachments: list[JsonUuid] = Field(
        default_factory=list,
        max_length=MAX_ATTACHMENTS,
        description="Files (`POST /v1/media`) the message carries, in order: the sender's own, or ones they may read.",
    )
    streaming: bool = Field(
        default=False,
        description="Open it to grow in place (`delivery_status` streaming): its sender appends with "
        "`POST .../messages/{id}/stream` until it is delivered or failed. It may start empty.",
    )

    @model_validator(mode="after")
    def _text_is_not_empty(self) -> SendMessage:
        if self.type == "text" and not self.content and not self.attachments and not self.streaming:
            raise ValueError("a text message needs content or attachments")
        if len(set(self.attachments)) != len(self.attachments):
            raise ValueError("each file is attached once")
        if self.type in ("system", "ai"):
            raise ValueError(f"{self.type} messages are Rapport's own")
        if self.type == "graph":
            try:
                Chart.model_validate(self.content_metadata)
            except ValidationError as error:
                raise ValueError(
                    f"a graph message's content_metadata is a chart ({error.errors()[0]['msg']})"
                ) from None
        return self


class MarkRead(Strict):
    message_id: JsonUuid = Field(description="Everything up to this message is read (or, for unread, from it on).")


class Reaction(BaseModel):
    emoji: str
    count: int
    reacted: bool = Field(description="Whether the viewer reacted with it.")


class ThreadSummary(BaseModel):
    id: UUID
    message_count: int
    last_message_at: datetime | None


class AttachmentOut(BaseModel):
    """A file a message carries; its bytes at `GET /v1/media/{id}/content`."""

    id: UUID
    file_name: str
    content_type: str
    kind: str = Field(description="image, video, audio, document or other.")
    size_bytes: int
    status: str = Field(description="processing, ready, quarantined (never served) or failed.")
    width: int | None
    height: int | None
    duration_seconds: float | None
    blurhash: str | None = Field(description="A placeholder to draw while the image loads.")
    dominant_color: str | None


class MessageOut(BaseModel):
    id: UUID
    conversation_id: UUID
    seq: int = Field(description="The message's place in its conversation, gapless from 1.")
    sender_id: UUID | None = Field(description="None once the sender's account is gone.")
    type: MessageType
    content: str
    content_metadata: dict[str, Any]
    content_encrypted: bool = Field(
        default=False,
        description="End-to-end encrypted: `content` is empty; each device reads its ciphertext from "
        "`GET /v1/encryption/devices/{device_id}/envelopes`.",
    )
    client_message_id: str | None = Field(description="Shown to its sender only.")
    reply_to_id: UUID | None
    forwarded_from_id: UUID | None
    thread_id: UUID | None
    mentions: list[UUID]
    moderation_flagged: bool
    is_edited: bool
    edited_at: datetime | None
    is_deleted: bool = Field(description="Deleted for everyone: the content is gone.")
    deleted_at: datetime | None
    created_at: datetime
    delivery_status: DeliveryStatus | None = Field(
        description="Null for an ordinary message; a streamed one is streaming while it grows, then delivered or "
        "failed."
    )
    reactions: list[Reaction]
    thread: ThreadSummary | None = Field(description="The thread this message roots, with its reply count.")
    attachments: list[AttachmentOut] = Field(description="The files it carries, in order; none once deleted.")


class MessagePage(BaseModel):
    items: list[MessageOut]
    next: UUID | None = Field(
        description="Pass it as `before` (or as `after` when reading forward) for the next page; null at the end."
    )


class ConversationListItem(BaseModel):
    id: UUID
    type: ConversationType
    name: str | None
    description: str | None
    avatar_url: str | None
    status: ConversationStatus
    is_public: bool
    member_count: int
    last_seq: int
    last_activity_at: datetime
    created_at: datetime
    role: ParticipantRole
    participant_status: ParticipantStatus
    is_muted: bool
    is_pinned: bool
    nickname: str | None
    read_seq: int
    unread_count: int = Field(description="Exact, at any size.")
    unread_mentions: int
    last_message: MessageOut | None


class ConversationList(BaseModel):
    items: list[ConversationListItem]
    next: str | None = None


class ReadState(BaseModel):
    conversation_id: UUID
    read_seq: int
    delivered_seq: int
    unread_count: int
    unread_mentions: int
