"""What the API answers, as frozen Pydantic models.

Fields the server adds later are ignored rather than refused, and enumerations are plain
strings, so that an older client keeps working against a newer server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class TokenPair(Model):
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: UUID
    user_id: UUID


class User(Model):
    id: UUID
    email: str | None
    phone_number: str | None = None
    phone_verified: bool = False
    status: str
    email_verified: bool
    is_admin: bool
    two_factor_enabled: bool
    created_at: datetime
    last_login_at: datetime | None


class ThreadSummary(Model):
    id: UUID
    message_count: int
    last_message_at: datetime | None


class Reaction(Model):
    emoji: str
    count: int
    reacted: bool


class Message(Model):
    id: UUID
    conversation_id: UUID
    seq: int
    sender_id: UUID | None
    type: str
    content: str
    content_metadata: dict[str, Any] = Field(default_factory=dict)
    client_message_id: str | None = None
    reply_to_id: UUID | None = None
    forwarded_from_id: UUID | None = None
    thread_id: UUID | None = None
    mentions: tuple[UUID, ...] = ()
    moderation_flagged: bool = False
    is_edited: bool = False
    edited_at: datetime | None = None
    is_deleted: bool = False
    deleted_at: datetime | None = None
    created_at: datetime
    reactions: tuple[Reaction, ...] = ()
    thread: ThreadSummary | None = None


class Membership(Model):
    role: str
    status: str
    can_send: bool
    can_invite: bool
    can_see_history: bool
    is_muted: bool
    is_pinned: bool
    nickname: str | None
    read_seq: int
    joined_at: datetime


class Conversation(Model):
    """A conversation as `GET /v1/conversations/{id}` and creation answer it."""

    id: UUID
    type: str
    name: str | None
    description: str | None
    avatar_url: str | None
    settings: dict[str, Any] = Field(default_factory=dict)
    status: str
    is_public: bool
    max_participants: int | None
    parent_id: UUID | None
    creator_id: UUID | None
    direct_with: UUID | None
    member_count: int
    last_seq: int
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime
    membership: Membership | None


class ConversationSummary(Model):
    """One row of the conversation list: the conversation, your part in it, and its
    exact unread count."""

    id: UUID
    type: str
    name: str | None
    description: str | None
    avatar_url: str | None
    status: str
    is_public: bool
    member_count: int
    last_seq: int
    last_activity_at: datetime
    created_at: datetime
    role: str
    participant_status: str
    is_muted: bool
    is_pinned: bool
    nickname: str | None
    read_seq: int
    unread_count: int
    unread_mentions: int
    last_message: Message | None


class ReadState(Model):
    conversation_id: UUID
    read_seq: int
    delivered_seq: int
    unread_count: int
    unread_mentions: int


class EventScope(Model):
    kind: str
    """`conversation` (its participants receive it) or `user` (that person alone)."""
    id: UUID


class SyncEvent(Model):
    """One outbox event: what `GET /v1/sync` lists and the stream delivers."""

    position: int
    type: str
    scope: EventScope
    payload: dict[str, Any] = Field(default_factory=dict)
    actor_id: UUID | None
    created_at: datetime


class SyncPage(Model):
    events: tuple[SyncEvent, ...]
    position: int
    """Send it back as `since`; it may be past the last event listed."""
    more: bool
    resync: bool
    """Events after `since` are no longer all kept: reload state before going on."""


class Contact(Model):
    id: UUID
    contact_user_id: UUID | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    relationship: str | None
    nickname: str | None
    notes: str | None
    is_favorite: bool
    is_muted: bool
    linked_at: datetime | None
    created_at: datetime


class ContactRequest(Model):
    id: UUID
    requester_id: UUID
    addressee_id: UUID
    status: str
    message: str | None
    created_at: datetime
    responded_at: datetime | None


class ApiKey(Model):
    """A newly made API key; `key` is shown only this once."""

    id: UUID
    name: str
    prefix: str
    key: str
    created_at: datetime
    expires_at: datetime | None
