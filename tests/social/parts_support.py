"""What the tests of profile parts, devices and statuses share: relations between
personas made in SQL without the contacts API."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.kernel.ids import uuid7


async def make_contacts(runtime, a, b) -> None:
    """a and b become contacts, as an accepted request would make them."""
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "INSERT INTO social.contact_requests (id, requester_id, addressee_id, status, responded_at) "
                "VALUES (:id, :a, :b, 'accepted', now())"
            ),
            {"id": uuid7(), "a": UUID(a.user_id), "b": UUID(b.user_id)},
        )
        await db.execute(
            text("INSERT INTO social.contacts (id, owner_id, contact_user_id) VALUES (:x, :a, :b), (:y, :b, :a)"),
            {"x": uuid7(), "y": uuid7(), "a": UUID(a.user_id), "b": UUID(b.user_id)},
        )


async def block(runtime, blocker, blocked) -> None:
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("INSERT INTO social.blocks (blocker_id, blocked_id) VALUES (:a, :b)"),
            {"a": UUID(blocker.user_id), "b": UUID(blocked.user_id)},
        )


async def set_visibility(runtime, persona, visibility: str) -> None:
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text("UPDATE social.profiles SET profile_visibility = :v WHERE user_id = :id"),
            {"v": visibility, "id": UUID(persona.user_id)},
        )


async def post_expired_status(runtime, persona, content: str = "yesterday's news") -> UUID:
    """A status posted two days ago that expired a day ago."""
    status_id = uuid7()
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(
            text(
                "INSERT INTO social.status_updates (id, user_id, content, created_at, expires_at) "
                "VALUES (:id, :user_id, :content, now() - interval '2 days', now() - interval '1 day')"
            ),
            {"id": status_id, "user_id": UUID(persona.user_id), "content": content},
        )
    return status_id


async def sensitive_access_rows(runtime, persona) -> list:
    """audit.sensitive_data_access rows about persona's data, oldest first."""
    async with system_transaction(runtime.system_engine) as db:
        return (
            await db.execute(
                text(
                    "SELECT user_id, accessed_by, table_name, action, fields "
                    "FROM audit.sensitive_data_access WHERE user_id = :id ORDER BY id"
                ),
                {"id": UUID(persona.user_id)},
            )
        ).all()
