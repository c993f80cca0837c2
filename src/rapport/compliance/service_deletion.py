"""Account deletion's public service: what the routers, the jobs and the app call.

`do_delete_account` checks who asks in the caller's own transaction, then disables the
account in a system transaction (only system work may change an account's status).
`rounds` is what the app and `rapport worker` start beside the job worker."""

from __future__ import annotations

from datetime import datetime

from rapport.compliance import _deletion
from rapport.compliance._erase import Erased, erase_due_accounts, subject_of
from rapport.compliance.schemas_exports import DeletionScheduled
from rapport.compliance.service_exports import Transaction
from rapport.compliance.tasks import QUEUE, rounds
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from rapport.media import service as media_service

__all__ = ["QUEUE", "Erased", "do_delete_account", "erase_now_due", "rounds", "subject_of"]


async def do_delete_account(transaction: Transaction, runtime: Runtime, *, password: str | None) -> DeletionScheduled:
    """`DELETE /v1/me`: confirmed by the password, or by a sign-in of this session within
    settings.account_deletion_fresh_sign_in_minutes; the account is disabled at once and
    erased after settings.account_deletion_grace_days, unless its owner signs in before.

    Raises:
        SessionRequired: an API key asks (a leaked key must not delete an account).
        WrongPassword: the password is not the account's.
        ReauthenticationRequired: no password, and the session signed in too long ago.
    """
    async with transaction(session_required=True) as (db, actor):
        confirmation = await _deletion.confirm_deletion(db, rt=runtime, actor=actor, password=password)
    async with system_transaction(runtime.system_engine) as db:
        return await _deletion.schedule_deletion(
            db, rt=runtime, user_id=actor.user_id, confirmed_by=confirmation.confirmed_by, email=confirmation.email
        )


async def erase_now_due(runtime: Runtime, *, now: datetime | None = None) -> list[Erased]:
    """Erase every account whose grace period has ended by `now` (the database's clock
    when None), as the job `compliance.erase_due` does.

    Raises:
        StorageUnavailable: some stored bytes could not be deleted (see _erase).
    """
    store = media_service.MediaStore.from_settings(runtime.settings)
    try:
        return await erase_due_accounts(runtime.system_engine, store, keyring=runtime.keyring, now=now)
    finally:
        await store.close()
