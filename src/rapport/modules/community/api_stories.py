"""Community routes: stories, their feed, and tags."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import Page
from rapport.modules.community import schemas_stories as s
from rapport.modules.community import service

router = APIRouter(prefix="/v1", tags=["community"])


@router.post("/stories", status_code=status.HTTP_201_CREATED, response_model=s.StoryOut)
async def create_story(body: s.StoryCreate, caller: CallerDep) -> s.StoryOut:
    """Write a story: Markdown content, seen by you alone (private, the default), by your
    contacts (friends) or by everyone signed in (public), with up to 10 tags."""
    async with caller.transaction() as (db, actor):
        return await service.do_create_story(db, actor=actor, story=body)


@router.get("/stories/feed", response_model=Page[s.StoryOut])
async def story_feed(
    caller: CallerDep,
    page: PageDep,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description='Words of the title or content ("quoted phrase", or, -word).'),
    ] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=64, description="Only stories with this tag.")] = None,
    author_id: Annotated[UUID | None, Query(description="Only this author's stories.")] = None,
) -> Page[s.StoryOut]:
    """The stories you may read, newest first: yours, your contacts' friends-only ones and
    everyone's public ones (never across a block)."""
    async with caller.transaction() as (db, actor):
        return await service.list_feed(db, actor=actor, page=page, q=q, tag=tag, author_id=author_id)


@router.get("/stories/{story_id}", response_model=s.StoryOut)
async def get_story(story_id: UUID, caller: CallerDep) -> s.StoryOut:
    """A story you may read (404 for one you may not: it is not told apart from none)."""
    async with caller.transaction() as (db, actor):
        return await service.access_story(db, actor=actor, story_id=story_id)


@router.patch("/stories/{story_id}", response_model=s.StoryOut)
async def update_story(story_id: UUID, body: s.StoryUpdate, caller: CallerDep) -> s.StoryOut:
    """Change your story; `tags` replaces its tags."""
    async with caller.transaction() as (db, actor):
        return await service.do_update_story(db, actor=actor, story_id=story_id, changes=body)


@router.delete("/stories/{story_id}", **NO_CONTENT)
async def delete_story(story_id: UUID, caller: CallerDep) -> None:
    """Remove your story."""
    async with caller.transaction() as (db, actor):
        await service.do_delete_story(db, actor=actor, story_id=story_id)


@router.get("/tags", response_model=s.TagPage)
async def list_tags(
    caller: CallerDep,
    prefix: Annotated[str | None, Query(min_length=1, max_length=64, description="Tags starting so.")] = None,
    after: Annotated[
        str | None, Query(min_length=1, max_length=64, description="The `next` of the page before.")
    ] = None,
) -> s.TagPage:
    """The tags in use where you can see them (on stories you may read, or yours), in
    alphabetical order, 100 a page."""
    async with caller.transaction() as (db, actor):
        return await service.list_tags(db, actor=actor, prefix=prefix, after=after)


@router.get("/me/tags", response_model=s.TagsOut)
async def get_my_tags(caller: CallerDep) -> s.TagsOut:
    """Your tags: your interests, seen by you alone."""
    async with caller.transaction() as (db, actor):
        return await service.get_my_tags(db, actor=actor)


@router.put("/me/tags", response_model=s.TagsOut)
async def set_my_tags(body: s.TagsIn, caller: CallerDep) -> s.TagsOut:
    """Replace your tags (up to 50; case does not matter)."""
    async with caller.transaction() as (db, actor):
        return await service.do_set_my_tags(db, actor=actor, tags=body.tags)
