"""What platform administrators do: suspend, ban and restore accounts, read the audit, the
compliance logs and a person's consents, list export and deletion requests.

Only platform administrators may (the database decides who is one:
`compliance.is_platform_admin()`), and every action is recorded in `audit.admin_actions`
with who, what and why, in the transaction that does it: an action that fails records
nothing, an action that succeeds cannot go unrecorded. Each read of someone else's data
is recorded besides in `audit.sensitive_data_access`, where that person sees it.

Reads run in the administrator's own transaction, under the policies that admit platform
administrators. Changing another account's status is system work (only system work may:
`auth.guard_account_columns`), done in a system transaction that records the action on the
administrator's behalf after checking, in it, that they are one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any, Literal, get_args
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.exc import NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.compliance import _consents, _logs
from rapport.compliance.errors import AccountNotFound, AccountStatusConflict, OwnAccountRefused, PlatformAdminRequired
from rapport.compliance.models import AdminAction, EventType
from rapport.compliance.schemas import (
    AccountStatus,
    AccountStatusOut,
    AuditPage,
    AuditRowOut,
    AuditTable,
    ComplianceLogPage,
    ConsentHistoryPage,
    ConsentsOut,
    DeletionRequestOut,
    DeletionRequestPage,
    ExportRequestOut,
    ExportRequestPage,
)
from rapport.identity import service as identity_service
from rapport.kernel.actor import Actor
from rapport.kernel.errors import InvalidCursor
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import PageRequest, encode_cursor

AccountChange = Literal["suspend", "ban", "restore"]

AUDIT_TABLES: tuple[AuditTable, ...] = get_args(AuditTable)
_MAX_BIGINT = 2**63 - 1

_IS_ADMIN = text("SELECT compliance.is_platform_admin()")
_RECORD_ACTION = text(
    "SELECT audit.record_admin_action(:action, :reason, :target_user_id, :target, CAST(:details AS jsonb), :admin_id)"
)
_RECORD_READ = text("SELECT audit.record_admin_access(:subject, :table_name, CAST(:fields AS text[]))")

# What each change does: the statuses it starts from, the action and compliance event it is.
_CHANGES: dict[AccountChange, tuple[frozenset[str], AdminAction, EventType]] = {
    "suspend": (frozenset({"pending", "active"}), "account_suspended", "account_suspended"),
    "ban": (frozenset({"pending", "active", "suspended"}), "account_banned", "account_banned"),
    "restore": (frozenset({"suspended", "banned"}), "account_restored", "account_restored"),
}

# The columns naming a person, per audit table: what a filter by person looks at and whose
# data an administrator's read of a page touched.
_PEOPLE: dict[AuditTable, tuple[str, ...]] = {
    "record_changes": ("acting_user_id",),
    "sensitive_data_access": ("user_id", "accessed_by"),
    "admin_actions": ("admin_id", "target_user_id"),
    "auth_events": ("user_id",),
    "data_exports": ("user_id",),
    "redactions": (),
}
# A change of a row of a person's own (its user_id, or the account itself) is about them.
# (The parameter is a uuid where the filter names it first: compared as text here.)
_RECORD_CHANGE_SUBJECT = (
    "(t.new_data ->> 'user_id' = CAST(:person AS text) OR t.old_data ->> 'user_id' = CAST(:person AS text)"
    " OR (t.schema_name = 'auth' AND t.table_name = 'users'"
    "     AND (t.new_data ->> 'id' = CAST(:person AS text) OR t.old_data ->> 'id' = CAST(:person AS text))))"
)


# Who is an administrator, and the record of what they do


async def require_platform_admin(db: AsyncConnection) -> None:
    """Raises:
    PlatformAdminRequired: the transaction's user is not an active platform administrator.
    """
    if not (await db.execute(_IS_ADMIN)).scalar_one():
        raise PlatformAdminRequired()


async def record_action(
    db: AsyncConnection,
    *,
    action: AdminAction,
    reason: str,
    target_user_id: UUID | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    admin_id: UUID | None = None,
) -> int:
    """Record an administrator's action (audit.record_admin_action); the row's id. As the
    administrator in their own transaction, or in system work on `admin_id`'s behalf."""
    recorded: int = (
        await db.execute(
            _RECORD_ACTION,
            {
                "action": action,
                "reason": reason,
                "target_user_id": target_user_id,
                "target": target,
                "details": orjson.dumps(details or {}).decode(),
                "admin_id": admin_id,
            },
        )
    ).scalar_one()
    return recorded


