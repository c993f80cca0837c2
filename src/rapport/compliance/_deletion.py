"""Deleting one's account (DELETE /v1/me): confirmed by the password or a recent sign-in,
then disabled for a grace period (settings.account_deletion_grace_days) in which signing
in again restores it (identity asks `compliance.deletion_pending` and calls
`compliance.cancel_deletion`), then erased by the job `compliance.erase_due`
(rapport.compliance._erase).

During the grace period the account is `deleted`: its sessions are revoked, its API keys
stop working, it is not found in searches nor added to conversations, and its address
stays taken so that nobody else can claim it before it is erased.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.compliance.errors import ReauthenticationRequired, WrongPassword
from rapport.compliance.schemas_exports import ConfirmedBy, DeletionScheduled
from rapport.identity import service as identity_service
from rapport.kernel.actor import Actor
from rapport.kernel.errors import Conflict
from rapport.kernel.mail import Mail, enqueue_mail
from rapport.kernel.runtime import Runtime

# The account's own row and the session that calls, under the caller's row-level security.
_CREDENTIALS = text(
    """
    SELECT u.password_hash, u.email, s.created_at AS signed_in_at, now() AS now
      FROM auth.users u
      LEFT JOIN auth.sessions s ON s.id = :session_id AND s.user_id = u.id
     WHERE u.id = :user_id
    """
)
_SCHEDULE = text(
    "SELECT requested_at, erase_after FROM compliance.schedule_deletion(:user_id, make_interval(days => :days), :by)"
)


@dataclass(frozen=True)
class Confirmation:
    """How the owner proved it is them, and where to tell them what follows."""

    confirmed_by: ConfirmedBy
    email: str | None


async def confirm_deletion(db: AsyncConnection, *, rt: Runtime, actor: Actor, password: str | None) -> Confirmation:
    """How the owner proved it is them: the password when given, else a sign-in of this
    session within settings.account_deletion_fresh_sign_in_minutes.

    Raises:
        WrongPassword: the password is not the account's (an account without one, signed
            in through a provider only, never matches).
        ReauthenticationRequired: no password, and the session signed in too long ago.
    """
    row = (await db.execute(_CREDENTIALS, {"user_id": actor.user_id, "session_id": actor.session_id})).one()
    if password is not None:
        # Verified even without a hash (a provider-only account): the same work either way.
        check = await rt.passwords.verify(row.password_hash, password)
        if not check.ok:
            raise WrongPassword("The password is not correct.")
        return Confirmation("password", row.email)
    fresh = timedelta(minutes=rt.settings.account_deletion_fresh_sign_in_minutes)
    if row.signed_in_at is None or row.now - row.signed_in_at > fresh:
        minutes = rt.settings.account_deletion_fresh_sign_in_minutes
        raise ReauthenticationRequired(
            f"Send your current password as `password`, or sign in again: this session signed in more than "
            f"{minutes} minutes ago."
        )
    return Confirmation("recent_sign_in", row.email)


async def schedule_deletion(
    db: AsyncConnection, *, rt: Runtime, user_id: UUID, confirmed_by: ConfirmedBy, email: str | None
) -> DeletionScheduled:
    """Disable the account and schedule its erasure (system transaction): its sessions end
    (their devices hear it), the request is logged and, when it has an address, its owner
    is told by mail how to keep it.

    Raises:
        Conflict: the account is not active (it cannot have reached here otherwise).
    """
    days = rt.settings.account_deletion_grace_days
    row = (await db.execute(_SCHEDULE, {"user_id": user_id, "days": days, "by": confirmed_by})).one_or_none()
    if row is None:
        raise Conflict("Only an active account can be deleted.")
    await identity_service.revoke_sessions(db, user_id=user_id, reason="account_disabled")
    if email:
        await enqueue_mail(
            db,
            Mail(
                to=email,
                subject="Your Rapport account will be deleted",
                body=(
                    f"You asked for your Rapport account to be deleted. It is disabled now and will be erased, "
                    f"with everything it holds, after {row.erase_after:%Y-%m-%d %H:%M} UTC.\n\n"
                    f"Changed your mind? Sign in again before then and the account is restored as it was.\n"
                ),
            ),
        )
    return DeletionScheduled(requested_at=row.requested_at, erase_after=row.erase_after, confirmed_by=confirmed_by)
