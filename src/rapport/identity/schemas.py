"""Request and response shapes of the identity API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator


def normalise_email(value: str) -> str:
    """Trimmed and lower-cased, and shaped like an address; nothing is looked up."""
    value = value.strip().lower()
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from exc
    return value


Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(normalise_email)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
OneTimeCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=6, max_length=6, pattern=r"^[0-9]{6}$")
]
TotpCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{6}$")]
RecoveryCode = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=10, max_length=11)]
DeviceType = Literal["mobile", "tablet", "desktop", "web", "unknown"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        # PostgreSQL text holds neither NUL nor lone UTF-16 surrogates (JSON allows
        # "\ud800"); refuse them here rather than fail in the database.
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError("must not contain NUL characters")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError("must be valid Unicode text (no lone surrogates)") from exc
        return value


class Device(Strict):
    device_type: DeviceType = "unknown"
    device_name: Annotated[str, StringConstraints(max_length=100)] | None = None


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
    mfa_token: Annotated[str, StringConstraints(max_length=2048)]
    code: TotpCode | None = None
    recovery_code: RecoveryCode | None = None


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
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    expires_at: datetime | None = Field(default=None, description="When the key stops working; none means never.")


class OidcLoginRequest(Device):
    id_token: Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class UserOut(BaseModel):
    id: UUID
    email: str
    status: str
    email_verified: bool
    is_admin: bool
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
    severity: str
    ip_address: str | None
    details: dict
    created_at: datetime
