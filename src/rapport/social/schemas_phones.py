"""Request and response shapes of finding people by phone number."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field, PrivateAttr, StringConstraints, model_validator

from rapport.identity import service as identity_service
from rapport.kernel.schemas import CountryCode, Strict

# Numbers per request: an address book is sent in pages of this many.
MAX_NUMBERS = 100

RawNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class PhoneLookupRequest(Strict):
    """Numbers as they are in an address book: in international format, or national ones
    read as numbers of `region`."""

    numbers: Annotated[list[RawNumber], Field(min_length=1, max_length=MAX_NUMBERS)]
    region: CountryCode | None = Field(
        default=None, description="The country of numbers written without a country code (ISO 3166-1 alpha-2)."
    )
    _parsed: list[str] = PrivateAttr(default_factory=list)

    def normalised(self) -> list[str]:
        """The numbers in E.164, each once, in the order sent."""
        return list(dict.fromkeys(self._parsed))

    @model_validator(mode="after")
    def _parse(self) -> PhoneLookupRequest:
        parsed: list[str] = []
        wrong: list[str] = []
        region = self.region.upper() if self.region else None
        for position, number in enumerate(self.numbers):
            try:
                parsed.append(identity_service.parse_phone(number, region=region))
            except ValueError as exc:
                wrong.append(f"numbers[{position}]: {exc}")
        if wrong:
            raise ValueError("; ".join(wrong))
        self._parsed = parsed
        return self


class PhoneMatch(BaseModel):
    phone_number: str = Field(description="As sent, in E.164.")
    user_id: UUID


class PhoneLookupOut(BaseModel):
    matches: list[PhoneMatch] = Field(
        description="Only accounts whose owners let the caller find them by phone; a number not here may have "
        "no account, or one that cannot be found this way."
    )
