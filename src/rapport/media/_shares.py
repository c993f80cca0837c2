"""Shares: a file or an album of one's own, shared with a person or by a link, until it
expires or its owner revokes it. Who may then read what is media.may_read_file's and
media.may_read_album's business, in the policies; this module makes, lists and revokes
shares, and opens links.

A person is shared with only if the owner may see them and neither blocks the other;
anyone else is answered as an unknown person, so that nobody learns who blocks them. A
link's token is shown once, when the link is made; Rapport keeps its SHA-256 only (like
messaging's invite links). A link works without signing in: the transaction that follows
it acts for no one, with the token's hash set (`rapport.media_link`), which the policies
accept for what that link shares. A wrong, expired or revoked link, or one whose file or
album is gone, all answer the same 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rapport.kernel.actor import Actor
from rapport.kernel.crypto import random_token, sha256
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import NotFound
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.media._albums import access_own_album, album_items_of, album_out, find_album
from rapport.media._members import file_outs, owned_file
from rapport.media.errors import (
    CannotShareWithSelf,
    FileQuarantined,
    NotShareOwner,
    ShareLinkNotFound,
    ShareNotFound,
)
from rapport.media.models import album_items, shared_files
from rapport.media.schemas import FileOut, FileUrls
from rapport.media.schemas_collections import (
    AlbumDetail,
    AlbumOut,
    LinkOut,
    ShareCreate,
    ShareCreated,
    SharedWithMeOut,
    ShareOut,
)
from rapport.social import service as social_service

TOKEN_PREFIX = "rms_"

_SET_LINK = text("SELECT set_config('rapport.media_link', :token_hash, true)")
_FILE_BY_LINK = text("SELECT share_id, file_id, permission, expires_at FROM media.file_by_link(:token_hash)")
_ALBUM_BY_LINK = text("SELECT share_id, album_id, permission, expires_at FROM media.album_by_link(:token_hash)")

# Whether a share still gives what it shares: what media.shared_with_caller asks of it.
_IS_LIVE = and_(
    shared_files.c.revoked_at.is_(None),
    or_(shared_files.c.expires_at.is_(None), shared_files.c.expires_at > func.now()),
)


def link_url(token: str) -> str:
    return f"/v1/media/shared/{token}"


def link_content_url(token: str, file_id: UUID | None = None) -> str:
    """Where a link's bytes are: the file of a file's link, or one file of an album's."""
    return f"{link_url(token)}/content" if file_id is None else f"{link_url(token)}/files/{file_id}/content"


def _out(row: AnyRow) -> ShareOut:
    return ShareOut(
        id=row.id,
        owner_id=row.owner_id,
        file_id=row.file_id,
        album_id=row.album_id,
        shared_with=row.shared_with,
        is_link=row.link_token_hash is not None,
        permission=row.permission,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        created_at=row.created_at,
        is_live=row.is_live,
    )


def _share_query() -> Any:
    return select(shared_files, _IS_LIVE.label("is_live"))


# Making


async def _person_to_share_with(db: AsyncConnection, *, actor: Actor, user_id: UUID) -> None:
    """Raises:
    CannotShareWithSelf: the actor's own id.
    UserNotFound: no such account, one the actor may not see, or one either blocks.
    """
    if user_id == actor.user_id:
        raise CannotShareWithSelf
    try:
        await social_service.access_profile(db, user_id=user_id)
    except NotFound:
        raise social_service.UserNotFound() from None
    if await social_service.is_blocked(db, a=actor.user_id, b=user_id):
        raise social_service.UserNotFound()


async def _make_share(
    db: AsyncConnection, *, actor: Actor, body: ShareCreate, file_id: UUID | None = None, album_id: UUID | None = None
) -> ShareCreated:
    expires_at: Any = None
    if body.expires_in_seconds is not None:
        # The database's clock: it is the one the policies compare with.
        expires_at = func.now() + timedelta(seconds=body.expires_in_seconds)
    token: str | None = None
    already_told = False
    if body.user_id is not None:
        await _person_to_share_with(db, actor=actor, user_id=body.user_id)
        # A new share with someone replaces the live one they have of the same thing.
        target = shared_files.c.file_id == file_id if file_id is not None else shared_files.c.album_id == album_id
        replaced = await db.execute(
            update(shared_files)
            .where(target, shared_files.c.shared_with == body.user_id, _IS_LIVE)
            .values(revoked_at=func.now())
            .returning(shared_files.c.id)
        )
        already_told = replaced.first() is not None
    else:
        token = random_token(TOKEN_PREFIX)
    share_id = uuid7()
    await db.execute(
        insert(shared_files).values(
            id=share_id,
            owner_id=actor.user_id,
            file_id=file_id,
            album_id=album_id,
            shared_with=body.user_id,
            link_token_hash=sha256(token) if token is not None else None,
            permission=body.permission,
            expires_at=expires_at,
        )
    )
    if body.user_id is not None and not already_told:
        what = {"file_id": str(file_id)} if file_id is not None else {"album_id": str(album_id)}
        await publish(
            db,
            scope=Scope.user(body.user_id),
            type="media.shared",
            payload={"share_id": str(share_id), "owner_id": str(actor.user_id), "permission": body.permission, **what},
            actor_id=actor.user_id,
        )
    row = (await db.execute(_share_query().where(shared_files.c.id == share_id))).one()
    return ShareCreated(**_out(row).model_dump(), token=token, url=link_url(token) if token is not None else None)


