"""The media domain's service for resumable uploads (tus 1.0.0): what its router calls.

Like multipart uploads, these take the caller's transaction factory (`caller.transaction`)
and the process's MediaStore: staged bytes are removed only once the transaction that
ends their upload has committed."""

from rapport.media._tus import (
    OFFSET_OCTET_STREAM,
    TUS_EXTENSIONS,
    TUS_VERSION,
    UPLOAD_TTL,
    InvalidUploadHeader,
    NewUpload,
    OffsetOctetStreamRequired,
    TusUpload,
    TusVersionUnsupported,
    UploadBusy,
    UploadExpired,
    UploadLengthExceeded,
    UploadNotFound,
    UploadOffsetMismatch,
    access_upload,
    collect_expired_uploads,
    do_append_upload,
    do_create_upload,
    do_terminate_upload,
    is_offset_octet_stream,
    parse_tus_creation,
    parse_upload_offset,
    tus_capabilities,
)

__all__ = [
    "OFFSET_OCTET_STREAM",
    "TUS_EXTENSIONS",
    "TUS_VERSION",
    "UPLOAD_TTL",
    "InvalidUploadHeader",
    "NewUpload",
    "OffsetOctetStreamRequired",
    "TusUpload",
    "TusVersionUnsupported",
    "UploadBusy",
    "UploadExpired",
    "UploadLengthExceeded",
    "UploadNotFound",
    "UploadOffsetMismatch",
    "access_upload",
    "collect_expired_uploads",
    "do_append_upload",
    "do_create_upload",
    "do_terminate_upload",
    "is_offset_octet_stream",
    "parse_tus_creation",
    "parse_upload_offset",
    "tus_capabilities",
]
