"""Request and response shapes of bots and what was delivered to them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field

from rapport.kernel.schemas import Name80, NotNull, PatchBody, Strict, Text

# The values the CHECK constraints of migration 2026_11_30_0038 allow.
Receives = Literal["mentions", "all"]
BotStatus = Literal["active", "disabled"]
InteractionStatus = Literal["pending", "processing", "completed", "failed"]


def webhook_url(value: str) -> str:
    """An absolute http(s) URL with a host; whether this server delivers there is the
    service's to say (rapport.bots._webhooks.WebhookRule)."""
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        raise ValueError("must be an absolute http:// or https:// URL") from None
    # The scheme as written, in lower case (as the database's CHECK has it).
    if not value.startswith(("http://", "https://")) or not url.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if url.fragment:
        raise ValueError("must have no #fragment")
    return value


WebhookUrl = Annotated[str, Text(2000), AfterValidator(webhook_url)]
Description = Annotated[str, Text(1000, min_length=0, multiline=True)]


class BotCreate(Strict):
    name: Name80 = Field(description="What people see as its name (its profile's display name).")
    webhook_url: WebhookUrl = Field(description="Where its messages are POSTed (https to a public host in production).")
    receives: Receives = Field(
        default="mentions", description="`mentions`: only messages that mention it; `all`: every message."
    )
    description: Description = ""
    is_visible_to_guests: bool = Field(default=False, description="Whether guests of a room see its messages.")
    platform: bool = Field(
        default=False, description="A platform bot, owned by no one and managed by the administrators (theirs only)."
    )


class BotUpdate(PatchBody):
    name: NotNull[Name80] = None
    description: NotNull[Description] = None
    webhook_url: NotNull[WebhookUrl] = None
    receives: NotNull[Receives] = None
    is_visible_to_guests: NotNull[bool] = None
    status: NotNull[BotStatus] = Field(default=None, description="`disabled`: nothing is delivered to it.")


class BotOut(BaseModel):
    id: UUID = Field(description="Its account's id: add it to conversations, mention it, see it as a sender.")
    owner_id: UUID | None
    name: str
    description: str
    webhook_url: str
    receives: Receives
    is_visible_to_guests: bool
    status: BotStatus
    previous_webhook_secret_until: datetime | None = Field(
        description="After a rotation of the webhook secret: until then each delivery is signed with the previous "
        "secret as well (a second `v1=` in `Rapport-Signature`)."
    )
    created_at: datetime
    updated_at: datetime


class BotKeyOut(BaseModel):
    id: UUID
    prefix: str
    key: str = Field(description="The API key the bot signs in with (`Authorization: Bearer`). Shown only this once.")
    created_at: datetime


class BotCreated(BotOut):
    api_key: BotKeyOut
    webhook_secret: str = Field(
        description="Verifies `Rapport-Signature` on each delivery (HMAC-SHA256 of `<t>.<body>`). Shown only this once."
    )


class WebhookSecretOut(BaseModel):
    webhook_secret: str = Field(
        description="The new secret that signs deliveries from now on (HMAC-SHA256 of `<t>.<body>`). Shown only "
        "this once."
    )
    previous_webhook_secret_until: datetime = Field(
        description="Until then each delivery also carries a signature under the previous secret: a second `v1=` "
        "in `Rapport-Signature`, so that a receiver may switch to the new secret at any moment before."
    )


class InteractionOut(BaseModel):
    id: UUID = Field(description="Also the `Rapport-Delivery` header of its deliveries.")
    bot_id: UUID
    conversation_id: UUID
    message_id: UUID
    event_type: str
    status: InteractionStatus
    attempts: int
    http_status: int | None
    duration_ms: int | None
    error_message: str | None
    request_data: dict[str, Any] = Field(description="The body POSTed.")
    observation_data: list[dict[str, Any]] = Field(description="Each attempt, oldest first (the last 20).")
    response_data: dict[str, Any] | None = Field(description="What the webhook answered last.")
    started_at: datetime
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
