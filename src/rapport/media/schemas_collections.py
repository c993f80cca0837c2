"""Request and response shapes of albums, shares, versions, comments and profile photos.

Files inside them are shown as rapport.media.schemas.FileOut, as the caller sees them;
through a share link, with the link's own addresses (`urls`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from rapport.kernel.schemas import JsonUuid, NotNull, PatchBody, Strict, Text
from rapport.media.models import Permission
from rapport.media.schemas import FileOut

# The CHECKs of migration 2026_11_30_0020 say the same of the text.
MAX_ALBUM_ITEMS = 1000
MAX_PROFILE_PHOTOS = 6
# A share, by link or to a person, lives at most a year.
MAX_SHARE_SECONDS = 366 * 24 * 3600

AlbumTitle = Annotated[str, Text(200, name=True)]
AlbumDescription = Annotated[str, Text(2000, multiline=True)]
Caption = Annotated[str, Text(2000, multiline=True)]
CommentBody = Annotated[str, Text(4000, multiline=True)]
ShareSeconds = Annotated[int, Field(ge=60, le=MAX_SHARE_SECONDS, description="How long the share lasts, in seconds.")]


# Albums


class AlbumCreate(Strict):
    title: AlbumTitle
    description: AlbumDescription | None = None


class AlbumUpdate(PatchBody):
    title: NotNull[AlbumTitle] = None
    description: AlbumDescription | None = None
    cover_file_id: JsonUuid | None = Field(default=None, description="One of the album's files; null: none.")


class AlbumItemAdd(Strict):
    file_id: JsonUuid = Field(description="One of the caller's own images or videos.")
    position: Annotated[int, Field(ge=1, le=MAX_ALBUM_ITEMS)] | None = Field(
        default=None, description="1 is first; those from there on move down one. Left out: last."
    )
    caption: Caption | None = None


class FileOrder(Strict):
    file_ids: list[JsonUuid] = Field(
        max_length=MAX_ALBUM_ITEMS, description="Every current file, each once, in the new order."
    )


class AlbumOut(BaseModel):
    id: UUID
    owner_id: UUID
    title: str
    description: str | None
    cover_file_id: UUID | None
    item_count: int
    created_at: datetime
    updated_at: datetime


class AlbumItemOut(BaseModel):
    file_id: UUID
    position: int = Field(description="1 is first; positions run without gaps.")
    caption: str | None
    added_at: datetime
    file: FileOut


class AlbumDetail(AlbumOut):
    items: list[AlbumItemOut] = Field(description="In order.")


# Shares


class ShareCreate(Strict):
    """A share with one person (`user_id`), or a link anyone holding it may open without
    signing in (`link: true`, which must expire)."""

    user_id: JsonUuid | None = Field(default=None, description="The person to share with.")
    link: Literal[True] | None = Field(default=None, description="Make a link instead; its token is shown once.")
    permission: Permission = Field(default="view", description="view; or comment: view and comment (people only).")
    expires_in_seconds: ShareSeconds | None = Field(
        default=None, description="Required for a link; for a person, left out: until revoked."
    )

    @model_validator(mode="after")
    def _one_audience(self) -> ShareCreate:
        if (self.user_id is None) == (self.link is None):
            raise ValueError("give user_id or link: true, not both")
        if self.link and self.expires_in_seconds is None:
            raise ValueError("a link must expire: give expires_in_seconds")
        if self.link and self.permission == "comment":
            raise ValueError("a link shares for viewing only: comments need a person")
        return self


class ShareOut(BaseModel):
    id: UUID
    owner_id: UUID
    file_id: UUID | None
    album_id: UUID | None
    shared_with: UUID | None = Field(description="The person; null for a link.")
    is_link: bool
    permission: Permission
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    is_live: bool = Field(description="Neither revoked nor expired.")


class ShareCreated(ShareOut):
    token: str | None = Field(description="A link's token, shown here only: Rapport keeps its hash. Null for a person.")
    url: str | None = Field(description="Where a link opens, without signing in: GET it. Null for a person.")


class SharedWithMeOut(ShareOut):
    file: FileOut | None = Field(description="The file shared, when it is a file.")
    album: AlbumOut | None = Field(description="The album shared, when it is an album.")


class LinkOut(BaseModel):
    """What a share link opens: a file, or an album and its files, with addresses that
    work through the link."""

    permission: Permission
    expires_at: datetime | None
    file: FileOut | None
    album: AlbumDetail | None


# Versions


class VersionOut(BaseModel):
    version: int
    size_bytes: int
    content_type: str
    created_by: UUID | None
    created_at: datetime
    is_current: bool
    content_url: str


class VersionList(BaseModel):
    items: list[VersionOut] = Field(description="Newest first, the current version at the head.")


# Comments


class CommentCreate(Strict):
    body: CommentBody
    attachment_file_id: JsonUuid | None = Field(default=None, description="One of the caller's own files.")
    parent_id: JsonUuid | None = Field(default=None, description="The comment this one answers (on the same file).")


class CommentUpdate(PatchBody):
    body: NotNull[CommentBody] = None


class CommentOut(BaseModel):
    id: UUID
    file_id: UUID
    author_id: UUID
    body: str
    attachment_file_id: UUID | None
    parent_id: UUID | None
    created_at: datetime
    edited_at: datetime | None


# Profile photos


class ProfilePhotoSet(Strict):
    file_id: JsonUuid = Field(description="One of the caller's own images.")


class ProfilePhotoOut(BaseModel):
    position: int = Field(description="1 is first; at most six, without gaps.")
    file_id: UUID
    created_at: datetime
    file: FileOut


class ProfilePhotos(BaseModel):
    user_id: UUID
    items: list[ProfilePhotoOut] = Field(description="In order.")