async def do_share_file(db: AsyncConnection, *, actor: Actor, file_id: UUID, body: ShareCreate) -> ShareCreated:
    """Share one of the actor's files with a person (told by `media.shared`) or by a link
    (its token in the answer and nowhere else). Sharing again with the same person
    replaces their share (they are not told twice).

    Raises:
        FileNotFound, NotFileOwner: as owned_file.
        FileQuarantined: the scan found something in it: it is served to no one.
        CannotShareWithSelf, UserNotFound: the person.
    """
    row = await owned_file(db, actor=actor, file_id=file_id)
    if row.status == "quarantined":
        raise FileQuarantined
    return await _make_share(db, actor=actor, body=body, file_id=file_id)


async def do_share_album(db: AsyncConnection, *, actor: Actor, album_id: UUID, body: ShareCreate) -> ShareCreated:
    """Share one of the actor's albums, as do_share_file does a file: whoever it is shared
    with sees the album and reads every file in it, those added later too.

    Raises:
        AlbumNotFound, NotAlbumOwner: as access_own_album.
        CannotShareWithSelf, UserNotFound: the person.
    """
    await access_own_album(db, actor=actor, album_id=album_id)
    return await _make_share(db, actor=actor, body=body, album_id=album_id)


# Listing and revoking


async def list_file_shares(db: AsyncConnection, *, actor: Actor, file_id: UUID, page: PageRequest) -> Page[ShareOut]:
    """A file's shares, newest first, live or not (never a link's token).

    Raises:
        FileNotFound, NotFileOwner: as owned_file.
    """
    await owned_file(db, actor=actor, file_id=file_id)
    rows = (
        await db.execute(keyset(_share_query().where(shared_files.c.file_id == file_id), shared_files.c.id, page))
    ).all()
    return make_page([_out(row) for row in rows], page)


async def list_album_shares(db: AsyncConnection, *, actor: Actor, album_id: UUID, page: PageRequest) -> Page[ShareOut]:
    """An album's shares, newest first, live or not (never a link's token).

    Raises:
        AlbumNotFound, NotAlbumOwner: as access_own_album.
    """
    await access_own_album(db, actor=actor, album_id=album_id)
    query = _share_query().where(shared_files.c.album_id == album_id)
    rows = (await db.execute(keyset(query, shared_files.c.id, page))).all()
    return make_page([_out(row) for row in rows], page)


async def do_revoke_share(db: AsyncConnection, *, actor: Actor, share_id: UUID) -> None:
    """Revoke a share at once (again: it stays revoked as it was).

    Raises:
        ShareNotFound: no such share, or one the actor neither made nor received.
        NotShareOwner: a share to the actor: only the person who shared revokes it.
    """
    revoked = (
        await db.execute(
            update(shared_files)
            .where(shared_files.c.id == share_id, shared_files.c.owner_id == actor.user_id)
            .values(revoked_at=func.coalesce(shared_files.c.revoked_at, func.now()))
            .returning(shared_files.c.id)
        )
    ).one_or_none()
    if revoked is not None:
        return
    # Row-level security shows the actor the shares they made or received.
    seen = (await db.execute(select(shared_files.c.id).where(shared_files.c.id == share_id))).one_or_none()
    raise NotShareOwner if seen is not None else ShareNotFound


