"""Personal data breaches: what was detected (breach_detected) and each notification sent
about it (breach_notified), to the supervisory authority, the people affected or the
public. Platform administrators record and read them in their own transactions; each of
those actions is in audit.admin_actions, each breach and notification in the compliance
log, and a person named as notified finds the notification in their own compliance log."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.compliance import _admin, _logs
from rapport.compliance.errors import BreachNotFound
from rapport.compliance.models import breach_notifications, breaches
from rapport.compliance.schemas import BreachIn, BreachNotificationIn, BreachNotificationOut, BreachOut, BreachPage
from rapport.kernel.db import AnyRow
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import PageRequest, keyset, make_page


def _notification(row: AnyRow) -> BreachNotificationOut:
    return BreachNotificationOut(
        id=row.id,
        audience=row.audience,
        channel=row.channel,
        recipients=row.recipients,
        notes=row.notes,
        sent_by=row.sent_by,
        sent_at=row.sent_at,
    )


def _breach(row: AnyRow, notifications: list[BreachNotificationOut]) -> BreachOut:
    return BreachOut(
        id=row.id,
        title=row.title,
        description=row.description,
        severity=row.severity,
        data_categories=list(row.data_categories),
        affected_users=row.affected_users,
        detected_at=row.detected_at,
        contained_at=row.contained_at,
        recorded_by=row.recorded_by,
        created_at=row.created_at,
        notifications=notifications,
    )


async def do_record_breach(db: AsyncConnection, *, admin_id: UUID, wanted: BreachIn) -> BreachOut:
    """Record a detected breach (breach_detected).

    Raises:
        PlatformAdminRequired: the transaction's user is not a platform administrator.
    """
    await _admin.require_platform_admin(db)
    row = (
        await db.execute(
            insert(breaches)
            .values(
                id=uuid7(),
                title=wanted.title,
                description=wanted.description,
                severity=wanted.severity,
                data_categories=wanted.data_categories,
                affected_users=wanted.affected_users,
                detected_at=wanted.detected_at,
                contained_at=wanted.contained_at,
                recorded_by=admin_id,
            )
            .returning(breaches)
        )
    ).one()
    await _logs.log_event(
        db,
        user_id=None,
        event_type="breach_detected",
        details={
            "breach_id": str(row.id),
            "severity": row.severity,
            "data_categories": list(row.data_categories),
            "affected_users": row.affected_users,
            "detected_at": row.detected_at.isoformat(),
        },
    )
    await _admin.record_action(
        db,
        action="breach_recorded",
        reason=wanted.reason or f"Breach detected: {wanted.title}",
        target=f"breach:{row.id}",
        details={"severity": row.severity},
    )
    return _breach(row, [])


async def do_record_notification(
    db: AsyncConnection, *, admin_id: UUID, breach_id: UUID, wanted: BreachNotificationIn
) -> BreachNotificationOut:
    """Record a notification sent about a breach (breach_notified); each person named in
    `user_ids` gets its own breach_notified entry in their compliance log.

    Raises:
        PlatformAdminRequired: the transaction's user is not a platform administrator.
        BreachNotFound: no breach has this id.
    """
    await _admin.require_platform_admin(db)
    breach = (await db.execute(select(breaches.c.id).where(breaches.c.id == breach_id))).one_or_none()
    if breach is None:
        raise BreachNotFound()
    people = sorted(set(wanted.user_ids), key=str)
    values = {
        "id": uuid7(),
        "breach_id": breach_id,
        "audience": wanted.audience,
        "channel": wanted.channel,
        "recipients": max(wanted.recipients, len(people)),
        "notes": wanted.notes,
        "sent_by": admin_id,
        "sent_at": wanted.sent_at if wanted.sent_at is not None else func.now(),
    }
    row = (await db.execute(insert(breach_notifications).values(**values).returning(breach_notifications))).one()
    summary = {
        "breach_id": str(breach_id),
        "notification_id": str(row.id),
        "audience": row.audience,
        "channel": row.channel,
        "recipients": row.recipients,
    }
    await _logs.log_event(db, user_id=None, event_type="breach_notified", details=summary)
    for person in people:
        await _logs.log_event(
            db,
            user_id=person,
            event_type="breach_notified",
            details={"breach_id": str(breach_id), "notification_id": str(row.id), "channel": row.channel},
        )
    await _admin.record_action(
        db,
        action="breach_notification_recorded",
        reason=wanted.reason or f"Breach notification sent to {row.audience} by {row.channel}",
        target=f"breach:{breach_id}",
        details={"notification_id": str(row.id), "people_named": len(people)},
    )
    return _notification(row)


async def list_breaches(db: AsyncConnection, *, reason: str, page: PageRequest) -> BreachPage:
    """Every breach recorded, newest first, with the notifications sent about each.

    Raises:
        PlatformAdminRequired: the transaction's user is not a platform administrator.
    """
    await _admin.require_platform_admin(db)
    rows = (await db.execute(keyset(select(breaches), breaches.c.id, page))).all()
    ids = [row.id for row in rows[: page.limit]]
    sent: dict[UUID, list[BreachNotificationOut]] = {breach_id: [] for breach_id in ids}
    if ids:
        query = (
            select(breach_notifications)
            .where(breach_notifications.c.breach_id.in_(ids))
            .order_by(breach_notifications.c.sent_at, breach_notifications.c.id)
        )
        for row in (await db.execute(query)).all():
            sent[row.breach_id].append(_notification(row))
    found = make_page([_breach(row, sent.get(row.id, [])) for row in rows], page)
    await _admin.record_action(
        db, action="breaches_listed", reason=reason, target="compliance.breaches", details={"rows": len(found.items)}
    )
    return BreachPage(items=found.items, next=found.next)
