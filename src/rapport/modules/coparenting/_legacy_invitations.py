"""The import of seed 000's legacy `invitations` rows into pairing sessions.

The seed says its `invitations` table was replaced by `pairing_sessions` and must be
migrated. A row becomes an e-mail invitation from its inviter to its invitee, its token
kept as the SHA-256 Rapport keeps of any token (so a legacy link that is still pending
still opens it); an accepted one becomes an active pairing with the account that has the
invitee's address, whose shared room is then opened as accepting opens it (by the job
`coparenting.open_missing_room`, acting as the invitee: the room, its topics, its system
message and its mediation notice). Importing is idempotent: each legacy id is imported once
(`legacy_invitation_id`), an active pairing gets one room however often it is imported, and
a row that cannot be imported is reported with the reason, never half-imported.

Inviters are Rapport accounts, named by `inviter_email` or by `inviter_id` as a Rapport
user id (a legacy integer id means nothing here: give the address instead).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import service as identity_service
from rapport.kernel import jobs
from rapport.kernel.crypto import sha256
from rapport.kernel.errors import constraint_of
from rapport.kernel.ids import uuid7
from rapport.kernel.schemas import normalise_email
from rapport.modules.coparenting._pairing import log_step, open_missing_room
from rapport.modules.coparenting.models_pairing import PairingStatus, pairing_sessions

# How long a legacy invitation with no expiry of its own lives from its creation.
DEFAULT_TTL = timedelta(days=7)
_STATUSES: dict[str, PairingStatus] = {
    "pending": "pending",
    "accepted": "active",
    "active": "active",
    "completed": "active",
    "canceled": "canceled",
    "cancelled": "canceled",
    "declined": "canceled",
    "rejected": "canceled",
    "revoked": "canceled",
    "expired": "expired",
}
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?")
# A constraint a row can break, and what that says about the row.
_REFUSALS = {
    "uq_pairing_sessions_invite_token_hash": "another invitation already has this token",
    "uq_pairing_sessions_active_pair": "the two parents already have an active pairing",
    "ck_pairing_sessions_not_self": "the invitee is the inviter",
    "fk_pairing_sessions_parent_a_id_users": "the inviter has no account",
}


@dataclass(frozen=True)
class LegacyInvitation:
    """One row of the seed's `invitations` table."""

    id: int
    invitee_email: str
    token: str
    status: str = "pending"
    inviter_id: str | None = None
    inviter_email: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    accepted_at: datetime | None = None


@dataclass
class ImportReport:
    imported: int = 0
    already: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        moment = value
    elif not str(value).strip():
        return None
    else:
        raw = str(value).strip().replace("Z", "+00:00")
        # PostgreSQL's text form writes a whole-hour offset as "+00".
        if re.search(r"[+-]\d\d$", raw):
            raw += ":00"
        moment = datetime.fromisoformat(raw)
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def legacy_row(values: Mapping[str, Any]) -> LegacyInvitation:
    """A legacy row from a CSV record or a table's row, by column name.

    Raises:
        ValueError: a column is missing or unreadable.
    """
    try:
        legacy_id = int(str(values["id"]).strip())
        return LegacyInvitation(
            id=legacy_id,
            invitee_email=str(values["invitee_email"] or ""),
            token=str(values["token"] or ""),
            status=(_text(values.get("status")) or "pending").lower(),
            inviter_id=_text(values.get("inviter_id")),
            inviter_email=_text(values.get("inviter_email")),
            created_at=_when(values.get("created_at")),
            expires_at=_when(values.get("expires_at")),
            accepted_at=_when(values.get("accepted_at")),
        )
    except KeyError as missing:
        raise ValueError(f"the column {missing} is missing") from None


def read_invitations_csv(path: Path) -> list[LegacyInvitation]:
    """The rows of a CSV file with a header naming the seed's columns (and `inviter_email`).

    Raises:
        ValueError: a row is unreadable (its line is named).
        OSError: the file cannot be read.
    """
    with path.open(newline="", encoding="utf-8") as file:
        rows = []
        for line, record in enumerate(csv.DictReader(file), start=2):
            try:
                rows.append(legacy_row(record))
            except ValueError as error:
                raise ValueError(f"{path}, line {line}: {error}") from None
        return rows


