"""The budget of phone numbers an account may look up to find people (social's lookup
by phone): each number costs a unit, so that nobody can walk the numbering plan to learn
which numbers have accounts, even among the owners who let themselves be found."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import _limits as limits
from rapport.identity.errors import TooManyAttempts
from rapport.kernel.actor import Actor
from rapport.kernel.runtime import Runtime

_DAY = 24 * 3600


async def spend_phone_lookups(db: AsyncConnection, *, rt: Runtime, actor: Actor, count: int) -> None:
    """Spend `count` lookups of the actor's day (in the actor's own transaction: the
    bucket is theirs under row-level security).

    Raises:
        TooManyAttempts: the account's lookups are spent for now; says when `count` are back.
    """
    rule = limits.Rule("phone-lookups", rt.settings.phone_lookups_per_user_per_day, _DAY)
    if count > rule.limit:
        count = rule.limit
    wait = await limits.try_take(db, rule=rule, subject=str(actor.user_id), cost=max(count, 1))
    if wait is not None:
        raise TooManyAttempts("Too many phone numbers looked up today. Wait before looking up more.", retry_after=wait)
