"""Accounts: registration, e-mail verification, passwords.

Registration, "resend" and "forgot password" answer the same, after the same database
work, whether or not the address has an account; the difference goes to the address's
inbox, never to the caller (docs/decisions/0002). Every request that would send mail or
checks an e-mailed code spends from the rate limits of docs/decisions/0008 first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, exists, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from zxcvbn import zxcvbn

from rapport.identity import _limits as limits
from rapport.identity import _throttle as throttle
from rapport.identity._records import record_security_event
from rapport.identity._sessions import create_session, revoke_sessions
from rapport.identity.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCode,
    InvalidCredentials,
    PasswordUnchanged,
    PhoneTaken,
    WeakPassword,
)
from rapport.identity.models import totp_credentials, users
from rapport.identity.schemas import CodePurpose, Device, TokenPair, UserOut, UserStatus
from rapport.kernel.actor import Actor, Client
from rapport.kernel.crypto import numeric_code
from rapport.kernel.db import AnyRow
from rapport.kernel.ids import uuid7
from rapport.kernel.mail import Mail
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.runtime import Runtime

DISABLED_STATUSES: tuple[UserStatus, ...] = ("suspended", "banned", "deleted")
# An account whose owner asked for its deletion is `deleted` through a grace period in
# which signing in again restores it (compliance, migration 2026_11_30_0024): sign-in asks
# compliance's functions in its system transaction, knowing nothing of how it keeps them.
_DELETION_PENDING = text("SELECT compliance.deletion_pending(:user_id)")
_RESTORE = text(
    "SELECT compliance.cancel_deletion(u.id) FROM auth.users u WHERE u.id = :user_id AND u.status = 'deleted'"
)
# What an account whose address is proven becomes.
_ACTIVE: UserStatus = "active"
_PENDING: UserStatus = "pending"
# zxcvbn's scale: 3 is "safely unguessable: moderate protection from an offline attack".
_MIN_PASSWORD_SCORE = 3
# zxcvbn refuses longer input (its cost grows fast); the first 72 characters decide.
_ESTIMATED_LENGTH = 72
# One detail for every refused code, whatever the reason: unknown address, no live code,
# a wrong, expired or spent one, attempts used up (docs/decisions/0002).
_CODE_REFUSED = "The code is wrong or has expired. Check it, or ask for a new one."

# Who may be sent a code of each purpose, as a condition on auth.users (alias u). Fixed
# text chosen by purpose, never built from input.
_MAY_RECEIVE: dict[CodePurpose, str] = {
    "email_verification": "u.status = 'pending' AND u.email_verified_at IS NULL",
    "password_reset": "u.status NOT IN ('suspended', 'banned', 'deleted')",
}
# Whose code of each purpose is checked. A disabled account's verification code is still
# checked, so that only the right code learns that the account is disabled.
_MAY_CHECK: dict[CodePurpose, str] = {
    "email_verification": "true",
    "password_reset": _MAY_RECEIVE["password_reset"],
}

# One statement whether or not the address has an account: it finds the account, retires
# its earlier codes of the purpose and inserts the new one, or touches no row at all. The
# same round trips, the same writes either way: the answer's timing tells nothing.
_ISSUE_CODE = """
    WITH target AS (
        SELECT u.id FROM auth.users u
         WHERE u.email = :email AND u.deleted_at IS NULL AND ({may_receive})
    ), retired AS (
        UPDATE auth.otp_verifications SET consumed_at = now()
         WHERE user_id IN (SELECT id FROM target) AND purpose = :purpose AND consumed_at IS NULL
    )
    INSERT INTO auth.otp_verifications (id, user_id, purpose, identifier, code_hash, max_attempts, expires_at)
    SELECT :id, target.id, :purpose, :email, :code_hash, :max_attempts, now() + make_interval(mins => :ttl)
      FROM target
    RETURNING user_id
"""
_ISSUE = {purpose: text(_ISSUE_CODE.format(may_receive=condition)) for purpose, condition in _MAY_RECEIVE.items()}

# One statement likewise: the newest live code of the address and purpose counts the
# attempt, and is spent if it matches. Comparing MACs in SQL is safe although not in
# constant time: without the key no one can aim a guess at a MAC's prefix.
_CHECK_CODE = """
    WITH target AS (
        SELECT o.id, o.attempts, o.max_attempts
          FROM auth.otp_verifications o JOIN auth.users u ON u.id = o.user_id
         WHERE u.email = :email AND u.deleted_at IS NULL AND ({may_check})
           AND o.purpose = :purpose AND o.consumed_at IS NULL AND o.expires_at > now()
         ORDER BY o.created_at DESC
         LIMIT 1
           FOR UPDATE OF o
    )
    UPDATE auth.otp_verifications o
       SET attempts = o.attempts + 1,
           consumed_at = CASE WHEN o.code_hash = :code_hash THEN now() END
      FROM target
     WHERE o.id = target.id AND target.attempts < target.max_attempts
    RETURNING o.user_id, o.consumed_at IS NOT NULL AS matched
