"""Phone numbers of accounts: registering with one, proving it, resetting a password by
SMS, and adding, changing or removing the number of an account.

Registration, "resend" and "forgot password" by phone answer the same whether or not
the number has an account, after the same work, and queue exactly one SMS: a code, or a
note saying why there is none (docs/decisions/0002, as for e-mail). Adding a number that
another account has verified answers as adding a free one does; the number receives a
note, never a code, so the person adding it learns nothing.

A number being added waits in its code's row (auth.otp_verifications.identifier) until
the code comes back: until then it is nobody's, and no one can hold a number they have
not proven. Only a registration holds a number unproven; whoever proves the number first
takes it from such a registration.

The signed-in paths run as system work: they touch what is not the account's own (the
number's limits, other accounts' codes for the same number, the deployment's SMS of the
day), after checking that the caller's session is live.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity._accounts import DISABLED_STATUSES, check_password_strength, reset_password
from rapport.identity._phone_codes import (
    CODE_REFUSED,
    ByNumber,
    SmsResult,
    admit_sms,
    issue_by_number,
    issue_change,
    retire_codes_for_number,
    spend_by_number,
    spend_change,
    try_notice,
)
from rapport.identity._records import record_security_event
from rapport.identity._sessions import create_session, session_is_live
from rapport.identity._sms import Sms
from rapport.identity._totp import _require_second_factor, totp_enabled
from rapport.identity.errors import (
    AccountDisabled,
    InvalidCode,
    InvalidCredentials,
    NoPhone,
    PhoneRequired,
    PhoneUnchanged,
    SessionRequired,
    TotpNotEnabled,
)
from rapport.identity.models import totp_credentials, users
from rapport.identity.schemas import Device, TokenPair
from rapport.identity.schemas_phones import PhoneOut, SmsFallbackOut
from rapport.kernel.actor import Actor, Client
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import InvalidToken
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime

_ACTIVE = "active"
_PENDING = "pending"


@dataclass(frozen=True)
class PhoneChange:
    """The account's number after a change, and the notice for the number it replaced."""

    phone: PhoneOut
    sms: Sms | None


async def get_user_by_phone(db: AsyncConnection, *, phone: str) -> AnyRow | None:
    """The live account holding `phone`, verified or (a registration) not."""
    return (
        await db.execute(select(users).where(users.c.phone_number == phone, users.c.deleted_at.is_(None)))
    ).one_or_none()


