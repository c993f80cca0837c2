"""Accounts: registration, e-mail verification, passwords.

Registration and "forgot password" answer the same whether or not the address has an
account; the difference goes to the address's inbox, never to the caller.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import _throttle as throttle
from rapport.identity._records import record_security_event
from rapport.identity._sessions import create_session, revoke_sessions
from rapport.identity.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCode,
    InvalidCredentials,
    WeakPassword,
)
from rapport.identity.models import otp_verifications, totp_credentials, users
from rapport.identity.schemas import Device, TokenPair, UserOut
from rapport.kernel.actor import Actor, Client
from rapport.kernel.crypto import numeric_code
from rapport.kernel.ids import uuid7
from rapport.kernel.mail import Mail
from rapport.kernel.runtime import Runtime

DISABLED_STATUSES = ("suspended", "banned", "deleted")


@dataclass(frozen=True)
class MailResult:
    """What a request queued for the inbox, sent once its transaction has committed."""

    mail: Mail | None


def check_password_strength(password: str, *, rt: Runtime, email: str) -> None:
    """Raises:
    WeakPassword: too short, or the e-mail address itself.
    """
    minimum = rt.settings.password_min_length
    if len(password) < minimum:
        raise WeakPassword(f"Use at least {minimum} characters.")
    if password.strip().lower() in (email, email.split("@")[0]):
        raise WeakPassword("The password must not be the e-mail address.")


async def get_user_by_email(db: AsyncConnection, *, email: str) -> Row | None:
    return (await db.execute(select(users).where(users.c.email == email, users.c.deleted_at.is_(None)))).one_or_none()


async def get_user(db: AsyncConnection, *, actor: Actor) -> UserOut:
    row = (
        await db.execute(
            select(
                users,
                exists()
                .where(totp_credentials.c.user_id == users.c.id, totp_credentials.c.confirmed_at.is_not(None))
                .label("two_factor_enabled"),
            ).where(users.c.id == actor.user_id)
        )
    ).one()
    return UserOut(
        id=row.id,
        email=row.email,
        status=row.status,
        email_verified=row.email_verified_at is not None,
        is_admin=row.is_admin,
        two_factor_enabled=row.two_factor_enabled,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


async def do_create_user(
    db: AsyncConnection,
    *,
    rt: Runtime,
    email: str,
    password: str | None,
    verified: bool = False,
    is_admin: bool = False,
) -> UUID:
    """Insert an account (system transaction). Verified accounts are active at once.

    Raises:
        EmailTaken: a live account already has this address.
    """
    if await get_user_by_email(db, email=email) is not None:
        raise EmailTaken()
    return await insert_user(db, rt=rt, email=email, password=password, verified=verified, is_admin=is_admin)


async def insert_user(
    db: AsyncConnection,
    *,
    rt: Runtime,
    email: str,
    password: str | None,
    verified: bool = False,
    is_admin: bool = False,
) -> UUID:
    """Insert an account whose address the caller has just looked up and found free
    (the unique index still stands behind it)."""
    user_id = uuid7()
    await db.execute(
        insert(users).values(
            id=user_id,
            email=email,
            password_hash=await rt.passwords.hash(password) if password is not None else None,
            status="active" if verified else "pending",
            is_admin=is_admin,
            email_verified_at=func.now() if verified else None,
        )
    )
    return user_id


async def do_register(db: AsyncConnection, *, rt: Runtime, email: str, password: str) -> MailResult:
    """Create a pending account and mail it a verification code (system transaction).

    Raises:
        WeakPassword: the password is too weak.
    """
    check_password_strength(password, rt=rt, email=email)
    existing = await get_user_by_email(db, email=email)
    if existing is None:
        user_id = await insert_user(db, rt=rt, email=email, password=password)
        code = await _new_code(db, rt=rt, user_id=user_id, email=email, purpose="email_verification")
        return MailResult(_verification_mail(email, code, rt))
    if existing.email_verified_at is None and existing.status == "pending":
        # A second registration of an unverified address: the newest password counts,
        # so a typo in the first attempt is not a dead end.
        await db.execute(
            update(users).where(users.c.id == existing.id).values(password_hash=await rt.passwords.hash(password))
        )
        code = await _new_code(db, rt=rt, user_id=existing.id, email=email, purpose="email_verification")
        return MailResult(_verification_mail(email, code, rt))
    # Hash anyway, thrown away: the other branches hash, and an answer that came back
    # faster for taken addresses would tell which ones have accounts.
    await rt.passwords.hash(password)
    return MailResult(
        Mail(
            to=email,
            subject="Someone tried to register with your address",
            body="Someone tried to create a Rapport account with this address, which already has one.\n"
            "If it was you, sign in, or reset your password if you have forgotten it.\n",
        )
    )


async def do_resend_verification(db: AsyncConnection, *, rt: Runtime, email: str) -> MailResult:
    user = await get_user_by_email(db, email=email)
    if user is None or user.email_verified_at is not None or user.status != "pending":
        return MailResult(None)
    code = await _new_code(db, rt=rt, user_id=user.id, email=email, purpose="email_verification")
    return MailResult(_verification_mail(email, code, rt))


async def do_verify_email(
    db: AsyncConnection, *, rt: Runtime, email: str, code: str, client: Client, device: Device
) -> TokenPair:
    """Confirm the address with the mailed code, activate the account and sign in.

    Raises:
        InvalidCode: no such account, or a wrong, expired or spent code.
        AccountDisabled: the account is suspended, banned or deleted.
    """
    user = await get_user_by_email(db, email=email)
    if user is None:
        raise InvalidCode()
    await _consume_code(db, rt=rt, user_id=user.id, purpose="email_verification", code=code)
    if user.status in DISABLED_STATUSES:
        raise AccountDisabled()
    await db.execute(
        update(users)
        .where(users.c.id == user.id)
        .values(
            email_verified_at=func.coalesce(users.c.email_verified_at, func.now()),
            status="active",
            last_login_at=func.now(),
        )
    )
    await record_security_event(db, user_id=user.id, event_type="email_verified", client=client)
    return await create_session(db, rt=rt, user_id=user.id, client=client, device=device)


async def do_request_password_reset(db: AsyncConnection, *, rt: Runtime, email: str) -> MailResult:
    user = await get_user_by_email(db, email=email)
    if user is None or user.status in DISABLED_STATUSES:
        return MailResult(None)
    code = await _new_code(db, rt=rt, user_id=user.id, email=email, purpose="password_reset")
    minutes = rt.settings.otp_ttl_minutes
    return MailResult(
        Mail(
            to=email,
            subject="Your Rapport password reset code",
            body=f"Your password reset code is {code}\n\nIt expires in {minutes} minutes. "
            "If you did not ask for it, ignore this message: your password is unchanged.\n",
        )
    )


async def do_reset_password(
    db: AsyncConnection, *, rt: Runtime, email: str, code: str, new_password: str, client: Client
) -> None:
    """Set a new password with a mailed code; every session of the account ends.

    Raises:
        InvalidCode: no such account, or a wrong, expired or spent code.
        WeakPassword: the new password is too weak.
    """
    # Strength first: checked after the lookup, a weak password would tell which
    # addresses have accounts (weak-password for them, invalid-code for the others).
    check_password_strength(new_password, rt=rt, email=email)
    user = await get_user_by_email(db, email=email)
    if user is None or user.status in DISABLED_STATUSES:
        raise InvalidCode()
    await _consume_code(db, rt=rt, user_id=user.id, purpose="password_reset", code=code)
    # The code proves the address too.
    await db.execute(
        update(users)
        .where(users.c.id == user.id)
        .values(
            password_hash=await rt.passwords.hash(new_password),
            email_verified_at=func.coalesce(users.c.email_verified_at, func.now()),
            status="active",
            failed_login_attempts=0,
            locked_until=None,
        )
    )
    # The lock lives in the throttle table (the user row only mirrors it).
    await throttle.clear(db, key=throttle.email_key(email))
    revoked = await revoke_sessions(db, user_id=user.id, reason="password_reset")
    await record_security_event(
        db,
        user_id=user.id,
        event_type="password_reset",
        severity="warning",
        client=client,
        details={"sessions_revoked": len(revoked)},
    )


async def do_change_password(
    db: AsyncConnection, *, rt: Runtime, actor: Actor, current_password: str, new_password: str, client: Client
) -> None:
    """Change the password; every other session of the account ends.

    Raises:
        InvalidCredentials: the current password is wrong.
        WeakPassword: the new password is too weak.
    """
    user = (await db.execute(select(users).where(users.c.id == actor.user_id))).one()
    check = await rt.passwords.verify(user.password_hash, current_password)
    if not check.ok:
        await record_security_event(
            db, user_id=user.id, event_type="password_change_failed", severity="warning", client=client
        )
        raise InvalidCredentials("The current password is incorrect.")
    check_password_strength(new_password, rt=rt, email=user.email)
    await db.execute(
        update(users).where(users.c.id == user.id).values(password_hash=await rt.passwords.hash(new_password))
    )
    revoked = await revoke_sessions(db, user_id=user.id, reason="password_changed", keep=actor.session_id)
    await record_security_event(
        db,
        user_id=user.id,
        event_type="password_changed",
        client=client,
        details={"sessions_revoked": len(revoked)},
    )


async def _new_code(db: AsyncConnection, *, rt: Runtime, user_id: UUID, email: str, purpose: str) -> str:
    """A fresh code; any earlier unspent code of the same purpose stops working."""
    await db.execute(
        update(otp_verifications)
        .where(
            otp_verifications.c.user_id == user_id,
            otp_verifications.c.purpose == purpose,
            otp_verifications.c.consumed_at.is_(None),
        )
        .values(consumed_at=func.now())
    )
    code = numeric_code()
    await db.execute(
        insert(otp_verifications).values(
            id=uuid7(),
            user_id=user_id,
            purpose=purpose,
            identifier=email,
            code_hash=rt.keyring.mac("otp", f"{user_id}:{purpose}:{code}"),
            max_attempts=rt.settings.otp_max_attempts,
            expires_at=func.now() + timedelta(minutes=rt.settings.otp_ttl_minutes),
        )
    )
    return code


async def _consume_code(db: AsyncConnection, *, rt: Runtime, user_id: UUID, purpose: str, code: str) -> None:
    """Spend the newest live code if it matches; a miss counts as an attempt.

    Raises:
        InvalidCode: wrong, expired, spent, or out of attempts.
    """
    row = (
        await db.execute(
            select(
                otp_verifications.c.id,
                otp_verifications.c.code_hash,
                otp_verifications.c.attempts,
                otp_verifications.c.max_attempts,
            )
            .where(
                otp_verifications.c.user_id == user_id,
                otp_verifications.c.purpose == purpose,
                otp_verifications.c.consumed_at.is_(None),
                otp_verifications.c.expires_at > func.now(),
            )
            .order_by(otp_verifications.c.created_at.desc())
            .limit(1)
            .with_for_update()
        )
    ).one_or_none()
    if row is None or row.attempts >= row.max_attempts:
        raise InvalidCode("The code is wrong or has expired. Ask for a new one.")
    expected = rt.keyring.mac("otp", f"{user_id}:{purpose}:{code}")
    if not hmac.compare_digest(expected, row.code_hash):
        await db.execute(
            update(otp_verifications)
            .where(otp_verifications.c.id == row.id)
            .values(attempts=otp_verifications.c.attempts + 1)
        )
        raise InvalidCode("The code is wrong or has expired.")
    await db.execute(update(otp_verifications).where(otp_verifications.c.id == row.id).values(consumed_at=func.now()))


def _verification_mail(email: str, code: str, rt: Runtime) -> Mail:
    minutes = rt.settings.otp_ttl_minutes
    return Mail(
        to=email,
        subject="Your Rapport verification code",
        body=f"Your verification code is {code}\n\nIt expires in {minutes} minutes.\n",
    )
