"""Messaging's hot routes in the app's hot lane (rapport.kernel.hot_routes): sending,
history, the conversation list, search and a conversation's participants, the requests a
messaging app makes most.

Each handler does what the FastAPI route of the same path does (rapport.messaging.api),
with the same models and services, for requests that are plainly well formed; for any
other it returns None and the FastAPI route answers, so that every refusal of a malformed
request is FastAPI's own. What each accepts is therefore deliberately narrow: canonical
UUIDs, plain decimal limits, cursors of the characters this server issues.
"""

from __future__ import annotations

import re
from typing import get_args
from uuid import UUID

from pydantic import ValidationError

from rapport.kernel.actor import Actor, Credential
from rapport.kernel.errors import ValidationFailed
from rapport.kernel.hot_routes import HotAnswer, HotRequest, HotRoute
from rapport.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest, decode_cursor
from rapport.kernel.runtime import Runtime
from rapport.messaging import schemas as s
from rapport.messaging import service
from rapport.messaging.schemas_conversations import ParticipantStatus

_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_LIMIT = re.compile(r"^[1-9][0-9]{0,3}$")
_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
# The cursors of kernel.deps.PageDep and of search, which FastAPI takes up to 64 characters.
_SHORT_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PARTICIPANT_STATUSES: dict[str, ParticipantStatus] = {status: status for status in get_args(ParticipantStatus)}

ONE_ANCHOR = "Give at most one of `before`, `after` and `around`."


def one_anchor(before: UUID | None, after: UUID | None, around: UUID | None) -> None:
    """History pages from one place at a time.

    Raises:
        ValidationFailed: more than one anchor.
    """
    if sum(anchor is not None for anchor in (before, after, around)) > 1:
        raise ValidationFailed(ONE_ANCHOR)


def _credential(request: HotRequest) -> Credential | None:
    """The caller's credential, or None without a plain bearer token (FastAPI says 401):
    what kernel.deps.get_caller checks, for a route that works in the caller's transaction.

    Raises:
        InvalidToken: an access token that is malformed, forged or expired.
    """
    token = request.bearer()
    if token is None:
        return None
    runtime: Runtime = request.app_state.runtime
    return runtime.authenticate(runtime, token)


async def _caller(request: HotRequest) -> tuple[Runtime, Actor] | None:
    """The runtime and who calls, or None without a plain bearer token (FastAPI says 401).

    Raises:
        InvalidToken: a token that is malformed, forged or expired, or a key that does not hold.
    """
    credential = _credential(request)
    if credential is None:
        return None
    runtime: Runtime = request.app_state.runtime
    return runtime, await credential.actor()


def _limit(query: dict[str, str], *, default: int = DEFAULT_LIMIT, most: int = MAX_LIMIT) -> int | None:
    given = query.get("limit")
    if given is None:
        return default
    if not _LIMIT.match(given) or int(given) > most:
        return None
    return int(given)


def _optional_uuid(query: dict[str, str], name: str) -> tuple[bool, UUID | None]:
    """(plain, value): a canonical UUID or absent is plain; anything else is FastAPI's."""
    given = query.get(name)
    if given is None:
        return True, None
    if not _CANONICAL_UUID.match(given):
        return False, None
    return True, UUID(given)


async def send_message(request: HotRequest) -> HotAnswer | None:
    conversation_id = request.uuid("conversation_id")
    payload = request.json_object()
    if conversation_id is None or payload is None or request.query() is None:
        return None
    try:
        body = s.SendMessage.model_validate(payload)
    except ValidationError:
        return None
    caller = await _caller(request)
    if caller is None:
        return None
    runtime, actor = caller
    created, message = await service.send_message(runtime, actor, conversation_id=conversation_id, body=body)
    return HotAnswer(201 if created else 200, message.encode())


