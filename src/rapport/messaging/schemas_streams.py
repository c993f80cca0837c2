"""Request and response shapes of streamed messages and of a room's history (migration
2026_11_30_0037)."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, model_validator

from rapport.kernel.schemas import Strict
from rapport.messaging.models import DeliveryStatus, HistoryOperation

# Each step travels whole in its event (kernel.events payloads are at most 4000 bytes);
# migration 2026_11_30_0037 says the same. Measured as JSON, as the event stores it.
MAX_APPEND_JSON_BYTES = 3500

_NEWLINES = re.compile(r"\r\n?")


def _appendable(value: str) -> str:
    # Message text as Rapport's text type makes it (NFC, LF newlines, no control
    # characters but newline and tab), except that nothing is trimmed: the spaces at a
    # step's ends are the spaces between its words and the next step's.
    value = _NEWLINES.sub("\n", unicodedata.normalize("NFC", value))
    for char in value:
        if char not in "\n\t" and unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError(f"must not contain control characters (U+{ord(char):04X})")
    if len(json.dumps(value, ensure_ascii=False).encode()) - 2 > MAX_APPEND_JSON_BYTES:
        raise ValueError(f"one step appends at most {MAX_APPEND_JSON_BYTES} bytes of JSON text; send it in steps")
    return value


Appendable = Annotated[str, AfterValidator(_appendable)]


class StreamStep(Strict):
    """One step of a streamed message: text to append, and whether it ends here."""

    append: Appendable = Field(default="", description="Text added at the end of the message, as is (not trimmed).")
    done: bool = Field(default=False, description="The message is complete: it becomes delivered.")
    failed: bool = Field(default=False, description="The answer broke off: it becomes failed, with what it has.")

    @model_validator(mode="after")
    def _one_ending(self) -> StreamStep:
        if self.done and self.failed:
            raise ValueError("a stream ends either done or failed")
        if not (self.append or self.done or self.failed):
            raise ValueError("a step appends text, ends the stream, or both")
        return self

    @property
    def finish(self) -> Literal["delivered", "failed"] | None:
        if self.done:
            return "delivered"
        return "failed" if self.failed else None


class StreamState(BaseModel):
    """Where a streamed message stands after a step."""

    id: UUID
    conversation_id: UUID
    seq: int
    delivery_status: DeliveryStatus
    length: int = Field(description="The message's length now, in characters.")


class RoomChange(BaseModel):
    """A room or someone's place in it as it was before one change (seed 003 history)."""

    id: UUID = Field(description="Time-ordered: newer changes have larger ids.")
    conversation_id: UUID
    subject: Literal["conversation", "participant"] = Field(
        description="What changed: the room itself, or the place of `user_id` in it."
    )
    user_id: UUID | None = Field(description="Whose place changed (null for the room itself).")
    operation: HistoryOperation = Field(
        description="delete: the room was deleted, or the person's participation ended; edit: anything else."
    )
    changed_by: UUID | None = Field(description="Who made the change; null for Rapport's own work or a gone account.")
    changed_at: datetime
    previous: dict[str, Any] = Field(description="The changeable fields as they were before the change.")
