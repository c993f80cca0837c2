"""Bot accounts (rapport.bots): accounts of kind 'bot', with no password, address or
number, that sign in with API keys alone. Making one, renewing its key and closing it
change an account that is not the acting person's, so each is system work, done after the
bots domain has checked that the person manages the bot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity._api_keys import _SHOWN_PREFIX_LENGTH, API_KEY_PREFIX
from rapport.identity._records import record_security_event
from rapport.identity.models import api_keys, users
from rapport.kernel.actor import Client
from rapport.kernel.crypto import random_token, sha256
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish

_KEY_NAME = "bot"


@dataclass(frozen=True)
class BotKey:
    """A bot's API key, as made: `key` is shown this once and stored only as its hash."""

    id: UUID
    prefix: str
    key: str
    created_at: datetime


async def do_create_bot_account(db: AsyncConnection, *, client: Client) -> tuple[UUID, BotKey]:
    """Make an active bot account and its first API key (system work). Who asked for it
    is bots.bots's to say (its owner): the account's own records do not name them, or
    they would outlive that person's erasure. Returns the account's id and the key."""
    bot_id = uuid7()
    await db.execute(insert(users).values(id=bot_id, kind="bot", status="active", email=None, password_hash=None))
    key = await _issue_key(db, bot_id=bot_id, client=client)
    return bot_id, key


async def do_rotate_bot_key(
    db: AsyncConnection, *, bot_id: UUID, actor_id: UUID | None, client: Client
) -> BotKey | None:
    """Revoke every live key of a bot account and issue a new one (system work). The
    streams the old keys opened close at once (`api_key.revoked`). None when no open bot
    account has this id."""
    if not await _revoke_keys(db, bot_id=bot_id, actor_id=actor_id, client=client):
        return None
    return await _issue_key(db, bot_id=bot_id, client=client)


async def do_close_bot_account(db: AsyncConnection, *, bot_id: UUID, actor_id: UUID | None, client: Client) -> bool:
    """Close a bot account (system work): deleted, its keys revoked and the streams they
    opened closed. Returns whether an open bot account had this id."""
    if not await _revoke_keys(db, bot_id=bot_id, actor_id=actor_id, client=client):
        return False
    await db.execute(
        update(users)
        .where(users.c.id == bot_id, users.c.kind == "bot", users.c.deleted_at.is_(None))
        .values(status="deleted", deleted_at=func.now())
    )
    return True


async def _issue_key(db: AsyncConnection, *, bot_id: UUID, client: Client) -> BotKey:
    key = random_token(API_KEY_PREFIX)
    row = (
        await db.execute(
            insert(api_keys)
            .values(
                id=uuid7(),
                user_id=bot_id,
                name=_KEY_NAME,
                prefix=key[:_SHOWN_PREFIX_LENGTH],
                key_hash=sha256(key),
            )
            .returning(api_keys.c.id, api_keys.c.prefix, api_keys.c.created_at)
        )
    ).one()
    await record_security_event(
        db,
        user_id=bot_id,
        event_type="api_key_created",
        client=client,
        details={"api_key_id": str(row.id), "name": _KEY_NAME},
    )
    return BotKey(id=row.id, prefix=row.prefix, key=key, created_at=row.created_at)


async def _revoke_keys(db: AsyncConnection, *, bot_id: UUID, actor_id: UUID | None, client: Client) -> bool:
    """Revoke the bot's live keys; False (nothing done) when no open bot account has this id."""
    # Locked: a rotation and a closing of one bot do not cross.
    account = (
        await db.execute(
            select(users.c.id)
            .where(users.c.id == bot_id, users.c.kind == "bot", users.c.deleted_at.is_(None))
            .with_for_update()
        )
    ).one_or_none()
    if account is None:
        return False
    revoked = (
        await db.execute(
            update(api_keys)
            .where(api_keys.c.user_id == bot_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
            .returning(api_keys.c.id)
        )
    ).all()
    for row in revoked:
        await record_security_event(
            db, user_id=bot_id, event_type="api_key_revoked", client=client, details={"api_key_id": str(row.id)}
        )
        # Realtime closes the streams this key opened (as for a key its owner revokes).
        await publish(
            db,
            scope=Scope.user(bot_id),
            type="api_key.revoked",
            payload={"api_key_id": str(row.id)},
            actor_id=actor_id,
        )
    return True
