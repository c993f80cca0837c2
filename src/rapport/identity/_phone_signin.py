"""Signing in with a phone: number and password, a one-time code by SMS, and a code by
SMS as the second factor when the authenticator app is not at hand.

Number and password meet the same locks as e-mail and password (docs/decisions/0003),
keyed by the number typed. A sign-in code by SMS is requested and checked like the
e-mailed codes (identity._phone_codes). SMS as a second factor is weaker than the
authenticator app (a SIM swap or an intercepted message defeats it): it is off until
the owner turns it on with a TOTP code, and never completes a sign-in whose first step
was an SMS code already.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import tokens
from rapport.identity._accounts import sign_in_refused
from rapport.identity._phone_codes import (
    CODE_REFUSED,
    SmsResult,
    admit_sms,
    issue_second_factor,
    spend_by_number,
    spend_second_factor,
)
from rapport.identity._phones import _code_sms
from rapport.identity._records import record_login
from rapport.identity._signin import (
    _CHALLENGE_USED,
    _SPEND_TOKEN,
    SignInName,
    _active_user,
    _open_session,
    check_password,
    complete_sign_in,
)
from rapport.identity._sms import Sms
from rapport.identity.errors import (
    AccountDisabled,
    InvalidCode,
    PhoneNotVerified,
    SmsSecondFactorUnavailable,
)
from rapport.identity.models import spent_tokens, totp_credentials, users
from rapport.identity.schemas import Device, MfaChallenge, TokenPair
from rapport.kernel.actor import Client
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import InvalidToken
from rapport.kernel.runtime import Runtime


async def do_phone_password_login(
    db: AsyncConnection, *, rt: Runtime, phone: str, password: str, client: Client, device: Device
) -> TokenPair | MfaChallenge:
    """Check a phone number and password (system transaction), as e-mail and password
    are checked: the same locks, keyed by the number typed.

    Raises:
        LoginThrottled: too many recent failures for this number from this client, from
            this client IP, or for this number from unknown clients.
        InvalidCredentials: unknown number or wrong password (never says which).
        PhoneNotVerified: right password, number not yet verified.
        AccountDisabled: right password, account suspended, banned or deleted.
    """
    name = SignInName(
        value=phone,
        column=users.c.phone_number,
        method="phone",
        throttled="Too many failed sign-ins for this number. "
        "Try again later, or from a device that has signed in before.",
        wrong="The phone number or password is incorrect.",
    )
    user = await check_password(db, rt=rt, name=name, password=password, client=client)
    if user.status == "pending" or user.phone_verified_at is None:
        raise PhoneNotVerified("Enter the code we sent by SMS to verify this number, or ask for a new one.")
    return await complete_sign_in(db, rt=rt, user_id=user.id, method="phone", client=client, device=device)


async def do_request_sign_in_code(db: AsyncConnection, *, rt: Runtime, phone: str, client: Client) -> SmsResult:
    """Text a one-time sign-in code to a verified number of an active account, or, to
    any other number, a note without one.

    Raises:
        PhoneCountryNotAllowed: no SMS are sent to the number's country.
        TooManyAttempts: too many requests for this number or from this client.
        SmsUnavailable: the deployment's SMS of the day are spent.
    """
    may_send = await admit_sms(db, rt=rt, phone=phone, client=client)
    return await _code_sms(db, rt=rt, phone=phone, purpose="sign_in", send=may_send)


async def do_sms_login(
    db: AsyncConnection, *, rt: Runtime, phone: str, code: str, client: Client, device: Device
) -> TokenPair | MfaChallenge:
    """Sign in with the code texted to the account's verified number; accounts with
    two-factor then complete it with the authenticator app or a recovery code.

    Raises:
        TooManyAttempts: too many wrong codes for this number or from this client.
        InvalidCode: no such account, or a wrong, expired or spent code.
        AccountDisabled: the account is suspended, banned or deleted.
    """
    user_id = await spend_by_number(db, rt=rt, phone=phone, purpose="sign_in", code=code, client=client)
    status = (await db.execute(select(users.c.status).where(users.c.id == user_id))).scalar_one()
    if await sign_in_refused(db, user_id=user_id, status=status):
        await record_login(db, user_id=user_id, method="sms", client=client, failure_reason="account_disabled")
        raise AccountDisabled()
    return await complete_sign_in(db, rt=rt, user_id=user_id, method="sms", client=client, device=device)


async def do_request_sms_second_factor(
    db: AsyncConnection, *, rt: Runtime, mfa_token: str, client: Client
) -> SmsResult:
    """Text a second-factor code to the account of a sign-in challenge.

    Raises:
        InvalidToken: the challenge token is invalid, expired or already used.
        AccountDisabled: the account is suspended, banned or deleted.
        SmsSecondFactorUnavailable: SMS as a second factor is off, or the first step was
            an SMS code.
        PhoneCountryNotAllowed: no SMS are sent to the number's country.
        TooManyAttempts: too many requests for this number or from this client.
        SmsUnavailable: the deployment's SMS of the day are spent.
    """
    _, user, phone = await _sms_challenge(db, rt=rt, mfa_token=mfa_token)
    if not await admit_sms(db, rt=rt, phone=phone, client=client):
        return SmsResult(None)
    code = await issue_second_factor(db, rt=rt, user_id=user.id, to=phone)
    minutes = rt.settings.otp_ttl_minutes
    return SmsResult(
        Sms(phone, f"Rapport: your sign-in security code is {code}. It expires in {minutes} minutes. Never share it.")
    )


async def do_sms_second_factor_login(
    db: AsyncConnection, *, rt: Runtime, mfa_token: str, code: str, client: Client, device: Device
) -> TokenPair:
    """The second step with a code texted to the account's verified number; the challenge
    works for one sign-in only.

    Raises:
        InvalidToken: the challenge token is invalid, expired or already used.
        AccountDisabled: the account is suspended, banned or deleted.
        SmsSecondFactorUnavailable: SMS as a second factor is off, or the first step was
            an SMS code.
        TooManyAttempts: too many wrong codes for this account or from this client.
        InvalidCode: the code is wrong, expired or spent.
    """
    challenge, user, phone = await _sms_challenge(db, rt=rt, mfa_token=mfa_token)
    method = f"{challenge.method}+sms"
    if not await spend_second_factor(db, rt=rt, user_id=user.id, to=phone, code=code, client=client):
        await record_login(db, user_id=user.id, method=method, client=client, failure_reason="invalid_sms_code")
        raise InvalidCode(CODE_REFUSED)
    claimed = await db.execute(_SPEND_TOKEN, {"id": challenge.token_id, "expires_at": challenge.expires_at})
    if claimed.first() is None:
        raise InvalidToken(_CHALLENGE_USED)
    return await _open_session(db, rt=rt, user_id=user.id, method=method, client=client, device=device)


async def _sms_challenge(db: AsyncConnection, *, rt: Runtime, mfa_token: str) -> tuple[tokens.MfaClaims, AnyRow, str]:
    """The challenge, its account and the number its codes go to.

    Raises:
        InvalidToken: the challenge token is invalid, expired or already used.
        AccountDisabled: the account is suspended, banned or deleted.
        SmsSecondFactorUnavailable: SMS as a second factor is off, or the first step was
            an SMS code.
    """
    challenge = tokens.verify_mfa_token(rt.keyring, mfa_token)
    spent = await db.execute(select(spent_tokens.c.id).where(spent_tokens.c.id == challenge.token_id))
    if spent.first() is not None:
        raise InvalidToken(_CHALLENGE_USED)
    user = await _active_user(db, challenge.user_id)
    if challenge.method == "sms":
        raise SmsSecondFactorUnavailable(
            "This sign-in began with a code by SMS: complete it with the authenticator app or a recovery code."
        )
    fallback = (
        await db.execute(
            select(totp_credentials.c.sms_fallback).where(
                totp_credentials.c.user_id == user.id, totp_credentials.c.confirmed_at.is_not(None)
            )
        )
    ).scalar_one_or_none()
    if not fallback or user.phone_number is None or user.phone_verified_at is None:
        raise SmsSecondFactorUnavailable(
            "Codes by SMS are not turned on for this account: use the authenticator app or a recovery code."
        )
    return challenge, user, str(user.phone_number)
