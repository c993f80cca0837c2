"""Signing in: password, then the second factor when the account has one.

Every path ends in `complete_sign_in`, which either opens a session or hands back a
short-lived challenge token for the second step: for accounts with TOTP, always; for
others, when a check held the sign-in (identity._step_up: a code by e-mail or SMS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from sqlalchemy import Column, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import _limits as limits
from rapport.identity import _throttle as throttle
from rapport.identity import tokens
from rapport.identity._accounts import restore_if_deleted, sign_in_refused
from rapport.identity._phone_codes import CODE_REFUSED, spend_second_factor
from rapport.identity._records import record_login, record_security_event
from rapport.identity._sessions import create_session
from rapport.identity._step_up import hold_for_code, step_up_channel
from rapport.identity._totp import SecondFactor, totp_enabled, verify_second_factor
from rapport.identity.errors import (
    AccountDisabled,
    EmailNotVerified,
    InvalidCode,
    InvalidCredentials,
    InvalidTotpCode,
    LoginThrottled,
    TotpCodeAlreadyUsed,
)
from rapport.identity.models import login_history, sessions, spent_tokens, users
from rapport.identity.schemas import Device, MfaChallenge, TokenPair
from rapport.kernel import sign_ins
from rapport.kernel.actor import Client
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import InvalidToken
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.runtime import Runtime

# Records a challenge as spent; no row back means it already was. Expired rows of other
# challenges are swept a few at a time.
_SPEND_TOKEN = text(
    """
    WITH swept AS (
        DELETE FROM auth.spent_tokens
         WHERE id IN (SELECT id FROM auth.spent_tokens WHERE expires_at < now() AND id <> :id
                       ORDER BY expires_at LIMIT 8 FOR UPDATE SKIP LOCKED)
    )
    INSERT INTO auth.spent_tokens (id, expires_at) VALUES (:id, to_timestamp(:expires_at))
    ON CONFLICT (id) DO NOTHING
    RETURNING id
    """
)
_CHALLENGE_USED = "This sign-in challenge was already used. Sign in again."
_STEP_UP_ONLY = "This sign-in is completed with the code just sent, at POST /v1/auth/login/step-up."


@dataclass(frozen=True)
class SignInName:
    """What a password sign-in names the account by (an e-mail address or a phone number),
    and how its refusals are worded."""

    value: str
    column: Column[str]
    method: str
    throttled: str
    # None: the error's own title ("The e-mail or password is incorrect").
    wrong: str | None = None


async def do_password_login(
    db: AsyncConnection, *, rt: Runtime, email: str, password: str, client: Client, device: Device
) -> TokenPair | MfaChallenge:
    """Check an e-mail and password (system transaction).

    Raises:
        LoginThrottled: too many recent failures for this address from this client, from
            this client IP, or for this address from unknown clients.
        InvalidCredentials: unknown address or wrong password (never says which).
        EmailNotVerified: right password, address not yet verified.
        AccountDisabled: right password, account suspended, banned or deleted.
    """
    name = SignInName(
        value=email,
        column=users.c.email,
        method="password",
        throttled="Too many failed sign-ins for this address. "
        "Try again later, or from a device that has signed in before.",
    )
    user = await check_password(db, rt=rt, name=name, password=password, client=client)
    if user.status == "pending" or user.email_verified_at is None:
        raise EmailNotVerified("Enter the code we e-mailed to verify this address, or ask for a new one.")
    return await complete_sign_in(db, rt=rt, user_id=user.id, method="password", client=client, device=device)


async def check_password(
    db: AsyncConnection, *, rt: Runtime, name: SignInName, password: str, client: Client
) -> AnyRow:
    """The live account `name` names, once its password is right and it may sign in.

    Failures lock this client out of this name (a lock that grows), and slow the name
    for everyone: past its budget of failures only clients that have signed in to the
    account before get through (docs/decisions/0003).

    Raises:
        LoginThrottled, InvalidCredentials, AccountDisabled.
    """
    pair = throttle.pair_key(rt.keyring, email=name.value, ip=client.ip)
    keys = [pair]
    if (ip := throttle.ip_key(client.ip)) is not None:
        keys.append(ip)
    await throttle.check_not_throttled(db, keys=keys, settings=rt.settings)
    budget = limits.rules(rt).sign_in_failures_per_address
    subject = limits.address(rt, name.value)
    wait = await limits.wait_for(db, rule=budget, subject=subject)
    if wait is not None and not await _known_client(db, rt=rt, name=name, ip=client.ip):
        raise LoginThrottled(name.throttled, retry_after=wait)

    user = (
        await db.execute(select(users).where(name.column == name.value, users.c.deleted_at.is_(None)))
    ).one_or_none()
    check = await rt.passwords.verify(user.password_hash if user else None, password)
    if user is None or not check.ok:
        await limits.try_take(db, rule=budget, subject=subject)
        await _count_failed_password(db, rt=rt, keys=keys, user=user, client=client)
        raise InvalidCredentials(name.wrong)

    await throttle.clear(db, key=pair)
    if await sign_in_refused(db, user_id=user.id, status=user.status):
        await record_login(db, user_id=user.id, method=name.method, client=client, failure_reason="account_disabled")
        raise AccountDisabled()
    if check.needs_rehash:
        await db.execute(
            update(users).where(users.c.id == user.id).values(password_hash=await rt.passwords.hash(password))
        )
    return user


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
    """The second step: a TOTP code or a recovery code for a challenge token, which
    works for one sign-in only.

    Raises:
        InvalidToken: the challenge token is invalid, expired or already used.
        TooManyAttempts: too many wrong codes for this account or from this client.
        TotpCodeAlreadyUsed: the code of a time step already used (not counted).
        InvalidTotpCode: the code is wrong.
    """
    challenge = tokens.verify_mfa_token(rt.keyring, mfa_token)
    if challenge.step_up is not None:
        raise InvalidToken(_STEP_UP_ONLY)
    spent = await db.execute(select(spent_tokens.c.id).where(spent_tokens.c.id == challenge.token_id))
    if spent.first() is not None:
        raise InvalidToken(_CHALLENGE_USED)
    user = await _active_user(db, challenge.user_id)
    method = f"{challenge.method}+totp"
    outcome = await verify_second_factor(
        db, rt=rt, user_id=user.id, code=code, recovery_code=recovery_code, client=client, ip_limited=True
    )
    if outcome is SecondFactor.REPLAYED:
        raise TotpCodeAlreadyUsed("This code was already used. Wait for the next one.")
    if outcome is SecondFactor.WRONG:
        await record_login(db, user_id=user.id, method=method, client=client, failure_reason="invalid_totp")
        raise InvalidTotpCode()
    # In the transaction that opens the session: of two concurrent uses one finds the
    # other's row and is rolled back whole, its recovery code or time step unspent.
    claimed = await db.execute(_SPEND_TOKEN, {"id": challenge.token_id, "expires_at": challenge.expires_at})
    if claimed.first() is None:
        raise InvalidToken(_CHALLENGE_USED)
    return await _open_session(db, rt=rt, user_id=user.id, method=method, client=client, device=device)


async def do_step_up_login(
    db: AsyncConnection, *, rt: Runtime, mfa_token: str, code: str, client: Client, device: Device
) -> TokenPair:
    """The second step of a sign-in held without TOTP (identity._step_up): the code sent
    by e-mail or SMS for a challenge token, which works for one sign-in only.

    Raises:
        InvalidToken: the challenge token is invalid, expired, already used, or one for
            the authenticator app.
        AccountDisabled: the account is suspended, banned or deleted.
        TooManyAttempts: too many wrong codes for this account or from this client.
        InvalidCode: the code is wrong, expired or spent (counted).
    """
    challenge = tokens.verify_mfa_token(rt.keyring, mfa_token)
    if challenge.step_up is None:
        raise InvalidToken("This sign-in is completed with the authenticator app, at POST /v1/auth/login/totp.")
    spent = await db.execute(select(spent_tokens.c.id).where(spent_tokens.c.id == challenge.token_id))
    if spent.first() is not None:
        raise InvalidToken(_CHALLENGE_USED)
    user = await _active_user(db, challenge.user_id)
    method = f"{challenge.method}+{challenge.step_up}_code"
    # The code is bound to where it was sent: a changed address or number spends the
    # guess and matches nothing.
    to = user.email if challenge.step_up == "email" else user.phone_number
    if not await spend_second_factor(db, rt=rt, user_id=user.id, to=str(to), code=code, client=client):
        await record_login(db, user_id=user.id, method=method, client=client, failure_reason="invalid_step_up_code")
        raise InvalidCode(CODE_REFUSED)
    claimed = await db.execute(_SPEND_TOKEN, {"id": challenge.token_id, "expires_at": challenge.expires_at})
    if claimed.first() is None:
        raise InvalidToken(_CHALLENGE_USED)
    return await _open_session(db, rt=rt, user_id=user.id, method=method, client=client, device=device)


async def complete_sign_in(
    db: AsyncConnection, *, rt: Runtime, user_id: UUID, method: str, client: Client, device: Device
) -> TokenPair | MfaChallenge:
    """First factor passed: challenge for the second one, or open the session.

    The domains above identity check the sign-in first (rapport.kernel.sign_ins); a check
    may hold it for a second proof (location: a suspicious sign-in). An account with TOTP
    is asked for it on every sign-in today; the verdict holds on its own, so that no later
    exemption (a remembered device, say) lets a suspicious sign-in skip it. An account
    without TOTP is sent a one-time code when held (identity._step_up)."""
    has_totp = await totp_enabled(db, user_id=user_id)
    channel = None if has_totp else await step_up_channel(db, user_id=user_id, method=method)
    attempt = sign_ins.SignInAttempt(
        user_id=user_id, method=method, client=client, has_second_factor=has_totp, can_step_up=channel is not None
    )
    verdict = await sign_ins.check_sign_in(db, rt=rt, attempt=attempt)
    if verdict.second_factor and channel is not None:
        return await hold_for_code(db, rt=rt, user_id=user_id, method=method, channel=channel)
    if has_totp or verdict.second_factor:
        return MfaChallenge(
            mfa_token=tokens.issue_mfa_token(rt.keyring, user_id=user_id, method=method),
            expires_in=tokens.MFA_TOKEN_TTL_SECONDS,
        )
    return await _open_session(db, rt=rt, user_id=user_id, method=method, client=client, device=device)


async def _open_session(
    db: AsyncConnection, *, rt: Runtime, user_id: UUID, method: str, client: Client, device: Device
) -> TokenPair:
    await restore_if_deleted(db, user_id=user_id)
    known = await _known_device(db, user_id=user_id, client=client, device=device)
    pair = await create_session(db, rt=rt, user_id=user_id, client=client, device=device)
    if known is False:
        # The account holder hears of it on their other devices (and by e-mail, as the
        # notifications pipeline decides): a sign-in they did not make is how they learn
        # that their password is known.
        await publish(
            db,
            scope=Scope.user(user_id),
            type="account.new_device",
            payload={
                "session_id": str(pair.session_id),
                "method": method,
                "device": (device.device_name or client.user_agent or "")[:200],
                "user_agent": (client.user_agent or "")[:300],
                "ip": client.ip,
            },
            actor_id=None,
        )
    await db.execute(
        update(users).where(users.c.id == user_id).values(last_login_at=func.now(), failed_login_attempts=0)
    )
    await record_login(db, user_id=user_id, method=method, client=client, session_id=pair.session_id)
    # A sign-in, for Rapport's own readers (analytics' logged_in), after it commits: in the
    # nil user's scope, which no one's feed carries (account.new_device is the devices').
    await publish(
        db,
        scope=Scope.user(UUID(int=0)),
        type="account.signed_in",
        payload={"user_id": str(user_id), "method": method, "device_type": device.device_type},
        actor_id=user_id,
    )
    return pair


async def _known_device(db: AsyncConnection, *, user_id: UUID, client: Client, device: Device) -> bool | None:
    """Whether the account has signed in from this device before (a session with its user
    agent, or its name when the client sends no user agent); None for the account's
    first sign-in ever, which is no news to anyone."""
    same = (
        sessions.c.user_agent == client.user_agent
        if client.user_agent
        else sessions.c.device_name.is_not_distinct_from(device.device_name)
    )
    row = (
        await db.execute(
            select(func.count().label("earlier"), func.coalesce(func.bool_or(same), False).label("known")).where(
                sessions.c.user_id == user_id
            )
        )
    ).one()
    return None if row.earlier == 0 else bool(row.known)


async def _active_user(db: AsyncConnection, user_id: UUID) -> AnyRow:
    user = (await db.execute(select(users).where(users.c.id == user_id))).one_or_none()
    if user is None or user.deleted_at is not None:
        raise InvalidToken()
    if await sign_in_refused(db, user_id=user.id, status=user.status):
        raise AccountDisabled()
    return user


async def _known_client(db: AsyncConnection, *, rt: Runtime, name: SignInName, ip: str | None) -> bool:
    """Whether this IP signed in to the named account lately. The same statement whether
    or not the name has an account."""
    if ip is None:
        return False
    since = func.now() - timedelta(days=rt.settings.login_known_client_days)
    query = select(
        exists().where(
            login_history.c.user_id == users.c.id,
            name.column == name.value,
            users.c.deleted_at.is_(None),
            login_history.c.succeeded.is_(True),
            login_history.c.ip_address == ip,
            login_history.c.created_at > since,
        )
    )
    return bool((await db.execute(query)).scalar_one())


async def _count_failed_password(
    db: AsyncConnection, *, rt: Runtime, keys: list[str], user: AnyRow | None, client: Client
) -> None:
    locked_until = None
    for key in keys:
        locked_until = await throttle.count_failure(db, key=key, settings=rt.settings) or locked_until
    if user is None:
        return
    # The account row counts failures for operators; the locks live in the throttle
    # table, per client, and lock no one else out.
    await db.execute(
        update(users).where(users.c.id == user.id).values(failed_login_attempts=users.c.failed_login_attempts + 1)
    )
    await record_login(db, user_id=user.id, method="password", client=client, failure_reason="invalid_password")
    if locked_until is not None:
        await record_security_event(
            db,
            user_id=user.id,
            event_type="sign_in_locked",
            severity="warning",
            client=client,
            details={"locked_until": locked_until.isoformat()},
        )
