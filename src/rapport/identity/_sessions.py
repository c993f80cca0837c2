"""Sessions and their refresh tokens.

A session is one signed-in device. Each refresh returns a new refresh token and retires
the old one; a retired token that comes back means two parties hold it, so the whole
session is revoked and the event recorded.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn
from uuid import UUID

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import tokens
from rapport.identity._records import record_security_event
from rapport.identity.errors import RefreshTokenReused, SessionNotFound, SessionRequired
from rapport.identity.models import refresh_tokens, sessions, users
from rapport.identity.schemas import Device, SessionOut, SessionRevokedReason, TokenPair
from rapport.kernel.actor import Actor, Client
from rapport.kernel.crypto import random_token, sha256
from rapport.kernel.errors import InvalidToken
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page
from rapport.kernel.runtime import Runtime

REFRESH_TOKEN_PREFIX = "rt_"


async def create_session(
    db: AsyncConnection, *, rt: Runtime, user_id: UUID, client: Client, device: Device
) -> TokenPair:
    """Open a session for a user whose credentials have been checked."""
    session_id = uuid7()
    ttl = timedelta(days=rt.settings.refresh_token_ttl_days)
    await db.execute(
        insert(sessions).values(
            id=session_id,
            user_id=user_id,
            device_type=device.device_type,
            device_name=device.device_name,
            user_agent=client.user_agent,
            ip_address=client.ip,
            expires_at=func.now() + ttl,
        )
    )
    refresh_token = await _issue_refresh_token(db, rt=rt, session_id=session_id, user_id=user_id)
    return _token_pair(rt, user_id=user_id, session_id=session_id, refresh_token=refresh_token)


async def do_refresh(db: AsyncConnection, *, rt: Runtime, refresh_token: str, client: Client) -> TokenPair:
    """Exchange a refresh token for a new pair (system transaction).

    Raises:
        RefreshTokenReused: the token was already exchanged; its session is now revoked.
        InvalidToken: unknown or expired token, or a revoked or expired session.
    """
    token_hash = sha256(refresh_token)
    # One statement claims the token, so two concurrent refreshes cannot both win.
    claimed = (
        await db.execute(
            update(refresh_tokens)
            .where(
                refresh_tokens.c.token_hash == token_hash,
                refresh_tokens.c.used_at.is_(None),
                refresh_tokens.c.expires_at > func.now(),
            )
            .values(used_at=func.now())
            .returning(refresh_tokens.c.session_id, refresh_tokens.c.user_id)
        )
    ).one_or_none()
    if claimed is None:
        await _refuse_refresh(db, token_hash=token_hash, client=client)
    live = (
        await db.execute(
            select(sessions.c.id)
            .join(users, users.c.id == sessions.c.user_id)
            .where(
                sessions.c.id == claimed.session_id,
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at > func.now(),
                users.c.status == "active",
            )
        )
    ).one_or_none()
    if live is None:
        raise InvalidToken("The session has ended. Sign in again.")
    # Sliding expiry: a device in use stays signed in.
    await db.execute(
        update(sessions)
        .where(sessions.c.id == claimed.session_id)
        .values(
            last_active_at=func.now(),
            ip_address=client.ip or sessions.c.ip_address,
            expires_at=func.now() + timedelta(days=rt.settings.refresh_token_ttl_days),
        )
    )
    new_token = await _issue_refresh_token(db, rt=rt, session_id=claimed.session_id, user_id=claimed.user_id)
    return _token_pair(rt, user_id=claimed.user_id, session_id=claimed.session_id, refresh_token=new_token)


async def _refuse_refresh(db: AsyncConnection, *, token_hash: bytes, client: Client) -> NoReturn:
    known = (
        await db.execute(
            select(refresh_tokens.c.session_id, refresh_tokens.c.user_id, refresh_tokens.c.used_at).where(
                refresh_tokens.c.token_hash == token_hash
            )
        )
    ).one_or_none()
    if known is None or known.used_at is None:
        raise InvalidToken("The refresh token is not valid or has expired.")
    revoked = await revoke_sessions(db, user_id=known.user_id, only=known.session_id, reason="refresh_token_reuse")
    await record_security_event(
        db,
        user_id=known.user_id,
        event_type="refresh_token_reused",
        severity="critical",
        client=client,
        details={"session_id": str(known.session_id), "session_revoked": bool(revoked)},
    )
    raise RefreshTokenReused("This refresh token was already used. The session has been revoked; sign in again.")


async def list_sessions(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[SessionOut]:
    query = keyset(
        select(sessions).where(
            sessions.c.user_id == actor.user_id, sessions.c.revoked_at.is_(None), sessions.c.expires_at > func.now()
        ),
        sessions.c.id,
        page,
    )
    rows = (await db.execute(query)).all()
    items = [
        SessionOut(
            id=row.id,
            device_type=row.device_type,
            device_name=row.device_name,
            user_agent=row.user_agent,
            ip_address=str(row.ip_address) if row.ip_address else None,
            created_at=row.created_at,
            last_active_at=row.last_active_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            current=row.id == actor.session_id,
        )
        for row in rows
    ]
    return make_page(items, page)


async def do_revoke_session(db: AsyncConnection, *, actor: Actor, session_id: UUID, client: Client) -> None:
    """Sign one device out.

    Raises:
        SessionNotFound: no live session with this id belongs to the actor.
    """
    revoked = await revoke_sessions(db, user_id=actor.user_id, only=session_id, reason="revoked")
    if not revoked:
        raise SessionNotFound()
    await record_security_event(
        db,
        user_id=actor.user_id,
        event_type="session_revoked",
        client=client,
        details={"session_id": str(session_id)},
    )


async def do_logout(db: AsyncConnection, *, actor: Actor) -> None:
    """End the actor's session.

    Raises:
        SessionRequired: the actor is an API key, which has no session to end: answering
            204 would say it was signed out while it keeps working. Keys are revoked with
            DELETE /v1/auth/api-keys/{id}.
    """
    if actor.session_id is None:
        raise SessionRequired("An API key has no session to end; revoke it with DELETE /v1/auth/api-keys/{id} instead.")
    await revoke_sessions(db, user_id=actor.user_id, only=actor.session_id, reason="logout")


async def revoke_sessions(
    db: AsyncConnection,
    *,
    user_id: UUID,
    reason: SessionRevokedReason,
    only: UUID | None = None,
    keep: UUID | None = None,
) -> list[UUID]:
    """Revoke one session (`only`), or all but `keep`; returns the ids revoked."""
    conditions = [sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None)]
    if only is not None:
        conditions.append(sessions.c.id == only)
    if keep is not None:
        conditions.append(sessions.c.id != keep)
    result = await db.execute(
        update(sessions)
        .where(and_(*conditions))
        .values(revoked_at=func.now(), revoked_reason=reason)
        .returning(sessions.c.id)
    )
    revoked = list(result.scalars())
    # The user's devices hear it (their sockets on that session close at once); as no one,
    # since a refresh token's reuse revokes outside any user's transaction.
    for session_id in revoked:
        await publish(
            db,
            scope=Scope.user(user_id),
            type="session.revoked",
            payload={"session_id": str(session_id), "reason": reason},
            actor_id=None,
        )
    return revoked


async def session_is_live(db: AsyncConnection, *, session_id: UUID) -> bool:
    row = (
        await db.execute(
            select(sessions.c.id).where(
                sessions.c.id == session_id, sessions.c.revoked_at.is_(None), sessions.c.expires_at > func.now()
            )
        )
    ).one_or_none()
    return row is not None


async def _issue_refresh_token(db: AsyncConnection, *, rt: Runtime, session_id: UUID, user_id: UUID) -> str:
    token = random_token(REFRESH_TOKEN_PREFIX)
    await db.execute(
        insert(refresh_tokens).values(
            id=uuid7(),
            session_id=session_id,
            user_id=user_id,
            token_hash=sha256(token),
            expires_at=func.now() + timedelta(days=rt.settings.refresh_token_ttl_days),
        )
    )
    return token


def _token_pair(rt: Runtime, *, user_id: UUID, session_id: UUID, refresh_token: str) -> TokenPair:
    ttl = rt.settings.access_token_ttl_seconds
    return TokenPair(
        access_token=tokens.issue_access_token(rt.keyring, user_id=user_id, session_id=session_id, ttl_seconds=ttl),
        expires_in=ttl,
        refresh_token=refresh_token,
        session_id=session_id,
        user_id=user_id,
    )
