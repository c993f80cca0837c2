"""Resumable uploads over tus 1.0.0 (https://tus.io/protocols/resumable-upload):
`OPTIONS`, `POST /v1/media/uploads`, then `HEAD`, `PATCH` and `DELETE` on the upload.

Every answer carries `Tus-Resumable: 1.0.0`, errors included (problem+json as everywhere
else); a request naming another version is refused with 412 before anything else is
looked at. PATCH bodies are streamed to the staging folder as they arrive, whatever
their size: the app's body limit does not apply to them, the upload's length does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status
from fastapi.routing import APIRoute

from rapport.kernel.deps import NO_CONTENT, CallerDep
from rapport.kernel.errors import RapportError
from rapport.kernel.http import problem_response
from rapport.media import service_tus as service
from rapport.media.api import MediaDep

UPLOADS = "/v1/media/uploads"
# A client that stops sending in the middle of a body for this long has gone, whatever its
# connection says (tus: a 30 s timeout, handled by closing): what it sent is kept.
IDLE_SECONDS = 30.0

TusResumable = Annotated[
    str | None,
    Header(alias="Tus-Resumable", description="`1.0.0`: any other version (or none) is refused with 412."),
]


class TusRoute(APIRoute):
    """Checks Tus-Resumable before the route runs, and puts the tus headers on every
    answer, refusals included (a tus client reads them from errors too)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def tus_handler(request: Request) -> Response:
            if request.method != "OPTIONS" and request.headers.get("tus-resumable") != service.TUS_VERSION:
                response = problem_response(service.TusVersionUnsupported(), request)
            else:
                try:
                    response = await handle(request)
                except RapportError as error:
                    response = problem_response(error, request)
            response.headers["Tus-Resumable"] = service.TUS_VERSION
            return response

        return tus_handler


router = APIRouter(prefix=UPLOADS, tags=["media"], route_class=TusRoute)


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The body as it arrives. It ends quietly when the client goes away or goes silent
    for IDLE_SECONDS: what arrived before is stored (tus: keep as much as possible), so
    the client resumes from there."""
    while True:
        try:
            async with asyncio.timeout(IDLE_SECONDS):
                message = await request.receive()
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return  # http.disconnect
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def _has_body(request: Request) -> bool:
    length = _content_length(request)
    return bool(length) or (length is None and "transfer-encoding" in request.headers)


def _upload_headers(upload: service.TusUpload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset)}
    if upload.complete:
        if upload.file_id is not None:
            headers["Rapport-File-Id"] = str(upload.file_id)
    else:
        headers["Upload-Expires"] = upload.expires_header
    return headers


@router.options("", **NO_CONTENT)
async def tus_options(store: MediaDep) -> Response:
    """What this server's tus support offers: `Tus-Version`, `Tus-Extension`
    (creation, creation-with-upload, termination, expiration) and `Tus-Max-Size` (the
    largest file of any kind; each kind's own limit applies once its first bytes are in)."""
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=service.tus_capabilities(store.limits))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    responses={201: {"description": "Created: `Location` names the upload, `Upload-Offset` says what it holds."}},
)
async def create_upload(
    request: Request,
    caller: CallerDep,
    store: MediaDep,
    tus_resumable: TusResumable = None,
    upload_length: Annotated[
        str | None, Header(alias="Upload-Length", description="The file's size in bytes (required).")
    ] = None,
    upload_metadata: Annotated[
        str | None,
        Header(
            alias="Upload-Metadata",
            description="`key base64value` pairs, comma-separated: `filename`, `filetype`, `purpose` "
            "(attachment, profile_photo, album, comment, general) and any of your own.",
        ),
    ] = None,
) -> Response:
    """Start a resumable upload of `Upload-Length` bytes. The body may carry its first
    bytes (creation-with-upload, `Content-Type: application/offset+octet-stream`). 413 when
    the length is above `Tus-Max-Size`. When the last byte is in, the file is registered
    as `POST /v1/media` would register it, and `Rapport-File-Id` names it."""
    new = service.parse_tus_creation(upload_length, upload_metadata, limits=store.limits)
    body: AsyncIterator[bytes] | None = None
    if _has_body(request):
        if not service.is_offset_octet_stream(request.headers.get("content-type")):
            raise service.OffsetOctetStreamRequired
        body = _body(request)
    upload = await service.do_create_upload(
        caller.transaction, store, new=new, body=body, content_length=_content_length(request)
    )
    location = f"{request.scope.get('root_path', '')}{UPLOADS}/{upload.id}"
    return Response(status_code=status.HTTP_201_CREATED, headers={"Location": location, **_upload_headers(upload)})


@router.head(
    "/{upload_id}",
    response_class=Response,
    responses={
        200: {"description": "`Upload-Offset`: where to resume; `Upload-Length`; `Rapport-File-Id` once complete."}
    },
)
async def upload_offset(upload_id: str, caller: CallerDep, tus_resumable: TusResumable = None) -> Response:
    """Where one of your uploads stands: resume it from `Upload-Offset`. 404 for an upload
    that is not yours or no longer exists, 410 for one that expired unfinished."""
    upload = await service.access_upload(caller.transaction, upload_id=upload_id)
    headers = {**_upload_headers(upload), "Upload-Length": str(upload.length), "Cache-Control": "no-store"}
    if upload.metadata_header is not None:
        headers["Upload-Metadata"] = upload.metadata_header
    return Response(status_code=status.HTTP_200_OK, headers=headers)


@router.patch("/{upload_id}", **NO_CONTENT)
async def append_to_upload(
    request: Request,
    upload_id: str,
    caller: CallerDep,
    store: MediaDep,
    tus_resumable: TusResumable = None,
    upload_offset: Annotated[
        str | None, Header(alias="Upload-Offset", description="Where these bytes go: the upload's offset.")
    ] = None,
) -> Response:
    """Send bytes of one of your uploads from `Upload-Offset` (which must be where it
    stands: 409 otherwise), as `Content-Type: application/offset+octet-stream` (415
    otherwise). If the connection breaks, what arrived is kept: HEAD says where to resume.
    The answer's `Upload-Offset` is the new offset; with the last byte, the file is
    registered and `Rapport-File-Id` names it (413 or 415 then end the upload, as they
    would refuse a multipart upload)."""
    if not service.is_offset_octet_stream(request.headers.get("content-type")):
        raise service.OffsetOctetStreamRequired
    offset = service.parse_upload_offset(upload_offset)
    upload = await service.do_append_upload(
        caller.transaction,
        store,
        upload_id=upload_id,
        offset=offset,
        body=_body(request),
        content_length=_content_length(request),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_upload_headers(upload))


@router.delete("/{upload_id}", **NO_CONTENT)
async def terminate_upload(
    upload_id: str, caller: CallerDep, store: MediaDep, tus_resumable: TusResumable = None
) -> None:
    """End one of your uploads and free its bytes (tus termination). A file it already
    made stays: delete that with `DELETE /v1/media/{id}`."""
    await service.do_terminate_upload(caller.transaction, store, upload_id=upload_id)