async def read_invitations_table(db: AsyncConnection, *, table: str) -> list[LegacyInvitation]:
    """The rows of a legacy table in this database (`invitations` or `schema.invitations`),
    read on `db`, whose role must be allowed to read it.

    Raises:
        ValueError: the name is not a plain table name, or a row is unreadable.
        sqlalchemy.exc.DBAPIError: no such table, or it may not be read.
    """
    if not _TABLE_NAME.fullmatch(table):
        raise ValueError(f"{table!r} is not a table name (schema.table)")
    quoted = ".".join(f'"{part}"' for part in table.split("."))
    rows = (await db.execute(text(f"SELECT * FROM {quoted} ORDER BY id"))).mappings().all()
    return [legacy_row(dict(row)) for row in rows]


async def _account(db: AsyncConnection, email: str) -> UUID | None:
    found = await identity_service.get_user_by_email(db, email=email)
    return None if found is None else UUID(str(found.id))


async def _inviter(db: AsyncConnection, row: LegacyInvitation) -> UUID | str:
    """The inviter's account, or why there is none."""
    if row.inviter_email:
        try:
            found = await _account(db, normalise_email(row.inviter_email))
        except ValueError:
            return "the inviter's address is not an address"
        return found if found is not None else "no account has the inviter's address"
    try:
        return UUID(row.inviter_id or "")
    except ValueError:
        return "the inviter is named neither by a Rapport user id nor by inviter_email"


async def _values(db: AsyncConnection, row: LegacyInvitation, now: datetime) -> dict[str, Any] | str:
    """The pairing session a legacy row becomes, or why it cannot."""
    status = _STATUSES.get(row.status)
    if status is None:
        return f"unknown status {row.status!r}"
    if not row.token.strip():
        return "no token"
    try:
        invitee = normalise_email(row.invitee_email)
    except ValueError:
        return "the invitee's address is not an address"
    inviter = await _inviter(db, row)
    if isinstance(inviter, str):
        return inviter
    created_at = row.created_at or now
    expires_at = row.expires_at or created_at + DEFAULT_TTL
    if status == "pending" and expires_at <= now:
        status = "expired"
    acceptor = None
    if status == "active":
        acceptor = await _account(db, invitee)
        if acceptor is None:
            return "accepted, but no account has the invitee's address"
    return {
        "id": uuid7(),
        "parent_a_id": inviter,
        "parent_b_id": acceptor,
        "parent_b_email": invitee,
        "status": status,
        "invite_type": "email",
        "invite_token_hash": sha256(row.token),
        "expires_at": expires_at,
        "accepted_at": (row.accepted_at or created_at) if status == "active" else None,
        "legacy_invitation_id": row.id,
        "created_at": created_at,
    }


async def _room_wanted(db: AsyncConnection, legacy_id: int) -> UUID | None:
    """The pairing a legacy row became, when it is active without its shared room."""
    query = select(pairing_sessions.c.id).where(
        pairing_sessions.c.legacy_invitation_id == legacy_id,
        pairing_sessions.c.status == "active",
        pairing_sessions.c.shared_room_id.is_(None),
    )
    found: UUID | None = (await db.execute(query)).scalar_one_or_none()
    return found


async def do_import_invitations(db: AsyncConnection, *, rows: Iterable[LegacyInvitation]) -> ImportReport:
    """Make pairing sessions of legacy invitations (system work), each once: a row already
    imported is counted, not imported again; a row that cannot be is reported with the
    reason. Each imported row has its `imported` step in the pairing audit log. For each
    active pairing still without its shared room (imported now or before), the job that
    opens it is queued (it opens none where a room is already recorded)."""
    report = ImportReport()
    now = datetime.now(UTC)
    for row in rows:
        values = await _values(db, row, now)
        if isinstance(values, str):
            report.skipped.append((row.id, values))
            continue
        statement = (
            insert(pairing_sessions)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[pairing_sessions.c.legacy_invitation_id])
            .returning(pairing_sessions.c.id)
        )
        try:
            async with db.begin_nested():
                made = (await db.execute(statement)).scalar_one_or_none()
        except IntegrityError as error:
            name = constraint_of(error) or ""
            reason = _REFUSALS.get(name)
            if reason is None:
                raise
            report.skipped.append((row.id, reason))
            continue
        if made is None:
            report.already += 1
        else:
            await log_step(
                db,
                action="imported",
                pairing_id=made,
                actor_id=None,
                details={"legacy_invitation_id": row.id, "status": values["status"]},
            )
            report.imported += 1
        roomless = await _room_wanted(db, row.id) if values["status"] == "active" else None
        if roomless is not None:
            await jobs.enqueue(db, open_missing_room, {"pairing_id": str(roomless)})
    return report
