"""What identity refuses, each with a stable problem type."""

from __future__ import annotations

from rapport.kernel.errors import (
    Conflict,
    Forbidden,
    InvalidToken,
    NotFound,
    RapportError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
)


class InvalidCredentials(Unauthenticated):
    """Wrong e-mail or password: never says which."""

    slug = "invalid-credentials"
    title = "The e-mail or password is incorrect"
    keeps_changes = True


class LoginThrottled(TooManyRequests):
    slug = "login-throttled"
    title = "Too many failed sign-ins; try again later"


class AccountDisabled(Forbidden):
    slug = "account-disabled"
    title = "This account is suspended, banned or deleted"
    keeps_changes = True  # the refused sign-in stays in the account's history


class EmailNotVerified(Forbidden):
    slug = "email-not-verified"
    title = "Verify the e-mail address before signing in"


class WeakPassword(ValidationFailed):
    slug = "weak-password"
    title = "The password is too weak"


class InvalidCode(RapportError):
    """A wrong, expired or used one-time code; the attempt counts."""

    slug = "invalid-code"
    title = "The code is wrong or has expired"
    keeps_changes = True


class InvalidTotpCode(Unauthenticated):
    slug = "invalid-totp-code"
    title = "The two-factor code is wrong"
    keeps_changes = True


class RefreshTokenReused(InvalidToken):
    """A refresh token already exchanged came back: someone holds a copy. The session
    is revoked, and that must stick."""

    slug = "refresh-token-reused"
    title = "This refresh token was already used; the session has been revoked"
    keeps_changes = True


class SessionRequired(Forbidden):
    slug = "session-required"
    title = "This action needs a signed-in session, not an API key"


class TotpAlreadyEnabled(Conflict):
    slug = "totp-already-enabled"
    title = "Two-factor authentication is already enabled"


class TotpNotEnabled(Conflict):
    slug = "totp-not-enabled"
    title = "Two-factor authentication is not enabled"


class TotpNotEnrolled(Conflict):
    slug = "totp-not-enrolled"
    title = "Start two-factor enrolment first"


class SessionNotFound(NotFound):
    slug = "session-not-found"
    title = "No such session"


class ApiKeyNotFound(NotFound):
    slug = "api-key-not-found"
    title = "No such API key"


class UnknownProvider(NotFound):
    slug = "unknown-identity-provider"
    title = "No such identity provider is configured"


class ProviderUnavailable(ServiceUnavailable):
    slug = "identity-provider-unavailable"
    title = "The identity provider's keys could not be fetched"


class EmailTaken(Conflict):
    slug = "email-taken"
    title = "An account with this e-mail already exists"


class PhoneTaken(Conflict):
    """Said only to operators (`rapport admin create-user`): people adding a number are
    never told whether another account holds it."""

    slug = "phone-taken"
    title = "An account with this phone number already exists"


class EmailRequired(RapportError):
    slug = "email-required"
    title = "The identity provider gave no e-mail address"


class TooManyAttempts(TooManyRequests):
    """A rate limit of codes or mail is spent (docs/decisions/0008)."""

    slug = "too-many-attempts"
    title = "Too many attempts; wait before trying again"


class PasswordUnchanged(WeakPassword):
    slug = "password-unchanged"
    title = "The new password is the current one"


class TotpCodeAlreadyUsed(Unauthenticated):
    """The code of a time step already used: right, but spent. Not a guess, so it does
    not count toward any limit."""

    slug = "totp-code-already-used"
    title = "This two-factor code was already used; wait for the next one"


class PhoneNotVerified(Forbidden):
    slug = "phone-not-verified"
    title = "Verify the phone number before signing in"


class PhoneCountryNotAllowed(ValidationFailed):
    """This deployment sends no SMS to the number's country (RAPPORT_SMS_ALLOWED_COUNTRIES):
    a fact about the number, never about an account."""

    slug = "phone-country-not-allowed"
    title = "SMS cannot be sent to numbers of this country"


class SmsUnavailable(ServiceUnavailable):
    """The deployment's daily cap of SMS is spent (RAPPORT_SMS_PER_DAY): the same answer
    for every number."""

    slug = "sms-unavailable"
    title = "SMS cannot be sent right now"

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(detail, **({"retry_after": retry_after} if retry_after is not None else {}))
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)


class PhoneRequired(Conflict):
    slug = "phone-required"
    title = "The phone number is this account's only way to sign in"


class PhoneUnchanged(Conflict):
    slug = "phone-unchanged"
    title = "This is already the account's verified number"


class NoPhone(Conflict):
    slug = "no-phone"
    title = "The account has no verified phone number"


class SmsSecondFactorUnavailable(Conflict):
    """SMS as a second factor is off for this account, or the first step was an SMS code
    already (one factor twice is not two)."""

    slug = "sms-second-factor-unavailable"
    title = "A code by SMS cannot complete this sign-in"
