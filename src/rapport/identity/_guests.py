"""Guest accounts: someone without an account let in by a product (the support desk's
guest links) gets an account of kind `guest` and a session on it, in one step.

A guest has no password, address or number: they cannot sign in again, reset anything or
be mailed; they keep their session by refreshing its tokens as anyone does, and lose the
account's use once the session ends. What they may reach is the product's to decide (a
guest takes part in the one room that admitted them).
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity._sessions import create_session
from rapport.identity.models import users
from rapport.identity.schemas import Device, TokenPair
from rapport.kernel.actor import Client
from rapport.kernel.ids import uuid7
from rapport.kernel.runtime import Runtime

_GUEST_DEVICE = Device(device_type="web", device_name="Guest link")


async def do_create_guest(db: AsyncConnection, *, rt: Runtime, client: Client) -> tuple[UUID, TokenPair]:
    """Make an active guest account and open its session (system transaction). Returns
    the account's id and the session's tokens. Its profile (social's, made by trigger)
    is named by a generated username until the product names it."""
    user_id = uuid7()
    await db.execute(insert(users).values(id=user_id, status="active", kind="guest"))
    return user_id, await create_session(db, rt=rt, user_id=user_id, client=client, device=_GUEST_DEVICE)
