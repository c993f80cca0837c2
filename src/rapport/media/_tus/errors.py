"""What resumable (tus) uploads refuse, each with a stable problem type; every answer
carries `Tus-Resumable` besides (rapport.media.api_tus)."""

from __future__ import annotations

from rapport.kernel.errors import BadRequest, Conflict, NotFound, RapportError

TUS_VERSION = "1.0.0"
OFFSET_OCTET_STREAM = "application/offset+octet-stream"


class TusVersionUnsupported(RapportError):
    slug = "tus-version-unsupported"
    status = 412
    title = "This server speaks tus 1.0.0 only"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or f"Send `Tus-Resumable: {TUS_VERSION}`.")
        self.headers["Tus-Version"] = TUS_VERSION


class InvalidUploadHeader(BadRequest):
    slug = "invalid-upload-header"
    title = "A tus header is missing or malformed"


class UploadNotFound(NotFound):
    """No such upload, or someone else's: the two are never told apart."""

    slug = "upload-not-found"
    title = "No such upload"


class UploadExpired(RapportError):
    slug = "upload-expired"
    status = 410
    title = "The upload expired: start a new one"


class UploadOffsetMismatch(Conflict):
    slug = "upload-offset-mismatch"
    title = "Upload-Offset is not where the upload stands: ask with HEAD and resume from there"

    def __init__(self, offset: int) -> None:
        super().__init__(f"The upload holds {offset} bytes: send Upload-Offset: {offset}.", offset=offset)


class OffsetOctetStreamRequired(RapportError):
    slug = "offset-octet-stream-required"
    status = 415
    title = f"Upload bytes are sent as Content-Type: {OFFSET_OCTET_STREAM}"


class UploadLengthExceeded(RapportError):
    slug = "upload-length-exceeded"
    status = 413
    title = "More bytes than the Upload-Length the upload was created with"


class UploadBusy(RapportError):
    """Another PATCH of the same upload is still receiving its bytes."""

    slug = "upload-busy"
    status = 423
    title = "Another request is writing to this upload: wait for it, then resume"
