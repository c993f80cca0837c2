"""Erasure: once an account's grace period has ended, nothing of the person stays.

One system transaction per account, in this order:

1. The stored bytes of their files, their files' versions and thumbnails, where no one
   else's file uses the same bytes (blobs are shared by hash), and of their exports; their
   resumable uploads with the bytes staged for them (rapport.media's tus uploads). The
   blobs are locked first, so that no upload claims them meanwhile; their bytes go before
   the transaction changes any audited row (each audit table's chain is locked from its
   first new row to the commit: no one waits on the storage).
2. What they said in others' conversations keeps its place but loses its content, versions,
   mentions and sender (`compliance.erase_messages`, migration 2026_11_30_0024), as do the
   copies others forwarded; their conversations with no one else go.
3. What others hold that names them: notifications about what they did or quoting what
   they said, others' contact entries linked to their account, blocks of them, codes other
   accounts had sent to their address or number, co-parenting invitations to their address
   (a pending one is canceled), the outbox's events and queued jobs that carry their id,
   address or number, sign-in throttles keyed by their id.
4. The account row: every row it owns goes with it (every foreign key to auth.users
   cascades or sets NULL), files, consents, exports and the deletion request included;
   then the blobs of step 1.
5. Their compliance log entries stay (seven years, seed 002), without their id: each names
   instead a subject, the HMAC of the id under the deployment's key, which says nothing to
   anyone without both; the erasure itself is logged the same way.
6. The audit keeps its chain: `audit.erase_person` blanks the rows about or by them.

A failure after step 1 rolls everything back but the deleted bytes, which belonged to the
person alone: the account is erased again on the next round, never left half erased.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import orjson
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.crypto import Keyring
from rapport.kernel.db import SystemEngine, system_transaction
from rapport.media import service as media_service

log = structlog.get_logger(__name__)

# How long a blob claimed by an upload is left alone, as the media collector leaves it: an
# upload of the same bytes by someone else may have claimed it and not yet named it.
CLAIM_GRACE = timedelta(hours=1)
# Accounts erased by one run of the job; the next round takes the rest.
BATCH = 50

# An account an administrator made active again is not erased (its request is replaced if
# its owner asks again); one suspended or banned meanwhile is: its owner asked.
_NEXT_DUE = text(
    """
    SELECT r.user_id, r.requested_at
      FROM compliance.deletion_requests r JOIN auth.users u ON u.id = r.user_id
     WHERE r.erase_after <= coalesce(CAST(:now AS timestamptz), now()) AND u.status <> 'active'
     ORDER BY r.erase_after, r.user_id
     LIMIT 1
       FOR UPDATE OF r SKIP LOCKED
    """
)
# What identifies the person in text (for the outbox, jobs and the audit), read before
# the rows that hold it go. The phone number through to_jsonb: it is identity's column,
# absent from databases migrated before it.
_TERMS = text(
    """
    SELECT u.email, to_jsonb(u) ->> 'phone_number' AS phone_number, p.username, p.display_name,
           d.preferred_name
      FROM auth.users u
      LEFT JOIN social.profiles p ON p.user_id = u.id
      LEFT JOIN social.user_demographics d ON d.user_id = u.id
     WHERE u.id = :user_id
    """
)
_FILE_BLOBS = text(
    """
    SELECT f.sha256 FROM media.files f WHERE f.owner_id = :user_id
    UNION SELECT f.public_sha256 FROM media.files f WHERE f.owner_id = :user_id AND f.public_sha256 IS NOT NULL
    UNION SELECT v.sha256 FROM media.file_versions v JOIN media.files f ON f.id = v.file_id WHERE f.owner_id = :user_id
    UNION SELECT t.sha256 FROM media.thumbnails t JOIN media.files f ON f.id = t.file_id WHERE f.owner_id = :user_id
    """
)
_EXPORT_BYTES = text(
    "SELECT sha256, storage_key FROM compliance.exports WHERE user_id = :user_id AND storage_key IS NOT NULL"
)
_ERASE_MESSAGES = text("SELECT compliance.erase_messages(:user_id)")
# Others' notifications about what they did or quoting what they said, copies forwarded
# by others included (their own notifications go with the account).
_NOTIFICATIONS = text(
    """
    WITH RECURSIVE said AS (
        SELECT m.id FROM messaging.messages m WHERE m.sender_id = :user_id
        UNION
        SELECT m.id FROM messaging.messages m JOIN said s ON m.forwarded_from_id = s.id
    )
    DELETE FROM notifications.notifications n
     WHERE n.actor_id = :user_id
        OR (n.related_kind = 'message' AND n.related_id IN (SELECT s.id FROM said s))
    """
)
# Others' address-book entries made from their account, and others' blocks of them.
_LINKED_CONTACTS = text("DELETE FROM social.contacts WHERE contact_user_id = :user_id")
_BLOCKS_OF_THEM = text("DELETE FROM social.blocks WHERE blocked_id = :user_id")
# Codes other accounts had sent to their address or number (one being added elsewhere).
_CODES_TO_THEM = text("DELETE FROM auth.otp_verifications WHERE identifier = ANY(CAST(:identifiers AS text[]))")
# Co-parenting invitations sent to their address that they never accepted (no id links
# them; one they accepted forgets the address when the account goes): each forgets the
# address, and a pending one ends, canceled, with its step in the pairing's log.
_INVITATIONS_TO_THEM = text(
    """
    WITH theirs AS (
        SELECT s.id, s.status = 'pending' AS pending FROM coparenting.pairing_sessions s
         WHERE s.parent_b_email = ANY(CAST(:identifiers AS text[]))
           FOR UPDATE
    ), ended AS (
        UPDATE coparenting.pairing_sessions s
           SET parent_b_email = NULL,
               status = CASE WHEN t.pending THEN 'canceled' ELSE s.status END,
               canceled_at = CASE WHEN t.pending THEN now() ELSE s.canceled_at END
          FROM theirs t
         WHERE s.id = t.id
        RETURNING s.id, t.pending
    )
    INSERT INTO coparenting.pairing_audit_log (id, pairing_id, actor_id, action, details)
    SELECT kernel.uuid7_like(), e.id, NULL, 'canceled', CAST('{"on": "erasure"}' AS jsonb) FROM ended e WHERE e.pending
    """
)
# What bots were sent of their messages (each delivery's request holds the message as
# the API showed it, sender's id included): the bots' own records of them go too.
_BOT_DELIVERIES = text("DELETE FROM bots.robot_interactions WHERE strpos(request_data::text, :id_text) > 0")
# The support rooms they opened keep their place in the desk's history, without their
# words: the description of the issue was theirs.
_SUPPORT_ISSUES = text(
    "UPDATE support.rooms SET issue_description = '(erased)', issue_id = NULL WHERE customer_id = :user_id"
)
# Likewise the reasons they gave for escalations and the notes they closed them with.
_SUPPORT_ESCALATIONS = text(
    """
    UPDATE support.escalations
       SET reason = CASE WHEN created_by = :user_id THEN '(erased)' ELSE reason END,
           resolution_notes = CASE WHEN assigned_to = :user_id AND resolution_notes IS NOT NULL
                                   THEN '(erased)' ELSE resolution_notes END
     WHERE created_by = :user_id OR assigned_to = :user_id
    """
)
# Throttles and rate limits keyed by the account's id ('mfa:<id>', 'second-factor:<id>', ...).
_THROTTLES = text("DELETE FROM auth.login_throttle WHERE strpos(key, :id_text) > 0")
_RATE_LIMITS = text("DELETE FROM auth.rate_limits WHERE strpos(key, :id_text) > 0")
# The outbox: their own events, events they caused, and events that name them.
_EVENTS = text(
    """
    DELETE FROM kernel.events
     WHERE (scope_kind = 'user' AND scope_id = :user_id) OR actor_id = :user_id
        OR strpos(payload::text, :id_text) > 0
    """
)
# Jobs carrying their id, address or number (mail and SMS to them, work about them).
_JOBS = text(
    """
    DELETE FROM kernel.jobs j
     WHERE EXISTS (SELECT 1 FROM unnest(CAST(:needles AS text[])) AS n
                    WHERE strpos(lower(j.payload::text || coalesce(j.last_error, '')), n) > 0)
    """
)
_ANONYMISE_LOGS = text(
    "UPDATE compliance.compliance_logs SET user_id = NULL, details = CAST(:details AS jsonb) WHERE user_id = :user_id"
)
_DELETE_ACCOUNT = text("DELETE FROM auth.users WHERE id = :user_id")
# The blobs of their files (current, public variant, versions, thumbnails) that no one
# else's file uses, locked until the commit (SKIP LOCKED: one an upload is claiming right
# now stays, and so does one claimed within the grace).
_THEIR_BLOBS = text(
    """
    SELECT b.sha256, b.storage_key FROM media.blobs b
     WHERE b.sha256 = ANY(CAST(:hashes AS bytea[]))
       AND b.reserved_at < coalesce(CAST(:now AS timestamptz), now()) - CAST(:grace AS interval)
       AND NOT EXISTS (SELECT 1 FROM media.files f WHERE f.sha256 = b.sha256 AND f.owner_id <> :user_id)
       AND NOT EXISTS (SELECT 1 FROM media.files f WHERE f.public_sha256 = b.sha256 AND f.owner_id <> :user_id)
       AND NOT EXISTS (SELECT 1 FROM media.file_versions v JOIN media.files f ON f.id = v.file_id
                        WHERE v.sha256 = b.sha256 AND f.owner_id <> :user_id)
       AND NOT EXISTS (SELECT 1 FROM media.thumbnails t JOIN media.files f ON f.id = t.file_id
                        WHERE t.sha256 = b.sha256 AND f.owner_id <> :user_id)
       FOR UPDATE OF b SKIP LOCKED
    """
)
# Once their files are gone: a blob something still names would fail its foreign key.
_DELETE_BLOBS = text("DELETE FROM media.blobs WHERE sha256 = ANY(CAST(:hashes AS bytea[]))")
# An export's bytes are the media storage's too: kept if a file happens to have the same.
_SHARED_WITH_MEDIA = text("SELECT sha256 FROM media.blobs WHERE sha256 = ANY(CAST(:hashes AS bytea[]))")
_AUDIT = text("SELECT audit.erase_person(:user_id, CAST(:terms AS text[]))")
_LOG_ERASED = text("SELECT compliance.log_event(NULL, 'data_deletion_completed', CAST(:details AS jsonb))")


@dataclass(frozen=True)
class Erased:
    """What one erasure removed, as its log entry says it (no personal data)."""

    subject: str
    messages_blanked: int
    blobs_deleted: int
    exports_deleted: int
    audit_rows_redacted: int


def subject_of(keyring: Keyring, user_id: UUID) -> str:
    """The pseudonym of an erased person in the compliance log: the HMAC of their id under
    the deployment's key, so that whoever holds both can show the erasure was done, and
    nobody else can tell whom it was about."""
    return keyring.mac("compliance.erasure-subject", str(user_id)).hex()


async def erase_account(
    db: AsyncConnection,
    store: media_service.MediaStore,
    *,
    keyring: Keyring,
    user_id: UUID,
    requested_at: datetime,
    now: datetime | None = None,
) -> Erased:
    """Erase one account in the caller's system transaction (see the module's docstring).

    Raises:
        StorageUnavailable: some stored bytes could not be deleted; the caller's
            transaction must roll back, and the account is erased on a later round.
    """
    id_text = str(user_id)
    found = (await db.execute(_TERMS, {"user_id": user_id})).one_or_none()
    terms = [value for value in (found or ()) if value]
    # Their address and number; jobs are searched for these and the id alone (a name may be
    # anyone's).
    identifiers: list[str] = [value for value in (found.email, found.phone_number) if value] if found else []
    needles = [id_text, *(value.lower() for value in identifiers)]

    hashes = list((await db.execute(_FILE_BLOBS, {"user_id": user_id})).scalars())
    params = {"hashes": hashes, "now": now, "grace": CLAIM_GRACE, "user_id": user_id}
    blobs = (await db.execute(_THEIR_BLOBS, params)).all()
    exports = (await db.execute(_EXPORT_BYTES, {"user_id": user_id})).all()
    in_media = set((await db.execute(_SHARED_WITH_MEDIA, {"hashes": [row.sha256 for row in exports]})).scalars())
    for key in [*(row.storage_key for row in blobs), *(e.storage_key for e in exports if e.sha256 not in in_media)]:
        await store.storage.delete(key)
    await media_service.remove_uploads_of(db, store, owner_id=user_id)

    for statement in (_NOTIFICATIONS, _LINKED_CONTACTS, _BLOCKS_OF_THEM, _SUPPORT_ISSUES, _SUPPORT_ESCALATIONS):
        await db.execute(statement, {"user_id": user_id})
    blanked = int((await db.execute(_ERASE_MESSAGES, {"user_id": user_id})).scalar_one())
    for statement in (_THROTTLES, _RATE_LIMITS, _BOT_DELIVERIES):
        await db.execute(statement, {"id_text": id_text})
    await db.execute(_CODES_TO_THEM, {"identifiers": identifiers})
    await db.execute(_INVITATIONS_TO_THEM, {"identifiers": identifiers})
    await db.execute(_EVENTS, {"user_id": user_id, "id_text": id_text})
    await db.execute(_JOBS, {"needles": needles})
    subject = subject_of(keyring, user_id)
    await db.execute(_ANONYMISE_LOGS, {"user_id": user_id, "details": orjson.dumps({"subject": subject}).decode()})
    await db.execute(_DELETE_ACCOUNT, {"user_id": user_id})
    await db.execute(_DELETE_BLOBS, {"hashes": [row.sha256 for row in blobs]})

    redacted = int((await db.execute(_AUDIT, {"user_id": user_id, "terms": terms})).scalar_one())
    erased = Erased(
        subject=subject,
        messages_blanked=blanked,
        blobs_deleted=len(blobs),
        exports_deleted=len(exports),
        audit_rows_redacted=redacted,
    )
    details = {"subject": subject, "requested_at": requested_at.isoformat(), **_counts(erased)}
    await db.execute(_LOG_ERASED, {"details": orjson.dumps(details).decode()})
    return erased


def _counts(erased: Erased) -> dict[str, int]:
    return {
        "messages_blanked": erased.messages_blanked,
        "blobs_deleted": erased.blobs_deleted,
        "exports_deleted": erased.exports_deleted,
        "audit_rows_redacted": erased.audit_rows_redacted,
    }


async def erase_due_accounts(
    engine: SystemEngine,
    store: media_service.MediaStore,
    *,
    keyring: Keyring,
    now: datetime | None = None,
    batch: int = BATCH,
) -> list[Erased]:
    """Erase the accounts whose grace period has ended by `now` (the database's clock when
    None), each in a transaction of its own, up to `batch` of them. Safe to run again and
    concurrently: each takes its request with SKIP LOCKED.

    Raises:
        StorageUnavailable: as `erase_account`; the accounts erased before it stay erased.
    """
    done: list[Erased] = []
    while len(done) < batch:
        async with system_transaction(engine) as db:
            due = (await db.execute(_NEXT_DUE, {"now": now})).one_or_none()
            if due is None:
                break
            erased = await erase_account(
                db, store, keyring=keyring, user_id=due.user_id, requested_at=due.requested_at, now=now
            )
        log.info("compliance.account_erased", **vars(erased))
        done.append(erased)
    return done
