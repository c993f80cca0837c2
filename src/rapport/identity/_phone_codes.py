"""SMS codes: issued and checked like the e-mailed ones (identity._accounts), with their
limits, and the limits SMS need besides (docs/decisions/0008 and 0023).

Every request that would send an SMS spends, before anything else, the limits of the
number typed and of the client, whether or not the number has an account: refused past
`sms_requests_per_*` (429); past `sms_per_number_per_hour` answered as if sent with
nothing sent; refused for a country outside `sms_allowed_countries` (422, a fact about
the number); and refused once the deployment's `sms_per_day` is spent (503, the same
for every number). Every request queues exactly one SMS, a code or a note without one,
so that the answer, its timing and the caps tell nothing about which numbers have
accounts (docs/decisions/0002).

Every code checked spends the budgets of wrong guesses the e-mailed codes spend: the
number typed stands for the address (`code_guesses_per_address_per_day`), and the client
IP's budget is shared with every other kind of code. The bound of 0008 holds as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import _limits as limits
from rapport.identity._sms import Sms
from rapport.identity.errors import InvalidCode, PhoneCountryNotAllowed, SmsUnavailable
from rapport.identity.schemas import CodePurpose
from rapport.identity.schemas_phones import country_of
from rapport.kernel.actor import Client
from rapport.kernel.crypto import numeric_code
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime

_HOUR = 3600
_DAY = 24 * _HOUR

# Codes sent to the number typed, for its account.
ByNumber = Literal["phone_verification", "password_reset", "sign_in"]

CODE_REFUSED = "The code is wrong or has expired. Check it, or ask for a new one."

# Who may be sent a code of each purpose, as a condition on auth.users (alias u), and
# whose code is checked. Fixed text chosen by purpose, never built from input.
_MAY_RECEIVE: dict[ByNumber, str] = {
    "phone_verification": "u.status = 'pending' AND u.phone_verified_at IS NULL",
    "password_reset": "u.status NOT IN ('suspended', 'banned', 'deleted')",
    "sign_in": "u.status = 'active' AND u.phone_verified_at IS NOT NULL",
}
# A disabled account's code is still checked for verification and sign-in, so that only
# the right code learns that the account is disabled.
_MAY_CHECK: dict[ByNumber, str] = {
    "phone_verification": "true",
    "password_reset": _MAY_RECEIVE["password_reset"],
    "sign_in": "u.phone_verified_at IS NOT NULL",
}

# As identity._accounts._ISSUE_CODE: one statement whether or not the number has an
# account, which retires the account's earlier codes of the purpose and writes the new
# one, or touches no row.
_ISSUE_BY_NUMBER = """
    WITH target AS (
        SELECT u.id FROM auth.users u
         WHERE u.phone_number = :phone AND u.deleted_at IS NULL AND ({may_receive})
    ), retired AS (
        UPDATE auth.otp_verifications SET consumed_at = now()
         WHERE user_id IN (SELECT id FROM target) AND purpose = :purpose AND consumed_at IS NULL
    )
    INSERT INTO auth.otp_verifications
           (id, user_id, purpose, identifier, identifier_type, code_hash, max_attempts, expires_at)
    SELECT :id, target.id, :purpose, :phone, 'phone', :code_hash, :max_attempts, now() + make_interval(mins => :ttl)
      FROM target
    RETURNING user_id
