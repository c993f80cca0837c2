"""Moderation: reports of messages, flags, the moderation queue of a conversation, and the
platform's blocked terms.

A participant reports a message they can read; the conversation's moderators, admins and
owners see its flagged messages (a blocked term matched when it was sent, or a moderator
flagged it) and its reports, and dismiss a report or delete the message for everyone.
Platform administrators see every open report, with the message as it was reported, and
resolve any; they keep the blocked terms, which migration 2026_11_29_0014 compiles into the
one pattern every send is tested against. Row-level security (migration 2026_11_29_0015)
holds the same rules; this module checks them first, for clear errors.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Actor
from rapport.kernel.db import AnyRow
from rapport.kernel.errors import InvalidCursor, ValidationFailed, constraint_of
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.pagination import Page, PageRequest, encode_cursor, keyset, make_page
from rapport.messaging._refusals import execute
from rapport.messaging.errors import (
    AlreadyReported,
    BlockedTermExists,
    BlockedTermNotFound,
    ConversationNotFound,
    MessageNotFound,
    NotAllowed,
    PlatformAdminRequired,
    ReportNotFound,
    ReportNotOpen,
)
from rapport.messaging.models import blocked_terms
from rapport.messaging.models_calls import ReportReason, ReportStatus, reports
from rapport.messaging.schemas import MessageOut
from rapport.messaging.schemas_moderation import (
    BlockedTermOut,
    ModerationAction,
    ModerationQueue,
    ReportOut,
)

MODERATOR_ROLES = ("owner", "admin", "moderator")

# The largest bigint: a flagged-messages cursor carries a sequence number.
_BIGINT_MAX = 2**63 - 1

_ROLE = text("SELECT messaging.participant_role(:conversation)")
_IS_PLATFORM_ADMIN = text("SELECT messaging.is_platform_admin()")

# Row-level security keeps to the moderator's own window of the conversation.
_FLAGGED = """
SELECT m.seq, messaging.render_message(m, :viewer) AS message
  FROM messaging.messages m
 WHERE m.conversation_id = :conversation AND m.moderation_flagged AND m.deleted_at IS NULL {after}
 ORDER BY m.seq DESC
 LIMIT :limit
