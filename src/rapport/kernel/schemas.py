"""What every request body shares: one strict base model, one text type, the values JSON
carries as strings, the PATCH rule, and the checks of codes (country, currency, language,
time zone, e-mail address).

Request models derive from `Strict`: nothing is coerced (`"yes"` is not `true`, `"3"` is
not `3`), unknown fields are refused, and no text PostgreSQL cannot store (NUL, lone
surrogates) gets through, at any depth, in values or in keys. Response models need none
of this: they are built from the database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pycountry
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic import Strict as StrictMode
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticKnownError, core_schema

# Text PostgreSQL cannot store


def storable(value: str) -> bool:
    """Whether PostgreSQL text can hold this: no NUL, and no lone UTF-16 surrogate (JSON
    allows "\\ud800"; UTF-8 cannot encode it)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(value: str) -> str:
    """The text with what cannot be stored escaped, so that an error can name it."""
    if storable(value):
        return value
    return "".join(char if storable(char) else f"\\u{ord(char):04x}" for char in value)


def unstorable_text(data: object, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Where, in decoded JSON, text that cannot be stored is: in strings, list items and
    object keys, at any depth. A key's location ends in "[key]", as pydantic's do."""
    if isinstance(data, str):
        if not storable(data):
            yield loc
    elif isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and not storable(key):
                yield (*loc, printable(key), "[key]")
            yield from unstorable_text(value, (*loc, printable(key) if isinstance(key, str) else key))
    elif isinstance(data, list | tuple):
        for index, item in enumerate(data):
            yield from unstorable_text(item, (*loc, index))


UNSTORABLE_MESSAGE = "must not contain NUL characters or unpaired surrogates"


class Strict(BaseModel):
    """The base of every request body."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        # Walks the raw input before any field is read, so that a NUL in a dict key or a
        # list item is refused as surely as one in a plain string, whatever the field's type.
        errors: list[InitErrorDetails] = [
            {"type": PydanticCustomError("unstorable_text", UNSTORABLE_MESSAGE), "loc": loc, "input": None}
            for loc in unstorable_text(data)
        ]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data


# The one text type


# Bidirectional embeddings, overrides and isolates: they reorder what follows them on
# screen, so a name could show as something it is not.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters that draw nothing (Hangul fillers, the braille blank) and the combining
# grapheme joiner; with the format characters, spaces and marks, they make "empty" names.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
_NEWLINES = re.compile(r"\r\n?")


def visible(char: str) -> bool:
    return char not in _BLANK_LETTERS and unicodedata.category(char) not in _INVISIBLE_CATEGORIES


@dataclass(frozen=True)
class Text:
    """Rapport's text type: `Annotated[str, Text(100)]`. NFC-normalised and trimmed, then
    1 to `max_length` characters (`min_length` may be 0). A single line by default: no
    control characters, line separators or bidirectional controls. `multiline` allows
    newlines (CR LF and CR become LF) and tabs, and bidirectional controls, which mixed-
    direction prose needs. `name` also asks for at least one visible character, and
    `pattern` for a match.
    """

    max_length: int
    min_length: int = 1
    multiline: bool = False
    name: bool = False
    pattern: str | None = None

    def __get_pydantic_core_schema__(self, source: type[Any], handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.validate, core_schema.str_schema(strict=True))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(minLength=self.min_length, maxLength=self.max_length)
        if self.pattern is not None:
            json_schema["pattern"] = self.pattern
        return json_schema

    def validate(self, value: str) -> str:
        if not storable(value):
            raise PydanticCustomError("unstorable_text", UNSTORABLE_MESSAGE)
        value = unicodedata.normalize("NFC", value)
        if self.multiline:
            value = _NEWLINES.sub("\n", value)
        value = value.strip()
        # Measured after normalisation, which can lengthen text, as the database measures it.
        if len(value) < self.min_length:
            raise PydanticKnownError("string_too_short", {"min_length": self.min_length})
        if len(value) > self.max_length:
            raise PydanticKnownError("string_too_long", {"max_length": self.max_length})
        for char in value:
            if self._refused(char):
                raise PydanticCustomError(
                    "control_character",
                    "must not contain control characters (U+{code})"
                    if self.multiline
                    else "must be one line without control or bidirectional characters (U+{code})",
                    {"code": f"{ord(char):04X}"},
                )
        if self.name and not any(visible(char) for char in value):
            raise PydanticCustomError("invisible_text", "must contain a visible character")
        if self.pattern is not None and not _compiled(self.pattern).search(value):
            raise PydanticKnownError("string_pattern_mismatch", {"pattern": self.pattern})
        return value

    def _refused(self, char: str) -> bool:
        if self.multiline and char in "\n\t":
            return False
        category = unicodedata.category(char)
        if category == "Cc" or category == "Cs":
            return True
        return not self.multiline and (category in ("Zl", "Zp") or char in BIDI_CONTROLS)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


Line40 = Annotated[str, Text(40)]
Line60 = Annotated[str, Text(60)]
Line100 = Annotated[str, Text(100)]
Line200 = Annotated[str, Text(200)]
Name60 = Annotated[str, Text(60, name=True)]
Name80 = Annotated[str, Text(80, name=True)]
Name100 = Annotated[str, Text(100, name=True)]
Prose500 = Annotated[str, Text(500, multiline=True)]
Prose700 = Annotated[str, Text(700, multiline=True)]
Prose1000 = Annotated[str, Text(1000, multiline=True)]
Prose2000 = Annotated[str, Text(2000, multiline=True)]


# Values JSON carries as strings. Strict mode would refuse their strings, since pydantic
# validates FastAPI's decoded body as Python objects; these take what pydantic takes in
# strict JSON mode: a string (or, from Python, the value itself), never a number.


def _json_string(kind: type[Any]) -> Callable[[object], object]:
    def check(value: object) -> object:
        if isinstance(value, str | kind):
            return value
        raise PydanticCustomError("string_type", "Input should be a string")

    return check


def _json_decimal(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise PydanticCustomError("decimal_type", "Input should be a number or a string of digits")
    return value


JsonDate = Annotated[date, StrictMode(False), BeforeValidator(_json_string(date))]
JsonDateTime = Annotated[datetime, StrictMode(False), BeforeValidator(_json_string(datetime))]
JsonUuid = Annotated[UUID, StrictMode(False), BeforeValidator(_json_string(UUID))]
JsonDecimal = Annotated[Decimal, StrictMode(False), BeforeValidator(_json_decimal)]


# The PATCH rule


T = TypeVar("T")


def _refuse_null(value: object) -> object:
    if value is None:
        raise PydanticCustomError("null_not_allowed", "cannot be cleared; leave the field out to keep its value")
    return value


if TYPE_CHECKING:
    # Left out, the field reads None: type checkers must see that.
    NotNull = Annotated[T | None, "not null"]
else:

    class NotNull:
        """A PATCH field that may be left out but not cleared: `name: NotNull[Name60] = None`.
        Its schema is the type's alone (null is not offered); `null` gets a 422 saying so."""

        def __class_getitem__(cls, item: Any) -> Any:
            return Annotated[item, BeforeValidator(_refuse_null)]


def _hide_null_defaults(schema: dict[str, Any]) -> None:
    # `= None` stands for "left out" on a NotNull field; the document must not offer null.
    for prop in schema.get("properties", {}).values():
        if prop.get("default", ...) is None and "anyOf" not in prop:
            prop.pop("default")


class PatchBody(Strict):
    """The base of every PATCH body, one rule for all: a field left out is left alone;
    `null` clears an optional field; a field that cannot be empty (`NotNull`) refuses
    `null` with 422. Services apply `changes()`, exactly the fields sent."""

    model_config = ConfigDict(json_schema_extra=_hide_null_defaults)

    def changes(self, *, mode: Literal["python", "json"] = "python") -> dict[str, Any]:
        """The fields sent, with their values (None for a cleared one)."""
        return self.model_dump(mode=mode, include=self.model_fields_set)


# Codes


def normalise_email(value: str) -> str:
    """Trimmed and lower-cased, and shaped like an address; nothing is looked up."""
    value = value.strip().lower()
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from exc
    return value


@cache
def _countries() -> frozenset[str]:
    return frozenset(country.alpha_2 for country in pycountry.countries)


@cache
def _currencies() -> frozenset[str]:
    return frozenset(currency.alpha_3 for currency in pycountry.currencies)


@cache
def _languages() -> tuple[frozenset[str], frozenset[str]]:
    two = frozenset(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))
    three = frozenset(lang.alpha_3 for lang in pycountry.languages)
    return two, three


def country_code(value: str) -> str:
    value = value.upper()
    if value not in _countries():
        raise PydanticCustomError("country_code", "not an ISO 3166-1 alpha-2 country code, such as FR")
    return value


def currency_code(value: str) -> str:
    value = value.upper()
    if value not in _currencies():
        raise PydanticCustomError("currency_code", "not an ISO 4217 currency code, such as EUR")
    return value


def language_tag(value: str) -> str:
    primary = value.split("-", 1)[0]
    two, three = _languages()
    if primary not in (two if len(primary) == 2 else three):
        raise PydanticCustomError(
            "language_code", "must start with an ISO 639-1 language code (or ISO 639-3 when none), such as pt-BR"
        )
    return value


def time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PydanticCustomError("time_zone", "not an IANA time zone such as Europe/Paris") from exc
    return value


Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(normalise_email)]
CountryCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z]{2}$"),
    AfterValidator(country_code),
]
CurrencyCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z]{3}$"),
    AfterValidator(currency_code),
]
LanguageTag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=35, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"),
    AfterValidator(language_tag),
]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(time_zone)]
