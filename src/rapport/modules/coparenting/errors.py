"""The co-parenting module's problems, each with its stable type (kernel.errors)."""

from typing import ClassVar as _ClassVar

from rapport.kernel.errors import Conflict as _Conflict
from rapport.kernel.errors import NotFound as _NotFound
from rapport.kernel.errors import RapportError as _RapportError
from rapport.kernel.errors import TooManyRequests as _TooManyRequests
from rapport.kernel.errors import ValidationFailed as _ValidationFailed


class PairingNotFound(_NotFound):
    """No such pairing, or not the caller's: the two are never told apart."""

    slug = "pairing-not-found"
    title = "No such pairing, or it is not yours"


class InvitationNotFound(_NotFound):
    """A code or token that opens nothing: wrong, used, canceled, or an e-mail invitation
    to another address. The failed attempt is recorded (it counts toward a pause)."""

    slug = "pairing-invitation-not-found"
    title = "No pending invitation has this code or token"
    keeps_changes: _ClassVar[bool] = True


class InvitationExpired(_RapportError):
    """The invitation was real but its time has passed: it is marked expired now."""

    slug = "pairing-invitation-expired"
    status = 410
    title = "This invitation has expired; ask for a new one"
    keeps_changes: _ClassVar[bool] = True


class CannotPairWithYourself(_ValidationFailed):
    slug = "cannot-pair-with-yourself"
    title = "A parent pairs with the other parent, not with themself"


class AlreadyPaired(_Conflict):
    slug = "already-paired"
    title = "You are already paired with this parent"


class PairingNotCancelable(_Conflict):
    slug = "pairing-not-cancelable"
    title = "Only a pending or active pairing can be canceled"


class TooManyPairingAttempts(_TooManyRequests):
    slug = "too-many-pairing-attempts"
    title = "Too many invitation codes or tokens that opened nothing; wait before trying again"


class TriggerNotFound(_NotFound):
    """No such trigger, or someone else's: the two are never told apart."""

    slug = "trigger-not-found"
    title = "No such trigger"


class TriggerExists(_Conflict):
    slug = "trigger-exists"
    title = "You already have this trigger"


class TooManyTriggers(_Conflict):
    slug = "too-many-triggers"
    title = "You have as many triggers as one person may keep; remove one first"


class RewriteNotFound(_NotFound):
    """No such suggestion, or someone else's."""

    slug = "rewrite-not-found"
    title = "No such rewrite suggestion"


class ConversationEncrypted(_Conflict):
    """A draft for an end-to-end encrypted conversation: Rapport holds none of its text, so
    it neither analyses such a draft nor sends it to a language model; the device does."""

    slug = "analysis-conversation-encrypted"
    title = "The conversation is end-to-end encrypted: its drafts are analysed on your device, not by Rapport"


class OutcomeRecorded(_Conflict):
    slug = "outcome-already-recorded"
    title = "What you did with this suggestion is already recorded"


class ProfileNotLearned(_NotFound):
    slug = "communication-profile-not-found"
    title = "No communication profile has been learned for you yet"


class NotAChild(_Conflict):
    """Child details belong to a contact whose relationship says they are a child."""

    slug = "contact-not-a-child"
    title = "This contact's relationship is not a child's (such as 'My Child')"


class NotACoparent(_Conflict):
    """Co-parent details belong to a contact whose relationship says co-parent or partner."""

    slug = "contact-not-a-coparent"
    title = "This contact's relationship is not a co-parent's or partner's (such as 'My Co-Parent')"


class TaskNotFound(_NotFound):
    slug = "task-not-found"
    title = "No such task, or it is not shared with you"


class InvalidAssignee(_ValidationFailed):
    slug = "invalid-assignee"
    title = "A task is given to its creator or to someone taking part in its room"


class TopicSuggestionNotFound(_NotFound):
    slug = "topic-suggestion-not-found"
    title = "No such topic suggestion"


class SuggestionDecided(_Conflict):
    slug = "topic-suggestion-decided"
    title = "This suggestion has already been accepted or dismissed"


class TopicRoomNotFound(_NotFound):
    slug = "topic-room-not-found"
    title = "Topics are not organised in this room"
