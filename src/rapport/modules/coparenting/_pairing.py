"""Pairing two parents: an invitation by e-mail, link or code; accepting it, which opens
their shared room; canceling; expiry; and each step in the pairing audit log.

A link's or an e-mail's token is shown once (or mailed) and kept only as its SHA-256. A
code (`LZ-NNNNNN`) has a million values, so failed attempts to accept are counted per
person in the audit log and pause them past a threshold: guessing someone's code takes
far longer than its invitation lives. Every change publishes a user-scoped event to each
parent it concerns, so the other parent hears of it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import bindparam, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import BYTEA
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import service as identity_service
from rapport.kernel import jobs
from rapport.kernel.actor import Actor
from rapport.kernel.crypto import numeric_code, random_token, sha256
from rapport.kernel.db import AnyRow, system_transaction, user_transaction
from rapport.kernel.errors import RapportError, constraint_of
from rapport.kernel.ids import uuid7
from rapport.kernel.mail import Mail, enqueue_mail
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.runtime import Runtime
from rapport.messaging import service as messaging_service
from rapport.modules.coparenting import _topics
from rapport.modules.coparenting._pairing_jobs import QUEUE, announce_ended, announce_joined
from rapport.modules.coparenting.errors import (
    AlreadyPaired,
    CannotPairWithYourself,
    InvitationExpired,
    InvitationNotFound,
    PairingNotCancelable,
    PairingNotFound,
    TooManyPairingAttempts,
)
from rapport.modules.coparenting.models_pairing import PairingAction, pairing_audit_log, pairing_sessions
from rapport.modules.coparenting.schemas_pairing import (
    PairingAccept,
    PairingCreate,
    PairingCreated,
    PairingLogEntry,
    PairingOut,
    PairingStatusOut,
)
from rapport.social import service as social_service

TOKEN_PREFIX = "lzp_"
ROOM_NAME = "Co-parenting"
# Failed attempts to accept, per person, before a pause: a typo or two is not a guess.
MAX_FAILED_ATTEMPTS = 10
ATTEMPT_WINDOW = timedelta(minutes=15)
# Tries at a code no pending invitation holds, before giving up (the space is 10^6).
_CODE_TRIES = 8

log = structlog.get_logger(__name__)

_CLAIM = text("SELECT pairing_id, outcome FROM coparenting.claim_pairing(:token_hash, :code)").bindparams(
    bindparam("token_hash", type_=BYTEA)
)
_STATUS = text(
    """
    SELECT * FROM coparenting.user_pairing_status
     WHERE user_id = :user_id
     ORDER BY status = 'active' DESC, NOT is_expired DESC, created_at DESC, pairing_id DESC
     LIMIT 1
    """
)
_IS_EXPIRED = (
    (pairing_sessions.c.status == "expired")
    | ((pairing_sessions.c.status == "pending") & (pairing_sessions.c.expires_at <= func.now()))
).label("is_expired")


def _out(row: AnyRow, actor: Actor) -> PairingOut:
    initiator = row.parent_a_id == actor.user_id
    return PairingOut(
        id=row.id,
        status=row.status,
        invite_type=row.invite_type,
        pairing_code=row.pairing_code if initiator else None,
        role="initiator" if initiator else "acceptor",
        partner_id=row.parent_b_id if initiator else row.parent_a_id,
        invited_email=row.parent_b_email if initiator else None,
        shared_room_id=row.shared_room_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        accepted_at=row.accepted_at,
        canceled_at=row.canceled_at,
        is_expired=row.is_expired,
    )


async def log_step(
    db: AsyncConnection,
    *,
    action: PairingAction,
    pairing_id: UUID | None,
    actor_id: UUID | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one step to coparenting.pairing_audit_log (never a token, code or address)."""
    await db.execute(
        pairing_audit_log.insert().values(
            id=uuid7(), pairing_id=pairing_id, actor_id=actor_id, action=action, details=details or {}
        )
    )


async def announce(db: AsyncConnection, *, type: str, row: AnyRow, actor_id: UUID | None, **payload: Any) -> None:
    """Publish a pairing event to each parent of the pairing (a user scope each)."""
    body: dict[str, Any] = {
        "pairing_id": str(row.id),
        "status": row.status,
        "shared_room_id": str(row.shared_room_id) if row.shared_room_id else None,
    }
    body.update(payload)
    for parent in dict.fromkeys(p for p in (row.parent_a_id, row.parent_b_id) if p is not None):
        await publish(db, scope=Scope.user(parent), type=type, payload=body, actor_id=actor_id)


