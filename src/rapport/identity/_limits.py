"""Rate limits kept in PostgreSQL, so every node sees the same counts and a restart
forgets nothing (docs/decisions/0008).

One mechanism for every limit: a token bucket per rule and subject, kept as one row by
the generic cell rate algorithm (GCRA). A rule allows `limit` units per `window`: the
whole limit may be spent at once, then one unit comes back every `window / limit`. Over
any stretch of time T a subject spends at most `limit * (1 + T / window)` units: that is
the bound the decision record's arithmetic rests on.

A check that counts only failures takes its unit first and gives it back when the
attempt succeeds: taken first, two concurrent attempts cannot both slip through the last
unit (the row is locked until the transaction ends).

Subjects that are e-mail addresses are stored as an HMAC under the server key: the table
never holds an address, and a copy of it cannot be matched against a list of addresses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.config import Settings
from rapport.identity.errors import TooManyAttempts
from rapport.identity.models import rate_limits
from rapport.kernel.runtime import Runtime

_HOUR = 3600
_DAY = 24 * _HOUR

# Admits the request when the bucket, after taking one unit, is at most one window ahead
# of now (the ceiling: a window and half a unit, so that microsecond rounding never costs
# a unit); otherwise changes nothing and returns no row. Dead buckets of other subjects
# (full again) are swept a few at a time, so the table stays the size of recent traffic.
_TAKE = text(
    """
    WITH swept AS (
        DELETE FROM auth.rate_limits
         WHERE key IN (SELECT key FROM auth.rate_limits
                        WHERE tat < now() AND key <> :key
                        ORDER BY tat LIMIT 8 FOR UPDATE SKIP LOCKED)
    )
    INSERT INTO auth.rate_limits AS r (key, tat)
    VALUES (:key, now() + make_interval(secs => :interval))
    ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, now()) + make_interval(secs => :interval)
     WHERE greatest(r.tat, now()) + make_interval(secs => :interval) <= now() + make_interval(secs => :ceiling)
    RETURNING tat
    """
)
_GIVE_BACK = text("UPDATE auth.rate_limits SET tat = tat - make_interval(secs => :interval) WHERE key = :key")


@dataclass(frozen=True)
class Rule:
    """`limit` units per `window_seconds` for each subject; `name` prefixes its keys."""

    name: str
    limit: int
    window_seconds: int

    @property
    def interval(self) -> float:
        """Seconds for one unit to come back."""
        return self.window_seconds / max(self.limit, 1)

    @property
    def ceiling(self) -> float:
        """How far ahead of now a bucket may run: a full window, and half a unit of slack."""
        return self.window_seconds + self.interval / 2

    def key(self, subject: str) -> str:
        return f"{self.name}:{subject}"


@dataclass(frozen=True)
class Rules:
    """Every rule, with its numbers from the settings."""

    # Requests that would send mail (register, resend, forgot): refused past these.
    mail_requests_per_address: Rule
    mail_requests_per_ip: Rule
    # Mails to one address: past this, answered as if sent, and nothing is sent.
    mails_per_address: Rule
    # Wrong e-mailed codes per address typed, every purpose together.
    code_guesses_per_address: Rule
    # Wrong codes of any kind from one client.
    code_guesses_per_ip: Rule
    # Wrong TOTP codes per account (subject: the user id).
    second_factor_guesses: Rule
    # Failed sign-ins per address typed, from every client.
    sign_in_failures_per_address: Rule

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            mail_requests_per_address=Rule("mail-requests", settings.mail_requests_per_address_per_hour, _HOUR),
            mail_requests_per_ip=Rule("mail-requests-ip", settings.mail_requests_per_ip_per_hour, _HOUR),
            mails_per_address=Rule("mails", settings.mails_per_address_per_hour, _HOUR),
            code_guesses_per_address=Rule("code-guesses", settings.code_guesses_per_address_per_day, _DAY),
            code_guesses_per_ip=Rule("code-guesses-ip", settings.code_guesses_per_ip_per_hour, _HOUR),
            second_factor_guesses=Rule("second-factor", settings.second_factor_guesses_per_account_per_day, _DAY),
            sign_in_failures_per_address=Rule("sign-in", settings.login_address_failures_per_hour, _HOUR),
        )


def rules(rt: Runtime) -> Rules:
    return Rules.from_settings(rt.settings)


def address(rt: Runtime, email: str) -> str:
    """The subject standing for an e-mail address: keyed, so the table holds no address."""
    return rt.keyring.mac("rate-limit", email).hex()


async def take(db: AsyncConnection, *, rule: Rule, subject: str) -> None:
    """Spend one unit.

    Raises:
        TooManyAttempts: the bucket is empty; says when a unit comes back.
    """
    wait = await try_take(db, rule=rule, subject=subject)
    if wait is not None:
        raise TooManyAttempts("Too many attempts. Wait before trying again.", retry_after=wait)


async def try_take(db: AsyncConnection, *, rule: Rule, subject: str, cost: int = 1) -> int | None:
    """Spend `cost` units (one, unless a request is worth several: a lookup of many
    numbers) if there are; None when spent, else the seconds until there are."""
    key = rule.key(subject)
    taken = await db.execute(_TAKE, {"key": key, "interval": rule.interval * cost, "ceiling": rule.ceiling})
    if taken.first() is not None:
        return None
    return await _wait(db, rule=rule, key=key, cost=cost)


async def give_back(db: AsyncConnection, *, rule: Rule, subject: str) -> None:
    """Return a unit taken in this transaction (the attempt it paid for succeeded)."""
    await db.execute(_GIVE_BACK, {"key": rule.key(subject), "interval": rule.interval})


async def wait_for(db: AsyncConnection, *, rule: Rule, subject: str) -> int | None:
    """Without spending: None when a unit is there, else the seconds until one is."""
    return await _wait(db, rule=rule, key=rule.key(subject))


async def forget(db: AsyncConnection, *, rule: Rule, subject: str) -> None:
    """Fill the bucket again (the owner proved who they are)."""
    await db.execute(delete(rate_limits).where(rate_limits.c.key == rule.key(subject)))


async def _wait(db: AsyncConnection, *, rule: Rule, key: str, cost: int = 1) -> int | None:
    row = (
        await db.execute(select(rate_limits.c.tat, func.now().label("now")).where(rate_limits.c.key == key))
    ).one_or_none()
    if row is None:
        return None
    return _seconds_until_a_unit(row.tat, row.now, rule, cost)


def _seconds_until_a_unit(tat: datetime, now: datetime, rule: Rule, cost: int = 1) -> int | None:
    # `cost` units are there once tat + cost * interval <= now + ceiling.
    ahead = (tat - now).total_seconds() + rule.interval * cost - rule.ceiling
    return max(1, math.ceil(ahead)) if ahead > 0 else None
