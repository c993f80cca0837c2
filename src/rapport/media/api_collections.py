"""The media collections API: albums and their ordered items, shares with people and by
link (and opening a link, signed out), what is shared with the caller, profile photos; and,
through rapport.media.api_file_activity, a file's versions and comments.

Its paths lie under `/v1/media/` beside the file routes of rapport.media.api, whose
`/v1/media/{file_id}` would take `/v1/media/albums` for a file id: this router is
included first."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Request, Response, status

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep, RuntimeDep
from rapport.kernel.pagination import Page
from rapport.media import schemas_collections as s
from rapport.media import service_collections as service
from rapport.media.api import MediaDep, as_response
from rapport.media.api_file_activity import BYTES_RESPONSES, THUMBNAIL_RESPONSES
from rapport.media.api_file_activity import router as file_activity_router

router = APIRouter(prefix="/v1", tags=["media"])

Token = Annotated[str, Path(description="The link's token, as it was given when the link was made.")]
Position = Annotated[int, Path(ge=1, le=32767, description="1 is first.")]


# Albums


@router.post("/media/albums", response_model=s.AlbumDetail, status_code=status.HTTP_201_CREATED)
async def create_album(body: s.AlbumCreate, caller: CallerDep) -> s.AlbumDetail:
    """Make an album, empty: add your images and videos to it with `POST …/items`."""
    async with caller.transaction() as (db, actor):
        return await service.do_create_album(db, actor=actor, body=body)


@router.get("/media/albums", response_model=Page[s.AlbumOut])
async def list_albums(caller: CallerDep, page: PageDep) -> Page[s.AlbumOut]:
    """Your albums, newest first (albums shared with you are in `shared-with-me`)."""
    async with caller.transaction() as (db, actor):
        return await service.list_albums(db, actor=actor, page=page)


@router.get("/media/albums/{album_id}", response_model=s.AlbumDetail)
async def get_album(album_id: UUID, caller: CallerDep) -> s.AlbumDetail:
    """An album of yours, or one shared with you, with its files in order."""
    async with caller.transaction() as (db, actor):
        return await service.get_album(db, actor=actor, album_id=album_id)


@router.patch("/media/albums/{album_id}", response_model=s.AlbumDetail)
async def update_album(album_id: UUID, body: s.AlbumUpdate, caller: CallerDep) -> s.AlbumDetail:
    """Change the fields sent (the album's owner only: 403 `not-album-owner` for one shared
    with you). The cover is one of the album's files (422 `cover-not-in-album`)."""
    async with caller.transaction() as (db, actor):
        return await service.do_update_album(db, actor=actor, album_id=album_id, changes=body)


@router.delete("/media/albums/{album_id}", **NO_CONTENT)
async def delete_album(album_id: UUID, caller: CallerDep) -> None:
    """Delete your album: gone for everyone at once, its shares revoked. Its files stay."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_album(db, actor=actor, album_id=album_id)


@router.post("/media/albums/{album_id}/items", response_model=s.AlbumItemOut, status_code=status.HTTP_201_CREATED)
async def add_album_item(album_id: UUID, body: s.AlbumItemAdd, caller: CallerDep) -> s.AlbumItemOut:
    """Put one of your images or videos in your album, at `position` (those from there on
    move down one) or last. 422 `file-not-usable` for anything but your own live, not
    quarantined image or video; 409 `already-in-album`; 422 `position-out-of-range` past
    the end plus one."""
    async with caller.transaction() as (db, actor):
        return await service.do_add_item(db, actor=actor, album_id=album_id, body=body)


@router.put("/media/albums/{album_id}/items/order", response_model=s.AlbumDetail)
async def reorder_album_items(album_id: UUID, body: s.FileOrder, caller: CallerDep) -> s.AlbumDetail:
    """Put the album's files in this order: name each of them once and no other (422
    `order-mismatch` otherwise)."""
    async with caller.transaction() as (db, actor):
        return await service.do_reorder_items(db, actor=actor, album_id=album_id, file_ids=body.file_ids)


@router.delete("/media/albums/{album_id}/items/{file_id}", **NO_CONTENT)
async def remove_album_item(album_id: UUID, file_id: UUID, caller: CallerDep) -> None:
    """Take a file out of your album (the file stays); those after it move up one."""
    async with caller.transaction() as (db, actor):
        await service.do_remove_item(db, actor=actor, album_id=album_id, file_id=file_id)


# Shares


@router.post("/media/albums/{album_id}/shares", response_model=s.ShareCreated, status_code=status.HTTP_201_CREATED)
async def share_album(album_id: UUID, body: s.ShareCreate, caller: CallerDep) -> s.ShareCreated:
    """Share your album with a person (`user_id`; they read every file in it, those added
    later too, and are told by `media.shared`) or by a link (`link: true`,
    `expires_in_seconds`; its `token` is shown here only). Someone unknown, invisible to
    you or blocked either way: 404 `user-not-found`."""
    async with caller.transaction() as (db, actor):
        return await service.do_share_album(db, actor=actor, album_id=album_id, body=body)


@router.get("/media/albums/{album_id}/shares", response_model=Page[s.ShareOut])
async def list_album_shares(album_id: UUID, caller: CallerDep, page: PageDep) -> Page[s.ShareOut]:
    """Your album's shares, newest first, live or not (links without their tokens)."""
    async with caller.transaction() as (db, actor):
        return await service.list_album_shares(db, actor=actor, album_id=album_id, page=page)


@router.get("/media/shared-with-me", response_model=Page[s.SharedWithMeOut])
async def list_shared_with_me(caller: CallerDep, page: PageDep) -> Page[s.SharedWithMeOut]:
    """What people share with you now (not revoked, not expired), newest first, each with
    its file or album."""
    async with caller.transaction() as (db, actor):
        return await service.list_shared_with_me(db, actor=actor, page=page)


