"""Stories (seed 001) and their feed.

Who reads a story is row-level security's decision (migration 2026_11_30_0030,
community.story_visible): its author; everyone signed in when public; the author's
contacts when friends-only; no one across a block. So the feed is simply every story the
reader can select, newest first, and a story out of sight is "not found", never
"forbidden". Only the author changes or removes one. The denormalised `tags_cached` is
the database's to keep (by trigger) from community.story_tags."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, delete, func, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.modules.community import models as m
from rapport.modules.community import schemas_stories as s
from rapport.modules.community._tags import ensure_tags, normalise_tag
from rapport.modules.community.errors import NotYourStory, StoryNotFound

st = m.stories
tagged = m.story_tags
# The text search configuration of stories.search: words as written, in any language.
_SIMPLE: ColumnElement[Any] = literal_column("'simple'::regconfig")

_COLUMNS = (
    st.c.id,
    st.c.user_id,
    st.c.title,
    st.c.content,
    st.c.visibility,
    st.c.tags_cached,
    st.c.created_at,
    st.c.updated_at,
)


def _out(row: Any) -> s.StoryOut:
    values = dict(row._mapping)
    values["tags"] = values.pop("tags_cached")
    return s.StoryOut.model_validate(values)


async def _load(db: AsyncConnection, story_id: UUID) -> Any:
    return (await db.execute(select(*_COLUMNS).where(st.c.id == story_id))).one_or_none()


async def access_story(db: AsyncConnection, *, actor: Actor, story_id: UUID) -> s.StoryOut:
    """A story the actor may read.

    Raises:
        StoryNotFound: missing, or out of the actor's sight.
    """
    row = await _load(db, story_id)
    if row is None:
        raise StoryNotFound()
    return _out(row)


async def _own(db: AsyncConnection, actor: Actor, story_id: UUID) -> None:
    # Read before locking: a lock asks for the right to change, which row-level security
    # grants the author alone, and a reader must hear "not yours", not "not found".
    owner = (await db.execute(select(st.c.user_id).where(st.c.id == story_id))).scalar_one_or_none()
    if owner is None:
        raise StoryNotFound()
    if owner != actor.user_id:
        raise NotYourStory()
    await db.execute(select(st.c.id).where(st.c.id == story_id).with_for_update())


async def _set_tags(db: AsyncConnection, *, actor: Actor, story_id: UUID, tags: list[str]) -> None:
    await db.execute(delete(tagged).where(tagged.c.story_id == story_id, tagged.c.tag.not_in(tags)))
    if tags:
        await ensure_tags(db, actor=actor, names=tags)
        existing = set((await db.execute(select(tagged.c.tag).where(tagged.c.story_id == story_id))).scalars())
        new = [tag for tag in tags if tag not in existing]
        if new:
            await db.execute(insert(tagged).values([{"story_id": story_id, "tag": tag} for tag in new]))


async def do_create_story(db: AsyncConnection, *, actor: Actor, story: s.StoryCreate) -> s.StoryOut:
    """Write a story as the actor, with its tags (new names join the vocabulary)."""
    story_id = uuid7()
    await db.execute(
        insert(st).values(
            id=story_id, user_id=actor.user_id, title=story.title, content=story.content, visibility=story.visibility
        )
    )
    await _set_tags(db, actor=actor, story_id=story_id, tags=story.tags)
    return await access_story(db, actor=actor, story_id=story_id)


async def do_update_story(db: AsyncConnection, *, actor: Actor, story_id: UUID, changes: s.StoryUpdate) -> s.StoryOut:
    """Change the actor's own story: the fields sent; `tags` replaces them all.

    Raises:
        StoryNotFound: missing, or out of the actor's sight.
        NotYourStory: someone else's story the actor may read.
    """
    await _own(db, actor, story_id)
    values = changes.changes()
    tags = values.pop("tags", None)
    if values:
        await db.execute(update(st).where(st.c.id == story_id).values(**values))
    if tags is not None:
        await _set_tags(db, actor=actor, story_id=story_id, tags=tags)
    return await access_story(db, actor=actor, story_id=story_id)


async def do_delete_story(db: AsyncConnection, *, actor: Actor, story_id: UUID) -> None:
    """Remove the actor's own story (its tags go with it).

    Raises:
        StoryNotFound: missing, or out of the actor's sight.
        NotYourStory: someone else's story the actor may read.
    """
    await _own(db, actor, story_id)
    await db.execute(delete(st).where(st.c.id == story_id))


async def list_feed(
    db: AsyncConnection,
    *,
    actor: Actor,
    page: PageRequest,
    q: str | None = None,
    tag: str | None = None,
    author_id: UUID | None = None,
) -> Page[s.StoryOut]:
    """The stories the actor may read (their own, their contacts' friends-only ones, the
    public ones), newest first; those matching the words of `q` (web-search syntax:
    quotes, `or`, `-word`), carrying `tag`, or by `author_id` only when given.

    Raises:
        InvalidTag: `tag` is not a tag's spelling.
    """
    query = select(*_COLUMNS)
    if q is not None:
        query = query.where(st.c.search.bool_op("@@")(func.websearch_to_tsquery(_SIMPLE, q)))
    if tag is not None:
        query = query.where(st.c.tags_cached.contains([normalise_tag(tag)]))
    if author_id is not None:
        query = query.where(st.c.user_id == author_id)
    rows = (await db.execute(keyset(query, st.c.id, page))).all()
    return make_page([_out(row) for row in rows], page)


async def count_stories(db: AsyncConnection, *, actor: Actor) -> int:
    """How many stories the actor has written."""
    return (await db.execute(select(func.count()).where(st.c.user_id == actor.user_id))).scalar_one()
