"""The phone API under /v1/auth: registering, verifying and signing in with a phone
number, resetting a password by SMS, and the number of the signed-in account. SMS are
queued in the route's transaction and leave once it commits, as mail does.

Numbers are taken in international format (`+` and the country code) and answered in
E.164. Every route that sends an SMS answers the same whatever the number (whether it
has an account or not), within the limits of docs/decisions/0008: `429
too-many-attempts` past the requests of one number or one client, `422
phone-country-not-allowed` for a country this server does not text, and `503
sms-unavailable` once the server's SMS of the day are spent."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import schemas as s
from rapport.identity import schemas_phones as p
from rapport.identity import service
from rapport.kernel.db import system_transaction
from rapport.kernel.deps import NO_CONTENT, CallerDep, ClientDep, RuntimeDep

router = APIRouter(prefix="/v1/auth", tags=["identity"])


async def _queue_sms(db: AsyncConnection, sms: service.Sms | None) -> None:
    # In the route's transaction: the SMS leaves only if the change that asked for it commits.
    if sms is not None:
        await service.enqueue_sms(db, sms)


@router.post("/register/phone", status_code=status.HTTP_202_ACCEPTED, response_model=s.Accepted)
async def register_phone(body: p.PhoneRegisterRequest, runtime: RuntimeDep, client: ClientDep) -> s.Accepted:
    """Create an account with a phone number and password instead of an e-mail address.
    A six-digit code is sent by SMS; `POST /v1/auth/verify-phone` with it activates the
    account and signs in.

    The answer is the same whether or not the number already has an account."""
    async with system_transaction(runtime.system_engine) as db:
        result = await service.do_register_phone(
            db, rt=runtime, phone=body.phone, password=body.password, client=client
        )
        await _queue_sms(db, result.sms)
    return s.Accepted(detail="If the number can be registered, a verification code is on its way.")


@router.post("/verify-phone", response_model=s.TokenPair)
async def verify_phone(body: p.PhoneCodeRequest, runtime: RuntimeDep, client: ClientDep) -> s.TokenPair:
    """Verify a registered number with the code sent by SMS; activates the account and signs in."""
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_verify_phone(
            db, rt=runtime, phone=body.phone, code=body.code, client=client, device=body
        )


@router.post("/verify-phone/resend", status_code=status.HTTP_202_ACCEPTED, response_model=s.Accepted)
async def resend_phone_verification(body: p.PhoneRequest, runtime: RuntimeDep, client: ClientDep) -> s.Accepted:
    """Send a new verification code to a registered, unverified number (earlier codes stop working)."""
    async with system_transaction(runtime.system_engine) as db:
        result = await service.do_resend_phone_verification(db, rt=runtime, phone=body.phone, client=client)
        await _queue_sms(db, result.sms)
    return s.Accepted(detail="If the number awaits verification, a new code is on its way.")


@router.post("/login/phone", response_model=s.TokenPair | s.MfaChallenge)
async def login_phone(
    body: p.PhoneLoginRequest, runtime: RuntimeDep, client: ClientDep
) -> s.TokenPair | s.MfaChallenge:
    """Sign in with a verified phone number and password. Accounts with two-factor get an
    `mfa_token` to complete at `POST /v1/auth/login/totp` (or, where turned on, by SMS)."""
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_phone_password_login(
            db, rt=runtime, phone=body.phone, password=body.password, client=client, device=body
        )


@router.post("/login/sms", status_code=status.HTTP_202_ACCEPTED, response_model=s.Accepted)
async def request_sign_in_code(body: p.PhoneRequest, runtime: RuntimeDep, client: ClientDep) -> s.Accepted:
    """Send a one-time sign-in code by SMS to a verified number; sign in with it at
    `POST /v1/auth/login/sms/verify`. The answer is the same for every number."""
    async with system_transaction(runtime.system_engine) as db:
        result = await service.do_request_sign_in_code(db, rt=runtime, phone=body.phone, client=client)
        await _queue_sms(db, result.sms)
    return s.Accepted(detail="If the number can sign in, a code is on its way.")


@router.post("/login/sms/verify", response_model=s.TokenPair | s.MfaChallenge)
async def sms_login(body: p.PhoneCodeRequest, runtime: RuntimeDep, client: ClientDep) -> s.TokenPair | s.MfaChallenge:
    """Sign in with the code sent by SMS. Accounts with two-factor then complete it with
    the authenticator app or a recovery code at `POST /v1/auth/login/totp` (never with
    another code by SMS: that would be the same factor twice)."""
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_sms_login(db, rt=runtime, phone=body.phone, code=body.code, client=client, device=body)


@router.post("/login/second-factor/sms", status_code=status.HTTP_202_ACCEPTED, response_model=s.Accepted)
async def request_sms_second_factor(
    body: p.SmsSecondFactorRequest, runtime: RuntimeDep, client: ClientDep
) -> s.Accepted:
    """Send a second-factor code by SMS for a sign-in challenge (`mfa_token`), for when
    the authenticator app is not at hand. Only for accounts that turned SMS on as a
    fallback (`PUT /v1/auth/totp/sms-fallback`).

    **Weaker than the authenticator app**: a code by SMS can be intercepted, or taken by
    moving the number to another SIM card. Prefer the app, or a recovery code."""
    async with system_transaction(runtime.system_engine) as db:
        result = await service.do_request_sms_second_factor(db, rt=runtime, mfa_token=body.mfa_token, client=client)
        await _queue_sms(db, result.sms)
    return s.Accepted(detail="A code is on its way to the account's phone.")


@router.post("/login/second-factor/sms/verify", response_model=s.TokenPair)
async def sms_second_factor_login(
    body: p.SmsSecondFactorLoginRequest, runtime: RuntimeDep, client: ClientDep
) -> s.TokenPair:
    """Complete a two-factor sign-in with the code sent by SMS. **Weaker than the
    authenticator app** (see `POST /v1/auth/login/second-factor/sms`)."""
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_sms_second_factor_login(
            db, rt=runtime, mfa_token=body.mfa_token, code=body.code, client=client, device=body
        )


@router.post("/password/forgot/phone", status_code=status.HTTP_202_ACCEPTED, response_model=s.Accepted)
async def forgot_password_by_phone(body: p.PhoneRequest, runtime: RuntimeDep, client: ClientDep) -> s.Accepted:
    """Send a password reset code by SMS. The answer is the same for every number."""
    async with system_transaction(runtime.system_engine) as db:
        result = await service.do_request_phone_password_reset(db, rt=runtime, phone=body.phone, client=client)
        await _queue_sms(db, result.sms)
    return s.Accepted(detail="If the number has an account, a reset code is on its way.")


@router.post("/password/reset/phone", **NO_CONTENT)
async def reset_password_by_phone(body: p.PhoneResetPasswordRequest, runtime: RuntimeDep, client: ClientDep) -> None:
    """Set a new password with the code sent by SMS (it verifies the number too). Every
    session of the account ends."""
    async with system_transaction(runtime.system_engine) as db:
        await service.do_reset_password_by_phone(
            db, rt=runtime, phone=body.phone, code=body.code, new_password=body.new_password, client=client
        )


@router.get("/phone", response_model=p.PhoneOut)
async def get_phone(caller: CallerDep) -> p.PhoneOut:
    """The signed-in account's phone number."""
    async with caller.transaction() as (db, actor):
        return await service.get_phone(db, actor=actor)


