"""What the media domain refuses, each with a stable problem type."""

from __future__ import annotations

from typing import Any

from rapport.kernel.errors import BadRequest, Conflict, Forbidden, NotFound, RapportError, ValidationFailed


class FileNotFound(NotFound):
    """No such file, or one the caller may not read: the two are never told apart."""

    slug = "file-not-found"
    title = "No such file"


class FileTooLarge(RapportError):
    slug = "file-too-large"
    status = 413
    title = "The file is larger than this server accepts"

    def __init__(self, limit: int, kind: str | None = None) -> None:
        what = f"{kind} files" if kind else "files"
        super().__init__(f"Uploads of {what} are limited to {limit} bytes.", limit_bytes=limit)


class UnsupportedMediaType(RapportError):
    """The bytes are of a type never stored (HTML, SVG, XHTML: a page that would run in
    Rapport's origin), or contradict the name or type they came with."""

    slug = "unsupported-media-type"
    status = 415
    title = "This type of file is not accepted"


class MultipartRequired(RapportError):
    slug = "multipart-required"
    status = 415
    title = "The upload must be multipart/form-data with a boundary"


class MalformedMultipart(BadRequest):
    slug = "malformed-multipart"
    title = "The multipart body could not be read"


class FileRequired(ValidationFailed):
    slug = "file-required"
    title = "The upload has no `file` field holding a file"


class EmptyFile(ValidationFailed):
    slug = "empty-file"
    title = "The file is empty"


class ClientGone(BadRequest):
    """The client went away before its upload's body was whole: nobody hears the answer,
    but the request ends as a refusal, its staged bytes removed, rather than as an error."""

    slug = "client-disconnected"
    title = "The client disconnected before the upload ended"


def field_refused(field: str, message: str, kind: str) -> ValidationFailed:
    """A multipart field that is not allowed, or holds what it may not: the 422 a JSON
    body's field would get, naming it."""
    return ValidationFailed(message, errors=[{"loc": ["body", field], "msg": message, "type": kind}])


class FileQuarantined(Forbidden):
    """The scan found something in it: served to no one, its owner included."""

    slug = "file-quarantined"
    title = "This file was quarantined by the virus scan"


class FileNotReady(Conflict):
    """Its scan has not finished: only its owner may download it until it has."""

    slug = "file-not-ready"
    title = "This file is still being processed"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["Retry-After"] = str(retry_after)


class RangeNotSatisfiable(RapportError):
    slug = "range-not-satisfiable"
    status = 416
    title = "The requested range is not within the file"

    def __init__(self, size: int) -> None:
        super().__init__(f"The file holds {size} bytes.")
        self.headers["Content-Range"] = f"bytes */{size}"


# Albums, shares, versions, comments and profile photos (rapport.media.service_collections)


class AlbumNotFound(NotFound):
    """No such album, or one the caller may not see: the two are never told apart."""

    slug = "album-not-found"
    title = "No such album"


class AlbumItemNotFound(NotFound):
    slug = "album-item-not-found"
    title = "This file is not in the album"


class ShareNotFound(NotFound):
    slug = "share-not-found"
    title = "No such share"


class ShareLinkNotFound(NotFound):
    """A wrong, expired or revoked link, or one whose file or album was deleted: all
    answered alike, so a link's holder never learns which."""

    slug = "share-link-not-found"
    title = "No such share link, or it has expired or been revoked"


class CommentNotFound(NotFound):
    slug = "comment-not-found"
    title = "No such comment"


class VersionNotFound(NotFound):
    slug = "version-not-found"
    title = "The file has no such version"


class ProfilePhotoNotFound(NotFound):
    slug = "profile-photo-not-found"
    title = "No profile photo in this position"


class NotFileOwner(Forbidden):
    """The caller may read the file but only its owner may do this."""

    slug = "not-file-owner"
    title = "Only the file's owner may do this"


class NotAlbumOwner(Forbidden):
    slug = "not-album-owner"
    title = "Only the album's owner may do this"


class NotShareOwner(Forbidden):
    slug = "not-share-owner"
    title = "Only the person who shared may revoke a share"


class CannotComment(Forbidden):
    slug = "cannot-comment"
    title = "You may read this file but not comment on it"


class NotCommentAuthor(Forbidden):
    slug = "not-comment-author"
    title = "Only its author may do this to a comment"


class FileNotUsable(ValidationFailed):
    """The file named is not one of the caller's live files fit for the purpose: missing,
    someone else's, deleted, quarantined, or of the wrong kind."""

    slug = "file-not-usable"
    title = "This file cannot be used here"


class OrderMismatch(ValidationFailed):
    slug = "order-mismatch"
    title = "The order must name every current file exactly once, and no other"


class PositionOutOfRange(ValidationFailed):
    slug = "position-out-of-range"
    title = "Positions run from 1 without gaps"


class CoverNotInAlbum(ValidationFailed):
    slug = "cover-not-in-album"
    title = "An album's cover is one of its files"


class CannotShareWithSelf(ValidationFailed):
    slug = "cannot-share-with-yourself"
    title = "You cannot share with yourself"


class ParentCommentNotFound(ValidationFailed):
    slug = "parent-comment-not-found"
    title = "A reply answers a live comment on the same file"


class VersionKindMismatch(ValidationFailed):
    slug = "version-kind-mismatch"
    title = "A new version is of the same kind as the file (image, video, audio, document, other)"


class AlreadyInAlbum(Conflict):
    slug = "already-in-album"
    title = "This file is already in the album"


class AlbumFull(Conflict):
    slug = "album-full"
    title = "The album holds as many files as it may"


class AlreadyAProfilePhoto(Conflict):
    slug = "already-a-profile-photo"
    title = "This file is already one of your profile photos: reorder them instead"


class ProfilePhotosFull(Conflict):
    slug = "profile-photos-full"
    title = "You have six profile photos: remove or replace one first"
