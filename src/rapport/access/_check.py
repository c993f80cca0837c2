"""The one permission check, access.has_permission, and what follows from it: who holds a
permission (system work) and what the caller holds.

The answer is the database's (migration 2026_11_30_0036): row-level security asks the
same function, so a service and a policy never disagree. It answers for the
transaction's user alone; there is no way to ask it about someone else."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access import models as m
from rapport.access import schemas as s
from rapport.access.errors import PermissionRequired
from rapport.kernel.actor import Actor

# Checked against the transaction's user too: asked in a transaction acting for someone
# else, or for no one (system work), it answers no rather than somebody else's answer.
_HAS_PERMISSION = text(
    "SELECT coalesce(auth.current_user_id() = :actor AND access.has_permission(:permission, :conversation), false)"
).bindparams(bindparam("actor", type_=PG_UUID(as_uuid=True)), bindparam("conversation", type_=PG_UUID(as_uuid=True)))
_HOLDERS_OF = text("SELECT access.holders_of(:permission, :conversation)").bindparams(
    bindparam("conversation", type_=PG_UUID(as_uuid=True))
)
_HOLDS = text(
    "SELECT EXISTS (SELECT 1 FROM access.holders_of(:permission, :conversation) AS h (user_id)"
    " WHERE h.user_id = :user_id)"
).bindparams(bindparam("user_id", type_=PG_UUID(as_uuid=True)), bindparam("conversation", type_=PG_UUID(as_uuid=True)))
_IS_PLATFORM_ADMIN = text("SELECT access.is_platform_admin()")
# access.is_platform_admin's test, for an account named by system work.
_IS_ADMIN_ACCOUNT = text(
    "SELECT EXISTS (SELECT 1 FROM auth.users u"
    " WHERE u.id = :user_id AND u.is_admin AND u.status = 'active' AND u.deleted_at IS NULL)"
).bindparams(bindparam("user_id", type_=PG_UUID(as_uuid=True)))


async def has_permission(
    db: AsyncConnection, actor: Actor, permission: str, conversation_id: UUID | None = None
) -> bool:
    """Whether the actor holds `permission` platform-wide, or within `conversation_id` when
    one is given (a grant for one conversation gives nothing in another). A platform
    administrator holds every permission. `db` is a transaction acting as `actor`; in any
    other, system work included, the answer is no. An unknown permission is held by no
    one but administrators."""
    held = await db.execute(
        _HAS_PERMISSION, {"actor": actor.user_id, "permission": permission, "conversation": conversation_id}
    )
    return bool(held.scalar_one())


async def require_permission(
    db: AsyncConnection, actor: Actor, permission: str, conversation_id: UUID | None = None
) -> None:
    """As has_permission, refusing when the answer is no.

    Raises:
        PermissionRequired: the actor does not hold it (403, naming the permission).
    """
    if not await has_permission(db, actor, permission, conversation_id):
        raise PermissionRequired(permission, conversation_id=str(conversation_id) if conversation_id else None)


async def holders_of(db_system: AsyncConnection, permission: str, conversation_id: UUID | None = None) -> list[UUID]:
    """The active accounts a grant gives `permission`: platform-wide grants, and grants for
    `conversation_id` when one is given; in id order. Platform administrators are listed
    only when granted it (they hold everything, and would be in every list). For system
    work: in a user's transaction only the grants that user may read count."""
    rows = await db_system.execute(_HOLDERS_OF, {"permission": permission, "conversation": conversation_id})
    return list(rows.scalars())


async def holds_permission(
    db_system: AsyncConnection, user_id: UUID, permission: str, conversation_id: UUID | None = None
) -> bool:
    """Whether a grant gives the account `permission` (as holders_of counts: an
    administrator's implicit permissions are not). For system work, such as checking that
    the person an escalation is assigned to works that queue."""
    held = await db_system.execute(
        _HOLDS, {"permission": permission, "conversation": conversation_id, "user_id": user_id}
    )
    return bool(held.scalar_one())


async def is_platform_admin(db: AsyncConnection) -> bool:
    """Whether the transaction's user is an active platform administrator."""
    return bool((await db.execute(_IS_PLATFORM_ADMIN)).scalar_one())


async def is_platform_admin_account(db_system: AsyncConnection, user_id: UUID) -> bool:
    """Whether the account is an active platform administrator, as is_platform_admin
    answers for the transaction's user. For system work acting on someone's behalf (which
    has no user of its own), such as making a platform bot they asked for."""
    return bool((await db_system.execute(_IS_ADMIN_ACCOUNT, {"user_id": user_id})).scalar_one())


async def get_my_permissions(db: AsyncConnection, *, actor: Actor) -> s.MyPermissionsOut:
    """What the actor's grants give them, each permission with where (a conversation, or
    everywhere) and through which role; and whether they are a platform administrator."""
    g, r, rp = m.grants, m.roles, m.role_permissions
    rows = await db.execute(
        select(rp.c.permission, g.c.conversation_id, r.c.name.label("via_role"))
        .select_from(g.join(r, r.c.id == g.c.role_id).join(rp, rp.c.role_id == g.c.role_id))
        .where(g.c.user_id == actor.user_id)
        .order_by(rp.c.permission, g.c.conversation_id.asc().nulls_first(), r.c.name)
    )
    return s.MyPermissionsOut(
        is_admin=await is_platform_admin(db),
        permissions=[s.HeldPermission.model_validate(row._mapping) for row in rows],
    )
