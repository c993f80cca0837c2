"""The encryption domain's problems, each with its stable type (kernel.errors)."""

from __future__ import annotations

from rapport.kernel.errors import Conflict, NotFound, ValidationFailed

# The platform's one problem type for a person the caller cannot see, raised here too.
from rapport.social.service import UserNotFound as UserNotFound


class DeviceNotFound(NotFound):
    """No such device among the caller's: someone else's is never told apart from none."""

    slug = "encryption-device-not-found"
    title = "No such device with encryption keys"


class InvalidPrekeySignature(ValidationFailed):
    slug = "invalid-prekey-signature"
    title = "The signed prekey's signature does not verify under the device's signing key"


class PrekeyExists(Conflict):
    slug = "prekey-exists"
    title = "The device already has a one-time prekey with this key_id"


class TooManyPrekeys(Conflict):
    slug = "too-many-prekeys"
    title = "The device holds as many one-time prekeys as it may"


class TooManyDevices(Conflict):
    slug = "too-many-encryption-devices"
    title = "Revoke a device with encryption keys before registering another"


class UnknownDevice(ValidationFailed):
    """A device the message cannot go to: not the sender's (as sender_device_id), or not a
    device of someone who takes part in the conversation. The problem names it."""

    slug = "unknown-device"
    title = "No such device in this conversation"
