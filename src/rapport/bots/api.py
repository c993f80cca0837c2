"""Bots: accounts that sign in with an API key, take part in conversations (its owner, an
administrator, or whoever holds `chat:robot:add` there adds one with
`POST /v1/conversations/{id}/participants`), hear their messages through a signed webhook
and answer through the API as themselves.

Each message a bot is to hear (every one of its conversations', or only those that
mention it) is POSTed to its webhook as JSON `{id, event_id, type, bot_id,
conversation_id, created_at, message}`, with the headers `Rapport-Delivery: <id>` and
`Rapport-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the
webhook secret>` (for a day after `POST /v1/bots/{id}/webhook-secret` replaced the secret,
a second `v1=` under the previous one). A delivery that gets no 2xx is retried with
backoff; each attempt is listed in `GET /v1/bots/{id}/interactions`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from rapport.bots import schemas as s
from rapport.bots import service
from rapport.kernel.db import system_transaction
from rapport.kernel.deps import NO_CONTENT, CallerDep, PageDep
from rapport.kernel.pagination import Page

router = APIRouter(prefix="/v1", tags=["bots"])


@router.post("/bots", response_model=s.BotCreated, status_code=status.HTTP_201_CREATED)
async def create_bot(body: s.BotCreate, caller: CallerDep) -> s.BotCreated:
    """Make a bot (needs `chat:robot:manage`; `platform: true`, administrators only). The
    answer holds its API key and its webhook secret, shown only this once. Through a
    signed-in session, not an API key.

    Errors: 403 `permission-required` or `platform-admin-required`; 422
    `webhook-url-refused` (production: https to a public host only)."""
    # The person is checked in their own transaction; making the account is system work,
    # which checks them again (rapport.bots._bots).
    async with caller.transaction(session_required=True) as (db, actor):
        await service.check_may_make_bot(db, actor=actor, body=body, settings=caller.runtime.settings)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_create_bot(db, rt=caller.runtime, actor=actor, body=body, client=caller.client)


@router.get("/bots", response_model=Page[s.BotOut])
async def list_bots(caller: CallerDep, page: PageDep) -> Page[s.BotOut]:
    """The bots you manage (an administrator: every bot), newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_bots(db, actor=actor, page=page)


@router.get("/bots/{bot_id}", response_model=s.BotOut)
async def get_bot(bot_id: UUID, caller: CallerDep) -> s.BotOut:
    """One bot you manage. Errors: 404 `bot-not-found`."""
    async with caller.transaction() as (db, actor):
        return await service.access_bot(db, actor=actor, bot_id=bot_id)


@router.patch("/bots/{bot_id}", response_model=s.BotOut)
async def update_bot(bot_id: UUID, body: s.BotUpdate, caller: CallerDep) -> s.BotOut:
    """Change a bot you manage: its name (its profile's too), description, webhook, what it
    receives, whether guests see its messages, or its status (`disabled`: nothing is
    delivered to it). Through a signed-in session.

    Errors: 404 `bot-not-found`; 422 `webhook-url-refused`."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.access_bot(db, actor=actor, bot_id=bot_id)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_update_bot(db, rt=caller.runtime, actor=actor, bot_id=bot_id, changes=body)


@router.delete("/bots/{bot_id}", **NO_CONTENT)
async def delete_bot(bot_id: UUID, caller: CallerDep) -> None:
    """Delete a bot you manage: it leaves every conversation it takes part in, its account
    closes (its keys stop working at once), and its deliveries' records go, with those
    still waiting to be sent; its messages stay. Through a signed-in session.

    Errors: 404 `bot-not-found`."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.access_bot(db, actor=actor, bot_id=bot_id)
    async with system_transaction(caller.runtime.system_engine) as db:
        await service.do_delete_bot(db, actor=actor, bot_id=bot_id, client=caller.client)


@router.post("/bots/{bot_id}/keys", response_model=s.BotKeyOut, status_code=status.HTTP_201_CREATED)
async def rotate_bot_key(bot_id: UUID, caller: CallerDep) -> s.BotKeyOut:
    """A new API key for a bot you manage, shown only this once; its earlier keys stop
    working and the streams they opened close. Through a signed-in session.

    Errors: 404 `bot-not-found`."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.access_bot(db, actor=actor, bot_id=bot_id)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_rotate_key(db, actor=actor, bot_id=bot_id, client=caller.client)


@router.post("/bots/{bot_id}/webhook-secret", response_model=s.WebhookSecretOut)
async def rotate_webhook_secret(bot_id: UUID, caller: CallerDep) -> s.WebhookSecretOut:
    """A new webhook secret for a bot you manage, shown only this once. Deliveries from now
    on are signed with it; for 24 hours they are also signed with the secret it replaces
    (`Rapport-Signature: t=…,v1=<new>,v1=<previous>`), so the receiver can switch to the
    new secret at any moment in between without refusing a delivery. A second rotation
    within those hours drops the oldest secret. Through a signed-in session.

    Errors: 404 `bot-not-found`."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.access_bot(db, actor=actor, bot_id=bot_id)
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_rotate_webhook_secret(db, rt=caller.runtime, actor=actor, bot_id=bot_id)


@router.get("/bots/{bot_id}/interactions", response_model=Page[s.InteractionOut])
async def list_interactions(
    bot_id: UUID,
    caller: CallerDep,
    page: PageDep,
    interaction_status: Annotated[
        s.InteractionStatus | None, Query(alias="status", description="Only deliveries in this state.")
    ] = None,
) -> Page[s.InteractionOut]:
    """What was delivered to a bot you manage, newest first: each message's body, every
    attempt (status, HTTP status, time taken, error) and the webhook's last answer.

    Errors: 404 `bot-not-found`."""
    async with caller.transaction() as (db, actor):
        return await service.list_interactions(db, actor=actor, bot_id=bot_id, page=page, status=interaction_status)
