"""TOTP two-factor authentication (RFC 6238) with single-use recovery codes.

Enrolment is two steps: Rapport makes a secret, the user's authenticator app shows a
code, and only a correct code turns two-factor on (so nobody locks themselves out with
a secret their app never saved). Secrets are encrypted under the server key.
"""

from __future__ import annotations

import enum
import hmac
import time
from uuid import UUID

import pyotp
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import _limits as limits
from rapport.identity._records import record_security_event
from rapport.identity.errors import (
    InvalidTotpCode,
    TotpAlreadyEnabled,
    TotpCodeAlreadyUsed,
    TotpNotEnabled,
    TotpNotEnrolled,
)
from rapport.identity.models import recovery_codes, totp_credentials, users
from rapport.identity.schemas import RecoveryCodes, TotpEnrolment
from rapport.kernel.actor import Actor, Client
from rapport.kernel.crypto import recovery_code, sha256
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import ValidationFailed
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime

ISSUER = "Rapport"
RECOVERY_CODE_COUNT = 10
_PURPOSE = "totp-secret"
# Codes from one step either side are accepted: phone clocks drift.
_VALID_WINDOW = 1


class SecondFactor(enum.Enum):
    """How a second-factor check came out."""

    ACCEPTED = "accepted"
    WRONG = "wrong"
    # The right code of a time step already used: spent, not a guess.
    REPLAYED = "replayed"


async def totp_enabled(db: AsyncConnection, *, user_id: UUID) -> bool:
    row = (
        await db.execute(
            select(totp_credentials.c.user_id).where(
                totp_credentials.c.user_id == user_id, totp_credentials.c.confirmed_at.is_not(None)
            )
        )
    ).one_or_none()
    return row is not None


async def do_enrol_totp(db: AsyncConnection, *, rt: Runtime, actor: Actor) -> TotpEnrolment:
    """Start (or restart) enrolment with a new secret.

    Raises:
        TotpAlreadyEnabled: two-factor is already on; disable it first.
    """
    if await totp_enabled(db, user_id=actor.user_id):
        raise TotpAlreadyEnabled("Disable two-factor authentication before enrolling again.")
    secret = pyotp.random_base32()
    encrypted = rt.keyring.encrypt(_PURPOSE, secret.encode())
    stmt = pg_insert(totp_credentials).values(user_id=actor.user_id, secret_encrypted=encrypted)
    await db.execute(
        stmt.on_conflict_do_update(
            index_elements=[totp_credentials.c.user_id],
            set_={"secret_encrypted": encrypted, "confirmed_at": None, "last_used_step": None},
        )
    )
    # An account registered with a phone is named by its number in the authenticator app.
    name = (
        await db.execute(select(func.coalesce(users.c.email, users.c.phone_number)).where(users.c.id == actor.user_id))
    ).scalar_one()
    uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)
    return TotpEnrolment(secret=secret, otpauth_uri=uri)


async def do_confirm_totp(
    db: AsyncConnection, *, rt: Runtime, actor: Actor, code: str, client: Client
) -> RecoveryCodes:
    """Turn two-factor on with a first correct code; returns the recovery codes, shown once.

    Raises:
        TotpNotEnrolled: no enrolment was started.
        TotpAlreadyEnabled: two-factor is already on.
        TooManyAttempts: the account's wrong codes are used up for now.
        InvalidTotpCode: the code is wrong.
    """
    credential = await _credential(db, actor.user_id)
    if credential is None:
        raise TotpNotEnrolled()
    if credential.confirmed_at is not None:
        raise TotpAlreadyEnabled()
    rule = limits.rules(rt).second_factor_guesses
    await limits.take(db, rule=rule, subject=str(actor.user_id))
    step = _matching_step(rt, credential, code)
    if step is None:
        raise InvalidTotpCode()
    await limits.give_back(db, rule=rule, subject=str(actor.user_id))
    await db.execute(
        update(totp_credentials)
        .where(totp_credentials.c.user_id == actor.user_id)
        .values(confirmed_at=func.now(), last_used_step=step)
    )
    codes = await _replace_recovery_codes(db, user_id=actor.user_id)
    await record_security_event(db, user_id=actor.user_id, event_type="totp_enabled", client=client)
    return RecoveryCodes(recovery_codes=codes)


async def do_disable_totp(
    db: AsyncConnection, *, rt: Runtime, actor: Actor, code: str | None, recovery_code: str | None, client: Client
) -> None:
    """Turn two-factor off; needs a current code or a recovery code.

    Raises:
        ValidationFailed: neither a code nor a recovery code, or both.
        TotpNotEnabled: two-factor is not on.
        TooManyAttempts: the account's wrong codes are used up for now.
        TotpCodeAlreadyUsed: the code of a time step already used.
        InvalidTotpCode: the code is wrong.
    """
    if (code is None) == (recovery_code is None):
        raise ValidationFailed("Send either `code` or `recovery_code`.")
    if not await totp_enabled(db, user_id=actor.user_id):
        raise TotpNotEnabled()
    await _require_second_factor(
        db, rt=rt, user_id=actor.user_id, code=code, recovery_code=recovery_code, client=client
    )
    await db.execute(delete(recovery_codes).where(recovery_codes.c.user_id == actor.user_id))
    await db.execute(delete(totp_credentials).where(totp_credentials.c.user_id == actor.user_id))
    await record_security_event(
        db, user_id=actor.user_id, event_type="totp_disabled", severity="warning", client=client
    )


