"""Deleting one's own account."""

from __future__ import annotations

from fastapi import APIRouter, status

from rapport.compliance import schemas_exports as s
from rapport.compliance import service_deletion as service
from rapport.kernel.deps import CallerDep

router = APIRouter(prefix="/v1", tags=["compliance"])


@router.delete("/me", status_code=status.HTTP_202_ACCEPTED, response_model=s.DeletionScheduled)
async def delete_account(caller: CallerDep, body: s.DeleteAccount | None = None) -> s.DeletionScheduled:
    """Delete your account. Confirm with your current password (`{"password": ...}`), or
    send no body within a few minutes of signing in. The account is disabled at once (every
    session ends) and erased, with everything it holds, after the grace period
    (`erase_after`, 30 days by default): sign in again before then to restore it. Erasure
    leaves your messages' places in others' conversations, without their content or any
    link to you."""
    return await service.do_delete_account(
        caller.transaction, caller.runtime, password=body.password if body is not None else None
    )
