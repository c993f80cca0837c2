"""The search API: GET /v1/users/search ("Find people")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from rapport.kernel.deps import CallerDep
from rapport.kernel.pagination import Page
from rapport.social import service
from rapport.social.schemas_phones import PhoneLookupOut, PhoneLookupRequest

router = APIRouter(prefix="/v1", tags=["social"])


@router.get("/users/search", response_model=Page[service.ProfileMatch])
async def search_users(
    caller: CallerDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=service.SEARCH_MAX_QUERY_LENGTH,
            description="Words to find in usernames, display names and bios; each matches "
            "the start of a word. `@name` looks for a username.",
        ),
    ],
    limit: Annotated[
        int, Query(ge=1, le=service.SEARCH_MAX_LIMIT, description="Results per page.")
    ] = service.SEARCH_DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=64, description="The `next` value of the previous page.")] = None,
) -> Page[service.ProfileMatch]:
    """Find people by username, display name and bio, best match first.

    Ranked: username equal to the query, username starting with it, every word a word of
    the name, every word starting a word of the name, then matches involving the bio.
    Only profiles the caller may see are searched, never the caller's own, and never
    anyone who blocked the caller or whom the caller blocked. Each part of the ranking
    looks at a bounded number of candidates, so a very common query (one letter) shows
    a selection of its matches: type more to narrow it.

    Errors: `invalid-search-query` (422) when the query has no letter or digit or more
    than ten words; `invalid-cursor` (400) for a cursor of another query."""
    async with caller.transaction(tolerate_lag=True) as (db, actor):
        return await service.search_profiles(db, actor=actor, query=q, limit=limit, cursor=cursor)


@router.post("/users/lookup-phones", response_model=PhoneLookupOut)
async def lookup_phones(body: PhoneLookupRequest, caller: CallerDep) -> PhoneLookupOut:
    """Find people by phone number (from an address book): the accounts behind these
    numbers whose owners let the caller find them that way (`phone_discoverability` in
    `PATCH /v1/settings`: everyone, or their contacts; nobody by default). A number not in
    the answer may have no account, or one whose owner keeps it out of lookups, or one
    that blocks the caller: the answer never tells which.

    Each number costs one of the caller's daily lookups; past them `429
    too-many-attempts`. Numbers are in international format, or national ones read as
    numbers of `region`; one that is not a valid number is refused (422) with its position."""
    async with caller.transaction() as (db, actor):
        return await service.lookup_phones(db, rt=caller.runtime, actor=actor, numbers=body.normalised())