@router.post("/phone", status_code=status.HTTP_202_ACCEPTED, response_model=s.Accepted)
async def request_phone_change(body: p.PhoneRequest, caller: CallerDep) -> s.Accepted:
    """Add a phone number to the account, or change it: a code is sent by SMS to the new
    number, which becomes the account's at `POST /v1/auth/phone/verify`. The answer is the
    same whether or not another account has the number."""
    actor = await caller.actor()
    async with system_transaction(caller.runtime.system_engine) as db:
        result = await service.do_request_phone_change(
            db, rt=caller.runtime, actor=actor, phone=body.phone, client=caller.client
        )
        await _queue_sms(db, result.sms)
    return s.Accepted(detail="If the number can be added, a code is on its way to it.")


@router.post("/phone/verify", response_model=p.PhoneOut)
async def verify_phone_change(body: p.PhoneVerifyRequest, caller: CallerDep) -> p.PhoneOut:
    """Make the number the account's with the code sent to it. A number it replaces is
    told by SMS."""
    actor = await caller.actor()
    async with system_transaction(caller.runtime.system_engine) as db:
        change = await service.do_verify_phone_change(
            db, rt=caller.runtime, actor=actor, phone=body.phone, code=body.code, client=caller.client
        )
        await _queue_sms(db, change.sms)
    return change.phone


@router.post("/phone/remove", **NO_CONTENT)
async def remove_phone(body: p.PhoneRemoveRequest, caller: CallerDep) -> None:
    """Remove the account's number (with the password, for accounts that have one); SMS
    as a second factor goes with it, and the number is told by SMS. An account registered
    with its phone alone cannot remove it: change it instead."""
    actor = await caller.actor()
    async with system_transaction(caller.runtime.system_engine) as db:
        result = await service.do_remove_phone(
            db, rt=caller.runtime, actor=actor, password=body.password, client=caller.client
        )
        await _queue_sms(db, result.sms)


@router.put("/totp/sms-fallback", response_model=p.SmsFallbackOut)
async def set_sms_fallback(body: p.SmsFallbackRequest, caller: CallerDep) -> p.SmsFallbackOut:
    """Let a code sent by SMS to the verified number stand in for the authenticator app
    at sign-in, or stop it (with a current authenticator code either way).

    **Weaker than the authenticator app**: whoever takes over the number (a SIM swap) or
    reads its messages gets the second factor. Off unless turned on here."""
    actor = await caller.actor()
    async with system_transaction(caller.runtime.system_engine) as db:
        return await service.do_set_sms_fallback(
            db, rt=caller.runtime, actor=actor, enabled=body.enabled, code=body.code, client=caller.client
        )