async def read_history(request: HotRequest) -> HotAnswer | None:
    conversation_id = request.uuid("conversation_id")
    query = request.query("before", "after", "around", "limit")
    if conversation_id is None or query is None or request.body:
        return None
    anchors = [_optional_uuid(query, name) for name in ("before", "after", "around")]
    limit = _limit(query)
    if limit is None or not all(plain for plain, _ in anchors):
        return None
    caller = await _caller(request)
    if caller is None:
        return None
    runtime, actor = caller
    before, after, around = (value for _, value in anchors)
    one_anchor(before, after, around)
    page = await service.read_history(
        runtime, actor, conversation_id=conversation_id, before=before, after=after, around=around, limit=limit
    )
    return HotAnswer(200, page.encode())


async def list_conversations(request: HotRequest) -> HotAnswer | None:
    query = request.query("limit", "cursor")
    if query is None or request.body:
        return None
    limit = _limit(query)
    cursor = query.get("cursor")
    if limit is None or (cursor is not None and not _CURSOR.match(cursor)):
        return None
    caller = await _caller(request)
    if caller is None:
        return None
    runtime, actor = caller
    page = await service.list_conversations(runtime, actor, cursor=cursor, limit=limit)
    return HotAnswer(200, page.encode())


async def search_messages(request: HotRequest) -> HotAnswer | None:
    """A search with a query and at most a limit, a cursor, a conversation and a sender;
    the other filters (moments, a type) go to FastAPI."""
    query = request.query("q", "limit", "cursor", "conversation_id", "sender_id")
    if query is None or request.body:
        return None
    words = query.get("q")
    limit = _limit(query, default=service.SEARCH_DEFAULT_LIMIT, most=service.SEARCH_MAX_LIMIT)
    cursor = query.get("cursor")
    (in_plain, conversation_id), (by_plain, sender_id) = (
        _optional_uuid(query, name) for name in ("conversation_id", "sender_id")
    )
    plain = words is not None and 0 < len(words) <= service.SEARCH_MAX_QUERY_LENGTH and in_plain and by_plain
    if not plain or limit is None or (cursor is not None and not _SHORT_CURSOR.match(cursor)):
        return None
    caller = await _caller(request)
    if caller is None:
        return None
    runtime, actor = caller
    filters = service.SearchFilters(conversation_id=conversation_id, sender_id=sender_id)
    page = await service.search_messages(runtime, actor, query=str(words), filters=filters, limit=limit, cursor=cursor)
    return HotAnswer(200, page.encode())


async def list_participants(request: HotRequest) -> HotAnswer | None:
    """A conversation's participants, with at most a limit, a cursor and a status; in the
    caller's transaction, as the FastAPI route (rapport.messaging.api_conversations)."""
    given_id = request.path_params["conversation_id"]
    query = request.query("limit", "cursor", "status")
    if not _CANONICAL_UUID.match(given_id) or query is None or request.body:
        return None
    limit = _limit(query)
    cursor = query.get("cursor")
    status = query.get("status")
    if limit is None or (cursor is not None and not _SHORT_CURSOR.match(cursor)):
        return None
    if status is not None and status not in _PARTICIPANT_STATUSES:
        return None
    # In the order FastAPI resolves the route's dependencies: the token, then the page.
    credential = _credential(request)
    if credential is None:
        return None
    page = PageRequest(limit=limit, after_id=decode_cursor(cursor) if cursor else None)
    async with credential.transaction(session_required=False) as (db, actor):
        found = await service.list_participants(
            db,
            actor=actor,
            conversation_id=UUID(given_id),
            status=_PARTICIPANT_STATUSES[status] if status else None,
            page=page,
        )
    # As FastAPI writes the route's response model.
    return HotAnswer(200, found.model_dump_json(by_alias=True).encode())


HOT_ROUTES = (
    HotRoute("POST", "/v1/conversations/{conversation_id}/messages", send_message),
    HotRoute("GET", "/v1/conversations/{conversation_id}/messages", read_history),
    HotRoute("GET", "/v1/conversations", list_conversations),
    HotRoute("GET", "/v1/messages/search", search_messages),
    HotRoute("GET", "/v1/conversations/{conversation_id}/participants", list_participants),
)