"""
_CHECK = {purpose: text(_CHECK_CODE.format(may_check=condition)) for purpose, condition in _MAY_CHECK.items()}


@dataclass(frozen=True)
class MailResult:
    """What a request queued for the inbox, sent once its transaction has committed."""

    mail: Mail | None


def check_password_strength(password: str, *, rt: Runtime, email: str, names: Sequence[str] = ()) -> None:
    """Refuse a password that is short, or guessable by zxcvbn's estimate, which knows
    common passwords, words, names, keyboard patterns, dates and the account's own
    address and names.

    Raises:
        WeakPassword: too short, the e-mail address itself, or guessable (with zxcvbn's
            advice in the detail).
    """
    minimum = rt.settings.password_min_length
    if len(password) < minimum:
        raise WeakPassword(f"Use at least {minimum} characters.")
    local = email.split("@")[0]
    if password.strip().lower() in (email, local):
        raise WeakPassword("The password must not be the e-mail address or phone number.")
    inputs = [email, local, *re.split(r"[._+\-]+", local), *names, "rapport"]
    estimate: dict[str, Any] = zxcvbn(password[:_ESTIMATED_LENGTH], user_inputs=[i for i in inputs if i])
    if estimate["score"] < _MIN_PASSWORD_SCORE:
        feedback = estimate["feedback"]
        advice = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
        detail = " ".join(part for part in advice if part) or "Add more words, or less common ones."
        raise WeakPassword(f"This password is easy to guess. {detail}")


async def sign_in_refused(db: AsyncConnection, *, user_id: UUID, status: str) -> bool:
    """Whether an account of this status may not sign in (system transaction): suspended,
    banned or deleted, except a deleted one still within its grace period."""
    if status not in DISABLED_STATUSES:
        return False
    if status != "deleted":
        return True
    return not (await db.execute(_DELETION_PENDING, {"user_id": user_id})).scalar_one()


async def restore_if_deleted(db: AsyncConnection, *, user_id: UUID) -> None:
    """A sign-in went through (system transaction): an account within its deletion's grace
    period is active again, its deletion cancelled."""
    await db.execute(_RESTORE, {"user_id": user_id})


async def set_account_status(db: AsyncConnection, *, user_id: UUID, status: UserStatus) -> UserStatus | None:
    """System work: set an account's status (a platform administrator suspends, bans or
    restores it); the status it had, or None when there is no such account."""
    previous = (
        await db.execute(select(users.c.status).where(users.c.id == user_id).with_for_update())
    ).scalar_one_or_none()
    if previous is None:
        return None
    await db.execute(update(users).where(users.c.id == user_id).values(status=status))
    had: UserStatus = previous
    return had


async def get_user_by_email(db: AsyncConnection, *, email: str) -> AnyRow | None:
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
        phone_number=row.phone_number,
        phone_verified=row.phone_verified_at is not None,
        status=row.status,
        email_verified=row.email_verified_at is not None,
        is_admin=row.is_admin,
        kind=row.kind,
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
    phone: str | None = None,
) -> UUID:
    """Insert an account (system transaction). Verified accounts are active at once; a
    phone number (E.164) given here is taken as verified, as an operator vouches for it.

    Raises:
        EmailTaken: a live account already has this address.
        PhoneTaken: a live account already has this number.
    """
    if await get_user_by_email(db, email=email) is not None:
        raise EmailTaken()
    if (
        phone is not None
        and (
            await db.execute(select(exists().where(users.c.phone_number == phone, users.c.deleted_at.is_(None))))
        ).scalar_one()
    ):
        raise PhoneTaken()
    user_id = await insert_user(db, rt=rt, email=email, password=password, verified=verified, is_admin=is_admin)
    if phone is not None:
        await db.execute(
            update(users).where(users.c.id == user_id).values(phone_number=phone, phone_verified_at=func.now())
        )
    return user_id


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
            status=_ACTIVE if verified else _PENDING,
            is_admin=is_admin,
            email_verified_at=func.now() if verified else None,
        )
    )
    # A new account, for Rapport's own readers (analytics' signed_up), after it commits: in
    # the nil user's scope, which no one's feed carries (the account's devices hear nothing).
    await publish(
        db, scope=Scope.user(UUID(int=0)), type="account.signed_up", payload={"user_id": str(user_id)}, actor_id=user_id
    )
    return user_id


async def do_register(db: AsyncConnection, *, rt: Runtime, email: str, password: str, client: Client) -> MailResult:
    """Create a pending account and mail it a verification code (system transaction).

    A pending account's password is never replaced by another registration: the same
    password again only sends a new code; a different one leaves the account with no
    password at all, for the address's owner to set after verifying (docs/decisions/0002).

    Raises:
        WeakPassword: the password is too weak.
        TooManyAttempts: too many requests for this address or from this client.
    """
    check_password_strength(password, rt=rt, email=email)
    may_mail = await _admit_mail(db, rt=rt, email=email, client=client)
    existing = await get_user_by_email(db, email=email)
    if existing is None:
        await insert_user(db, rt=rt, email=email, password=password)
        return await _code_mail(db, rt=rt, email=email, purpose="email_verification", send=may_mail)
    if existing.status == "pending" and existing.email_verified_at is None:
        # Verified, not hashed: as long as the other branches take, and the only way to
        # tell the same person retrying from someone else registering over them.
        same = await rt.passwords.verify(existing.password_hash, password)
        contested = not same.ok
        if contested and existing.password_hash is not None:
            await db.execute(update(users).where(users.c.id == existing.id).values(password_hash=None))
        return await _code_mail(
            db, rt=rt, email=email, purpose="email_verification", send=may_mail, contested=contested
        )
    # Hash anyway, thrown away: the other branches hash, and an answer that came back
    # faster for taken addresses would tell which ones have accounts.
    await rt.passwords.hash(password)
    if not may_mail:
        return MailResult(None)
    return MailResult(
        Mail(
            to=email,
            subject="Someone tried to register with your address",
            body="Someone tried to create a Rapport account with this address, which already has one.\n"
            "If it was you, sign in, or reset your password if you have forgotten it.\n",
        )
    )


async def do_resend_verification(db: AsyncConnection, *, rt: Runtime, email: str, client: Client) -> MailResult:
    """Mail a new verification code to a pending address (earlier codes stop working),
    or, to any other address, a note without one.

    Raises:
        TooManyAttempts: too many requests for this address or from this client.
    """
    may_mail = await _admit_mail(db, rt=rt, email=email, client=client)
    return await _code_mail(db, rt=rt, email=email, purpose="email_verification", send=may_mail)


async def do_verify_email(
    db: AsyncConnection, *, rt: Runtime, email: str, code: str, client: Client, device: Device
) -> TokenPair:
    """Confirm the address with the mailed code, activate the account and sign in.

    Raises:
        TooManyAttempts: too many wrong codes for this address or from this client.
        InvalidCode: no such account, or a wrong, expired or spent code.
        AccountDisabled: the account is suspended, banned or deleted.
    """
    user_id = await _spend_code(db, rt=rt, email=email, purpose="email_verification", code=code, client=client)
    user = (await db.execute(select(users.c.status).where(users.c.id == user_id))).one()
    if user.status in DISABLED_STATUSES:
        raise AccountDisabled()
    await db.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(
            email_verified_at=func.coalesce(users.c.email_verified_at, func.now()),
            status=_ACTIVE,
            last_login_at=func.now(),
        )
    )
    await record_security_event(db, user_id=user_id, event_type="email_verified", client=client)
    return await create_session(db, rt=rt, user_id=user_id, client=client, device=device)


async def do_request_password_reset(db: AsyncConnection, *, rt: Runtime, email: str, client: Client) -> MailResult:
    """Mail a password reset code to an address with a usable account, or, to any other
    address, a note without one.

    Raises:
        TooManyAttempts: too many requests for this address or from this client.
    """
    may_mail = await _admit_mail(db, rt=rt, email=email, client=client)
    return await _code_mail(db, rt=rt, email=email, purpose="password_reset", send=may_mail)


async def do_reset_password(
    db: AsyncConnection, *, rt: Runtime, email: str, code: str, new_password: str, client: Client
) -> None:
    """Set a new password with a mailed code; every session of the account ends.

    Raises:
        WeakPassword: the new password is too weak.
        TooManyAttempts: too many wrong codes for this address or from this client.
        InvalidCode: no such account, or a wrong, expired or spent code.
        PasswordUnchanged: the new password is the current one (the code stays unspent).
    """
    # Strength first: checked after the lookup, a weak password would tell which
    # addresses have accounts (weak-password for them, invalid-code for the others).
    check_password_strength(new_password, rt=rt, email=email)
    user_id = await _spend_code(db, rt=rt, email=email, purpose="password_reset", code=code, client=client)
    await reset_password(
        db,
        rt=rt,
        user_id=user_id,
        new_password=new_password,
        proven=users.c.email_verified_at,
        name=email,
        client=client,
    )


async def reset_password(
    db: AsyncConnection,
    *,
    rt: Runtime,
    user_id: UUID,
    new_password: str,
    proven: Column[datetime | None],
    name: str,
    client: Client,
    **details: str,
) -> None:
    """Set the password of an account whose owner just spent a reset code sent to `name`
    (an address or a number, whose verified-at column is `proven`: the code proves it);
    every session ends.

    Raises:
        PasswordUnchanged: the new password is the current one.
    """
    current = (await db.execute(select(users.c.password_hash).where(users.c.id == user_id))).scalar_one()
    if current is not None and (await rt.passwords.verify(current, new_password)).ok:
        # Rolled back with the refusal: the code stays good for a new password.
        raise PasswordUnchanged("Choose a password other than the current one.")
    await db.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(
            {
                users.c.password_hash: await rt.passwords.hash(new_password),
                proven: func.coalesce(proven, func.now()),
                users.c.status: _ACTIVE,
                users.c.failed_login_attempts: 0,
            }
        )
    )
    # Whoever reads the mailbox or holds the phone is the owner: their client's lock and
    # the name's sign-in budget start again.
    await throttle.clear(db, key=throttle.pair_key(rt.keyring, email=name, ip=client.ip))
    await limits.forget(db, rule=limits.rules(rt).sign_in_failures_per_address, subject=limits.address(rt, name))
    revoked = await revoke_sessions(db, user_id=user_id, reason="password_reset")
    await record_security_event(
        db,
        user_id=user_id,
        event_type="password_reset",
        severity="warning",
        client=client,
        details={"sessions_revoked": len(revoked), **details},
    )
    await _announce_password_changed(db, user_id=user_id, actor_id=None, how="reset", client=client)


async def do_change_password(
    db: AsyncConnection, *, rt: Runtime, actor: Actor, current_password: str, new_password: str, client: Client
) -> None:
    """Change the password; every other session of the account ends.

    Raises:
        InvalidCredentials: the current password is wrong.
        PasswordUnchanged: the new password is the current one.
        WeakPassword: the new password is too weak.
    """
    user = (await db.execute(select(users).where(users.c.id == actor.user_id))).one()
    check = await rt.passwords.verify(user.password_hash, current_password)
    if not check.ok:
        await record_security_event(
            db, user_id=user.id, event_type="password_change_failed", severity="warning", client=client
        )
        raise InvalidCredentials("The current password is incorrect.")
    if new_password == current_password:
        raise PasswordUnchanged("Choose a password other than the current one.")
    check_password_strength(new_password, rt=rt, email=user.email or user.phone_number)
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
    await _announce_password_changed(db, user_id=user.id, actor_id=actor.user_id, how="changed", client=client)


async def _announce_password_changed(
    db: AsyncConnection, *, user_id: UUID, actor_id: UUID | None, how: str, client: Client
) -> None:
    """The account's own event: its devices hear it, and the notifications pipeline tells
    the holder, who learns of a change they did not make."""
    await publish(
        db,
        scope=Scope.user(user_id),
        type="account.password_changed",
        payload={"how": how, "ip": client.ip, "user_agent": (client.user_agent or "")[:300]},
        actor_id=actor_id,
    )


async def _admit_mail(db: AsyncConnection, *, rt: Runtime, email: str, client: Client) -> bool:
    """Spend the limits of a request that would mail `email`, whether or not it has an
    account; False when the address has had its mail for now (answer as if sent).

    Raises:
        TooManyAttempts: too many such requests from this client or for this address.
    """
    rules = limits.rules(rt)
    if client.ip:
        await limits.take(db, rule=rules.mail_requests_per_ip, subject=client.ip)
    subject = limits.address(rt, email)
    await limits.take(db, rule=rules.mail_requests_per_address, subject=subject)
    return await limits.try_take(db, rule=rules.mails_per_address, subject=subject) is None


async def _code_mail(
    db: AsyncConnection, *, rt: Runtime, email: str, purpose: CodePurpose, send: bool, contested: bool = False
) -> MailResult:
    """Issue a code of `purpose` if the address may receive one, and the mail carrying it.

    Past the mail limit nothing changes: a new code would retire the one already in the
    inbox, and the owner would be left with none that works.
    """
    if not send:
        return MailResult(None)
    code = numeric_code()
    issued = (
        await db.execute(
            _ISSUE[purpose],
            {
                "id": uuid7(),
                "email": email,
                "purpose": purpose,
                "code_hash": _code_hash(rt, email=email, purpose=purpose, code=code),
                "max_attempts": rt.settings.otp_max_attempts,
                "ttl": rt.settings.otp_ttl_minutes,
            },
        )
    ).first()
    if issued is None:
        # A note instead of a code, so that every request queues one mail whether or not
        # the address has an account: the same work, and the same time, either way. The
        # address's owner learns what happened; the caller learns nothing.
        return MailResult(_NO_CODE_MAILS[purpose](email))
    minutes = rt.settings.otp_ttl_minutes
    if purpose == "password_reset":
        return MailResult(
            Mail(
                to=email,
                subject="Your Rapport password reset code",
                body=f"Your password reset code is {code}\n\nIt expires in {minutes} minutes. "
                "If you did not ask for it, ignore this message: your password is unchanged.\n",
            )
        )
    body = f"Your verification code is {code}\n\nIt expires in {minutes} minutes.\n"
    if contested:
        body += (
            "\nThis address was registered again, with another password, before it was verified. "
            "Since we cannot tell who typed which, the account now has no password: after entering "
            'the code, set one with "Forgot password".\n'
        )
    return MailResult(Mail(to=email, subject="Your Rapport verification code", body=body))


async def _spend_code(
    db: AsyncConnection, *, rt: Runtime, email: str, purpose: CodePurpose, code: str, client: Client
) -> UUID:
    """Spend the newest live code of the address and purpose if it matches; returns its
    account. Every miss counts, against the code and against the address's and the
    client's budgets of wrong guesses, whether or not the address has an account.

    Raises:
        TooManyAttempts: the address or the client has no wrong guesses left for now.
        InvalidCode: no such account, or a wrong, expired or spent code, or out of attempts.
    """
    rules = limits.rules(rt)
    subject = limits.address(rt, email)
    # Taken before the check, given back on success: two concurrent guesses cannot both
    # spend the last unit.
    if client.ip:
        await limits.take(db, rule=rules.code_guesses_per_ip, subject=client.ip)
    await limits.take(db, rule=rules.code_guesses_per_address, subject=subject)
    row = (
        await db.execute(
            _CHECK[purpose],
            {"email": email, "purpose": purpose, "code_hash": _code_hash(rt, email=email, purpose=purpose, code=code)},
        )
    ).first()
    if row is None or not row.matched:
        raise InvalidCode(_CODE_REFUSED)
    await limits.give_back(db, rule=rules.code_guesses_per_address, subject=subject)
    if client.ip:
        await limits.give_back(db, rule=rules.code_guesses_per_ip, subject=client.ip)
    user_id: UUID = row.user_id
    return user_id


def _no_verification_code(email: str) -> Mail:
    return Mail(
        to=email,
        subject="About your Rapport verification code",
        body="Someone asked for a Rapport verification code for this address, but no account here awaits "
        "verification: the address has no account, or it is verified already.\n"
        "If it was you, sign in (or reset your password if you have forgotten it), or register. "
        "If not, ignore this message.\n",
    )


def _no_reset_code(email: str) -> Mail:
    return Mail(
        to=email,
        subject="About your Rapport password reset",
        body="Someone asked to reset the password of a Rapport account with this address, but no account "
        "here can be reset: the address has no account, or its account is suspended.\n"
        "If it was you, perhaps you registered with another address. If not, ignore this message.\n",
    )


_NO_CODE_MAILS = {"email_verification": _no_verification_code, "password_reset": _no_reset_code}


def _code_hash(rt: Runtime, *, email: str, purpose: CodePurpose, code: str) -> bytes:
    # Bound to the address and purpose: a code mailed for one never passes for another.
    return rt.keyring.mac("otp", f"{email}:{purpose}:{code}")
