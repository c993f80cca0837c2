"""What goes wrong between Rapport and the place the bytes are kept.

A client is told only that storage is unavailable (503): the reason, which names buckets,
keys and settings, is for the operator and goes to the log and to `str(error)`.
"""

from __future__ import annotations

from rapport.kernel.errors import ServiceUnavailable


class StorageUnavailable(ServiceUnavailable):
    """The storage could not be reached, or did not do what it was asked."""

    slug = "storage-unavailable"
    title = "File storage is unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__("The file storage did not answer as expected. Try again shortly.")
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class StorageRefused(StorageUnavailable):
    """The storage server answered, and said no (S3: its HTTP status and error code)."""

    slug = "storage-refused"

    def __init__(self, reason: str, *, server_status: int, code: str | None = None) -> None:
        super().__init__(reason)
        self.server_status = server_status
        self.code = code


class BlobMissing(StorageUnavailable):
    """Bytes the database names are not in storage: lost, or deleted behind Rapport's back."""

    slug = "stored-bytes-missing"
    title = "The file's bytes are missing from storage"


class InvalidRange(ValueError):
    """A byte range the blob cannot satisfy (it starts at or past the end). The download
    route checks ranges against the size it knows before it asks; this is the backstop."""
