"""Messaging's hot routes in the app's hot lane (rapport.kernel.hot_routes): sending,
history, the conversation list and search, the requests a messaging app makes most.

Each handler does what the FastAPI route of the same path does (rapport.messaging.api),
with the same models and services, for requests that are plainly well formed; for any
other it returns None and the FastAPI route answers, so that every refusal of a malformed
request is FastAPI's own. What each accepts is therefore deliberately narrow: canonical
UUIDs, plain decimal limits, cursors of the characters this server issues.
"""

from __future__ import annotations

import re
from uuid import UUID

from pydantic import ValidationError

from rapport.kernel.actor import Actor
from rapport.kernel.errors import ValidationFailed
from rapport.kernel.hot_routes import HotAnswer, HotRequest, HotRoute
from rapport.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT
from rapport.kernel.runtime import Runtime
from rapport.messaging import schemas as s
from rapport.messaging import service

_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_LIMIT = re.compile(r"^[1-9][0-9]{0,3}$")
_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,200}$")

ONE_ANCHOR = "Give at most one of `before`, `after` and `around`."


def one_anchor(before: UUID | None, after: UUID | None, around: UUID | None) -> None:
    """History pages from one place at a time.

    Raises:
        ValidationFailed: more than one anchor.
    """
    if sum(anchor is not None for anchor in (before, after, around)) > 1:
        raise ValidationFailed(ONE_ANCHOR)


async def _caller(request: HotRequest) -> tuple[Runtime, Actor] | None:
    """The runtime and who calls, or None without a plain bearer token (FastAPI says 401).

    Raises:
        InvalidToken: a token that is malformed, forged or expired, or a key that does not hold.
    """
    token = request.bearer()
    if token is None:
        return None
    runtime: Runtime = request.app_state.runtime
    return runtime, await runtime.authenticate(runtime, token).actor()


def _limit(query: dict[str, str], *, default: int = DEFAULT_LIMIT, most: int = MAX_LIMIT) -> int | None:
    given = query.get("limit")
    if given is None:
        return default
    if not _LIMIT.match(given) or int(given) > most:
        return None
    return int(given)


def _anchor(query: dict[str, str], name: str) -> tuple[bool, UUID | None]:
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
    anchors = [_anchor(query, name) for name in ("before", "after", "around")]
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
    """A search with a query and at most a limit and a cursor; filters go to FastAPI."""
    query = request.query("q", "limit", "cursor")
    if query is None or request.body:
        return None
    words = query.get("q")
    limit = _limit(query, default=service.SEARCH_DEFAULT_LIMIT, most=service.SEARCH_MAX_LIMIT)
    cursor = query.get("cursor")
    plain = words is not None and 0 < len(words) <= service.SEARCH_MAX_QUERY_LENGTH
    if not plain or limit is None or (cursor is not None and not _CURSOR.match(cursor)):
        return None
    caller = await _caller(request)
    if caller is None:
        return None
    runtime, actor = caller
    page = await service.search_messages(runtime, actor, query=str(words), limit=limit, cursor=cursor)
    return HotAnswer(200, page.encode())


HOT_ROUTES = (
    HotRoute("POST", "/v1/conversations/{conversation_id}/messages", send_message),
    HotRoute("GET", "/v1/conversations/{conversation_id}/messages", read_history),
    HotRoute("GET", "/v1/conversations", list_conversations),
    HotRoute("GET", "/v1/messages/search", search_messages),
)
