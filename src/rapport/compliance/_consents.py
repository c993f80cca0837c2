"""Consents: given and withdrawn per type, append-only (seed 002 consent_logs), with the
client's address and user agent as identity keeps them for sign-ins. The newest record of a
type is its current state; `compliance.has_consent` answers the same question in SQL for
every domain that needs a consent (notifications: marketing e-mail)."""

from __future__ import annotations

from typing import get_args
from uuid import UUID

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.compliance import _logs
from rapport.compliance.models import ConsentType, consent_logs
from rapport.compliance.schemas import ConsentIn, ConsentRecordOut, ConsentsOut, ConsentStateOut
from rapport.kernel.actor import Actor, Client
from rapport.kernel.db import AnyRow
from rapport.kernel.ids import uuid7
from rapport.kernel.pagination import Page, PageRequest, keyset, make_page

CONSENT_TYPES: tuple[ConsentType, ...] = get_args(ConsentType)

_CURRENT = text(
    """
    SELECT DISTINCT ON (consent_type) consent_type, granted, document_version, created_at
      FROM compliance.consent_logs
     WHERE user_id = :user_id
     ORDER BY consent_type, created_at DESC, id DESC
    """
)
_HAS_CONSENT = text("SELECT compliance.has_consent(:user_id, :consent_type)")


def _record(row: AnyRow) -> ConsentRecordOut:
    return ConsentRecordOut(
        id=row.id,
        consent_type=row.consent_type,
        granted=row.granted,
        document_version=row.document_version,
        ip_address=str(row.ip_address) if row.ip_address is not None else None,
        user_agent=row.user_agent,
        created_at=row.created_at,
    )


async def current_consents(db: AsyncConnection, *, user_id: UUID) -> ConsentsOut:
    """Where each consent of a person stands: every type, given or not."""
    newest = {row.consent_type: row for row in (await db.execute(_CURRENT, {"user_id": user_id})).all()}
    states = []
    for consent_type in CONSENT_TYPES:
        row = newest.get(consent_type)
        states.append(
            ConsentStateOut(
                consent_type=consent_type,
                granted=row.granted if row is not None else False,
                document_version=row.document_version if row is not None else None,
                updated_at=row.created_at if row is not None else None,
            )
        )
    return ConsentsOut(user_id=user_id, consents=states)


async def consent_history(db: AsyncConnection, *, user_id: UUID, page: PageRequest) -> Page[ConsentRecordOut]:
    """Every consent a person gave or withdrew, newest first."""
    query = keyset(select(consent_logs).where(consent_logs.c.user_id == user_id), consent_logs.c.id, page)
    return make_page([_record(row) for row in (await db.execute(query)).all()], page)


async def do_record_consent(
    db: AsyncConnection, *, actor: Actor, client: Client, wanted: ConsentIn
) -> ConsentRecordOut:
    """Give or withdraw one consent as the actor, from the client's address; the compliance
    log has it too (consent_given or consent_withdrawn)."""
    row = (
        await db.execute(
            insert(consent_logs)
            .values(
                id=uuid7(),
                user_id=actor.user_id,
                consent_type=wanted.consent_type,
                granted=wanted.granted,
                document_version=wanted.document_version,
                ip_address=client.ip,
                user_agent=client.user_agent,
            )
            .returning(consent_logs)
        )
    ).one()
    await _logs.log_event(
        db,
        user_id=actor.user_id,
        event_type="consent_given" if wanted.granted else "consent_withdrawn",
        details={
            "consent_id": str(row.id),
            "consent_type": wanted.consent_type,
            "document_version": wanted.document_version,
        },
    )
    return _record(row)


async def has_consent(db: AsyncConnection, *, user_id: UUID, consent_type: ConsentType) -> bool:
    """Whether the person's consent of this type stands (compliance.has_consent): false
    when never given, withdrawn since, or not the transaction's to see."""
    given: bool = (await db.execute(_HAS_CONSENT, {"user_id": user_id, "consent_type": consent_type})).scalar_one()
    return given
