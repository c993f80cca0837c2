"""The identity API under /v1/auth: each route parses, calls one service function in one
transaction, and shapes the answer. Mail is queued in that transaction and leaves once it
commits (rapport.kernel.mail)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, status
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import schemas as s
from rapport.identity import service
from rapport.kernel.db import system_transaction
from rapport.kernel.deps import NO_CONTENT, CallerDep, ClientDep, PageDep, RuntimeDep
from rapport.kernel.mail import enqueue_mail
from rapport.kernel.pagination import Page

router = APIRouter(prefix="/v1/auth", tags=["identity"])


async def _queue_mail(db: AsyncConnection, result: service.MailResult) -> None:
    # In the route's transaction: the mail leaves only if the change that asked for it
    # commits, and survives this process dying once it has.
    if result.mail is not None:
        await enqueue_mail(db, result.mail)


@router.post("/register", status_code=status.HTTP_202_ACCEPTED, response_model=s.Accepted)
async def register(body: s.RegisterRequest, runtime: RuntimeDep, client: ClientDep) -> s.Accepted:
    """Create an account with e-mail and password. A six-digit code is e-mailed to the
    address; `POST /v1/auth/verify-email` with it activates the account and signs in.

    The answer is the same whether or not the address already has an account."""
    async with system_transaction(runtime.system_engine) as db:
        result = await service.do_register(db, rt=runtime, email=body.email, password=body.password, client=client)
        await _queue_mail(db, result)
    return s.Accepted(detail="If the address can be registered, a verification code is on its way.")


@router.post("/verify-email", response_model=s.TokenPair)
async def verify_email(body: s.VerifyEmailRequest, runtime: RuntimeDep, client: ClientDep) -> s.TokenPair:
    """Verify the address with the e-mailed code; activates the account and signs in."""
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_verify_email(
            db, rt=runtime, email=body.email, code=body.code, client=client, device=body
        )


@router.post("/verify-email/resend", status_code=status.HTTP_202_ACCEPTED, response_model=s.Accepted)
async def resend_verification(body: s.EmailRequest, runtime: RuntimeDep, client: ClientDep) -> s.Accepted:
    """Send a new verification code to an unverified address (earlier codes stop working)."""
    async with system_transaction(runtime.system_engine) as db:
        result = await service.do_resend_verification(db, rt=runtime, email=body.email, client=client)
        await _queue_mail(db, result)
    return s.Accepted(detail="If the address awaits verification, a new code is on its way.")


@router.post("/login", response_model=s.TokenPair | s.MfaChallenge)
async def login(body: s.LoginRequest, runtime: RuntimeDep, client: ClientDep) -> s.TokenPair | s.MfaChallenge:
    """Sign in with e-mail and password. Accounts with two-factor get an `mfa_token`
    to complete at `POST /v1/auth/login/totp`; others get their tokens at once, unless
    the sign-in looks unusual (a challenge with `factor` `email`: see
    `POST /v1/auth/login/step-up`)."""
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_password_login(
            db, rt=runtime, email=body.email, password=body.password, client=client, device=body
        )


@router.post("/login/totp", response_model=s.TokenPair)
async def login_totp(body: s.TotpLoginRequest, runtime: RuntimeDep, client: ClientDep) -> s.TokenPair:
    """Complete a two-factor sign-in with a TOTP `code` or a `recovery_code`."""
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_totp_login(
            db,
            rt=runtime,
            mfa_token=body.mfa_token,
            code=body.code,
            recovery_code=body.recovery_code,
            client=client,
            device=body,
        )


@router.post("/login/step-up", response_model=s.TokenPair)
async def login_step_up(body: s.StepUpLoginRequest, runtime: RuntimeDep, client: ClientDep) -> s.TokenPair:
    """Complete a sign-in held as unusual (a challenge with `factor` `email` or `sms`, for
    an account without two-factor) with the one-time code sent to the account's address
    or number. Wrong codes count against the account and the client."""
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_step_up_login(
            db, rt=runtime, mfa_token=body.mfa_token, code=body.code, client=client, device=body
        )


@router.post("/oidc/{provider}", response_model=s.TokenPair | s.MfaChallenge)
async def oidc_login(
    provider: Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9_-]+$")],
    body: s.OidcLoginRequest,
    runtime: RuntimeDep,
    client: ClientDep,
) -> s.TokenPair | s.MfaChallenge:
    """Sign in with an OpenID Connect ID token from a configured provider (Google, Auth0),
    verified against the provider's published keys. The first sign-in creates the account,
    or links it to an account with the same verified e-mail."""
    identity = await service.verify_oidc_token(runtime, provider=provider, id_token=body.id_token)
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_oidc_login(db, rt=runtime, identity=identity, client=client, device=body)


@router.post("/refresh", response_model=s.TokenPair)
async def refresh(body: s.RefreshRequest, runtime: RuntimeDep, client: ClientDep) -> s.TokenPair:
    """Exchange a refresh token for a new access and refresh token. Each refresh token
    works once: presenting a used one revokes its session."""
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_refresh(db, rt=runtime, refresh_token=body.refresh_token, client=client)


@router.post("/logout", **NO_CONTENT)
async def logout(caller: CallerDep) -> None:
    """End the current session."""
    async with caller.transaction() as (db, actor):
        await service.do_logout(db, actor=actor)


@router.get("/me", response_model=s.UserOut)
async def me(caller: CallerDep) -> s.UserOut:
    """The signed-in account."""
    async with caller.transaction() as (db, actor):
        return await service.get_user(db, actor=actor)


@router.post("/password/forgot", status_code=status.HTTP_202_ACCEPTED, response_model=s.Accepted)
async def forgot_password(body: s.EmailRequest, runtime: RuntimeDep, client: ClientDep) -> s.Accepted:
    """E-mail a password reset code. The answer is the same for every address."""
    async with system_transaction(runtime.system_engine) as db:
        result = await service.do_request_password_reset(db, rt=runtime, email=body.email, client=client)
        await _queue_mail(db, result)
    return s.Accepted(detail="If the address has an account, a reset code is on its way.")


@router.post("/password/reset", **NO_CONTENT)
async def reset_password(body: s.ResetPasswordRequest, runtime: RuntimeDep, client: ClientDep) -> None:
    """Set a new password with the e-mailed code. Every session of the account ends."""
    async with system_transaction(runtime.system_engine) as db:
        await service.do_reset_password(
            db, rt=runtime, email=body.email, code=body.code, new_password=body.new_password, client=client
        )


@router.post("/password/change", **NO_CONTENT)
async def change_password(body: s.ChangePasswordRequest, caller: CallerDep) -> None:
    """Change the password. Every other session of the account ends; this one stays."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.do_change_password(
            db,
            rt=caller.runtime,
            actor=actor,
            current_password=body.current_password,
            new_password=body.new_password,
            client=caller.client,
        )