async def access_pairing(db: AsyncConnection, *, actor: Actor, pairing_id: UUID, lock: bool = False) -> AnyRow:
    """Load a pairing the actor is a parent of.

    Raises:
        PairingNotFound: missing, or not theirs.
    """
    query = select(pairing_sessions, _IS_EXPIRED).where(pairing_sessions.c.id == pairing_id)
    if lock:
        query = query.with_for_update(of=pairing_sessions)
    row: AnyRow | None = (await db.execute(query)).one_or_none()
    if row is None or actor.user_id not in (row.parent_a_id, row.parent_b_id):
        raise PairingNotFound()
    return row


async def get_pairing(db: AsyncConnection, *, actor: Actor, pairing_id: UUID) -> PairingOut:
    """Raises:
    PairingNotFound: missing, or not the actor's.
    """
    return _out(await access_pairing(db, actor=actor, pairing_id=pairing_id), actor)


async def has_any_pairing(db: AsyncConnection, *, actor: Actor) -> bool:
    """Whether the actor ever started or accepted a pairing, whatever became of it."""
    mine = or_(pairing_sessions.c.parent_a_id == actor.user_id, pairing_sessions.c.parent_b_id == actor.user_id)
    return bool((await db.execute(select(exists().where(mine)))).scalar_one())


async def get_pairing_status(db: AsyncConnection, *, actor: Actor) -> PairingStatusOut:
    """The actor's row of coparenting.user_pairing_status: their active pairing, or else
    their newest invitation still pending, or else their newest expired one.

    Raises:
        PairingNotFound: the actor has no pairing that is pending, active or expired.
    """
    row = (await db.execute(_STATUS, {"user_id": actor.user_id})).one_or_none()
    if row is None:
        raise PairingNotFound("You have no pairing, and no invitation pending.")
    return PairingStatusOut.model_validate(row._mapping)


async def list_pairing_log(db: AsyncConnection, *, actor: Actor, pairing_id: UUID) -> list[PairingLogEntry]:
    """A pairing's steps, oldest first (its two parents read them).

    Raises:
        PairingNotFound: missing, or not the actor's.
    """
    await access_pairing(db, actor=actor, pairing_id=pairing_id)
    rows = (
        await db.execute(
            select(pairing_audit_log)
            .where(pairing_audit_log.c.pairing_id == pairing_id)
            .order_by(pairing_audit_log.c.created_at, pairing_audit_log.c.id)
        )
    ).all()
    return [PairingLogEntry.model_validate(row._mapping) for row in rows]


async def _insert_invitation(db: AsyncConnection, values: dict[str, Any]) -> str | None:
    """Insert the invitation; for a code, pick one no pending invitation holds. Its code."""
    if values["invite_type"] != "code":
        await db.execute(pairing_sessions.insert().values(**values))
        return None
    for _ in range(_CODE_TRIES):
        code = f"LZ-{numeric_code(6)}"
        try:
            async with db.begin_nested():
                await db.execute(pairing_sessions.insert().values(**values, pairing_code=code))
        except IntegrityError as error:
            if constraint_of(error) == "uq_pairing_sessions_pending_code":
                continue
            raise
        return code
    raise RuntimeError("no free pairing code after several tries: the pending codes fill their space")


async def do_create_pairing(db: AsyncConnection, *, actor: Actor, body: PairingCreate) -> PairingCreated:
    """Invite the other parent. An e-mail invitation mails its token to the address; a
    link's token is in the answer, this once; a code is shown to the initiator whenever
    they look. Publishes `pairing.created` to the initiator.

    Raises:
        CannotPairWithYourself: an e-mail invitation to the actor's own address.
    """
    me = await identity_service.get_user(db, actor=actor)
    if body.email is not None and body.email == me.email:
        raise CannotPairWithYourself()
    name = (await social_service.get_own_profile(db, actor=actor)).display_name
    token = random_token(TOKEN_PREFIX) if body.invite_type != "code" else None
    pairing_id = uuid7()
    await _insert_invitation(
        db,
        {
            "id": pairing_id,
            "parent_a_id": actor.user_id,
            "parent_b_email": body.email,
            "invite_type": body.invite_type,
            "invite_token_hash": sha256(token) if token else None,
            "invited_by_name": name[:200],
            # The database's clock: the one coparenting.claim_pairing compares with.
            "expires_at": func.now() + timedelta(hours=body.expires_in_hours),
        },
    )
    await log_step(
        db, action="created", pairing_id=pairing_id, actor_id=actor.user_id, details={"invite_type": body.invite_type}
    )
    row = await access_pairing(db, actor=actor, pairing_id=pairing_id)
    await announce(db, type="pairing.created", row=row, actor_id=actor.user_id)
    if body.email is not None and token is not None:
        await enqueue_mail(db, _invitation_mail(to=body.email, name=name, token=token, expires_at=row.expires_at))
    out = _out(row, actor)
    return PairingCreated(**out.model_dump(), token=token if body.invite_type == "link" else None)


