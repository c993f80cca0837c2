"""Request and response shapes of pairing two parents."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from rapport.kernel.schemas import Email, Strict, Text
from rapport.modules.coparenting.models_pairing import InviteType, PairingAction, PairingStatus

# How long an invitation lives unless the inviter says otherwise, and at most.
DEFAULT_TTL_HOURS = 7 * 24
MAX_TTL_HOURS = 30 * 24

PairingCode = Annotated[
    str,
    Text(9, pattern=r"LZ-[0-9]{6}"),
    Field(description="The invitation's code, `LZ-` and six digits.", examples=["LZ-042917"]),
]
InviteToken = Annotated[str, Text(200), Field(description="The token of a link or an e-mail invitation.")]


class PairingCreate(Strict):
    """An invitation to the other parent: by `email` (Rapport mails them a token; only an
    account with that address may accept), by `link` (a token for the caller to pass on),
    or by `code` (`LZ-NNNNNN`, easy to read aloud)."""

    invite_type: InviteType
    email: Email | None = Field(default=None, description="The other parent's address; for `email` only.")
    expires_in_hours: int = Field(
        default=DEFAULT_TTL_HOURS, ge=1, le=MAX_TTL_HOURS, description="How long the invitation can be accepted."
    )

    @model_validator(mode="after")
    def _email_for_email(self) -> PairingCreate:
        if (self.invite_type == "email") != (self.email is not None):
            raise ValueError("`email` is given for an e-mail invitation, and only for one")
        return self


class PairingAccept(Strict):
    """Exactly one of `code` and `token`."""

    code: PairingCode | None = None
    token: InviteToken | None = None

    @model_validator(mode="after")
    def _one_of(self) -> PairingAccept:
        if (self.code is None) == (self.token is None):
            raise ValueError("send exactly one of `code` and `token`")
        return self


class PairingOut(BaseModel):
    """A pairing as one of its parents sees it."""

    id: UUID
    status: PairingStatus = Field(description="pending, active, canceled or expired.")
    invite_type: InviteType
    pairing_code: str | None = Field(description="For a code invitation, shown to its initiator.")
    role: Literal["initiator", "acceptor"] = Field(description="The caller's side.")
    partner_id: UUID | None = Field(description="The other parent, once accepted (null if their account is gone).")
    invited_email: str | None = Field(description="The address invited by e-mail, shown to the initiator.")
    shared_room_id: UUID | None = Field(description="The two parents' conversation, once accepted.")
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    canceled_at: datetime | None
    is_expired: bool = Field(description="Pending past its time, or marked expired.")


class PairingCreated(PairingOut):
    token: str | None = Field(
        description="For a link invitation: the token to pass on, shown this once (Rapport keeps only its hash)."
    )


class PairingStatusOut(BaseModel):
    """The caller's row of coparenting.user_pairing_status: whom they are paired with, in
    which room, or whether their invitation is pending or expired."""

    user_id: UUID
    pairing_id: UUID
    pairing_code: str | None
    status: PairingStatus
    invite_type: InviteType
    user_role: Literal["initiator", "acceptor"]
    partner_id: UUID | None
    invited_email: str | None
    shared_room_id: UUID | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    is_expired: bool


class PairingLogEntry(BaseModel):
    """One step of a pairing, from its audit log."""

    id: UUID
    action: PairingAction
    actor_id: UUID | None = Field(description="Who acted; null for Rapport's own (expiry, import).")
    details: dict[str, object]
    created_at: datetime