async def get_verified_phone(db: AsyncConnection, *, user_id: UUID) -> str | None:
    """The account's verified number, if it has one and is active: where SMS for it go."""
    phone: str | None = (
        await db.execute(
            select(users.c.phone_number).where(
                users.c.id == user_id,
                users.c.phone_verified_at.is_not(None),
                users.c.status == _ACTIVE,
                users.c.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    return phone


async def get_phone(db: AsyncConnection, *, actor: Actor) -> PhoneOut:
    row = (
        await db.execute(select(users.c.phone_number, users.c.phone_verified_at).where(users.c.id == actor.user_id))
    ).one()
    return PhoneOut(phone_number=row.phone_number, phone_verified=row.phone_verified_at is not None)


# -- registering with a phone -------------------------------------------------------------------


async def do_register_phone(
    db: AsyncConnection, *, rt: Runtime, phone: str, password: str, client: Client
) -> SmsResult:
    """Create a pending account with a phone number instead of an e-mail address, and
    text it a verification code (system transaction). As with e-mail: a pending account's
    password is never replaced by another registration (the same password only sends a
    new code; another one leaves the account with none), and a number with an account
    is sent a note (docs/decisions/0002).

    Raises:
        WeakPassword: the password is too weak.
        PhoneCountryNotAllowed: no SMS are sent to the number's country.
        TooManyAttempts: too many requests for this number or from this client.
        SmsUnavailable: the deployment's SMS of the day are spent.
    """
    check_password_strength(password, rt=rt, email=phone)
    may_send = await admit_sms(db, rt=rt, phone=phone, client=client)
    existing = await get_user_by_phone(db, phone=phone)
    if existing is None:
        await db.execute(
            insert(users).values(
                id=uuid7(), email=None, phone_number=phone, password_hash=await rt.passwords.hash(password)
            )
        )
        return await _code_sms(db, rt=rt, phone=phone, purpose="phone_verification", send=may_send)
    if existing.status == _PENDING and existing.phone_verified_at is None:
        same = await rt.passwords.verify(existing.password_hash, password)
        contested = not same.ok
        if contested and existing.password_hash is not None:
            await db.execute(update(users).where(users.c.id == existing.id).values(password_hash=None))
        return await _code_sms(db, rt=rt, phone=phone, purpose="phone_verification", send=may_send, contested=contested)
    # Hashed anyway: the other branches hash, and a faster answer would tell.
    await rt.passwords.hash(password)
    if not may_send:
        return SmsResult(None)
    return SmsResult(
        Sms(
            phone,
            "Rapport: someone tried to register with this number, which already has an account. "
            "If it was you, sign in, or reset your password.",
        )
    )


async def do_resend_phone_verification(db: AsyncConnection, *, rt: Runtime, phone: str, client: Client) -> SmsResult:
    """Text a new verification code to a registered, unverified number (earlier codes stop
    working), or, to any other number, a note without one.

    Raises:
        PhoneCountryNotAllowed: no SMS are sent to the number's country.
        TooManyAttempts: too many requests for this number or from this client.
        SmsUnavailable: the deployment's SMS of the day are spent.
    """
    may_send = await admit_sms(db, rt=rt, phone=phone, client=client)
    return await _code_sms(db, rt=rt, phone=phone, purpose="phone_verification", send=may_send)


async def do_verify_phone(
    db: AsyncConnection, *, rt: Runtime, phone: str, code: str, client: Client, device: Device
) -> TokenPair:
    """Confirm a registered number with its code, activate the account and sign in.

    Raises:
        TooManyAttempts: too many wrong codes for this number or from this client.
        InvalidCode: no such registration, or a wrong, expired or spent code.
        AccountDisabled: the account is suspended, banned or deleted.
    """
    user_id = await spend_by_number(db, rt=rt, phone=phone, purpose="phone_verification", code=code, client=client)
    status = (await db.execute(select(users.c.status).where(users.c.id == user_id))).scalar_one()
    if status in DISABLED_STATUSES:
        raise AccountDisabled()
    await db.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(
            phone_verified_at=func.coalesce(users.c.phone_verified_at, func.now()),
            status=_ACTIVE,
            last_login_at=func.now(),
        )
    )
    await retire_codes_for_number(db, phone=phone, user_id=user_id)
    await record_security_event(db, user_id=user_id, event_type="phone_verified", client=client)
    return await create_session(db, rt=rt, user_id=user_id, client=client, device=device)


# -- password reset by SMS ----------------------------------------------------------------------


async def do_request_phone_password_reset(db: AsyncConnection, *, rt: Runtime, phone: str, client: Client) -> SmsResult:
    """Text a password reset code to a number with a usable account, or, to any other
    number, a note without one.

    Raises:
        PhoneCountryNotAllowed: no SMS are sent to the number's country.
        TooManyAttempts: too many requests for this number or from this client.
        SmsUnavailable: the deployment's SMS of the day are spent.
    """
    may_send = await admit_sms(db, rt=rt, phone=phone, client=client)
    return await _code_sms(db, rt=rt, phone=phone, purpose="password_reset", send=may_send)


async def do_reset_password_by_phone(
    db: AsyncConnection, *, rt: Runtime, phone: str, code: str, new_password: str, client: Client
) -> None:
    """Set a new password with a code sent by SMS; the code proves the number too. Every
    session of the account ends.

    Raises:
        WeakPassword: the new password is too weak.
        TooManyAttempts: too many wrong codes for this number or from this client.
        InvalidCode: no such account, or a wrong, expired or spent code.
        PasswordUnchanged: the new password is the current one (the code stays unspent).
    """
    check_password_strength(new_password, rt=rt, email=phone)
    user_id = await spend_by_number(db, rt=rt, phone=phone, purpose="password_reset", code=code, client=client)
    await reset_password(
        db,
        rt=rt,
        user_id=user_id,
        new_password=new_password,
        proven=users.c.phone_verified_at,
        name=phone,
        client=client,
        by="sms",
    )
    await retire_codes_for_number(db, phone=phone, user_id=user_id)


# -- the number of a signed-in account ----------------------------------------------------------


async def do_request_phone_change(
    db: AsyncConnection, *, rt: Runtime, actor: Actor, phone: str, client: Client
) -> SmsResult:
    """Text a code to a number the account wants to add (or to change to); it becomes the
    account's once the code comes back. A number another account has verified gets a
    note instead, and the answer is the same.

    Raises:
        SessionRequired: an API key, or no live session.
        PhoneUnchanged: this is the account's verified number already.
        PhoneCountryNotAllowed: no SMS are sent to the number's country.
        TooManyAttempts: too many requests for this number or from this client.
        SmsUnavailable: the deployment's SMS of the day are spent.
    """
    account = await _signed_in(db, actor)
    if account.phone_number == phone and account.phone_verified_at is not None:
        raise PhoneUnchanged("This is your number already.")
    if not await admit_sms(db, rt=rt, phone=phone, client=client):
        return SmsResult(None)
    code = await issue_change(db, rt=rt, user_id=actor.user_id, phone=phone)
    if code is None:
        return SmsResult(
            Sms(
                phone,
                "Rapport: someone tried to add this number to another account. It stays on yours; nothing has changed.",
            )
        )
    minutes = rt.settings.otp_ttl_minutes
    return SmsResult(
        Sms(phone, f"Rapport: your code to add this number to your account is {code}. It expires in {minutes} minutes.")
    )


async def do_verify_phone_change(
    db: AsyncConnection, *, rt: Runtime, actor: Actor, phone: str, code: str, client: Client
) -> PhoneChange:
    """Make a number the account's with the code sent to it; the number it replaces, if
    any, is told.

    Raises:
        SessionRequired: an API key, or no live session.
        TooManyAttempts: too many wrong codes for this number or from this client.
        InvalidCode: a wrong, expired or spent code, one for another number, or a number
            another account proved in the meantime.
    """
    account = await _signed_in(db, actor)
    await spend_change(db, rt=rt, user_id=actor.user_id, phone=phone, code=code, client=client)
    others = users.c.phone_number == phone, users.c.deleted_at.is_(None), users.c.id != actor.user_id
    if (await db.execute(select(exists().where(*others, users.c.phone_verified_at.is_not(None))))).scalar_one():
        raise InvalidCode(CODE_REFUSED)
    # A registration that holds the number unproven gives it up to whoever proves it; it
    # has never been signed in to, and had nothing else to sign in with.
    await db.execute(
        delete(users).where(
            *others, users.c.phone_verified_at.is_(None), users.c.status == _PENDING, users.c.email.is_(None)
        )
    )
    await db.execute(
        update(users).where(users.c.id == actor.user_id).values(phone_number=phone, phone_verified_at=func.now())
    )
    await retire_codes_for_number(db, phone=phone, user_id=actor.user_id)
    old = account.phone_number if account.phone_verified_at is not None else None
    await record_security_event(
        db,
        user_id=actor.user_id,
        event_type="phone_changed" if old else "phone_added",
        severity="warning" if old else "info",
        client=client,
        details={"number_ends_with": phone[-2:]},
    )
    notice = None
    if old is not None and old != phone and await try_notice(db, rt=rt, phone=old):
        notice = Sms(
            old,
            "Rapport: another number replaced this one on your account. "
            "If you did not do this, reset your password now.",
        )
    return PhoneChange(PhoneOut(phone_number=phone, phone_verified=True), notice)


async def do_remove_phone(
    db: AsyncConnection, *, rt: Runtime, actor: Actor, password: str | None, client: Client
) -> SmsResult:
    """Remove the account's number (and with it SMS as a second factor); the number is told.

    Raises:
        SessionRequired: an API key, or no live session.
        NoPhone: the account has no verified number.
        PhoneRequired: the number is the account's only way to sign in.
        InvalidCredentials: the password is missing or wrong (accounts with one).
    """
    account = await _signed_in(db, actor)
    if account.phone_number is None or account.phone_verified_at is None:
        raise NoPhone()
    if account.email is None:
        raise PhoneRequired("This account signs in with its phone number alone: change the number instead.")
    if account.password_hash is not None and (
        password is None or not (await rt.passwords.verify(account.password_hash, password)).ok
    ):
        await record_security_event(
            db, user_id=actor.user_id, event_type="phone_removal_failed", severity="warning", client=client
        )
        raise InvalidCredentials("The password is incorrect.")
    old = account.phone_number
    await db.execute(update(users).where(users.c.id == actor.user_id).values(phone_number=None, phone_verified_at=None))
    await db.execute(
        update(totp_credentials).where(totp_credentials.c.user_id == actor.user_id).values(sms_fallback=False)
    )
    await record_security_event(
        db, user_id=actor.user_id, event_type="phone_removed", severity="warning", client=client
    )
    if not await try_notice(db, rt=rt, phone=old):
        return SmsResult(None)
    return SmsResult(
        Sms(old, "Rapport: this number was removed from your account. If you did not do this, reset your password now.")
    )


async def do_set_sms_fallback(
    db: AsyncConnection, *, rt: Runtime, actor: Actor, enabled: bool, code: str, client: Client
) -> SmsFallbackOut:
    """Let a code sent by SMS to the verified number stand in for the authenticator app
    at sign-in, or stop it; needs a current TOTP code either way.

    Raises:
        SessionRequired: an API key, or no live session.
        TotpNotEnabled: two-factor is not on.
        NoPhone: turning it on without a verified number.
        TooManyAttempts: the account's wrong codes are used up for now.
        TotpCodeAlreadyUsed: the code of a time step already used.
        InvalidTotpCode: the code is wrong.
    """
    account = await _signed_in(db, actor)
    if not await totp_enabled(db, user_id=actor.user_id):
        raise TotpNotEnabled()
    if enabled and account.phone_verified_at is None:
        raise NoPhone("Add and verify a phone number first.")
    await _require_second_factor(db, rt=rt, user_id=actor.user_id, code=code, recovery_code=None, client=client)
    await db.execute(
        update(totp_credentials).where(totp_credentials.c.user_id == actor.user_id).values(sms_fallback=enabled)
    )
    await record_security_event(
        db,
        user_id=actor.user_id,
        event_type="sms_second_factor_enabled" if enabled else "sms_second_factor_disabled",
        severity="warning" if enabled else "info",
        client=client,
    )
    return SmsFallbackOut(sms_fallback=enabled)


async def _signed_in(db: AsyncConnection, actor: Actor) -> AnyRow:
    """The actor's account, locked, once its session is known to be live.

    Raises:
        SessionRequired: an API key (account security is not for bots and scripts).
        InvalidToken: the session has ended.
    """
    if actor.session_id is None:
        raise SessionRequired()
    if not await session_is_live(db, session_id=actor.session_id):
        raise InvalidToken("The session has ended. Sign in again.")
    return (await db.execute(select(users).where(users.c.id == actor.user_id).with_for_update())).one()


async def _code_sms(
    db: AsyncConnection, *, rt: Runtime, phone: str, purpose: ByNumber, send: bool, contested: bool = False
) -> SmsResult:
    """Issue a code of `purpose` if the number's account may receive one, and the SMS
    carrying it, or a note without one. Past the number's SMS limit nothing changes: a
    new code would retire the one already on the phone."""
    if not send:
        return SmsResult(None)
    code = await issue_by_number(db, rt=rt, phone=phone, purpose=purpose)
    if code is None:
        return SmsResult(Sms(phone, _NO_CODE[purpose]))
    minutes = rt.settings.otp_ttl_minutes
    if purpose == "password_reset":
        body = (
            f"Rapport: your password reset code is {code}. It expires in {minutes} minutes. "
            "If you did not ask for it, ignore this message."
        )
    elif purpose == "sign_in":
        body = f"Rapport: your sign-in code is {code}. It expires in {minutes} minutes. Never share it."
    else:
        body = f"Rapport: your verification code is {code}. It expires in {minutes} minutes."
        if contested:
            body += (
                " This number was registered again with another password before it was verified, so the "
                'account now has none: after the code, set one with "Forgot password".'
            )
    return SmsResult(Sms(phone, body))


_NO_CODE: dict[ByNumber, str] = {
    "phone_verification": "Rapport: someone asked for a verification code for this number, but no account "
    "awaits verification with it. If it was not you, ignore this message.",
    "password_reset": "Rapport: someone asked to reset a password with this number, but no account here can "
    "be reset with it. If it was not you, ignore this message.",
    "sign_in": "Rapport: someone asked for a sign-in code for this number, but no account here signs in "
    "with it. If it was not you, ignore this message.",
}
