"""Signing in: password, then the second factor when the account has one.

Every path ends in `complete_sign_in`, which either opens a session or, for accounts
with TOTP, hands back a short-lived challenge token for the second step.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import _throttle as throttle
from rapport.identity import tokens
from rapport.identity._accounts import DISABLED_STATUSES, get_user_by_email
from rapport.identity._records import record_login, record_security_event
from rapport.identity._sessions import create_session
from rapport.identity._totp import check_second_factor, mfa_throttle_key, totp_enabled
from rapport.identity.errors import (
    AccountDisabled,
    EmailNotVerified,
    InvalidCredentials,
    InvalidTotpCode,
)
from rapport.identity.models import users
from rapport.identity.schemas import Device, MfaChallenge, TokenPair
from rapport.kernel.actor import Client
from rapport.kernel.errors import InvalidToken
from rapport.kernel.runtime import Runtime


async def do_password_login(
    db: AsyncConnection, *, rt: Runtime, email: str, password: str, client: Client, device: Device
) -> TokenPair | MfaChallenge:
    """Check an e-mail and password (system transaction).

    Raises:
        LoginThrottled: too many recent failures for this address or client IP.
        InvalidCredentials: unknown address or wrong password (never says which).
        EmailNotVerified: right password, address not yet verified.
        AccountDisabled: right password, account suspended, banned or deleted.
    """
    keys = [throttle.email_key(email)]
    if (ip := throttle.ip_key(client.ip)) is not None:
        keys.append(ip)
    await throttle.check_not_throttled(db, keys=keys, settings=rt.settings)

    user = await get_user_by_email(db, email=email)
    check = await rt.passwords.verify(user.password_hash if user else None, password)
    if not check.ok:
        await _count_failed_password(db, rt=rt, keys=keys, user=user, client=client)
        raise InvalidCredentials()

    await throttle.clear(db, key=keys[0])
    if user.status in DISABLED_STATUSES:
        await record_login(db, user_id=user.id, method="password", client=client, failure_reason="account_disabled")
        raise AccountDisabled()
    if user.status == "pending" or user.email_verified_at is None:
        raise EmailNotVerified("Enter the code we e-mailed to verify this address, or ask for a new one.")
    if check.needs_rehash:
        await db.execute(
            update(users).where(users.c.id == user.id).values(password_hash=await rt.passwords.hash(password))
        )
    return await complete_sign_in(db, rt=rt, user_id=user.id, method="password", client=client, device=device)


async def do_totp_login(
    db: AsyncConnection,
    *,
    rt: Runtime,
    mfa_token: str,
    code: str | None,
    recovery_code: str | None,
    client: Client,
    device: Device,
) -> TokenPair:
    """The second step: a TOTP code or a recovery code for a challenge token.

    Raises:
        InvalidToken: the challenge token is invalid or expired.
        LoginThrottled: too many wrong codes for this account.
        InvalidTotpCode: the code is wrong.
    """
    user_id, method = tokens.verify_mfa_token(rt.keyring, mfa_token)
    key = mfa_throttle_key(user_id)
    await throttle.check_not_throttled(db, keys=[key], settings=rt.settings)
    user = await _active_user(db, user_id)
    if not await check_second_factor(db, rt=rt, user_id=user.id, code=code, recovery_code=recovery_code, client=client):
        await throttle.count_failure(db, key=key, settings=rt.settings)
        await record_login(db, user_id=user.id, method=f"{method}+totp", client=client, failure_reason="invalid_totp")
        raise InvalidTotpCode()
    await throttle.clear(db, key=key)
    return await _open_session(db, rt=rt, user_id=user.id, method=f"{method}+totp", client=client, device=device)


async def complete_sign_in(
    db: AsyncConnection, *, rt: Runtime, user_id: UUID, method: str, client: Client, device: Device
) -> TokenPair | MfaChallenge:
    """First factor passed: challenge for the second one, or open the session."""
    if await totp_enabled(db, user_id=user_id):
        return MfaChallenge(
            mfa_token=tokens.issue_mfa_token(rt.keyring, user_id=user_id, method=method),
            expires_in=tokens.MFA_TOKEN_TTL_SECONDS,
        )
    return await _open_session(db, rt=rt, user_id=user_id, method=method, client=client, device=device)


async def _open_session(
    db: AsyncConnection, *, rt: Runtime, user_id: UUID, method: str, client: Client, device: Device
) -> TokenPair:
    pair = await create_session(db, rt=rt, user_id=user_id, client=client, device=device)
    await db.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(last_login_at=func.now(), failed_login_attempts=0, locked_until=None)
    )
    await record_login(db, user_id=user_id, method=method, client=client, session_id=pair.session_id)
    return pair


async def _active_user(db: AsyncConnection, user_id: UUID) -> Row:
    user = (await db.execute(select(users).where(users.c.id == user_id))).one_or_none()
    if user is None or user.deleted_at is not None:
        raise InvalidToken()
    if user.status in DISABLED_STATUSES:
        raise AccountDisabled()
    return user


async def _count_failed_password(
    db: AsyncConnection, *, rt: Runtime, keys: list[str], user: Row | None, client: Client
) -> None:
    locked_until = None
    for key in keys:
        locked_until = await throttle.count_failure(db, key=key, settings=rt.settings) or locked_until
    if user is None:
        return
    # The account row mirrors the lock so that operators can see it.
    await db.execute(
        update(users)
        .where(users.c.id == user.id)
        .values(
            failed_login_attempts=users.c.failed_login_attempts + 1,
            locked_until=locked_until if locked_until is not None else users.c.locked_until,
        )
    )
    await record_login(db, user_id=user.id, method="password", client=client, failure_reason="invalid_password")
    if locked_until is not None:
        await record_security_event(
            db,
            user_id=user.id,
            event_type="account_locked",
            severity="warning",
            client=client,
            details={"locked_until": locked_until.isoformat()},
        )
