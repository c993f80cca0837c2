"""Resumable uploads over tus 1.0.0 (core, creation, creation-with-upload, termination,
expiration): a client creates an upload of a known length, sends its bytes in as many
PATCHes as it likes, asks where to resume after a broken connection (HEAD), and once the
last byte is in, the file is registered exactly as a multipart upload would be.

- `_protocol`: the version, extensions and headers of the protocol (`errors`: its refusals).
- `_staging`: the bytes received so far, in `<staging>/<upload id>`.
- `_uploads`: the `media.uploads` rows and the steps that move them.

Uploads expire 24 hours after their last PATCH (or their creation):
`collect_expired_uploads` removes their rows and staged bytes.
"""

from rapport.media._tus._protocol import (
    TUS_EXTENSIONS,
    NewUpload,
    TusUpload,
    is_offset_octet_stream,
    parse_tus_creation,
    parse_upload_offset,
    tus_capabilities,
)
from rapport.media._tus._uploads import (
    UPLOAD_TTL,
    access_upload,
    collect_expired_uploads,
    do_append_upload,
    do_create_upload,
    do_terminate_upload,
    remove_uploads_of,
)
from rapport.media._tus.errors import (
    OFFSET_OCTET_STREAM,
    TUS_VERSION,
    InvalidUploadHeader,
    OffsetOctetStreamRequired,
    TusVersionUnsupported,
    UploadBusy,
    UploadExpired,
    UploadLengthExceeded,
    UploadNotFound,
    UploadOffsetMismatch,
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
    "remove_uploads_of",
    "tus_capabilities",
]