async def list_shared_with_me(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[SharedWithMeOut]:
    """The live shares to the actor, newest first, each with its file or album."""
    query = _share_query().where(shared_files.c.shared_with == actor.user_id, _IS_LIVE)
    rows = (await db.execute(keyset(query, shared_files.c.id, page))).all()
    paged: Page[AnyRow] = make_page(list(rows), page)
    files_shown = await file_outs(
        db, ids=[row.file_id for row in paged.items if row.file_id is not None], viewer=actor.user_id
    )
    album_ids = [row.album_id for row in paged.items if row.album_id is not None]
    albums_shown: dict[UUID, AlbumOut] = {}
    for album_id in album_ids:
        album = await find_album(db, album_id=album_id)
        if album is not None:
            albums_shown[album_id] = album_out(album)
    items = [
        SharedWithMeOut(
            **_out(row).model_dump(),
            file=files_shown.get(row.file_id) if row.file_id is not None else None,
            album=albums_shown.get(row.album_id) if row.album_id is not None else None,
        )
        for row in paged.items
        # A file or album gone since (deleted) is left out, not shown empty.
        if (row.file_id is not None and row.file_id in files_shown)
        or (row.album_id is not None and row.album_id in albums_shown)
    ]
    return Page[SharedWithMeOut](items=items, next=paged.next)


# Links


@asynccontextmanager
async def link_transaction(engine: AsyncEngine, *, token: str) -> AsyncIterator[AsyncConnection]:
    """A transaction on the server's pool acting for no one, through a share link: row-level
    security shows it what a live link shares and nothing else. Nothing is published in it."""
    async with engine.begin() as db:
        await db.execute(_SET_LINK, {"token_hash": sha256(token).hex()})
        yield db


def link_thumbnail_url(token: str, file_id: UUID, size: str) -> str:
    return f"{link_url(token)}/files/{file_id}/thumbnails/{size}"


def _through_link(file: FileOut, token: str, content: str) -> FileOut:
    """A file as a link shows it: its bytes and thumbnails at addresses through the link."""
    thumbnails = [
        thumbnail.model_copy(update={"url": link_thumbnail_url(token, file.id, thumbnail.size)})
        for thumbnail in file.thumbnails
    ]
    urls = FileUrls(content=content, thumbnails={t.size: t.url for t in thumbnails} if thumbnails else None)
    return file.model_copy(update={"urls": urls, "thumbnails": thumbnails})


async def open_link(db: AsyncConnection, *, token: str) -> LinkOut:
    """What a live link shares, in a link_transaction of its token.

    Raises:
        ShareLinkNotFound: a wrong, expired or revoked link, or its file or album is gone.
    """
    token_hash = sha256(token)
    shared = (await db.execute(_FILE_BY_LINK, {"token_hash": token_hash})).one_or_none()
    if shared is not None:
        shown = await file_outs(db, ids=[shared.file_id], viewer=None)
        if shared.file_id not in shown:
            raise ShareLinkNotFound
        file = _through_link(shown[shared.file_id], token, link_content_url(token))
        return LinkOut(permission=shared.permission, expires_at=shared.expires_at, file=file, album=None)
    shared = (await db.execute(_ALBUM_BY_LINK, {"token_hash": token_hash})).one_or_none()
    album = await find_album(db, album_id=shared.album_id) if shared is not None else None
    if shared is None or album is None:
        raise ShareLinkNotFound
    items = [
        item.model_copy(update={"file": _through_link(item.file, token, link_content_url(token, item.file_id))})
        for item in await album_items_of(db, album_id=album.id, viewer=None)
    ]
    detail = AlbumDetail(**album_out(album).model_dump(), items=items)
    return LinkOut(permission=shared.permission, expires_at=shared.expires_at, file=None, album=detail)


async def link_file(db: AsyncConnection, *, token: str, file_id: UUID | None) -> UUID:
    """The file a live link gives to download, in a link_transaction of its token: the
    file of a file's link (`file_id` None or its id), or a file of an album's.

    Raises:
        ShareLinkNotFound: a wrong, expired or revoked link, or its file or album is gone;
            or a file the link does not give.
    """
    token_hash = sha256(token)
    shared = (await db.execute(_FILE_BY_LINK, {"token_hash": token_hash})).one_or_none()
    if shared is not None and file_id in (None, shared.file_id):
        found: UUID = shared.file_id
        return found
    if shared is None and file_id is not None:
        album = (await db.execute(_ALBUM_BY_LINK, {"token_hash": token_hash})).one_or_none()
        if album is not None:
            held = await db.execute(
                select(album_items.c.file_id).where(
                    album_items.c.album_id == album.album_id, album_items.c.file_id == file_id
                )
            )
            if held.one_or_none() is not None:
                return file_id
    raise ShareLinkNotFound
