"""Sign-in locks, kept in PostgreSQL so every node sees the same counts (docs/decisions/0003).

Failures are counted per (e-mail typed, client IP) pair, with a lock that grows, and per
client IP in a window. Keyed by what was typed rather than by account, an unknown address
locks exactly like a known one, and the answer tells nothing about which addresses exist;
keyed with the client, one person's failures lock out only that person's client. The
account as a whole is only slowed (a budget in `_limits`), never locked for everyone.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.config import Settings
from rapport.identity.errors import LoginThrottled
from rapport.identity.models import login_throttle
from rapport.kernel.crypto import Keyring

# A fixed window per IP: the count restarts once the window has passed.
_COUNT_IP_FAILURE = text(
    """
    INSERT INTO auth.login_throttle AS t (key, failures, window_started_at)
    VALUES (:key, 1, now())
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN t.window_started_at < now() - make_interval(secs => :window)
                        THEN 1 ELSE t.failures + 1 END,
        window_started_at = CASE WHEN t.window_started_at < now() - make_interval(secs => :window)
                                 THEN now() ELSE t.window_started_at END
    """
)

# Past the threshold each failure doubles the lock (base, 2 base, 4 base, ...) up to max.
_COUNT_KEY_FAILURE = text(
    """
    INSERT INTO auth.login_throttle AS t (key, failures, window_started_at)
    VALUES (:key, 1, now())
    ON CONFLICT (key) DO UPDATE SET failures = t.failures + 1
    RETURNING key, failures
    """
)
_LOCK_KEY = text(
    """
    UPDATE auth.login_throttle
       SET locked_until = now() + make_interval(secs => :seconds)
     WHERE key = :key
    RETURNING locked_until
    """
)


def pair_key(keyring: Keyring, *, email: str, ip: str | None) -> str:
    """The lock of one address typed from one client: an HMAC, so the table holds no address."""
    return "pair:" + keyring.mac("login-throttle", f"{email}\n{ip or ''}").hex()


def ip_key(ip: str | None) -> str | None:
    return f"ip:{ip}" if ip else None


def lock_seconds(failures: int, settings: Settings) -> int:
    """How long a key locks after this many consecutive failures (0: not locked)."""
    over = failures - settings.login_lock_threshold
    if over < 0:
        return 0
    # Doubles with each failure past the threshold: a shift is exact, and stays an int.
    return min(settings.login_lock_max_seconds, settings.login_lock_base_seconds << min(over, 30))


async def check_not_throttled(db: AsyncConnection, *, keys: list[str], settings: Settings) -> None:
    """Raises:
    LoginThrottled: a key is locked, or its IP window is full.
    """
    rows = (
        await db.execute(
            select(
                login_throttle.c.key,
                login_throttle.c.failures,
                login_throttle.c.window_started_at,
                login_throttle.c.locked_until,
                func.now().label("now"),
            ).where(login_throttle.c.key.in_(keys))
        )
    ).all()
    for row in rows:
        if row.locked_until is not None and row.locked_until > row.now:
            raise LoginThrottled(
                "Too many failed attempts. Try again later.",
                retry_after=_seconds_until(row.locked_until, row.now),
            )
        if row.key.startswith("ip:") and row.failures >= settings.login_ip_max_failures:
            window_end = row.window_started_at.timestamp() + settings.login_ip_window_seconds
            if window_end > row.now.timestamp():
                raise LoginThrottled(
                    "Too many failed attempts from this address. Try again later.",
                    retry_after=math.ceil(window_end - row.now.timestamp()),
                )


async def count_failure(db: AsyncConnection, *, key: str, settings: Settings) -> datetime | None:
    """Count one failure; returns the end of the lock it started, if it started one."""
    if key.startswith("ip:"):
        await db.execute(_COUNT_IP_FAILURE, {"key": key, "window": settings.login_ip_window_seconds})
        return None
    failures = (await db.execute(_COUNT_KEY_FAILURE, {"key": key})).one().failures
    seconds = lock_seconds(failures, settings)
    if not seconds:
        return None
    locked_until: datetime = (await db.execute(_LOCK_KEY, {"key": key, "seconds": seconds})).scalar_one()
    return locked_until


async def clear(db: AsyncConnection, *, key: str) -> None:
    await db.execute(delete(login_throttle).where(login_throttle.c.key == key))


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))
