"""The tag vocabulary and a person's tags (seed 001 tags, user_tags).

A tag is its name in lower case. Who sees which tag is row-level security's decision
(migration 2026_11_30_0030): a tag is in sight where a story the reader may read, or the
reader's own tags, carry it, so that a tag used only on a private story tells no one else
that it exists. Adding a tag never needs to read the vocabulary (ON CONFLICT DO NOTHING),
and a tag nothing carries any more is removed by trigger."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.outbox import Scope, publish
from rapport.modules.community import models as m
from rapport.modules.community import schemas_stories as s
from rapport.modules.community.errors import InvalidTag

TAGS_PAGE = 100
TAGS_CHANGED_EVENT = "community.tags_changed"


def normalise_tag(value: str) -> str:
    """A tag given in a query string, as the vocabulary spells it.

    Raises:
        InvalidTag: empty, too long, or with a comma or "#".
    """
    try:
        return s.tag_name(value)
    except ValueError as error:
        raise InvalidTag(f"tag {error}") from None


async def ensure_tags(db: AsyncConnection, *, actor: Actor, names: Iterable[str]) -> None:
    """Add the tags the vocabulary lacks, as made by the actor (names already normalised)."""
    rows = [{"name": name, "created_by": actor.user_id} for name in sorted(set(names))]
    if rows:
        await db.execute(insert(m.tags).values(rows).on_conflict_do_nothing(index_elements=[m.tags.c.name]))


async def list_tags(db: AsyncConnection, *, actor: Actor, prefix: str | None, after: str | None) -> s.TagPage:
    """The tags in the actor's sight, alphabetically, those starting with `prefix` only
    when given, a page at a time after the tag `after`.

    Raises:
        InvalidTag: `prefix` or `after` is not a tag's spelling.
    """
    t = m.tags
    query = select(t.c.name).order_by(t.c.name).limit(TAGS_PAGE + 1)
    if prefix is not None:
        query = query.where(t.c.name.startswith(normalise_tag(prefix), autoescape=True))
    if after is not None:
        query = query.where(t.c.name > normalise_tag(after))
    names = list((await db.execute(query)).scalars())
    return s.TagPage(items=names[:TAGS_PAGE], next=names[TAGS_PAGE - 1] if len(names) > TAGS_PAGE else None)


async def get_my_tags(db: AsyncConnection, *, actor: Actor) -> s.TagsOut:
    """The actor's tags, alphabetically."""
    ut = m.user_tags
    rows = await db.execute(select(ut.c.tag).where(ut.c.user_id == actor.user_id).order_by(ut.c.tag))
    return s.TagsOut(tags=list(rows.scalars()))


async def do_set_my_tags(db: AsyncConnection, *, actor: Actor, tags: list[str]) -> s.TagsOut:
    """Replace the actor's tags with these (normalised, distinct); new names join the
    vocabulary. When they change, the actor's own scope receives `community.tags_changed`
    (the tags now): what matching hears to remake their feature vector."""
    ut = m.user_tags
    before = await get_my_tags(db, actor=actor)
    await db.execute(delete(ut).where(ut.c.user_id == actor.user_id, ut.c.tag.not_in(tags)))
    if tags:
        await ensure_tags(db, actor=actor, names=tags)
        await db.execute(
            insert(ut).values([{"user_id": actor.user_id, "tag": tag} for tag in tags]).on_conflict_do_nothing()
        )
    after = await get_my_tags(db, actor=actor)
    if after.tags != before.tags:
        await publish(
            db,
            scope=Scope.user(actor.user_id),
            type=TAGS_CHANGED_EVENT,
            payload={"tags": after.tags},
            actor_id=actor.user_id,
        )
    return after
