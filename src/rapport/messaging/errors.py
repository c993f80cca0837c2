"""What the messaging domain refuses, each with a stable problem type, and how the
refusals its SQL functions raise become them.

The functions and triggers of migration 2026_11_29_0014 raise with an SQLSTATE of class
`RM` (or `RA401` for a credential that no longer holds) and the problem's slug as the
message, so the rule and its error live in one place: `refusal_of` turns them back into
these errors on either driver (asyncpg directly on the hot paths, SQLAlchemy elsewhere).
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from rapport.kernel.errors import Conflict, Forbidden, InvalidToken, NotFound, RapportError, ValidationFailed

# The platform's one problem type for a missing permission (access.has_permission said
# no), raised here too.
from rapport.kernel.errors import PermissionRequired as PermissionRequired

# The platform's one problem type for what only its administrators may do, raised here too.
from rapport.kernel.errors import PlatformAdminRequired as PlatformAdminRequired
from rapport.social.service import UserNotFound


class ConversationNotFound(NotFound):
    slug = "conversation-not-found"
    title = "No such conversation, or you do not take part in it"


class MessageNotFound(NotFound):
    slug = "message-not-found"
    title = "No such message in this conversation, or it is not visible to you"


class ParticipantNotFound(NotFound):
    slug = "participant-not-found"
    title = "This person does not take part in the conversation"


# The same problem as social's: a person the caller cannot see is unknown, whichever
# domain is asked about them.
PersonNotFound = UserNotFound


class InviteNotFound(NotFound):
    slug = "invite-not-found"
    title = "No such invite link, or it has expired, been used up or revoked"


class ThreadNotFound(NotFound):
    slug = "thread-not-found"
    title = "No such thread in this conversation"


class CannotSend(Forbidden):
    slug = "cannot-send"
    title = "You cannot send messages in this conversation"


class BotTypeReserved(Forbidden):
    """`bot` messages are sent by bot accounts alone: a person's would pass for a bot's answer."""

    slug = "message-type-reserved"
    title = "Only a bot sends messages of type bot"


class NotAllowed(Forbidden):
    slug = "not-allowed-in-conversation"
    title = "Your role in this conversation does not allow this"


class BotAddNotAllowed(Forbidden):
    """A bot hears what is said where it takes part: it is added by whoever manages it, or
    by someone granted chat:robot:add for the conversation (migration 2026_11_30_0040)."""

    slug = "bot-add-not-allowed"
    title = "Only the bot's owner, an administrator, or someone holding chat:robot:add here may add this bot"


class ConversationNotActive(Conflict):
    slug = "conversation-not-active"
    title = "The conversation is archived or closed"


class ConversationFull(Conflict):
    slug = "conversation-full"
    title = "The conversation has reached its maximum number of participants"


class DirectIsTwo(Conflict):
    slug = "direct-conversation-is-two"
    title = "A direct conversation is between its two people only"


class OwnerMustHandOver(Conflict):
    slug = "owner-must-hand-over"
    title = "Make someone else an owner before you leave"


class YouBlockThem(Conflict):
    slug = "you-block-this-user"
    title = "You block this person: unblock them first"


class ReplyNotFound(ValidationFailed):
    slug = "reply-not-found"
    title = "The message replied to is not in this conversation"


class AttachmentNotFound(ValidationFailed):
    slug = "attachment-not-found"
    title = "An attached file is not one the sender may send: unknown, not theirs to read, deleted or refused"


class TooManyAttachments(ValidationFailed):
    slug = "too-many-attachments"
    title = "A message carries at most ten files, each once"


class ThreadNotOpen(ValidationFailed):
    slug = "thread-not-open"
    title = "The thread is not in this conversation, or it is archived"


class MessageInReplyThread(Conflict):
    slug = "message-in-reply-thread"
    title = "A reply stays under its message: only messages of topic threads, or of none, move between them"


class InvalidRole(ValidationFailed):
    slug = "invalid-participant-change"
    title = "That role or status does not exist"


class DraftNotFound(NotFound):
    slug = "draft-not-found"
    title = "You have no draft in this conversation"


class InvalidEmoji(ValidationFailed):
    slug = "invalid-emoji"
    title = "A reaction is 1 to 32 characters, without spaces or control characters"


class ThreadCycle(ValidationFailed):
    slug = "thread-cycle"
    title = "A thread cannot sit under itself or under one of its own sub-threads"


class CallNotFound(NotFound):
    slug = "call-not-found"
    title = "No such call in this conversation"


class CannotCall(Forbidden):
    slug = "cannot-call"
    title = "You cannot start or join calls in this conversation"


class CallInProgress(Conflict):
    slug = "call-in-progress"
    title = "The conversation already has a ringing or ongoing call"


class CallNotLive(Conflict):
    slug = "call-not-live"
    title = "The call is over"


class NotInCall(Conflict):
    slug = "not-in-call"
    title = "You have not joined this call"


class CallNotRinging(Conflict):
    slug = "call-not-ringing"
    title = "The call is not ringing for you: you joined, left or declined it already"


class ReportNotFound(NotFound):
    slug = "report-not-found"
    title = "No such report in this conversation"


class ReportNotOpen(Conflict):
    slug = "report-not-open"
    title = "The report has been resolved already"


class AlreadyReported(Conflict):
    slug = "already-reported"
    title = "You have an open report of this message already"


class BlockedTermNotFound(NotFound):
    slug = "blocked-term-not-found"
    title = "No such blocked term"


class BlockedTermExists(Conflict):
    slug = "blocked-term-exists"
    title = "That term is blocked already"


class InvalidMessageSearch(ValidationFailed):
    slug = "invalid-message-search"
    title = "The search query has no word to search for, or is too long"


class MessageNotStreaming(Conflict):
    slug = "message-not-streaming"
    title = "The message is not streaming: it was never streamed, or it is delivered or failed already"


class MessageStreaming(Conflict):
    slug = "message-streaming"
    title = "The message is still streaming: it only grows until its sender ends it"


class ConversationEncrypted(Conflict):
    slug = "conversation-encrypted"
    title = "The conversation is end-to-end encrypted: send ciphertexts to its devices (encrypted-messages)"


class ConversationNotEncrypted(Conflict):
    slug = "conversation-not-encrypted"
    title = "The conversation is not end-to-end encrypted: send plain messages to it"


class MessageTooLong(ValidationFailed):
    slug = "message-too-long"
    title = "The message would pass 10,000 characters"


class AppendTooLong(ValidationFailed):
    slug = "append-too-long"
    title = "One step appends at most 3,500 bytes of JSON text"


# The slug each SQL function raises, and the error it stands for.
_REFUSALS: dict[str, type[RapportError]] = {
    "conversation-not-found": ConversationNotFound,
    "message-not-found": MessageNotFound,
    "participant-not-found": ParticipantNotFound,
    "user-not-found": PersonNotFound,
    "invite-not-found": InviteNotFound,
    "cannot-send": CannotSend,
    "bot-type-reserved": BotTypeReserved,
    "not-allowed": NotAllowed,
    "bot-add-not-allowed": BotAddNotAllowed,
    "conversation-not-active": ConversationNotActive,
    "conversation-full": ConversationFull,
    "direct-conversation-is-two": DirectIsTwo,
    "owner-must-hand-over": OwnerMustHandOver,
    "reply-not-found": ReplyNotFound,
    "attachment-not-found": AttachmentNotFound,
    "too-many-attachments": TooManyAttachments,
    "thread-not-found": ThreadNotOpen,
    "message-in-reply-thread": MessageInReplyThread,
    "invalid-role": InvalidRole,
    "invalid-status": InvalidRole,
    "invalid-token": InvalidToken,
    "call-not-found": CallNotFound,
    "cannot-call": CannotCall,
    "call-not-live": CallNotLive,
    "not-in-call": NotInCall,
    "call-not-ringing": CallNotRinging,
    "report-not-open": ReportNotOpen,
    "message-not-streaming": MessageNotStreaming,
    "message-streaming": MessageStreaming,
    "message-too-long": MessageTooLong,
    "append-too-long": AppendTooLong,
    "conversation-encrypted": ConversationEncrypted,
    "conversation-not-encrypted": ConversationNotEncrypted,
}


_PERMISSION_REQUIRED = "permission-required:"


def _driver_error(error: BaseException) -> BaseException:
    """asyncpg's own exception, under SQLAlchemy's wrappers if there are any."""
    if isinstance(error, DBAPIError):
        wrapped = error.orig
        return getattr(wrapped, "__cause__", None) or wrapped or error
    return error


def refusal_of(error: BaseException) -> RapportError | None:
    """The Rapport error a refusal raised by messaging's SQL stands for, or None when the
    database error is something else (then it is a bug, and stays one)."""
    driver = _driver_error(error)
    sqlstate = getattr(driver, "sqlstate", None)
    if not isinstance(sqlstate, str) or not (sqlstate.startswith("RM") or sqlstate == "RA401"):
        return None
    message = str(getattr(driver, "message", ""))
    # A support room's posting permission (migration 2026_12_01_0050), named in the refusal.
    if message.startswith(_PERMISSION_REQUIRED):
        return PermissionRequired(message.removeprefix(_PERMISSION_REQUIRED))
    kind = _REFUSALS.get(message)
    if kind is None:
        return None
    if kind is InvalidToken:
        return InvalidToken("The session has ended. Sign in again.")
    return kind()