def _invitation_mail(*, to: str, name: str, token: str, expires_at: Any) -> Mail:
    return Mail(
        to=to,
        subject=f"{name} invites you to co-parent on Rapport",
        body=(
            f"{name} invites you to pair your Rapport accounts, so that the two of you share a room "
            f"to talk about your children.\n\n"
            f"Sign in with this address and accept the invitation with this token:\n\n    {token}\n\n"
            f"It can be accepted until {expires_at:%Y-%m-%d %H:%M} UTC. If you do not know {name}, "
            f"ignore this message: nothing happens unless you accept.\n"
        ),
    )


async def check_attempts(db: AsyncConnection, *, actor: Actor) -> None:
    """Raises:
    TooManyPairingAttempts: the actor's recent failed attempts to accept reached the limit.
    """
    since = func.now() - ATTEMPT_WINDOW
    failures = (
        await db.execute(
            select(func.count(), func.min(pairing_audit_log.c.created_at) + ATTEMPT_WINDOW - func.now()).where(
                pairing_audit_log.c.actor_id == actor.user_id,
                pairing_audit_log.c.action == "accept_failed",
                pairing_audit_log.c.created_at > since,
            )
        )
    ).one()
    if failures[0] >= MAX_FAILED_ATTEMPTS:
        wait = failures[1]
        raise TooManyPairingAttempts(retry_after=max(1, int(wait.total_seconds()) + 1) if wait else 60)


async def do_accept_pairing(db: AsyncConnection, *, actor: Actor, body: PairingAccept) -> PairingOut:
    """Accept an invitation by its code or token: the pairing becomes active, the two
    parents' room is made (a two-person group the acceptor opens, with the initiator in
    it) and recorded, its topics are organised (coparenting.topic_rooms), `pairing.accepted`
    goes to both, and a job posts the room's system message saying the acceptor joined
    and its `ai` notice that mediation is available. Of two acceptors racing, one wins.

    Raises:
        TooManyPairingAttempts: too many recent failures; nothing is tried.
        InvitationNotFound: no pending invitation has this code or token (or an e-mail
            invitation is for another address); the failure is recorded.
        InvitationExpired: its time has passed; it is marked expired.
        CannotPairWithYourself: the actor's own invitation.
        AlreadyPaired: the two already have an active pairing.
        messaging's UserNotFound: the initiator cannot be added to a room with the actor
            (either blocks the other, or their profile is hidden from the actor).
    """
    await check_attempts(db, actor=actor)
    claimed = (
        await db.execute(_CLAIM, {"token_hash": sha256(body.token) if body.token else None, "code": body.code})
    ).one()
    if claimed.outcome == "not_found":
        how = "code" if body.code else "token"
        await log_step(db, action="accept_failed", pairing_id=None, actor_id=actor.user_id, details={"by": how})
        raise InvitationNotFound()
    if claimed.outcome == "expired":
        raise InvitationExpired()
    if claimed.outcome == "self":
        raise CannotPairWithYourself("This is your own invitation: the other parent accepts it.")
    if claimed.outcome == "already_paired":
        raise AlreadyPaired()
    row = await access_pairing(db, actor=actor, pairing_id=claimed.pairing_id)
    await open_shared_room(db, actor=actor, row=row)
    row = await access_pairing(db, actor=actor, pairing_id=row.id)
    await announce(db, type="pairing.accepted", row=row, actor_id=actor.user_id)
    return _out(row, actor)


async def open_shared_room(db: AsyncConnection, *, actor: Actor, row: AnyRow) -> UUID:
    """Open the shared room of an active pairing, as its acceptor (`actor`): a two-person
    group the acceptor opens with the initiator in it, recorded as the pairing's
    `shared_room_id`, its topics organised (coparenting.topic_rooms), and a job queued to
    post its system message saying the acceptor joined and its `ai` notice that mediation
    is available. Accepting opens it, and so does the import of an accepted legacy
    invitation. Returns the room's id.

    Raises:
        messaging's UserNotFound: the initiator cannot be added to a room with the actor
            (either blocks the other, or their profile is hidden from the actor).
    """
    room, _ = await messaging_service.do_create_conversation(
        db,
        actor=actor,
        body=messaging_service.ConversationCreate(
            type="group",
            name=ROOM_NAME,
            max_participants=2,
            participant_ids=[row.parent_a_id],
            settings={"coparenting_pairing_id": str(row.id)},
        ),
    )
    await db.execute(update(pairing_sessions).where(pairing_sessions.c.id == row.id).values(shared_room_id=room.id))
    await _topics.do_enable_topics(db, actor=actor, conversation_id=room.id)
    await jobs.enqueue(db, announce_joined, {"pairing_id": str(row.id)})
    return room.id


