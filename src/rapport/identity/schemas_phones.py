"""Request and response shapes of the phone API (identity.api_phones), and the one place
a phone number is parsed: Google's libphonenumber rules through `phonenumbers`, stored as
E.164."""

from __future__ import annotations

from typing import Annotated

import phonenumbers
from phonenumbers import PhoneNumberType
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from rapport.identity.schemas import Device, OneTimeCode, Password, TotpCode
from rapport.kernel.schemas import Strict

# Numbers that can receive an SMS. Premium-rate, shared-cost, toll-free and the like are
# refused: they cannot, or they are how SMS pumping earns its money.
_TEXTABLE = frozenset(
    {
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.VOIP,
    }
)


def parse_phone(value: str, *, region: str | None = None) -> str:
    """The number in E.164 (`+33612345678`), from what a person types (`+33 6 12 34 56 78`,
    `(0)6 12 34 56 78` with `region="FR"`).

    Raises:
        ValueError: not a number, not a valid one for its country, or one that cannot
            receive an SMS.
    """
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        hint = "" if region else ", starting with + and the country code"
        raise ValueError(f"not a phone number: give it in international format{hint}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number for its country")
    if phonenumbers.number_type(number) not in _TEXTABLE:
        raise ValueError("this number cannot receive SMS (premium-rate, toll-free, shared-cost or a landline)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def country_of(e164: str) -> str | None:
    """The ISO 3166-1 alpha-2 country of a number already in E.164."""
    region: str | None = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    return region


def _international(value: str) -> str:
    return parse_phone(value)


# Typed as people type them; answered and stored in E.164.
PhoneNumber = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=40),
    AfterValidator(_international),
    Field(description="In international format: `+` and the country code (`+33 6 12 34 56 78`). Stored as E.164."),
]


class PhoneRequest(Strict):
    phone: PhoneNumber


class PhoneRegisterRequest(Strict):
    phone: PhoneNumber
    password: Password


class PhoneCodeRequest(Device):
    phone: PhoneNumber
    code: OneTimeCode


class PhoneLoginRequest(Device):
    phone: PhoneNumber
    password: Password


class PhoneResetPasswordRequest(Strict):
    phone: PhoneNumber
    code: OneTimeCode
    new_password: Password


class PhoneVerifyRequest(Strict):
    """The code sent to a number being added to the signed-in account."""

    phone: PhoneNumber
    code: OneTimeCode


class PhoneRemoveRequest(Strict):
    password: Password | None = Field(default=None, description="The account's password; required if it has one.")


class SmsSecondFactorRequest(Strict):
    mfa_token: Annotated[str, StringConstraints(max_length=2048)]


class SmsSecondFactorLoginRequest(Device):
    mfa_token: Annotated[str, StringConstraints(max_length=2048)]
    code: OneTimeCode


class SmsFallbackRequest(Strict):
    enabled: bool
    code: TotpCode = Field(description="A current code of the authenticator app.")


class PhoneOut(BaseModel):
    phone_number: str | None
    phone_verified: bool


class SmsFallbackOut(BaseModel):
    sms_fallback: bool