"""
_ISSUE: dict[ByNumber, TextClause] = {
    purpose: text(_ISSUE_BY_NUMBER.format(may_receive=condition)) for purpose, condition in _MAY_RECEIVE.items()
}

# A number being added to an account: the code goes to the account asking, unless another
# live account has the number verified (then the number gets a note instead). The
# account's earlier codes for adding a number are retired either way.
_ISSUE_CHANGE = text(
    """
    WITH taken AS (
        SELECT 1 FROM auth.users u
         WHERE u.phone_number = :phone AND u.deleted_at IS NULL AND u.phone_verified_at IS NOT NULL
           AND u.id <> :user_id
    ), retired AS (
        UPDATE auth.otp_verifications SET consumed_at = now()
         WHERE user_id = :user_id AND purpose = 'phone_change' AND consumed_at IS NULL
    )
    INSERT INTO auth.otp_verifications
           (id, user_id, purpose, identifier, identifier_type, code_hash, max_attempts, expires_at)
    SELECT :id, :user_id, 'phone_change', :phone, 'phone', :code_hash, :max_attempts,
           now() + make_interval(mins => :ttl)
     WHERE NOT EXISTS (SELECT 1 FROM taken)
    RETURNING user_id
    """
)

# A second factor: the code goes to the account's verified number (TOTP's SMS fallback),
# or, for a sign-in held without TOTP (identity._step_up), to its verified address.
_ISSUE_SECOND_FACTOR = text(
    """
    WITH retired AS (
        UPDATE auth.otp_verifications SET consumed_at = now()
         WHERE user_id = :user_id AND purpose = 'second_factor' AND consumed_at IS NULL
    )
    INSERT INTO auth.otp_verifications
           (id, user_id, purpose, identifier, identifier_type, code_hash, max_attempts, expires_at)
    VALUES (:id, :user_id, 'second_factor', :identifier, :identifier_type, :code_hash, :max_attempts,
            now() + make_interval(mins => :ttl))
    """
)

# As identity._accounts._CHECK_CODE: the newest live code of the number's account and the
# purpose counts the attempt, and is spent if it matches.
_CHECK_BY_NUMBER = """
    WITH target AS (
        SELECT o.id, o.attempts, o.max_attempts
          FROM auth.otp_verifications o JOIN auth.users u ON u.id = o.user_id
         WHERE u.phone_number = :phone AND u.deleted_at IS NULL AND ({may_check})
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
_CHECK: dict[ByNumber, TextClause] = {
    purpose: text(_CHECK_BY_NUMBER.format(may_check=condition)) for purpose, condition in _MAY_CHECK.items()
}

# The newest live code of one account and purpose (a number being added, a second factor).
_CHECK_BY_ACCOUNT = text(
    """
    WITH target AS (
        SELECT o.id, o.attempts, o.max_attempts
          FROM auth.otp_verifications o
         WHERE o.user_id = :user_id AND o.purpose = :purpose AND o.consumed_at IS NULL AND o.expires_at > now()
         ORDER BY o.created_at DESC
         LIMIT 1
           FOR UPDATE OF o
    )
    UPDATE auth.otp_verifications o
       SET attempts = o.attempts + 1,
           consumed_at = CASE WHEN o.code_hash = :code_hash THEN now() END
      FROM target
     WHERE o.id = target.id AND target.attempts < target.max_attempts
    RETURNING o.identifier, o.consumed_at IS NOT NULL AS matched
    """
)

# Once a number is proven, the codes other accounts were sent to add it stop working.
_RETIRE_FOR_NUMBER = text(
    """
    UPDATE auth.otp_verifications SET consumed_at = now()
     WHERE identifier = :phone AND identifier_type = 'phone' AND consumed_at IS NULL
       AND expires_at > now() AND user_id <> :user_id
    """
)

# The deployment's SMS of the UTC day: counts one more, unless the cap is reached.
_SPEND_DAILY = text(
    """
    INSERT INTO auth.sms_daily_usage AS d (day, sent)
    SELECT (now() AT TIME ZONE 'UTC')::date, 1 WHERE :cap > 0
    ON CONFLICT (day) DO UPDATE SET sent = d.sent + 1 WHERE d.sent < :cap
    RETURNING sent
    """
)


@dataclass(frozen=True)
class SmsRules:
    """The rules of requests that send SMS, with their numbers from the settings."""

    requests_per_number: limits.Rule
    requests_per_ip: limits.Rule
    sms_per_number: limits.Rule

    @classmethod
    def of(cls, rt: Runtime) -> SmsRules:
        settings = rt.settings
        return cls(
            requests_per_number=limits.Rule("sms-requests", settings.sms_requests_per_number_per_hour, _HOUR),
            requests_per_ip=limits.Rule("sms-requests-ip", settings.sms_requests_per_ip_per_hour, _HOUR),
            sms_per_number=limits.Rule("sms", settings.sms_per_number_per_hour, _HOUR),
        )


@dataclass(frozen=True)
class SmsResult:
    """What a request queued for a phone, sent once its transaction has committed."""

    sms: Sms | None


def number_subject(rt: Runtime, phone: str) -> str:
    """The subject standing for a number in the rate limits: keyed, so the table holds no
    number. The same as the number typed as an address would be: one budget per string."""
    return limits.address(rt, phone)


def check_country(rt: Runtime, phone: str) -> None:
    """Raises:
    PhoneCountryNotAllowed: the deployment sends no SMS to the number's country.
    """
    allowed = rt.settings.sms_allowed_countries
    if allowed and country_of(phone) not in allowed:
        raise PhoneCountryNotAllowed(
            f"This server sends SMS only to numbers of {', '.join(sorted(allowed))}.", allowed=sorted(allowed)
        )


async def admit_sms(db: AsyncConnection, *, rt: Runtime, phone: str, client: Client) -> bool:
    """Spend the limits of a request that would send an SMS to `phone`, whether or not it
    has an account; False when the number has had its SMS for now (answer as if sent).

    Raises:
        PhoneCountryNotAllowed: the deployment sends no SMS to the number's country.
        TooManyAttempts: too many such requests from this client or for this number.
        SmsUnavailable: the deployment's SMS of the day are spent.
    """
    check_country(rt, phone)
    rules = SmsRules.of(rt)
    if client.ip:
        await limits.take(db, rule=rules.requests_per_ip, subject=client.ip)
    subject = number_subject(rt, phone)
    await limits.take(db, rule=rules.requests_per_number, subject=subject)
    if await limits.try_take(db, rule=rules.sms_per_number, subject=subject) is not None:
        return False
    await spend_daily(db, rt=rt)
    return True


async def spend_daily(db: AsyncConnection, *, rt: Runtime) -> None:
    """Count one SMS of the deployment's day.

    Raises:
        SmsUnavailable: the day's SMS are spent; says when the next day starts (UTC).
    """
    if (await db.execute(_SPEND_DAILY, {"cap": rt.settings.sms_per_day})).first() is None:
        now = datetime.now(UTC)
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        raise SmsUnavailable(
            "This server has sent all the SMS it may send today. Try again tomorrow.",
            retry_after=max(1, int((midnight - now).total_seconds())),
        )


async def try_notice(db: AsyncConnection, *, rt: Runtime, phone: str) -> bool:
    """Whether a notice that nobody asked for (a number removed or replaced) may go to
    `phone`: within the number's SMS and the deployment's day, never refused aloud."""
    if await limits.try_take(db, rule=SmsRules.of(rt).sms_per_number, subject=number_subject(rt, phone)) is not None:
        return False
    try:
        await spend_daily(db, rt=rt)
    except SmsUnavailable:
        return False
    return True


async def issue_by_number(db: AsyncConnection, *, rt: Runtime, phone: str, purpose: ByNumber) -> str | None:
    """A new code of `purpose` for the account of `phone`, if it may receive one; None
    otherwise. The same statement either way."""
    code = numeric_code()
    issued = (
        await db.execute(
            _ISSUE[purpose],
            {
                "id": uuid7(),
                "phone": phone,
                "purpose": purpose,
                "code_hash": code_hash(rt, phone=phone, purpose=purpose, code=code),
                "max_attempts": rt.settings.otp_max_attempts,
                "ttl": rt.settings.otp_ttl_minutes,
            },
        )
    ).first()
    return code if issued is not None else None


async def issue_change(db: AsyncConnection, *, rt: Runtime, user_id: UUID, phone: str) -> str | None:
    """A code proving `phone` for the account adding it; None when another account has
    the number verified."""
    code = numeric_code()
    issued = (
        await db.execute(
            _ISSUE_CHANGE,
            {
                "id": uuid7(),
                "user_id": user_id,
                "phone": phone,
                "code_hash": code_hash(rt, phone=phone, purpose="phone_change", code=code),
                "max_attempts": rt.settings.otp_max_attempts,
                "ttl": rt.settings.otp_ttl_minutes,
            },
        )
    ).first()
    return code if issued is not None else None


async def issue_second_factor(
    db: AsyncConnection, *, rt: Runtime, user_id: UUID, to: str, identifier_type: Literal["phone", "email"] = "phone"
) -> str:
    """A new second-factor code for the account, sent to `to` (a number, or an address);
    its earlier ones stop working."""
    code = numeric_code()
    await db.execute(
        _ISSUE_SECOND_FACTOR,
        {
            "id": uuid7(),
            "user_id": user_id,
            "identifier": to,
            "identifier_type": identifier_type,
            "code_hash": code_hash(rt, phone=to, purpose="second_factor", code=code),
            "max_attempts": rt.settings.otp_max_attempts,
            "ttl": rt.settings.otp_ttl_minutes,
        },
    )
    return code


async def spend_by_number(
    db: AsyncConnection, *, rt: Runtime, phone: str, purpose: ByNumber, code: str, client: Client
) -> UUID:
    """Spend the newest live code of the number's account and purpose if it matches;
    returns the account. Every miss counts against the number's and the client's budgets
    of wrong guesses, whether or not the number has an account.

    Raises:
        TooManyAttempts: the number or the client has no wrong guesses left for now.
        InvalidCode: no such account, or a wrong, expired or spent code, or out of attempts.
    """
    subject = number_subject(rt, phone)
    async with _guess(db, rt=rt, subject=subject, client=client) as guess:
        row = (
            await db.execute(
                _CHECK[purpose],
                {
                    "phone": phone,
                    "purpose": purpose,
                    "code_hash": code_hash(rt, phone=phone, purpose=purpose, code=code),
                },
            )
        ).first()
        if row is None or not row.matched:
            raise InvalidCode(CODE_REFUSED)
        guess.right()
    user_id: UUID = row.user_id
    return user_id


async def spend_change(
    db: AsyncConnection, *, rt: Runtime, user_id: UUID, phone: str, code: str, client: Client
) -> None:
    """Spend the account's newest live code for adding `phone` if it matches.

    Raises:
        TooManyAttempts: the number or the client has no wrong guesses left for now.
        InvalidCode: a wrong, expired or spent code, or one sent for another number.
    """
    async with _guess(db, rt=rt, subject=number_subject(rt, phone), client=client) as guess:
        row = (
            await db.execute(
                _CHECK_BY_ACCOUNT,
                {
                    "user_id": user_id,
                    "purpose": "phone_change",
                    "code_hash": code_hash(rt, phone=phone, purpose="phone_change", code=code),
                },
            )
        ).first()
        if row is None or not row.matched or row.identifier != phone:
            raise InvalidCode(CODE_REFUSED)
        guess.right()


async def spend_second_factor(
    db: AsyncConnection, *, rt: Runtime, user_id: UUID, to: str, code: str, client: Client
) -> bool:
    """Whether `code` is the account's live second-factor code sent to `to` (spent if so). Wrong codes
    spend the account's budget of second-factor guesses, the one TOTP codes spend, and
    the client's.

    Raises:
        TooManyAttempts: the account or the client has no wrong guesses left for now.
    """
    rules = limits.rules(rt)
    taken = [(rules.second_factor_guesses, str(user_id))]
    if client.ip:
        taken.append((rules.code_guesses_per_ip, client.ip))
    for rule, subject in taken:
        await limits.take(db, rule=rule, subject=subject)
    row = (
        await db.execute(
            _CHECK_BY_ACCOUNT,
            {
                "user_id": user_id,
                "purpose": "second_factor",
                "code_hash": code_hash(rt, phone=to, purpose="second_factor", code=code),
            },
        )
    ).first()
    if row is None or not row.matched:
        return False
    for rule, subject in taken:
        await limits.give_back(db, rule=rule, subject=subject)
    return True


async def retire_codes_for_number(db: AsyncConnection, *, phone: str, user_id: UUID) -> None:
    """Codes other accounts hold for `phone` stop working: it is `user_id`'s now."""
    await db.execute(_RETIRE_FOR_NUMBER, {"phone": phone, "user_id": user_id})


def code_hash(rt: Runtime, *, phone: str, purpose: CodePurpose, code: str) -> bytes:
    # Bound to the number and purpose, as e-mailed codes are to the address and purpose (a
    # step-up code by e-mail passes its address here: identity._step_up).
    return rt.keyring.mac("otp", f"{phone}:{purpose}:{code}")


class _Guess:
    """The budgets one guess took, given back if it was right."""

    def __init__(self, db: AsyncConnection, taken: list[tuple[limits.Rule, str]]) -> None:
        self._db = db
        self._taken = taken
        self._right = False

    def right(self) -> None:
        self._right = True

    async def __aenter__(self) -> _Guess:
        # Taken before the check, given back on success: two concurrent guesses cannot
        # both spend the last unit.
        for rule, subject in self._taken:
            await limits.take(self._db, rule=rule, subject=subject)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._right and exc[0] is None:
            for rule, subject in self._taken:
                await limits.give_back(self._db, rule=rule, subject=subject)


def _guess(db: AsyncConnection, *, rt: Runtime, subject: str, client: Client) -> _Guess:
    rules = limits.rules(rt)
    taken = [(rules.code_guesses_per_address, subject)]
    if client.ip:
        taken.insert(0, (rules.code_guesses_per_ip, client.ip))
    return _Guess(db, taken)
