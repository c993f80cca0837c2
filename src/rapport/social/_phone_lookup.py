"""Finding people by phone number (contact discovery), only where the owner allows it.

`social.find_by_phone()` answers with the accounts behind some numbers among those whose
owners let the caller find them (`phone_discoverability`: everyone, or their contacts)
and who do not block the caller nor are blocked by them. For every other number the
answer is the same, whether it has an account or not: nobody learns from a lookup that a
number has an account its owner keeps out of lookups. Each number looked up spends the
caller's daily budget (identity's), so that the numbers of those who can be found cannot
be collected by walking the numbering plan.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import service as identity_service
from rapport.kernel.actor import Actor
from rapport.kernel.runtime import Runtime
from rapport.social.schemas_phones import PhoneLookupOut, PhoneMatch

_FIND = text("SELECT phone_number, user_id FROM social.find_by_phone(CAST(:numbers AS text[]))")


async def lookup_phones(db: AsyncConnection, *, rt: Runtime, actor: Actor, numbers: list[str]) -> PhoneLookupOut:
    """The accounts the actor may find by these numbers (E.164), in the order sent.

    Raises:
        TooManyAttempts: the actor's lookups of the day are spent.
    """
    await identity_service.spend_phone_lookups(db, rt=rt, actor=actor, count=len(numbers))
    found = {row.phone_number: row.user_id for row in (await db.execute(_FIND, {"numbers": numbers})).all()}
    return PhoneLookupOut(
        matches=[PhoneMatch(phone_number=number, user_id=found[number]) for number in numbers if number in found]
    )