@router.get("/sessions", response_model=Page[s.SessionOut])
async def list_sessions(caller: CallerDep, page: PageDep) -> Page[s.SessionOut]:
    """The account's live sessions (devices), newest first; `current` marks this one."""
    async with caller.transaction() as (db, actor):
        return await service.list_sessions(db, actor=actor, page=page)


@router.delete("/sessions/{session_id}", **NO_CONTENT)
async def revoke_session(session_id: UUID, caller: CallerDep) -> None:
    """Sign a device out: its tokens stop working at once."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.do_revoke_session(db, actor=actor, session_id=session_id, client=caller.client)


@router.post("/totp", response_model=s.TotpEnrolment)
async def enrol_totp(caller: CallerDep) -> s.TotpEnrolment:
    """Start two-factor enrolment: add the secret (or scan the otpauth URI) in an
    authenticator app, then confirm with a code."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_enrol_totp(db, rt=caller.runtime, actor=actor)


@router.post("/totp/confirm", response_model=s.RecoveryCodes)
async def confirm_totp(body: s.TotpCodeRequest, caller: CallerDep) -> s.RecoveryCodes:
    """Turn two-factor on with a first code. Returns ten recovery codes, shown once."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_confirm_totp(db, rt=caller.runtime, actor=actor, code=body.code, client=caller.client)


@router.post("/totp/disable", **NO_CONTENT)
async def disable_totp(body: s.TotpDisableRequest, caller: CallerDep) -> None:
    """Turn two-factor off with a current code or a recovery code."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.do_disable_totp(
            db,
            rt=caller.runtime,
            actor=actor,
            code=body.code,
            recovery_code=body.recovery_code,
            client=caller.client,
        )


@router.post("/totp/recovery-codes", response_model=s.RecoveryCodes)
async def regenerate_recovery_codes(body: s.TotpCodeRequest, caller: CallerDep) -> s.RecoveryCodes:
    """Replace the recovery codes (the old ones stop working)."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_regenerate_recovery_codes(
            db, rt=caller.runtime, actor=actor, code=body.code, client=caller.client
        )


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=s.ApiKeyCreated)
async def create_api_key(body: s.ApiKeyCreateRequest, caller: CallerDep) -> s.ApiKeyCreated:
    """Create an API key. The key is in this answer only; use it as a Bearer token."""
    async with caller.transaction(session_required=True) as (db, actor):
        return await service.do_create_api_key(
            db, actor=actor, name=body.name, expires_at=body.expires_at, client=caller.client
        )


@router.get("/api-keys", response_model=Page[s.ApiKeyOut])
async def list_api_keys(caller: CallerDep, page: PageDep) -> Page[s.ApiKeyOut]:
    """The account's API keys that are not revoked, newest first (never the keys themselves)."""
    async with caller.transaction() as (db, actor):
        return await service.list_api_keys(db, actor=actor, page=page)


@router.delete("/api-keys/{api_key_id}", **NO_CONTENT)
async def revoke_api_key(api_key_id: UUID, caller: CallerDep) -> None:
    """Revoke an API key: it stops working at once."""
    async with caller.transaction(session_required=True) as (db, actor):
        await service.do_revoke_api_key(db, actor=actor, api_key_id=api_key_id, client=caller.client)


@router.get("/login-history", response_model=Page[s.LoginHistoryOut])
async def login_history(caller: CallerDep, page: PageDep) -> Page[s.LoginHistoryOut]:
    """Sign-in attempts on the account, newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_login_history(db, actor=actor, page=page)


@router.get("/security-events", response_model=Page[s.SecurityEventOut])
async def security_events(caller: CallerDep, page: PageDep) -> Page[s.SecurityEventOut]:
    """Changes to the account's security (password, two-factor, keys, token reuse), newest first."""
    async with caller.transaction() as (db, actor):
        return await service.list_security_events(db, actor=actor, page=page)