async def do_regenerate_recovery_codes(
    db: AsyncConnection, *, rt: Runtime, actor: Actor, code: str, client: Client
) -> RecoveryCodes:
    """New recovery codes for a current TOTP code; the old ones stop working.

    Raises:
        TotpNotEnabled: two-factor is not on.
        TooManyAttempts: the account's wrong codes are used up for now.
        TotpCodeAlreadyUsed: the code of a time step already used.
        InvalidTotpCode: the code is wrong.
    """
    if not await totp_enabled(db, user_id=actor.user_id):
        raise TotpNotEnabled()
    await _require_second_factor(db, rt=rt, user_id=actor.user_id, code=code, recovery_code=None, client=client)
    codes = await _replace_recovery_codes(db, user_id=actor.user_id)
    await record_security_event(db, user_id=actor.user_id, event_type="recovery_codes_regenerated", client=client)
    return RecoveryCodes(recovery_codes=codes)


async def check_second_factor(
    db: AsyncConnection, *, rt: Runtime, user_id: UUID, code: str | None, recovery_code: str | None, client: Client
) -> SecondFactor:
    """Accept a TOTP code (each time step once) or spend a recovery code."""
    credential = await _credential(db, user_id, lock=True)
    if credential is None or credential.confirmed_at is None:
        return SecondFactor.WRONG
    if code:
        step = _matching_step(rt, credential, code)
        if step is None:
            return SecondFactor.WRONG
        if credential.last_used_step is not None and step <= credential.last_used_step:
            return SecondFactor.REPLAYED
        await db.execute(
            update(totp_credentials).where(totp_credentials.c.user_id == user_id).values(last_used_step=step)
        )
        return SecondFactor.ACCEPTED
    if recovery_code:
        spent = (
            await db.execute(
                update(recovery_codes)
                .where(
                    recovery_codes.c.user_id == user_id,
                    recovery_codes.c.used_at.is_(None),
                    recovery_codes.c.code_hash == sha256(_normalise_recovery_code(recovery_code)),
                )
                .values(used_at=func.now())
                .returning(recovery_codes.c.id)
            )
        ).first()
        if spent is None:
            return SecondFactor.WRONG
        await record_security_event(
            db, user_id=user_id, event_type="recovery_code_used", severity="warning", client=client
        )
        return SecondFactor.ACCEPTED
    return SecondFactor.WRONG


async def verify_second_factor(
    db: AsyncConnection,
    *,
    rt: Runtime,
    user_id: UUID,
    code: str | None,
    recovery_code: str | None,
    client: Client,
    ip_limited: bool,
) -> SecondFactor:
    """Check a second factor within the account's budget of wrong TOTP codes (and, at
    sign-in, the client's budget of wrong codes); returns WRONG for the caller to refuse,
    the units it took spent. ACCEPTED and REPLAYED give the units back: a replay is the
    right code, late, not a guess.

    A recovery code is not charged to the account's budget: fifty random bits are out of
    reach of guessing, and with them the owner still gets in while a stranger who holds
    the password has spent the TOTP budget.

    Raises:
        TooManyAttempts: the account's (or the client's) wrong codes are used up for now.
    """
    rules = limits.rules(rt)
    taken: list[tuple[limits.Rule, str]] = []
    if ip_limited and client.ip:
        taken.append((rules.code_guesses_per_ip, client.ip))
    if code:
        taken.append((rules.second_factor_guesses, str(user_id)))
    for rule, subject in taken:
        await limits.take(db, rule=rule, subject=subject)
    outcome = await check_second_factor(
        db, rt=rt, user_id=user_id, code=code, recovery_code=recovery_code, client=client
    )
    if outcome is not SecondFactor.WRONG:
        for rule, subject in taken:
            await limits.give_back(db, rule=rule, subject=subject)
    return outcome


async def _require_second_factor(
    db: AsyncConnection, *, rt: Runtime, user_id: UUID, code: str | None, recovery_code: str | None, client: Client
) -> None:
    """Raises:
    TooManyAttempts: the account's wrong codes are used up for now.
    TotpCodeAlreadyUsed: the code of a time step already used.
    InvalidTotpCode: the code is wrong (and counts against the account's budget).
    """
    outcome = await verify_second_factor(
        db, rt=rt, user_id=user_id, code=code, recovery_code=recovery_code, client=client, ip_limited=False
    )
    if outcome is SecondFactor.REPLAYED:
        raise TotpCodeAlreadyUsed("This code was already used. Wait for the next one.")
    if outcome is SecondFactor.WRONG:
        raise InvalidTotpCode()


async def _credential(db: AsyncConnection, user_id: UUID, *, lock: bool = False) -> AnyRow | None:
    query = select(totp_credentials).where(totp_credentials.c.user_id == user_id)
    if lock:
        query = query.with_for_update()
    return (await db.execute(query)).one_or_none()


def _matching_step(rt: Runtime, credential: AnyRow, code: str) -> int | None:
    """The time step whose code matches, within the drift window, or None."""
    secret = rt.keyring.decrypt(_PURPOSE, credential.secret_encrypted).decode()
    totp = pyotp.TOTP(secret)
    now_step = int(time.time()) // totp.interval
    # As bytes: the schema's \d also admits non-ASCII digits ("١٢٣٤٥٦"), and
    # compare_digest refuses non-ASCII str with a TypeError (a 500) instead of a mismatch.
    typed = code.encode()
    for step in range(now_step - _VALID_WINDOW, now_step + _VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), typed):
            return step
    return None


async def _replace_recovery_codes(db: AsyncConnection, *, user_id: UUID) -> list[str]:
    await db.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
    codes = [recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    await db.execute(
        insert(recovery_codes),
        [{"id": uuid7(), "user_id": user_id, "code_hash": sha256(_normalise_recovery_code(c))} for c in codes],
    )
    return codes


def _normalise_recovery_code(value: str) -> str:
    return value.strip().lower().replace("-", "").replace(" ", "")