async def do_open_missing_room(runtime: Runtime, *, pairing_id: UUID) -> UUID | None:
    """Open the shared room of an active pairing that has none (an imported one), acting
    as its acceptor, exactly as accepting does (open_shared_room); a pairing that has its
    room, or is no longer active, is left as it is, so running this again opens no second
    room. Returns the room opened now, or None. A room the rules refuse (one parent
    blocks the other, or the acceptor's account is gone) is not opened: it is logged,
    and the pairing stays without one."""
    async with system_transaction(runtime.system_engine) as db:
        acceptor = (
            await db.execute(
                select(pairing_sessions.c.parent_b_id).where(
                    pairing_sessions.c.id == pairing_id,
                    pairing_sessions.c.status == "active",
                    pairing_sessions.c.shared_room_id.is_(None),
                )
            )
        ).scalar_one_or_none()
    if acceptor is None:
        return None
    actor = Actor(user_id=acceptor)
    try:
        async with user_transaction(runtime.engine, acceptor) as db:
            row = await access_pairing(db, actor=actor, pairing_id=pairing_id, lock=True)
            if row.status != "active" or row.shared_room_id is not None:
                return None
            return await open_shared_room(db, actor=actor, row=row)
    except RapportError as error:
        log.warning("coparenting.room_not_opened", pairing_id=str(pairing_id), reason=error.slug)
        return None


@jobs.tasks.task("coparenting.open_missing_room", queue=QUEUE, max_attempts=5, timeout_seconds=60)
async def open_missing_room(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    """Open the shared room of an active pairing that has none: the import of accepted
    legacy invitations queues it, one per pairing."""
    await do_open_missing_room(ctx.runtime, pairing_id=UUID(payload["pairing_id"]))


async def do_cancel_pairing(db: AsyncConnection, *, actor: Actor, pairing_id: UUID) -> PairingOut:
    """Cancel a pending invitation (its initiator) or end an active pairing (either
    parent; the room and its history stay, and a job posts the room's system message
    saying the pairing ended). Canceling again changes nothing. Publishes
    `pairing.canceled` to both parents.

    Raises:
        PairingNotFound: missing, or not the actor's.
        PairingNotCancelable: it has expired.
    """
    row = await access_pairing(db, actor=actor, pairing_id=pairing_id, lock=True)
    if row.status == "canceled":
        return _out(row, actor)
    if row.is_expired:
        raise PairingNotCancelable("This invitation has already expired.")
    await db.execute(
        update(pairing_sessions)
        .where(pairing_sessions.c.id == pairing_id)
        .values(status="canceled", canceled_at=func.now())
    )
    await log_step(db, action="canceled", pairing_id=pairing_id, actor_id=actor.user_id, details={"was": row.status})
    row = await access_pairing(db, actor=actor, pairing_id=pairing_id)
    await announce(db, type="pairing.canceled", row=row, actor_id=actor.user_id)
    if row.accepted_at is not None and row.shared_room_id is not None:
        await jobs.enqueue(db, announce_ended, {"pairing_id": str(row.id)})
    return _out(row, actor)


async def do_expire_pairings(db: AsyncConnection, *, limit: int = 1000) -> int:
    """Mark pending invitations past their time expired (system work), each with its
    audit row and a `pairing.expired` event to its initiator. Returns how many."""
    due = (
        select(pairing_sessions.c.id)
        .where(pairing_sessions.c.status == "pending", pairing_sessions.c.expires_at <= func.now())
        .order_by(pairing_sessions.c.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = (
        await db.execute(
            update(pairing_sessions)
            .where(pairing_sessions.c.id.in_(due))
            .values(status="expired")
            .returning(*pairing_sessions.c)
        )
    ).all()
    for row in rows:
        await log_step(db, action="expired", pairing_id=row.id, actor_id=None, details={"on": "sweep"})
        await announce(db, type="pairing.expired", row=row, actor_id=None)
    return len(rows)


@jobs.tasks.task("coparenting.expire_pairings", queue=QUEUE, max_attempts=3, timeout_seconds=300)
async def expire_pairings(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    """Mark the invitations past their time expired: a round (or `rapport coparenting
    expire-pairings`) queues it."""
    async with system_transaction(ctx.runtime.system_engine) as db:
        await do_expire_pairings(db)


def pairing_rounds(runtime: Runtime) -> jobs.Rounds:
    """Marks overdue invitations expired every hour, in each process that runs the
    module's jobs (an overdue one already reads as expired and cannot be accepted; the
    round makes its status say so, and tells its initiator)."""
    work = jobs.enqueue_each(expire_pairings)
    return jobs.Rounds(runtime, name="coparenting rounds", work=work, every_seconds=jobs.HOURLY)