async def record_reads(
    db: AsyncConnection, *, admin_id: UUID, subjects: Iterable[UUID | None], table_name: str, fields: list[str]
) -> None:
    """Record in audit.sensitive_data_access that the administrator read these people's
    rows of `table_name` (their own reads are not worth a record)."""
    for subject in sorted({s for s in subjects if s is not None and s != admin_id}, key=str):
        await db.execute(_RECORD_READ, {"subject": subject, "table_name": table_name, "fields": fields})


# Suspend, ban, restore


async def do_change_account_status(
    db: AsyncConnection, *, admin_id: UUID, user_id: UUID, change: AccountChange, reason: str
) -> AccountStatusOut:
    """Suspend, ban or restore an account, in a system transaction: its status changes,
    every session it had ends and every stream it holds (session or API key) closes,
    the person's compliance log and the administrators' audit record it.

    Raises:
        PlatformAdminRequired: `admin_id` is not an active platform administrator.
        OwnAccountRefused: the administrator named their own account.
        AccountNotFound: no account has this id.
        AccountStatusConflict: the account's status does not allow the change (restoring an
            active account, suspending a banned or deleted one).
    """
    admin = await identity_service.get_user(db, actor=Actor(user_id=admin_id))
    if not admin.is_admin or admin.status != "active":
        raise PlatformAdminRequired()
    if user_id == admin_id:
        raise OwnAccountRefused()
    try:
        target = await identity_service.get_user(db, actor=Actor(user_id=user_id))
    except NoResultFound as exc:
        raise AccountNotFound() from exc
    allowed_from, action, event_type = _CHANGES[change]
    if target.status not in allowed_from:
        raise AccountStatusConflict(
            f"The account is {target.status}: it cannot be {action.removeprefix('account_')}.",
            account_status=target.status,
        )
    status: AccountStatus
    if change == "suspend":
        status = "suspended"
    elif change == "ban":
        status = "banned"
    else:
        status = "active" if target.email_verified else "pending"
    await identity_service.set_account_status(db, user_id=user_id, status=status)
    revoked: list[UUID] = []
    if change != "restore":
        revoked = await identity_service.revoke_sessions(db, user_id=user_id, reason="account_disabled")
        await _close_api_key_streams(db, user_id=user_id, reason=action)
    recorded = await record_action(
        db,
        action=action,
        reason=reason,
        target_user_id=user_id,
        details={"previous_status": target.status, "status": status, "sessions_revoked": len(revoked)},
        admin_id=admin_id,
    )
    await _logs.log_event(
        db,
        user_id=user_id,
        event_type=event_type,
        details={"previous_status": target.status, "status": status, "admin_action_id": recorded},
    )
    return AccountStatusOut(
        user_id=user_id,
        account_status=status,
        previous_status=target.status,
        sessions_revoked=len(revoked),
        admin_action_id=recorded,
    )


async def _close_api_key_streams(db: AsyncConnection, *, user_id: UUID, reason: str) -> None:
    """Close every stream the account holds through an API key: realtime closes a stream
    on `api_key.revoked` for its key. The keys themselves stay: identity refuses them while
    the account is not active, and they work again once it is restored."""
    cursor: UUID | None = None
    while True:
        page = await identity_service.list_api_keys(
            db, actor=Actor(user_id=user_id), page=PageRequest(limit=200, after_id=cursor)
        )
        for key in page.items:
            await publish(
                db,
                scope=Scope.user(user_id),
                type="api_key.revoked",
                payload={"api_key_id": str(key.id), "reason": reason},
                actor_id=None,
            )
        if page.next is None or not page.items:
            return
        cursor = page.items[-1].id


# The audit


def encode_position(row_id: int) -> str:
    """The cursor after an audit row (audit tables are keyed by a bigint, not a UUID)."""
    return base64.urlsafe_b64encode(row_id.to_bytes(8, "big")).decode().rstrip("=")


