"""The location domain's problems, each with its stable type (kernel.errors)."""

from rapport.kernel.errors import NotFound as _NotFound
from rapport.kernel.errors import ValidationFailed as _ValidationFailed


class GeofenceNotFound(_NotFound):
    """No such geofence, or one the caller may not change: the two are never told apart."""

    slug = "geofence-not-found"
    title = "No such geofence, or it is not yours"


class CapturedAtOutOfRange(_ValidationFailed):
    """A location measured in the future, or too long ago to be news."""

    slug = "captured-at-out-of-range"
    title = "A location's time must be within the last week and not in the future"


class GeoDatabaseUnreadable(Exception):
    """A file `rapport location import` cannot read: an unknown format, a bad row, or an
    MMDB file without the `maxminddb` reader."""
