"""The message search API: GET /v1/messages/search."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from rapport.kernel.deps import CallerDep, RuntimeDep
from rapport.messaging import service
from rapport.messaging.schemas import MessageType

router = APIRouter(tags=["messaging"])

JSON = "application/json"


@router.get("/messages/search", response_model=service.MessageSearchPage)
async def search_messages(
    caller: CallerDep,
    runtime: RuntimeDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=service.SEARCH_MAX_QUERY_LENGTH,
            description='Words to find. `"a phrase"` finds the words together, `or` either side, `-word` '
            "leaves out messages with it; the last word also finds longer words it starts.",
        ),
    ],
    conversation_id: Annotated[UUID | None, Query(description="Only in this conversation.")] = None,
    sender_id: Annotated[UUID | None, Query(description="Only messages this person sent.")] = None,
    since: Annotated[datetime | None, Query(description="Only messages sent at or after this moment.")] = None,
    until: Annotated[datetime | None, Query(description="Only messages sent at or before this moment.")] = None,
    message_type: Annotated[MessageType | None, Query(alias="type", description="Only messages of this type.")] = None,
    limit: Annotated[
        int, Query(ge=1, le=service.SEARCH_MAX_LIMIT, description="Results per page.")
    ] = service.SEARCH_DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=64, description="The `next` value of the previous page.")] = None,
) -> Response:
    """Search every message the caller may see: in the conversations they take part in
    (or took part in, up to leaving), from joining where earlier history is withheld,
    never messages deleted for everyone or hidden for themself.

    Best match first (ts_rank_cd, favouring short messages with the words close
    together), then newest. Only the newest 300 matches are ranked, and a search that
    finds them slowly (a phrase of common words, say) answers with what it found in about
    30 ms of looking; either way `older_until` says there are older matches, and passing
    it as `until` searches them. Each result is the message as history shows it, with its
    `rank` and a `snippet` (escaped HTML, matches in `<mark>`).

    Messages of end-to-end encrypted conversations are never found: Rapport holds only
    their ciphertext, so it has no words of theirs to search; a client searches them on
    the device that decrypted them.

    Errors: `invalid-message-search` (422) for a query with no word to find (only spaces or
    punctuation, or only `-excluded` words); `validation-error` (422) for an empty query,
    one over 200 characters, `since` after `until` or an unknown `type`; `invalid-cursor`
    (400) for a cursor that is not one, or belongs to another search or other filters."""
    filters = service.SearchFilters(
        conversation_id=conversation_id, sender_id=sender_id, since=since, until=until, type=message_type
    )
    page = await service.search_messages(
        runtime, await caller.actor(), query=q, filters=filters, limit=limit, cursor=cursor
    )
    return Response(page, media_type=JSON)
