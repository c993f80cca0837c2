"""Request and response shapes of analytics' ingestion: event batches, crash reports, and
what administrators read of events, sessions and crashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import orjson
from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from rapport.analytics.models import Category, Source
from rapport.kernel.schemas import JsonDateTime, JsonUuid, Strict, Text

# A batch: at most this many events, and this many bytes of body.
MAX_EVENTS = 100
MAX_BATCH_BYTES = 256 * 1024
# An event's properties: a JSON object of at most this many bytes (as compact JSON), and keys.
MAX_PROPERTIES_BYTES = 8192
MAX_PROPERTY_KEYS = 50
# How far from the server's clock a client's event_timestamp may be: clients queue events
# while offline (days), and their clocks drift (minutes).
MAX_AGE = timedelta(days=30)
MAX_AHEAD = timedelta(hours=1)
# What the server's own events are named (rapport.analytics._server_events).
SERVER_EVENT_NAMES = ("message_sent", "signed_up", "logged_in")

EVENT_NAME_PATTERN = r"^[a-z][a-z0-9_.:-]{0,63}$"
EventName = Annotated[str, Text(64, pattern=EVENT_NAME_PATTERN)]
Short = Annotated[str, Text(32)]
Medium = Annotated[str, Text(64)]
Long = Annotated[str, Text(128)]
Utm = Annotated[str, Text(256)]
Millis = Annotated[int, Field(ge=0, le=86_400_000, description="Milliseconds, up to a day.")]


def _bounded_properties(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_PROPERTY_KEYS:
        raise PydanticCustomError("too_many_properties", "at most {most} keys", {"most": MAX_PROPERTY_KEYS})
    if len(orjson.dumps(value)) > MAX_PROPERTIES_BYTES:
        raise PydanticCustomError(
            "properties_too_large", "at most {most} bytes as JSON", {"most": MAX_PROPERTIES_BYTES}
        )
    return value


def _plausible_time(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise PydanticCustomError("timezone_required", "must carry a time zone offset (Z or +hh:mm)")
    now = datetime.now(UTC)
    if value > now + MAX_AHEAD:
        raise PydanticCustomError("time_in_future", "is more than an hour ahead of the server's clock")
    if value < now - MAX_AGE:
        raise PydanticCustomError("time_too_old", "is more than 30 days before the server's clock")
    return value


Properties = Annotated[dict[str, Any], AfterValidator(_bounded_properties)]
EventTime = Annotated[JsonDateTime, AfterValidator(_plausible_time)]


class EventIn(Strict):
    """One thing a person did, as their client saw it."""

    event_name: EventName = Field(
        description="What happened: lower case letters, digits, `_ . : -`, starting with a letter, at most 64 "
        "characters (`app_open`, `screen_view`, `purchase.completed`)."
    )
    event_category: Category | None = None
    event_timestamp: EventTime | None = Field(
        default=None,
        description="When it happened by the client's clock, with an offset; at most 30 days old and an hour ahead. "
        "The server's receipt time when left out.",
    )
    session_id: JsonUuid | None = Field(default=None, description="The client's session, a UUID it chose.")
    properties: Properties = Field(
        default_factory=dict, description="The event's own fields: a JSON object, at most 50 keys and 8 KiB."
    )
    platform: Short | None = Field(default=None, description="ios, android, web, …")
    device_type: Short | None = Field(default=None, description="phone, tablet, desktop, …")
    device_model: Long | None = None
    os_name: Medium | None = None
    os_version: Medium | None = None
    app_version: Medium | None = None
    country: Medium | None = None
    region: Long | None = None
    city: Long | None = None
    utm_source: Utm | None = None
    utm_medium: Utm | None = None
    utm_campaign: Utm | None = None
    utm_term: Utm | None = None
    utm_content: Utm | None = None
    network_type: Short | None = Field(default=None, description="wifi, cellular, …")
    network_quality: Short | None = Field(default=None, description="good, poor, …")
    duration_ms: Millis | None = None
    load_time_ms: Millis | None = None


class EventBatch(Strict):
    """Events sent together: refused whole when any of them is wrong."""

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS, description="1 to 100 events.")


class EventsAccepted(BaseModel):
    accepted: int = Field(
        description="How many events were kept: all of them, or 0 when the person has not given the "
        "`privacy_policy` consent (the batch is then dropped)."
    )


class CrashIn(Strict):
    """A crash a client saw. Reports of the same crash (the same platform, exception type and
    stack once normalised) are counted together."""

    platform: Short
    exception_type: Annotated[str, Text(200)] = Field(description="The exception's class or signal.")
    message: Annotated[str, Text(2000, multiline=True)] | None = Field(
        default=None, description="The exception's message: kept with the reporter only."
    )
    stack_trace: Annotated[str, Text(50_000, multiline=True)] = Field(description="The stack as the client has it.")
    app_version: Medium | None = None
    os_version: Medium | None = None
    occurred_at: EventTime | None = Field(default=None, description="When it crashed; the receipt time when left out.")


class CrashAccepted(BaseModel):
    crash_id: UUID = Field(description="The crash this report was counted under.")
    occurrences: int = Field(description="How many reports of it there are now.")


class CrashOut(BaseModel):
    id: UUID
    platform: str
    exception_type: str
    stack_trace: str = Field(description="The normalised stack the fingerprint is made from.")
    fingerprint: str = Field(description="The SHA-256 of platform, exception type and normalised stack, in hex.")
    first_app_version: str | None
    last_app_version: str | None
    last_os_version: str | None
    occurrences: int
    affected_users: int = Field(description="How many people reported it (erased people no longer count).")
    first_seen: datetime
    last_seen: datetime


class UsageSessionOut(BaseModel):
    session_id: UUID
    user_id: UUID
    started_at: datetime
    ended_at: datetime
    duration_ms: int
    event_count: int
    screens_viewed: int = Field(description="Its events named screen_view or page_view.")
    platform: str | None
    app_version: str | None
    device_type: str | None
    country: str | None


class EventOut(BaseModel):
    id: UUID
    created_at: datetime
    event_timestamp: datetime
    user_id: UUID | None
    session_id: UUID | None
    event_name: str
    event_category: Category | None
    source: Source
    properties: dict[str, Any]
    platform: str | None
    device_type: str | None
    app_version: str | None
    country: str | None
    duration_ms: int | None
    load_time_ms: int | None