def decode_position(cursor: str) -> int:
    """Raises:
    InvalidCursor: the cursor was not made by encode_position.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("The cursor was not issued by this server.") from exc
    position = int.from_bytes(raw, "big") if len(raw) == 8 else -1
    if not 0 < position <= _MAX_BIGINT:
        raise InvalidCursor("The cursor was not issued by this server.")
    return position


def _person_filter(table: AuditTable) -> str:
    columns = _PEOPLE[table]
    if not columns:
        return "false"
    named = [f"t.{column} = CAST(:person AS uuid)" for column in columns]
    if table == "record_changes":
        named.append(_RECORD_CHANGE_SUBJECT)
    return "(" + " OR ".join(named) + ")"


def _subjects(table: AuditTable, content: dict[str, Any]) -> set[UUID]:
    """Whose data an audit row holds."""
    found: set[UUID] = set()
    values: list[object] = [content.get(column) for column in _PEOPLE[table]]
    if table == "record_changes":
        for side in ("old_data", "new_data"):
            data = content.get(side)
            if isinstance(data, dict):
                values.append(data.get("user_id"))
                if content.get("schema_name") == "auth" and content.get("table_name") == "users":
                    values.append(data.get("id"))
    for value in values:
        if isinstance(value, str):
            try:
                found.add(UUID(value))
            except ValueError:
                continue
    return found


async def list_audit(
    db: AsyncConnection,
    *,
    admin_id: UUID,
    table: AuditTable,
    reason: str,
    limit: int,
    cursor: str | None,
    person: UUID | None,
) -> AuditPage:
    """One audit table's rows, newest first, as an administrator reads them: of one person
    when asked. The read is recorded (audit_read), and so is each person's whose rows it
    showed.

    Raises:
        PlatformAdminRequired: the transaction's user is not a platform administrator.
        InvalidCursor: the cursor is not one this route gave.
    """
    await require_platform_admin(db)
    after = decode_position(cursor) if cursor is not None else None
    conditions = ["true"]
    params: dict[str, Any] = {"limit": limit + 1}
    if after is not None:
        conditions.append("t.id < :after")
        params["after"] = after
    if person is not None:
        conditions.append(_person_filter(table))
        params["person"] = str(person)
    statement = text(
        f"""
        SELECT t.id, t.chain_position, t.content_hash, t.chain_hash, t.redacted_at,
               to_jsonb(t) - '{{chain_position,content_hash,chain_hash,redacted_at}}'::text[] AS content
          FROM audit.{table} t
         WHERE {" AND ".join(conditions)}
         ORDER BY t.id DESC
         LIMIT :limit
        """
    )
    rows = (await db.execute(statement, params)).all()
    items = [
        AuditRowOut(
            table=table,
            id=row.id,
            chain_position=row.chain_position,
            content=row.content,
            content_hash=bytes(row.content_hash).hex(),
            chain_hash=bytes(row.chain_hash).hex(),
            redacted_at=row.redacted_at,
        )
        for row in rows[:limit]
    ]
    await record_action(
        db,
        action="audit_read",
        reason=reason,
        target_user_id=person,
        target=f"audit.{table}",
        details={"rows": len(items), "cursor": cursor},
    )
    subjects = set().union(*(_subjects(table, item.content) for item in items)) if items else set()
    await record_reads(db, admin_id=admin_id, subjects=subjects, table_name=f"audit.{table}", fields=[])
    return AuditPage(items=items, next=encode_position(items[-1].id) if len(rows) > limit else None)


# Compliance logs and consents of others


async def list_compliance_logs(
    db: AsyncConnection,
    *,
    admin_id: UUID,
    reason: str,
    page: PageRequest,
    person: UUID | None,
    event_type: EventType | None,
) -> ComplianceLogPage:
    """Compliance events of everyone (or of one person, or one type), newest first; the read
    is recorded, with each person's whose events it showed.

    Raises:
        PlatformAdminRequired: the transaction's user is not a platform administrator.
    """
    await require_platform_admin(db)
    found = await _logs.list_logs(db, page=page, user_id=person, event_type=event_type)
    await record_action(
        db,
        action="compliance_logs_read",
        reason=reason,
        target_user_id=person,
        target="compliance.compliance_logs",
        details={"event_type": event_type, "rows": len(found.items)},
    )
    await record_reads(
        db,
        admin_id=admin_id,
        subjects=(item.user_id for item in found.items),
        table_name="compliance.compliance_logs",
        fields=["event_type", "details"],
    )
    return ComplianceLogPage(items=found.items, next=found.next)


async def read_consents(
    db: AsyncConnection, *, admin_id: UUID, user_id: UUID, reason: str, page: PageRequest
) -> tuple[ConsentsOut, ConsentHistoryPage]:
    """A person's consents now and their history, as an administrator reads them; recorded.

    Raises:
        PlatformAdminRequired: the transaction's user is not a platform administrator.
    """
    await require_platform_admin(db)
    state = await _consents.current_consents(db, user_id=user_id)
    history = await _consents.consent_history(db, user_id=user_id, page=page)
    await record_action(
        db, action="consents_read", reason=reason, target_user_id=user_id, target="compliance.consent_logs"
    )
    await record_reads(
        db,
        admin_id=admin_id,
        subjects=[user_id],
        table_name="compliance.consent_logs",
        fields=["consent_type", "granted", "document_version", "ip_address", "user_agent"],
    )
    return state, ConsentHistoryPage(items=history.items, next=history.next)


# Export and deletion requests (compliance.exports and compliance.deletion_requests)

_EXPORTS = """
    SELECT e.id, e.user_id, e.status, e.requested_at, e.completed_at, e.expires_at, e.size_bytes
      FROM compliance.exports e
     WHERE {conditions}
     ORDER BY e.id DESC
     LIMIT :limit
