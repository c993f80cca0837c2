"""What the social domain refuses, each with a stable problem type."""

from rapport.kernel.errors import Conflict, Forbidden, NotFound, ValidationFailed


class UserNotFound(NotFound):
    slug = "user-not-found"
    title = "No such user, or their profile is not visible to you"


class ProfileNotFound(NotFound):
    slug = "profile-not-found"
    title = "No such profile, or it is not visible to you"


class UsernameTaken(Conflict):
    slug = "username-taken"
    title = "That username is taken"


class CannotTargetSelf(ValidationFailed):
    slug = "cannot-target-self"
    title = "You cannot do this to yourself"


class ContactRequestNotAllowed(Forbidden):
    slug = "contact-request-not-allowed"
    title = "This person is not accepting a contact request from you"


class AlreadyContacts(Conflict):
    slug = "already-contacts"
    title = "You are already contacts"


class RequestAlreadyPending(Conflict):
    slug = "contact-request-pending"
    title = "A request to this person is already pending"


class ContactRequestNotFound(NotFound):
    slug = "contact-request-not-found"
    title = "No such contact request"


class NotYourRequestToAnswer(Forbidden):
    slug = "not-request-addressee"
    title = "Only the person asked can accept or reject this request"


class NotYourRequestToCancel(Forbidden):
    slug = "not-request-requester"
    title = "Only the person who asked can cancel this request"


class RequestNotPending(Conflict):
    slug = "contact-request-not-pending"
    title = "This request has already been answered or cancelled"


class ContactNotFound(NotFound):
    slug = "contact-not-found"
    title = "No such contact"


class ContactGroupNotFound(NotFound):
    slug = "contact-group-not-found"
    title = "No such contact group"


class ContactGroupExists(Conflict):
    slug = "contact-group-exists"
    title = "You already have a group with this name"


class ContactExists(Conflict):
    slug = "contact-exists"
    title = "You already have a contact with this e-mail address"


class NotBlocked(NotFound):
    slug = "block-not-found"
    title = "You have not blocked this person"


class AdminRequired(Forbidden):
    slug = "admin-required"
    title = "Only administrators may do this"


class ProfilePartNotFound(NotFound):
    """Another person's part that is sensitive, or whose profile the actor may not see."""

    slug = "profile-part-not-found"
    title = "No such profile part, or it is not visible to you"


class DeviceNotFound(NotFound):
    slug = "device-not-found"
    title = "No such device"


class TooManyDevices(Conflict):
    slug = "too-many-devices"
    title = "Remove a device before registering another"


class StatusNotFound(NotFound):
    slug = "status-not-found"
    title = "No such status update"


class InvalidSearchQuery(ValidationFailed):
    slug = "invalid-search-query"
    title = "The search query has nothing to search for"
