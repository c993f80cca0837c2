"""Bots and their management: making one (an account of kind bot, its API key and its
webhook secret), reading, changing, renewing its key or its webhook secret, deleting it,
and reading what was delivered to it.

Making a bot needs `chat:robot:manage` (platform administrators hold it implicitly); a
bot is then managed by its owner, or by the administrators (a platform bot has no
owner). Reads run in the person's transaction, where row-level security shows only the
bots they manage. Every change touches the bot's account (its name is its profile's, its
keys are identity's), which only system work may: a route checks the person in their own
transaction (`access_bot`, `check_may_make_bot`), then makes the change in a system
transaction, which checks again that they manage the bot (`_managed`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access import service as access_service
from rapport.bots import _webhooks, tasks
from rapport.bots.errors import BotNotFound, WebhookUrlRefused
from rapport.bots.models import bots, robot_interactions
from rapport.bots.schemas import (
    BotCreate,
    BotCreated,
    BotKeyOut,
    BotOut,
    BotUpdate,
    InteractionOut,
    InteractionStatus,
    WebhookSecretOut,
)
from rapport.config import Settings
from rapport.identity import service as identity_service
from rapport.kernel.actor import Actor, Client
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import NotFound, PlatformAdminRequired
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.kernel.runtime import Runtime
from rapport.messaging import service as messaging_service
from rapport.social import service as social_service

MANAGE_PERMISSION = "chat:robot:manage"

# What a bot's answer shows: everything but its secrets (the current one is shown once).
_SECRETS = ("webhook_secret", "previous_webhook_secret")
_SHOWN = [column for column in bots.c if column.name not in _SECRETS]


def _out(row: AnyRow) -> BotOut:
    return BotOut.model_validate(row._mapping)


def _key_out(key: identity_service.BotKey) -> BotKeyOut:
    return BotKeyOut(id=key.id, prefix=key.prefix, key=key.key, created_at=key.created_at)


def _check_webhook(settings: Settings, url: str) -> None:
    if not _webhooks.WebhookRule.for_settings(settings).admits(url):
        raise WebhookUrlRefused(
            "In production a webhook is https, to a public host"
            + (" among RAPPORT_BOT_WEBHOOK_HOSTS." if settings.bot_webhook_hosts else ".")
        )


async def check_may_make_bot(db: AsyncConnection, *, actor: Actor, body: BotCreate, settings: Settings) -> None:
    """In the person's own transaction, before do_create_bot.

    Raises:
        PermissionRequired: the actor does not hold chat:robot:manage.
        PlatformAdminRequired: a platform bot, asked by someone who is no administrator.
        WebhookUrlRefused: a webhook this server does not deliver to.
    """
    await access_service.require_permission(db, actor=actor, permission=MANAGE_PERMISSION)
    if body.platform and not await access_service.is_platform_admin(db):
        raise PlatformAdminRequired("Only the platform's administrators make platform bots.")
    _check_webhook(settings, body.webhook_url)


async def do_create_bot(
    db: AsyncConnection, *, rt: Runtime, actor: Actor, body: BotCreate, client: Client
) -> BotCreated:
    """Make a bot (system transaction, after check_may_make_bot): its account, named
    `name`, its API key and its webhook secret, both shown this once. Its owner, or the
    acting administrator for a platform bot, receives `bot.created`.

    Raises:
        PermissionRequired, PlatformAdminRequired: checked again here.
    """
    # In system work the permission is a grant's (an administrator's is implicit).
    if not await access_service.is_platform_admin_account(db, actor.user_id):
        if body.platform:
            raise PlatformAdminRequired()
        if not await access_service.holds_permission(db, actor.user_id, MANAGE_PERMISSION):
            raise access_service.PermissionRequired(MANAGE_PERMISSION)
    bot_id, key = await identity_service.do_create_bot_account(db, client=client)
    await social_service.do_update_profile(
        db, actor=Actor(user_id=bot_id), changes=social_service.ProfileUpdate(display_name=body.name)
    )
    secret = _webhooks.new_secret()
    row = (
        await db.execute(
            insert(bots)
            .values(
                id=bot_id,
                owner_id=None if body.platform else actor.user_id,
                name=body.name,
                description=body.description,
                webhook_url=body.webhook_url,
                webhook_secret=_webhooks.seal_secret(rt.keyring, secret),
                receives=body.receives,
                is_visible_to_guests=body.is_visible_to_guests,
            )
            .returning(*_SHOWN)
        )
    ).one()
    await _announce(db, row, actor=actor, type="bot.created")
    return BotCreated(**_out(row).model_dump(), api_key=_key_out(key), webhook_secret=secret)


async def list_bots(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[BotOut]:
    """The bots the actor manages (their own; an administrator's: every one), newest first."""
    rows = (await db.execute(keyset(select(*_SHOWN), bots.c.id, page))).all()
    return make_page([_out(row) for row in rows], page)


async def access_bot(db: AsyncConnection, *, actor: Actor, bot_id: UUID) -> BotOut:
    """A bot the actor manages.

    Raises:
        BotNotFound: no such bot, or the actor does not manage it.
    """
    row = (await db.execute(select(*_SHOWN).where(bots.c.id == bot_id))).one_or_none()
    if row is None:
        raise BotNotFound()
    return _out(row)


async def _managed(db: AsyncConnection, *, actor: Actor, bot_id: UUID) -> AnyRow:
    """The bot, locked, if the actor manages it (system transaction).

    Raises:
        BotNotFound: no such bot, or the actor does not manage it.
    """
    row = (await db.execute(select(*_SHOWN).where(bots.c.id == bot_id).with_for_update())).one_or_none()
    if row is None or (
        row.owner_id != actor.user_id and not await access_service.is_platform_admin_account(db, actor.user_id)
    ):
        raise BotNotFound()
    return row


async def do_update_bot(db: AsyncConnection, *, rt: Runtime, actor: Actor, bot_id: UUID, changes: BotUpdate) -> BotOut:
    """Change what was sent (system transaction, after access_bot); a new name is its
    profile's too. Its owner (or the acting administrator) receives `bot.updated`.

    Raises:
        BotNotFound: see _managed.
        WebhookUrlRefused: a webhook this server does not deliver to.
    """
    values: dict[str, Any] = changes.changes()
    if "webhook_url" in values:
        _check_webhook(rt.settings, values["webhook_url"])
    row = await _managed(db, actor=actor, bot_id=bot_id)
    if not values:
        return _out(row)
    if "name" in values:
        await social_service.do_update_profile(
            db, actor=Actor(user_id=bot_id), changes=social_service.ProfileUpdate(display_name=values["name"])
        )
    row = (await db.execute(update(bots).where(bots.c.id == bot_id).values(**values).returning(*_SHOWN))).one()
    await _announce(db, row, actor=actor, type="bot.updated", changed=sorted(values))
    return _out(row)


async def do_rotate_key(db: AsyncConnection, *, actor: Actor, bot_id: UUID, client: Client) -> BotKeyOut:
    """A new API key for the bot, shown this once; its earlier keys are revoked and the
    streams they opened close (system transaction, after access_bot).

    Raises:
        BotNotFound: see _managed.
    """
    row = await _managed(db, actor=actor, bot_id=bot_id)
    key = await identity_service.do_rotate_bot_key(db, bot_id=bot_id, actor_id=actor.user_id, client=client)
    if key is None:
        raise BotNotFound()
    await _announce(db, row, actor=actor, type="bot.key_rotated")
    return _key_out(key)


async def do_rotate_webhook_secret(db: AsyncConnection, *, rt: Runtime, actor: Actor, bot_id: UUID) -> WebhookSecretOut:
    """A new webhook secret for the bot, shown this once (system transaction, after
    access_bot). Deliveries from now on are signed with it and, for
    `_webhooks.SECRET_GRACE`, with the secret it replaces as well; a rotation within that
    grace drops the older one. Its owner (or the acting administrator) receives
    `bot.webhook_secret_rotated`.

    Raises:
        BotNotFound: see _managed.
    """
    row = await _managed(db, actor=actor, bot_id=bot_id)
    secret = _webhooks.new_secret()
    until = (
        await db.execute(
            update(bots)
            .where(bots.c.id == bot_id)
            .values(
                webhook_secret=_webhooks.seal_secret(rt.keyring, secret),
                previous_webhook_secret=bots.c.webhook_secret,
                previous_webhook_secret_until=func.now() + _webhooks.SECRET_GRACE,
            )
            .returning(bots.c.previous_webhook_secret_until)
        )
    ).scalar_one()
    await _announce(db, row, actor=actor, type="bot.webhook_secret_rotated", previous_valid_until=until.isoformat())
    return WebhookSecretOut(webhook_secret=secret, previous_webhook_secret_until=until)


async def do_delete_bot(db: AsyncConnection, *, actor: Actor, bot_id: UUID, client: Client) -> None:
    """Delete a bot (system transaction, after access_bot): it leaves every conversation
    it takes part in (removed, as the desk dismisses someone: each hears
    `participant.left`), its account closes (its keys revoked, their streams closed), and
    what was delivered to it goes, with the deliveries still queued. Its messages stay,
    as any closed account's.

    Raises:
        BotNotFound: see _managed.
    """
    row = await _managed(db, actor=actor, bot_id=bot_id)
    await _leave_everywhere(db, bot_id=bot_id)
    await identity_service.do_close_bot_account(db, bot_id=bot_id, actor_id=actor.user_id, client=client)
    await _drop_queued_deliveries(db, bot_id=bot_id)
    await db.execute(delete(bots).where(bots.c.id == bot_id))
    await _announce(db, row, actor=actor, type="bot.deleted")


async def _leave_everywhere(db: AsyncConnection, *, bot_id: UUID) -> None:
    """The bot no longer takes part anywhere (system transaction)."""
    memberships = await messaging_service.get_memberships(db, actor=Actor(user_id=bot_id))
    for conversation_id, window in memberships.windows.items():
        if window.left is not None:
            continue  # it left, or was removed, already
        try:
            async with db.begin_nested():
                await messaging_service.do_dismiss(db, conversation_id=conversation_id, user_id=bot_id)
        except NotFound:
            continue  # deleted: nobody hears anything there any more


# The delivery jobs of a bot's interactions that no worker has claimed yet (a claimed one
# finds its interaction gone and ends: rapport.bots._delivery).
_DROP_QUEUED = text(
    """
    DELETE FROM kernel.jobs j
     USING bots.robot_interactions i
     WHERE i.bot_id = :bot AND j.task = :task AND j.status IN ('queued', 'dead')
       AND j.payload ->> 'interaction_id' = i.id::text
    """
)


async def _drop_queued_deliveries(db: AsyncConnection, *, bot_id: UUID) -> None:
    await db.execute(_DROP_QUEUED, {"bot": bot_id, "task": tasks.deliver.name})


async def list_interactions(
    db: AsyncConnection, *, actor: Actor, bot_id: UUID, page: PageRequest, status: InteractionStatus | None = None
) -> Page[InteractionOut]:
    """What was delivered to a bot the actor manages, newest first.

    Raises:
        BotNotFound: no such bot, or the actor does not manage it.
    """
    await access_bot(db, actor=actor, bot_id=bot_id)
    query = select(robot_interactions).where(robot_interactions.c.bot_id == bot_id)
    if status is not None:
        query = query.where(robot_interactions.c.status == status)
    rows = (await db.execute(keyset(query, robot_interactions.c.id, page))).all()
    return make_page([InteractionOut.model_validate(row._mapping) for row in rows], page)


async def _announce(db: AsyncConnection, row: AnyRow, *, actor: Actor, type: str, **extra: Any) -> None:
    """Tell the bot's owner (for a platform bot, the acting administrator)."""
    await publish(
        db,
        scope=Scope.user(row.owner_id or actor.user_id),
        type=type,
        payload={"bot_id": str(row.id), **extra},
        actor_id=actor.user_id,
    )
