"""The support desk's problems, each with its stable type (kernel.errors)."""

from __future__ import annotations

from typing import Any

from rapport.kernel.errors import Conflict, Forbidden, NotFound, RapportError


class RoomNotFound(NotFound):
    """No such support room, or the caller may not see it: the two are never told apart."""

    slug = "support-room-not-found"
    title = "No such support room"


class CustomerRequired(Forbidden):
    """Support rooms are opened by people with an account of their own (not a guest or a bot)."""

    slug = "support-customer-required"
    title = "Only a person with an account of their own opens a support room"


class RoomClosed(Conflict):
    slug = "support-room-closed"
    title = "This support room is closed"


class LevelRequired(Forbidden):
    """The caller sees the room (or the queue exists) but works no queue of its level."""

    slug = "support-level-required"
    title = "This needs an agent of the room's level or higher"

    def __init__(self, level: str, detail: str | None = None) -> None:
        super().__init__(detail or f"This needs an agent of level {level} or higher.", level=level)


class NotRoomMember(Forbidden):
    """Only the room's customer or an agent taking part in it may do this."""

    slug = "support-room-participant-required"
    title = "Only the room's customer or an agent taking part in it may do this"


class GuestsNotAllowed(Forbidden):
    slug = "support-guests-not-allowed"
    title = "This support room does not admit guests"


class GuestLinkNotFound(NotFound):
    """A token that opens nothing: wrong, or its link was revoked."""

    slug = "support-guest-link-not-found"
    title = "No guest link has this token"


class GuestLinkExpired(RapportError):
    slug = "support-guest-link-expired"
    status = 410
    title = "This guest link has expired; ask for a new one"


class GuestLinkUsed(RapportError):
    slug = "support-guest-link-used"
    status = 410
    title = "This guest link has been used as many times as it may; ask for a new one"


class EscalationNotFound(NotFound):
    slug = "support-escalation-not-found"
    title = "No such escalation"


class EscalationNotUpward(Conflict):
    """An escalation goes to a level above the room's."""

    slug = "support-escalation-not-upward"
    title = "An escalation goes to a level above the room's"

    def __init__(self, level: str, to_level: str) -> None:
        super().__init__(
            f"The room is at level {level}: an escalation goes above it, not to {to_level}.",
            level=level,
            to_level=to_level,
        )


class IllegalTransition(Conflict):
    """An escalation's step that its status does not allow; the problem names the status."""

    slug = "support-escalation-transition"
    title = "The escalation's status does not allow this step"

    def __init__(self, *, status: str, step: str, **extra: Any) -> None:
        super().__init__(f"The escalation is {status}: it cannot be {step}.", status=status, step=step, **extra)


class AssigneeNotAgent(Conflict):
    """An escalation is assigned to an agent of its level or higher."""

    slug = "support-assignee-not-agent"
    title = "The assignee does not work the escalation's level"


class NotAssignee(Forbidden):
    slug = "support-not-assignee"
    title = "Only the escalation's assignee may do this"
