"""What the realtime stream refuses, as problem+json error frames (docs/REALTIME.md)."""

from __future__ import annotations

from rapport.kernel.errors import RapportError, ValidationFailed


class UnexpectedFrame(ValidationFailed):
    """A frame the protocol does not allow here (an `auth` frame once authenticated)."""

    slug = "unexpected-frame"
    title = "This frame is not expected now"


class InvalidPosition(RapportError):
    slug = "invalid-position"
    status = 400
    title = "The position is not a position of this stream"
