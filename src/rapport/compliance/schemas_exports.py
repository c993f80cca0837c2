"""Request and response shapes of exports (`/v1/me/exports`) and of deleting one's account
(`DELETE /v1/me`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from rapport.compliance.models_exports import ConfirmedBy, ExportStatus
from rapport.kernel.schemas import Strict

__all__ = ["ConfirmedBy", "DeleteAccount", "DeletionScheduled", "ExportOut", "ExportPage", "ExportStatus"]

# Taken as typed: a password is never normalised (the hash must match what was typed).
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class ExportOut(BaseModel):
    id: UUID
    status: ExportStatus = Field(
        description="pending (queued), running, completed (downloadable until `expires_at`), failed, expired."
    )
    requested_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None = Field(description="Until when the archive can be downloaded.")
    size_bytes: int | None = Field(description="The archive's size, once made.")
    sha256: str | None = Field(description="The hex SHA-256 of the archive: its download's `ETag`.")
    sections: dict[str, int] = Field(description="Rows in each file of the archive, as its manifest.json lists them.")
    download_url: str | None = Field(description="Where to GET the archive (a zip) while it is downloadable.")


class ExportPage(BaseModel):
    items: list[ExportOut]
    next: str | None = Field(None, description="Pass it as `cursor` for the next (older) page; null at the end.")


class DeleteAccount(Strict):
    password: Password | None = Field(
        None,
        description="The account's current password. Without it, the session must have signed in within "
        "the last few minutes (RAPPORT_ACCOUNT_DELETION_FRESH_SIGN_IN_MINUTES).",
    )


class DeletionScheduled(BaseModel):
    requested_at: datetime
    erase_after: datetime = Field(
        description="When the account and everything it holds will be erased. Signing in before then restores it."
    )
    confirmed_by: ConfirmedBy
