"""E-mail: the digest of what a person missed, and the few notifications mailed at once
(security), both through `rapport.kernel.mail`'s Mailer, from a job.

A digest is a row of `email_notifications` (kind `digest`, status `pending`) that the
consumer makes with the first notification worth mailing, due after the person's digest
delay, with a job for that moment; later notifications find it waiting and add nothing.
When the job runs it lists what is still unread and was not mailed since it last changed
(a bundle that grew since a digest counts again): if the person read everything
meanwhile, the row is deleted and nothing is sent. The row moves pending -> sending ->
sent (or failed), and a job that finds it `sent`, or `sending` on its first attempt (a
second job for the same mail), does nothing: a job run twice mails once. A job that died
while sending takes its own `sending` row back on its next attempt: the mail server may
or may not have it (docs/decisions/0018, "at least once").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow, system_transaction
from rapport.kernel.mail import Mail
from rapport.kernel.runtime import Runtime
from rapport.notifications import _compose, _deliver, _preferences, _rules
from rapport.notifications.models import EmailStatus

log = structlog.get_logger(__name__)

# The most notifications one digest lists; the rest are counted ("and 12 more" is the
# template's to say from `count`).
DIGEST_LIMIT = 50

_EMAIL = text(
    """
    SELECT id, user_id, kind, notification_ids, status, due_at, attempts
      FROM notifications.email_notifications WHERE id = :id
       FOR UPDATE
    """
)
# Unread, and not in a mail sent (or being sent) since the notification last changed.
# Marketing is mailed only to someone whose marketing_emails consent stands (compliance).
_UNREAD_NOT_MAILED = text(
    """
    SELECT n.id, n.type, n.category, n.title, n.body, n.action_url, n.bundle_count, n.created_at
      FROM notifications.notifications n
     WHERE n.user_id = :user_id AND NOT n.is_read
       AND (n.category <> 'marketing' OR compliance.has_consent(n.user_id, 'marketing_emails'))
       AND NOT EXISTS (
           SELECT 1 FROM notifications.email_notifications e
            WHERE e.user_id = n.user_id AND e.id <> :email_id AND e.status IN ('sent', 'sending')
              AND n.id = ANY(e.notification_ids) AND coalesce(e.sent_at, now()) >= n.created_at)
     ORDER BY n.created_at DESC, n.id DESC
     LIMIT :limit
    """
)
_LISTED = text(
    """
    SELECT n.id, n.type, n.category, n.title, n.body, n.action_url, n.bundle_count, n.created_at
      FROM notifications.notifications n
     WHERE n.id = ANY(CAST(:ids AS uuid[]))
     ORDER BY n.created_at DESC, n.id DESC
    """
)
_SENDING = text(
    """
    UPDATE notifications.email_notifications
       SET status = 'sending', attempts = attempts + 1, notification_ids = CAST(:ids AS uuid[]), subject = :subject
     WHERE id = :id
    """
)
_NOTHING_TO_SEND = text("DELETE FROM notifications.email_notifications WHERE id = :id AND status = 'pending'")
_SENT = text(
    """
    UPDATE notifications.email_notifications
       SET status = 'sent', error = NULL, sent_at = now(),
           time_to_deliver_ms = greatest(0, (extract(epoch FROM now() - due_at) * 1000)::int)
     WHERE id = :id AND status = 'sending'
    """
)
_NOT_SENT = text(
    "UPDATE notifications.email_notifications SET status = :status, error = :error "
    " WHERE id = :id AND status = 'sending'"
)


async def set_status(db: AsyncConnection, *, email_id: UUID, status: EmailStatus, error: str) -> None:
    """An attempt that did not send: pending again, or failed for good."""
    await db.execute(_NOT_SENT, {"id": email_id, "status": status, "error": error[:2000]})


class MailIncomplete(Exception):
    """The mail server did not take the message: the job queue tries again."""


async def _address(db: AsyncConnection, *, user_id: UUID) -> str | None:
    from rapport.identity import service as identity_service

    user = await identity_service.get_user(db, actor=Actor(user_id=user_id))
    return user.email if user.status == "active" else None


async def deliver_email(runtime: Runtime, *, email_id: UUID, attempt: int, max_attempts: int) -> bool:
    """Send one e-mail of `email_notifications` (a digest or a single notification);
    whether a mail left now.

    Raises:
        MailIncomplete: the mail server refused or could not be reached; tried again
            unless this was the last attempt.
    """
    async with system_transaction(runtime.system_engine) as db:
        email = (await db.execute(_EMAIL, {"id": email_id})).one_or_none()
        if email is None or email.status in ("sent", "failed"):
            return False
        if email.status == "sending" and attempt == 1:
            return False
        address = await _address(db, user_id=email.user_id)
        if email.kind == "digest":
            # Asked now, not when the digest was planned: turning it off stops one waiting.
            wanted = (await _preferences.get_notification_settings(db, user_id=email.user_id)).email_digest
            found = await db.execute(
                _UNREAD_NOT_MAILED, {"user_id": email.user_id, "email_id": email_id, "limit": DIGEST_LIMIT}
            )
            rows = list(found.all()) if wanted else []
        else:
            rows = list((await db.execute(_LISTED, {"ids": list(email.notification_ids)})).all())
        if not rows or address is None:
            await db.execute(_NOTHING_TO_SEND, {"id": email_id})
            log.info("notifications.email_unneeded", email_id=str(email_id), kind=email.kind)
            return False
        profile = await _rules.profile_of(db, email.user_id)
        language = _compose.language_of(profile.language_code if profile is not None else None)
        rendered = await _render(db, runtime, kind=email.kind, rows=rows, language=language)
        subject = rendered.subject or rows[0].title
        await db.execute(_SENDING, {"id": email_id, "ids": [row.id for row in rows], "subject": subject})
    try:
        await runtime.mailer.send(Mail(to=address, subject=subject, body=rendered.text, html=rendered.html))
    except Exception as exc:
        last = attempt >= max_attempts
        async with system_transaction(runtime.system_engine) as db:
            await set_status(
                db, email_id=email_id, status="failed" if last else "pending", error=f"{type(exc).__name__}: {exc}"
            )
        raise MailIncomplete(f"The mail server did not take the message: {type(exc).__name__}: {exc}") from exc
    async with system_transaction(runtime.system_engine) as db:
        await db.execute(_SENT, {"id": email_id})
    log.info("notifications.emailed", email_id=str(email_id), kind=email.kind, notifications=len(rows))
    return True


async def _render(
    db: AsyncConnection, runtime: Runtime, *, kind: str, rows: Sequence[AnyRow], language: str
) -> _compose.Rendered:
    app_name = _deliver.app_name(runtime)
    if kind == "digest":
        listed: list[dict[str, Any]] = [
            {
                "title": row.title,
                "body": row.body,
                "action_url": row.action_url or "",
                "count": row.bundle_count,
                "created_at": row.created_at,
            }
            for row in rows
        ]
        context = {"notifications": listed, "count": len(listed), "app_name": app_name}
        return await _compose.compose(db, type="digest", channel="email", language=language, context=context)
    row = rows[0]
    context = {
        "title": row.title,
        "body": row.body,
        "action_url": row.action_url or "",
        "count": row.bundle_count,
        "app_name": app_name,
    }
    return await _compose.compose(db, type=row.type, channel="email", language=language, context=context)