"""

_FLAG = text(
    """
    UPDATE messaging.messages AS m SET moderation_flagged = :flagged
     WHERE m.conversation_id = :conversation AND m.id = :message
       AND m.created_at = messaging.id_time(:message) AND m.deleted_at IS NULL
    RETURNING m.seq, messaging.render_message(m, :viewer) AS message
    """
)
_IS_FLAGGED = text(
    """
    SELECT m.moderation_flagged FROM messaging.messages m
     WHERE m.conversation_id = :conversation AND m.id = :message
       AND m.created_at = messaging.id_time(:message) AND m.deleted_at IS NULL
    """
)
_DELETE_MESSAGE = text(
    """
    UPDATE messaging.messages AS m SET deleted_at = now()
     WHERE m.conversation_id = :conversation AND m.id = :message
       AND m.created_at = messaging.id_time(:message) AND m.deleted_at IS NULL
    RETURNING m.seq
    """
)

_DELETE_AS_PLATFORM_ADMIN = text("SELECT messaging.delete_as_platform_admin(:conversation, :message) AS seq")


async def _role(db: AsyncConnection, conversation_id: UUID) -> str | None:
    role: str | None = (await db.execute(_ROLE, {"conversation": conversation_id})).scalar_one()
    return role


async def _is_platform_admin(db: AsyncConnection) -> bool:
    return bool((await db.execute(_IS_PLATFORM_ADMIN)).scalar_one())


async def _require_platform_admin(db: AsyncConnection) -> None:
    if not await _is_platform_admin(db):
        raise PlatformAdminRequired()


async def access_moderation(db: AsyncConnection, *, conversation_id: UUID) -> str:
    """The actor's role in a conversation they moderate (moderator, admin or owner).

    Raises:
        ConversationNotFound: missing, or the actor does not take part in it.
        NotAllowed: the actor takes part, but does not moderate it.
    """
    role = await _role(db, conversation_id)
    if role is None:
        raise ConversationNotFound()
    if role not in MODERATOR_ROLES:
        raise NotAllowed("Only the conversation's moderators, admins and owners moderate it.")
    return role


def _report(row: AnyRow) -> ReportOut:
    return ReportOut.model_validate(row._mapping)


async def do_report_message(
    db: AsyncConnection,
    *,
    actor: Actor,
    conversation_id: UUID,
    message_id: UUID,
    reason: ReportReason,
    details: str | None,
) -> ReportOut:
    """Report a message the actor can read to the conversation's moderators and the
    platform's administrators. The report keeps the message as it was. No event: a report
    is nobody else's business until a moderator acts on it.

    Raises:
        ConversationNotFound: missing, or the actor does not take part in it.
        MessageNotFound: no such message that the actor can read (or it was deleted).
        AlreadyReported: the actor has an open report of this message already.
    """
    if await _role(db, conversation_id) is None:
        raise ConversationNotFound()
    try:
        async with db.begin_nested():
            row = (
                await execute(
                    db,
                    insert(reports)
                    .values(
                        id=uuid7(),
                        conversation_id=conversation_id,
                        message_id=message_id,
                        reporter_id=actor.user_id,
                        reason=reason,
                        details=details,
                    )
                    .returning(reports),
                )
            ).one()
    except IntegrityError as error:
        if constraint_of(error) == "uq_reports_open":
            raise AlreadyReported() from None
        raise
    return _report(row)


def _after_seq(page: PageRequest) -> int | None:
    if page.after_id is None:
        return None
    after = page.after_id.int
    if after > _BIGINT_MAX:
        raise InvalidCursor("The cursor was not issued for this list.")
    return after


async def list_flagged_messages(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, page: PageRequest
) -> Page[MessageOut]:
    """A conversation's flagged messages that are still there, newest first.

    Raises:
        ConversationNotFound, NotAllowed (see access_moderation).
        InvalidCursor: a cursor this list did not issue.
    """
    await access_moderation(db, conversation_id=conversation_id)
    after = _after_seq(page)
    params: dict[str, Any] = {"viewer": actor.user_id, "conversation": conversation_id, "limit": page.limit + 1}
    if after is not None:
        params["after"] = after
    statement = text(_FLAGGED.format(after="AND m.seq < :after" if after is not None else ""))
    rows = (await db.execute(statement, params)).all()
    items = [MessageOut.model_validate(row.message) for row in rows]
    has_more = len(items) > page.limit
    items = items[: page.limit]
    return Page[MessageOut](items=items, next=encode_cursor(UUID(int=items[-1].seq)) if has_more else None)


async def list_conversation_reports(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, status: ReportStatus, page: PageRequest
) -> Page[ReportOut]:
    """A conversation's reports of one status, newest first.

    Raises:
        ConversationNotFound, NotAllowed (see access_moderation).
        InvalidCursor: a cursor this server did not issue.
    """
    await access_moderation(db, conversation_id=conversation_id)
    query = select(reports).where(reports.c.conversation_id == conversation_id, reports.c.status == status)
    rows = (await db.execute(keyset(query, reports.c.id, page))).all()
    return make_page([_report(row) for row in rows], page)


async def get_moderation_queue(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, limit: int
) -> ModerationQueue:
    """The first page of a conversation's flagged messages and of its open reports.

    Raises:
        ConversationNotFound, NotAllowed (see access_moderation).
    """
    first = PageRequest(limit=limit, after_id=None)
    return ModerationQueue(
        flagged=await list_flagged_messages(db, actor=actor, conversation_id=conversation_id, page=first),
        reports=await list_conversation_reports(
            db, actor=actor, conversation_id=conversation_id, status="open", page=first
        ),
    )


async def do_flag_message(
    db: AsyncConnection, *, actor: Actor, conversation_id: UUID, message_id: UUID, flagged: bool | None
) -> MessageOut:
    """Flag a message for moderators, or clear its flag (moderators and above); None
    leaves it as it is. Publishes message.flagged when the flag changes.

    Raises:
        ConversationNotFound, NotAllowed (see access_moderation).
        MessageNotFound: no such message that the actor can read (or it was deleted).
    """
    await access_moderation(db, conversation_id=conversation_id)
    keys = {"conversation": conversation_id, "message": message_id}
    was = (await db.execute(_IS_FLAGGED, keys)).scalar_one_or_none()
    if was is None:
        raise MessageNotFound()
    # Left out, the flag stays: the update writes the value it has, and tells nobody.
    flagged = was if flagged is None else flagged
    row = (await execute(db, _FLAG, {**keys, "flagged": flagged, "viewer": actor.user_id})).one_or_none()
    if row is None:
        raise MessageNotFound()
    if was != flagged:
        await publish(
            db,
            scope=Scope.conversation(conversation_id),
            type="message.flagged",
            payload={"message_id": str(message_id), "seq": row.seq, "moderation_flagged": flagged},
            actor_id=actor.user_id,
        )
    return MessageOut.model_validate(row.message)


async def do_resolve_report(
    db: AsyncConnection,
    *,
    actor: Actor,
    conversation_id: UUID,
    report_id: UUID,
    action: ModerationAction,
    note: str | None,
) -> ReportOut:
    """Resolve an open report: `dismiss` it, or `delete_message` for everyone, which
    resolves every open report of that message (publishing message.deleted). The
    conversation's moderators and above resolve its reports; platform administrators
    resolve any, deleting messages too.

    Raises:
        ConversationNotFound: missing, or the actor neither takes part nor administers the platform.
        NotAllowed: the actor takes part but does not moderate.
        ReportNotFound: no such report in this conversation.
        ReportNotOpen: it was resolved already.
    """
    role = await _role(db, conversation_id)
    moderates = role in MODERATOR_ROLES
    if not moderates and not await _is_platform_admin(db):
        if role is None:
            raise ConversationNotFound()
        raise NotAllowed("Only the conversation's moderators, admins and owners resolve its reports.")
    report = (
        await db.execute(
            select(reports)
            .where(reports.c.conversation_id == conversation_id, reports.c.id == report_id)
            .with_for_update()
        )
    ).one_or_none()
    if report is None:
        raise ReportNotFound()
    if report.status != "open":
        raise ReportNotOpen()
    if action == "dismiss":
        resolved = update(reports).where(reports.c.conversation_id == conversation_id, reports.c.id == report_id)
        status = "dismissed"
    else:
        keys = {"conversation": conversation_id, "message": report.message_id}
        # A platform administrator who does not moderate here sees no message under
        # row-level security: their delete goes through the one definer function for it.
        statement = _DELETE_MESSAGE if moderates else _DELETE_AS_PLATFORM_ADMIN
        deleted = (await execute(db, statement, keys)).one_or_none()
        if deleted is not None and deleted.seq is None:
            deleted = None
        if deleted is not None:
            await publish(
                db,
                scope=Scope.conversation(conversation_id),
                type="message.deleted",
                payload={"message_id": str(report.message_id), "seq": deleted.seq},
                actor_id=actor.user_id,
            )
        resolved = update(reports).where(
            reports.c.conversation_id == conversation_id,
            reports.c.message_id == report.message_id,
            reports.c.status == "open",
        )
        status = "actioned"
    await execute(db, resolved.values(status=status, resolution_note=note))
    row = (await db.execute(select(reports).where(reports.c.id == report_id))).one()
    return _report(row)


async def list_open_reports(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[ReportOut]:
    """Every open report on the platform, newest first (platform administrators).

    Raises:
        PlatformAdminRequired: the actor is not a platform administrator.
        InvalidCursor: a cursor this server did not issue.
    """
    await _require_platform_admin(db)
    rows = (await db.execute(keyset(select(reports).where(reports.c.status == "open"), reports.c.id, page))).all()
    return make_page([_report(row) for row in rows], page)


async def list_blocked_terms(db: AsyncConnection, *, actor: Actor, page: PageRequest) -> Page[BlockedTermOut]:
    """The blocked terms, newest first (platform administrators).

    Raises:
        PlatformAdminRequired: the actor is not a platform administrator.
        InvalidCursor: a cursor this server did not issue.
    """
    await _require_platform_admin(db)
    rows = (await db.execute(keyset(select(blocked_terms), blocked_terms.c.id, page))).all()
    return make_page([BlockedTermOut.model_validate(row._mapping) for row in rows], page)


async def do_add_blocked_term(db: AsyncConnection, *, actor: Actor, term: str) -> BlockedTermOut:
    """Block a term (lower-cased): every message sent from now on that contains it, in any
    case, is flagged for moderators. Messages sent before are left as they are.

    Raises:
        PlatformAdminRequired: the actor is not a platform administrator.
        BlockedTermExists: the term is blocked already.
        ValidationFailed: lower-cased, the term is longer than 200 characters.
    """
    await _require_platform_admin(db)
    try:
        async with db.begin_nested():
            # PostgreSQL lower-cases, as ck_blocked_terms_term and messaging.flags do.
            row = (
                await db.execute(
                    insert(blocked_terms)
                    .values(id=uuid7(), term=func.lower(term), created_by=actor.user_id)
                    .returning(blocked_terms)
                )
            ).one()
    except IntegrityError as error:
        if constraint_of(error) == "uq_blocked_terms_term":
            raise BlockedTermExists() from None
        if constraint_of(error) == "ck_blocked_terms_term":
            raise ValidationFailed("Lower-cased, the term is longer than 200 characters.") from None
        raise
    return BlockedTermOut.model_validate(row._mapping)


async def do_remove_blocked_term(db: AsyncConnection, *, actor: Actor, term_id: UUID) -> None:
    """Unblock a term. Messages flagged by it stay flagged.

    Raises:
        PlatformAdminRequired: the actor is not a platform administrator.
        BlockedTermNotFound: no such term.
    """
    await _require_platform_admin(db)
    removed = (
        await db.execute(delete(blocked_terms).where(blocked_terms.c.id == term_id).returning(blocked_terms.c.id))
    ).one_or_none()
    if removed is None:
        raise BlockedTermNotFound()