@router.delete("/media/shares/{share_id}", **NO_CONTENT)
async def revoke_share(share_id: UUID, caller: CallerDep) -> None:
    """Revoke a share you made: its person or link gets nothing more, at once."""
    async with caller.transaction() as (db, actor):
        await service.do_revoke_share(db, actor=actor, share_id=share_id)


@router.get("/media/shared/{token}", response_model=s.LinkOut)
async def open_share_link(token: Token, runtime: RuntimeDep) -> s.LinkOut:
    """What a share link gives, without signing in: a file, or an album and its files,
    with addresses of their bytes through the link. A wrong, expired or revoked link, or
    one whose file or album was deleted: 404 `share-link-not-found`, all alike."""
    return await service.get_link(runtime.engine, token=token)


@router.get("/media/shared/{token}/content", response_class=Response, responses=BYTES_RESPONSES)
async def get_share_link_content(token: Token, request: Request, runtime: RuntimeDep, media: MediaDep) -> Response:
    """The bytes of a file shared by link, without signing in, served as a file's content
    is (Range, `ETag`, never run as a page)."""
    download = await service.download_link(
        runtime.engine, media, token=token, file_id=None, request_headers=request.headers
    )
    return as_response(download)


@router.get("/media/shared/{token}/files/{file_id}/content", response_class=Response, responses=BYTES_RESPONSES)
async def get_share_link_file_content(
    token: Token, file_id: UUID, request: Request, runtime: RuntimeDep, media: MediaDep
) -> Response:
    """The bytes of one file of an album shared by link, without signing in."""
    download = await service.download_link(
        runtime.engine, media, token=token, file_id=file_id, request_headers=request.headers
    )
    return as_response(download)


@router.get(
    "/media/shared/{token}/files/{file_id}/thumbnails/{size}", response_class=Response, responses=THUMBNAIL_RESPONSES
)
async def get_share_link_thumbnail(
    token: Token, file_id: UUID, size: service.ThumbnailSize, request: Request, runtime: RuntimeDep, media: MediaDep
) -> Response:
    """A thumbnail of the file a link gives (or of one file of its album), without signing
    in, served as `GET /v1/media/{id}/thumbnails/{size}` is."""
    download = await service.download_link_thumbnail(
        runtime.engine, media, token=token, file_id=file_id, size=size, request_headers=request.headers
    )
    return as_response(download)


# Profile photos


@router.get("/media/profile-photos/{user_id}", response_model=s.ProfilePhotos)
async def list_profile_photos(user_id: UUID, caller: CallerDep) -> s.ProfilePhotos:
    """Someone's profile photos in order, for whoever may see their profile (404
    `user-not-found` otherwise, or when either blocks the other)."""
    async with caller.transaction() as (db, actor):
        return await service.list_profile_photos(db, actor=actor, user_id=user_id)


@router.put("/media/profile-photos/order", response_model=s.ProfilePhotos)
async def reorder_profile_photos(body: s.FileOrder, caller: CallerDep) -> s.ProfilePhotos:
    """Put your profile photos in this order: name each once and no other (422
    `order-mismatch` otherwise)."""
    async with caller.transaction() as (db, actor):
        return await service.do_reorder_profile_photos(db, actor=actor, file_ids=body.file_ids)


@router.put("/media/profile-photos/{position}", response_model=s.ProfilePhotos)
async def set_profile_photo(position: Position, body: s.ProfilePhotoSet, caller: CallerDep) -> s.ProfilePhotos:
    """Set one of your images as a profile photo: replacing the one at `position`, or as
    the next (positions run 1 to 6 without gaps: 422 `position-out-of-range` past the
    next free one; 409 `profile-photos-full` for a seventh). 422 `file-not-usable` for
    anything but your own live, not quarantined image; 409 `already-a-profile-photo` when
    it is in another position."""
    async with caller.transaction() as (db, actor):
        return await service.do_set_profile_photo(db, actor=actor, position=position, file_id=body.file_id)


@router.delete("/media/profile-photos/{position}", **NO_CONTENT)
async def remove_profile_photo(position: Position, caller: CallerDep) -> None:
    """Take a profile photo out (the file stays); those after it move up one."""
    async with caller.transaction() as (db, actor):
        await service.do_remove_profile_photo(db, actor=actor, position=position)


# A file's own shares, versions and comments: after the routes above, whose first
# segment after /media is fixed, since these take any segment there for a file id.


@router.post("/media/{file_id}/shares", response_model=s.ShareCreated, status_code=status.HTTP_201_CREATED)
async def share_file(file_id: UUID, body: s.ShareCreate, caller: CallerDep) -> s.ShareCreated:
    """Share your file with a person (`user_id`, told by `media.shared`; `permission:
    comment` lets them comment) or by a link (`link: true`, `expires_in_seconds`; its
    `token` is shown here only). Sharing again with the same person replaces their share.
    Someone unknown, invisible to you or blocked either way: 404 `user-not-found`."""
    async with caller.transaction() as (db, actor):
        return await service.do_share_file(db, actor=actor, file_id=file_id, body=body)


@router.get("/media/{file_id}/shares", response_model=Page[s.ShareOut])
async def list_file_shares(file_id: UUID, caller: CallerDep, page: PageDep) -> Page[s.ShareOut]:
    """Your file's shares, newest first, live or not (links without their tokens)."""
    async with caller.transaction() as (db, actor):
        return await service.list_file_shares(db, actor=actor, file_id=file_id, page=page)


router.include_router(file_activity_router)
