"""Request and response shapes of the identity API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints, model_validator

from rapport.kernel.schemas import Email, JsonDateTime, Name100, Strict, Text
from rapport.kernel.schemas import normalise_email as normalise_email

# Passwords and codes are taken as sent: a password is never normalised (the hash must
# match whatever was typed), and the strict base refuses what cannot be stored.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
OneTimeCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=6, max_length=6, pattern=r"^[0-9]{6}$")
]
TotpCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{6}$")]
RecoveryCode = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=10, max_length=11)]
DeviceType = Literal["mobile", "tablet", "desktop", "web", "unknown"]
# The values auth's CHECK enumerations allow, named once for the code that writes them
# and the answers that show them (tests/kernel/test_catalogue.py compares them).
UserStatus = Literal["pending", "active", "suspended", "banned", "deleted"]
# A person signs in with a password or a provider; a bot with its API keys; a guest
# through the support link that made them.
AccountKind = Literal["person", "bot", "guest"]
Severity = Literal["info", "warning", "critical"]
SessionRevokedReason = Literal[
    "logout", "revoked", "password_changed", "password_reset", "refresh_token_reuse", "account_disabled"
]
# E-mailed codes verify an address or reset a password; SMS codes (identity._phone_codes)
# also verify a registered number, prove a number being added, sign in and stand in for
# the authenticator app.
CodePurpose = Literal[
    "email_verification", "password_reset", "phone_verification", "phone_change", "sign_in", "second_factor"
]


class Device(Strict):
    device_type: DeviceType = "unknown"
    # A client may send an empty name; sign-in must not fail over it.
    device_name: Annotated[str, Text(100, min_length=0)] | None = None


class RegisterRequest(Strict):
    email: Email
    password: Password


class EmailRequest(Strict):
    email: Email


class VerifyEmailRequest(Device):
    email: Email
    code: OneTimeCode


class LoginRequest(Device):
    email: Email
    password: Password


class TotpLoginRequest(Device):
    """Exactly one of `code` (from the authenticator app) and `recovery_code`."""

    mfa_token: Annotated[str, StringConstraints(max_length=2048)]
    code: TotpCode | None = None
    recovery_code: RecoveryCode | None = None

    @model_validator(mode="after")
    def _one_factor(self) -> TotpLoginRequest:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("send either `code` or `recovery_code`, not both and not neither")
        return self


class RefreshRequest(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ChangePasswordRequest(Strict):
    current_password: Password
    new_password: Password


class ResetPasswordRequest(Strict):
    email: Email
    code: OneTimeCode
    new_password: Password


class TotpCodeRequest(Strict):
    code: TotpCode


class TotpDisableRequest(Strict):
    code: TotpCode | None = None
    recovery_code: RecoveryCode | None = None


class ApiKeyCreateRequest(Strict):
    name: Name100
    expires_at: JsonDateTime | None = Field(default=None, description="When the key stops working; none means never.")


class OidcLoginRequest(Device):
    id_token: Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class UserOut(BaseModel):
    id: UUID
    email: str | None = Field(description="None for an account registered with a phone number.")
    phone_number: str | None = Field(default=None, description="E.164; set once verified, or registered with.")
    phone_verified: bool = False
    status: UserStatus
    email_verified: bool
    is_admin: bool
    kind: AccountKind = "person"
    two_factor_enabled: bool
    created_at: datetime
    last_login_at: datetime | None


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str
    session_id: UUID
    user_id: UUID


class MfaChallenge(BaseModel):
    mfa_required: Literal[True] = True
    mfa_token: str
    expires_in: int
    factor: Literal["totp", "email", "sms"] = Field(
        default="totp",
        description="How to complete the sign-in: `totp` with the authenticator app (or a recovery code) at "
        "`POST /v1/auth/login/totp`; `email` or `sms` with the one-time code just sent to the account's "
        "address or number, at `POST /v1/auth/login/step-up` (a sign-in held as unusual, of an account "
        "without two-factor).",
    )


class StepUpLoginRequest(Device):
    """The one-time code sent for a sign-in held as unusual."""

    mfa_token: Annotated[str, StringConstraints(max_length=2048)]
    code: OneTimeCode


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str


class SessionOut(BaseModel):
    id: UUID
    device_type: str
    device_name: str | None
    user_agent: str | None
    ip_address: str | None
    created_at: datetime
    last_active_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    current: bool


class TotpEnrolment(BaseModel):
    secret: str
    otpauth_uri: str


class RecoveryCodes(BaseModel):
    recovery_codes: list[str]


class ApiKeyOut(BaseModel):
    id: UUID
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself. Shown only this once.")


class LoginHistoryOut(BaseModel):
    id: UUID
    method: str
    succeeded: bool
    failure_reason: str | None
    ip_address: str | None
    user_agent: str | None
    created_at: datetime


class SecurityEventOut(BaseModel):
    id: UUID
    event_type: str
    severity: Severity
    ip_address: str | None
    details: dict[str, Any]
    created_at: datetime