"""
_DELETIONS = """
    SELECT d.user_id, d.requested_at, d.erase_after, d.confirmed_by
      FROM compliance.deletion_requests d
     WHERE {conditions}
     ORDER BY d.user_id DESC
     LIMIT :limit
"""


async def list_export_requests(
    db: AsyncConnection, *, admin_id: UUID, reason: str, page: PageRequest, person: UUID | None
) -> ExportRequestPage:
    """Every export asked for (or one person's), newest first: who, when, how it stands;
    never the archive. Recorded.

    Raises:
        PlatformAdminRequired: the transaction's user is not a platform administrator.
    """
    await require_platform_admin(db)
    conditions, params = _keyset_conditions("e.id", "e.user_id", page, person)
    rows = (await db.execute(text(_EXPORTS.format(conditions=conditions)), params)).all()
    items = [
        ExportRequestOut(
            id=row.id,
            user_id=row.user_id,
            status=row.status,
            requested_at=row.requested_at,
            completed_at=row.completed_at,
            expires_at=row.expires_at,
            size_bytes=row.size_bytes,
        )
        for row in rows[: page.limit]
    ]
    await record_action(
        db,
        action="export_requests_listed",
        reason=reason,
        target_user_id=person,
        target="compliance.exports",
        details={"rows": len(items)},
    )
    await record_reads(
        db,
        admin_id=admin_id,
        subjects=(item.user_id for item in items),
        table_name="compliance.exports",
        fields=["status", "requested_at", "completed_at", "size_bytes"],
    )
    more = len(rows) > page.limit
    return ExportRequestPage(items=items, next=encode_cursor(items[-1].id) if more else None)


async def list_deletion_requests(
    db: AsyncConnection, *, admin_id: UUID, reason: str, page: PageRequest, person: UUID | None
) -> DeletionRequestPage:
    """Every account waiting for its erasure (or one person's request): when asked, when it
    will be erased. Recorded.

    Raises:
        PlatformAdminRequired: the transaction's user is not a platform administrator.
    """
    await require_platform_admin(db)
    conditions, params = _keyset_conditions("d.user_id", "d.user_id", page, person)
    rows = (await db.execute(text(_DELETIONS.format(conditions=conditions)), params)).all()
    items = [
        DeletionRequestOut(
            user_id=row.user_id,
            requested_at=row.requested_at,
            erase_after=row.erase_after,
            confirmed_by=row.confirmed_by,
        )
        for row in rows[: page.limit]
    ]
    await record_action(
        db,
        action="deletion_requests_listed",
        reason=reason,
        target_user_id=person,
        target="compliance.deletion_requests",
        details={"rows": len(items)},
    )
    await record_reads(
        db,
        admin_id=admin_id,
        subjects=(item.user_id for item in items),
        table_name="compliance.deletion_requests",
        fields=["requested_at", "erase_after"],
    )
    more = len(rows) > page.limit
    return DeletionRequestPage(items=items, next=encode_cursor(items[-1].user_id) if more else None)


def _keyset_conditions(
    key: str, person_column: str, page: PageRequest, person: UUID | None
) -> tuple[str, dict[str, Any]]:
    conditions = ["true"]
    params: dict[str, Any] = {"limit": page.limit + 1}
    if page.after_id is not None:
        conditions.append(f"{key} < :after")
        params["after"] = page.after_id
    if person is not None:
        conditions.append(f"{person_column} = :person")
        params["person"] = person
    return " AND ".join(conditions), params
