"""Feature vectors kept in step with community tags: community publishes
`community.tags_changed` when a person's tags change (PUT /v1/me/tags), and this reader of
the outbox makes each such person's vector again (rapport.modules.matching._features).
The two product modules share no code (the import contract `modules`): the event, by its
name, is all that passes between them, after the change has committed, so a slow or
failing refresh never holds up the person setting their tags.

Its cursor (matching.cursor), lock and loop are rapport.kernel.outbox.CursorReader's."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.db import SystemEngine
from rapport.kernel.outbox import Event
from rapport.kernel.outbox.readers import CursorReader, ReaderLoop
from rapport.modules.matching import _features

# Published by rapport.modules.community to the person's own scope.
TAGS_CHANGED_EVENT = "community.tags_changed"


async def _refresh(db: AsyncConnection, events: list[Event]) -> int:
    """Each person whose tags changed gets their vector made again, once per batch."""
    people = dict.fromkeys(event.scope_id for event in events if event.scope_kind == "user")
    for user_id in people:
        await _features.do_refresh_features(db, user_id=user_id)
    return len(people)


# Its lock is "matching" in ASCII.
READER = CursorReader(
    name="matching-features",
    cursor_table="matching.cursor",
    cursor="tag-changes",
    lock_key=0x6D61746368696E67,
    types=(TAGS_CHANGED_EVENT,),
    handle=_refresh,
)


async def refresh_heard_features(engine: SystemEngine) -> int:
    """Batches until the reader has read past every tag change committed when it was
    called; how many people's vectors it made again."""
    return await READER.read_all(engine)


class FeatureRefresher(ReaderLoop):
    """The reader's loop beside the job worker (rapport.kernel.outbox.ReaderLoop)."""

    def __init__(self, engine: SystemEngine) -> None:
        super().__init__(READER, engine)
