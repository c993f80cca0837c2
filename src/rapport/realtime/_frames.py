"""Client frames: parsed with the same strict models as the HTTP bodies they stand for,
answered by the same services, with an `ack` or a problem+json `error` frame."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
import structlog
from pydantic import Field, TypeAdapter, ValidationError

from rapport.kernel.actor import Credential
from rapport.kernel.errors import MalformedJson, RapportError, ValidationFailed, problem_type
from rapport.kernel.runtime import Runtime
from rapport.kernel.schemas import JsonUuid, Line100, Strict
from rapport.messaging import service as messaging
from rapport.realtime._connection import Frame
from rapport.realtime._signals import PresenceStatus, Signals
from rapport.realtime.errors import UnexpectedFrame

log = structlog.get_logger(__name__)

MAX_TOKEN_LENGTH = 4096


class AuthFrame(Strict):
    type: Literal["auth"]
    token: Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH)]


class SendFrame(Strict):
    type: Literal["send"]
    ref: Line100 | None = None
    conversation_id: JsonUuid
    message: messaging.SendMessage


class ReadFrame(Strict):
    type: Literal["read"]
    ref: Line100 | None = None
    conversation_id: JsonUuid
    message_id: JsonUuid


class TypingFrame(Strict):
    type: Literal["typing"]
    ref: Line100 | None = None
    conversation_id: JsonUuid
    typing: bool


class PresenceFrame(Strict):
    type: Literal["presence"]
    ref: Line100 | None = None
    status: PresenceStatus


class PongFrame(Strict):
    type: Literal["pong"]


ClientFrame = Annotated[
    AuthFrame | SendFrame | ReadFrame | TypingFrame | PresenceFrame | PongFrame, Field(discriminator="type")
]
_CLIENT_FRAME: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


class Refused(Exception):
    """A client frame that cannot be acted on; `error` is the frame that says why."""

    def __init__(self, error: Frame) -> None:
        super().__init__(error.text)
        self.error = error


def error_frame(error: RapportError, ref: str | None) -> Frame:
    return Frame.of({"type": "error", "ref": ref, "problem": error.to_problem()})


def _ref_of(raw: Any) -> str | None:
    ref = raw.get("ref") if isinstance(raw, dict) else None
    return ref if isinstance(ref, str) and len(ref) <= 100 else None


def _validation_failed(exc: ValidationError) -> ValidationFailed:
    # As the HTTP edge answers a body that fails its model (kernel/http.py).
    errors = [
        {"loc": [str(part) for part in err.get("loc", ())], "msg": err.get("msg"), "type": err.get("type")}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(err['loc'])}: {err['msg']}" for err in errors[:5])
    return ValidationFailed(summary, errors=errors)


def parse(text: str | bytes) -> tuple[ClientFrame, str | None]:
    """A client frame and its `ref`.

    Raises:
        Refused: not JSON, or not a frame of the protocol (its error frame carries the ref
            when one could be read).
    """
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise Refused(error_frame(MalformedJson("The frame could not be parsed as JSON."), None)) from None
    ref = _ref_of(raw)
    try:
        return _CLIENT_FRAME.validate_json(text), ref
    except ValidationError as exc:
        raise Refused(error_frame(_validation_failed(exc), ref)) from None


def _ack(ref: str | None, status: int, body_json: str) -> Frame:
    # The service's JSON is passed through as PostgreSQL built it, as HTTP does.
    return Frame("ack", f'{{"type":"ack","ref":{orjson.dumps(ref).decode()},"status":{status},"body":{body_json}}}')


async def answer(
    frame: ClientFrame,
    ref: str | None,
    *,
    runtime: Runtime,
    credential: Credential,
    signals: Signals,
    connection_id: UUID | None = None,
) -> Frame | None:
    """Do what a frame asks; the frame to send back, if any (never raises for the
    client's mistakes: they become error frames)."""
    try:
        if isinstance(frame, SendFrame):
            created, message = await messaging.send_message(
                runtime, await credential.actor(), conversation_id=frame.conversation_id, body=frame.message
            )
            return _ack(ref, 201 if created else 200, message)
        if isinstance(frame, ReadFrame):
            state = await messaging.mark_read(
                runtime,
                await credential.actor(),
                conversation_id=frame.conversation_id,
                message_id=frame.message_id,
                unread=False,
            )
            return _ack(ref, 200, state)
        if isinstance(frame, TypingFrame):
            await signals.typing(await credential.actor(), conversation_id=frame.conversation_id, typing=frame.typing)
            return None
        if isinstance(frame, PresenceFrame):
            await signals.presence(await credential.actor(), status=frame.status, connection_id=connection_id)
            return None
        if isinstance(frame, AuthFrame):
            return error_frame(UnexpectedFrame("Already authenticated: `auth` is only the first frame."), ref)
        return None  # pong: hearing it is all it is for
    except RapportError as error:
        return error_frame(error, ref)
    except Exception:
        log.exception("realtime.frame_failed", frame_type=frame.type)
        return Frame.of(
            {
                "type": "error",
                "ref": ref,
                "problem": {
                    "type": problem_type("internal-error"),
                    "title": "Internal server error",
                    "status": 500,
                    "detail": "Something went wrong on our side.",
                },
            }
        )
