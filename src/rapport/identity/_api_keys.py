"""API keys for bots and scripts: shown once, stored as SHA-256, optionally expiring."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity._records import record_security_event
from rapport.identity.errors import ApiKeyNotFound
from rapport.identity.models import api_keys, users
from rapport.identity.schemas import ApiKeyCreated, ApiKeyOut
from rapport.kernel.actor import Actor, Client
from rapport.kernel.crypto import random_token, sha256
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import InvalidToken, ValidationFailed
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page

API_KEY_PREFIX = "rk_"
_SHOWN_PREFIX_LENGTH = 11  # "rk_" and eight characters of the key
# Writing last_used_at on every request would make every API call a write; once a
# minute is enough to tell which keys are in use.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def looks_like_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


async def do_create_api_key(
    db: AsyncConnection, *, actor: Actor, name: str, expires_at: datetime | None, client: Client
) -> ApiKeyCreated:
    """Raises:
    ValidationFailed: the expiry is not in the future or not a storable moment, or
        the name holds control characters.
    """
    # PostgreSQL text cannot hold NUL (the driver would fail the request with a 500),
    # and a name is shown in lists: no control characters at all.
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise ValidationFailed("name must not contain control characters.")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        try:
            # The driver sends UTC: 9999-12-31T23:59-14:00 is past datetime.max there.
            expires_at = expires_at.astimezone(UTC)
        except OverflowError:
            raise ValidationFailed("expires_at is out of range.") from None
        if expires_at <= datetime.now(UTC):
            raise ValidationFailed("expires_at must be in the future.")
    key = random_token(API_KEY_PREFIX)
    key_id = uuid7()
    row = (
        await db.execute(
            insert(api_keys)
            .values(
                id=key_id,
                user_id=actor.user_id,
                name=name,
                prefix=key[:_SHOWN_PREFIX_LENGTH],
                key_hash=sha256(key),
                expires_at=expires_at,
            )
            .returning(api_keys)
        )
    ).one()
    await record_security_event(
        db,
        user_id=actor.user_id,
        event_type="api_key_created",
        client=client,
        details={"api_key_id": str(key_id), "name": name},
    )
    return ApiKeyCreated(**_out(row).model_dump(), key=key)


async def list_api_keys(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[ApiKeyOut]:
    query = keyset(
        select(api_keys).where(api_keys.c.user_id == actor.user_id, api_keys.c.revoked_at.is_(None)),
        api_keys.c.id,
        page,
    )
    return make_page([_out(row) for row in (await db.execute(query)).all()], page)


async def do_revoke_api_key(db: AsyncConnection, *, actor: Actor, api_key_id: UUID, client: Client) -> None:
    """Raises:
    ApiKeyNotFound: no unrevoked key with this id belongs to the actor.
    """
    revoked = (
        await db.execute(
            update(api_keys)
            .where(api_keys.c.id == api_key_id, api_keys.c.user_id == actor.user_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
            .returning(api_keys.c.id)
        )
    ).one_or_none()
    if revoked is None:
        raise ApiKeyNotFound()
    await record_security_event(
        db, user_id=actor.user_id, event_type="api_key_revoked", client=client, details={"api_key_id": str(api_key_id)}
    )
    # The user's devices hear it, and the sockets the key opened close at once (as a
    # revoked session's do): a key stops working for what is already connected too.
    await publish(
        db,
        scope=Scope.user(actor.user_id),
        type="api_key.revoked",
        payload={"api_key_id": str(api_key_id)},
        actor_id=actor.user_id,
    )


async def authenticate_api_key(db: AsyncConnection, *, key: str) -> Actor:
    """The actor an API key stands for (system transaction).

    Raises:
        InvalidToken: unknown, revoked or expired key, or a disabled account.
    """
    row = (
        await db.execute(
            select(api_keys.c.id, api_keys.c.user_id, api_keys.c.last_used_at, func.now().label("now"))
            .join(users, users.c.id == api_keys.c.user_id)
            .where(
                api_keys.c.key_hash == sha256(key),
                api_keys.c.revoked_at.is_(None),
                or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > func.now()),
                users.c.status == "active",
                users.c.deleted_at.is_(None),
            )
        )
    ).one_or_none()
    if row is None:
        raise InvalidToken("The API key is not valid, revoked or expired.")
    if row.last_used_at is None or row.now - row.last_used_at > _LAST_USED_RESOLUTION:
        await db.execute(update(api_keys).where(api_keys.c.id == row.id).values(last_used_at=func.now()))
    return Actor(user_id=row.user_id, api_key_id=row.id)


def _out(row: AnyRow) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
