"""Shared pydantic building blocks: strict input models, readable output models, normalised values."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache
from typing import Annotated, Any, Literal
from uuid import UUID

from babel.numbers import get_currency_precision, list_currencies
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

# What PostgreSQL can store, checked at the edge so that a request never fails in the database for its data.
# Strings: no NUL (text and jsonb refuse it) and no unpaired surrogate (not UTF-8). Lengths come from the
# columns (each schema's max_length matches its column; tests/test_errors.py checks them against the models).
# Integers: bigint at most. Datetimes: their UTC time must exist (years 1 to 9999).
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable(text: str) -> str | None:
    """Why PostgreSQL cannot store this text, or None."""
    if "\x00" in text:
        return "text must not contain NUL (\\u0000) characters"
    if _SURROGATE.search(text):
        return "text must not contain unpaired surrogates (\\ud800-\\udfff)"
    return None


def unstorable_path(value: Any, path: str = "") -> tuple[str, str] | None:
    """(where, why) for the first text in nested input that PostgreSQL cannot store, or None."""
    if isinstance(value, str):
        why = unstorable(value)
        return (path, why) if why else None
    if isinstance(value, dict):
        for key, item in value.items():
            shown = str(key).encode("utf-8", "backslashreplace").decode()  # the path names it, in printable text
            where = f"{path}.{shown}" if path else shown
            why = unstorable(str(key))
            if why:
                return where, why
            found = unstorable_path(item, where)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = unstorable_path(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _storable_text(value: str) -> str:
    why = unstorable(value)
    if why:
        raise ValueError(why)
    return value


def _storable_instant(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("date and time out of range: in UTC it must fall within the years 1 to 9999") from None


PlainText = Annotated[str, AfterValidator(_storable_text)]
"""Text from a form field, a header or a query parameter (bodies are checked whole by InputModel)."""
Instant = Annotated[AwareDatetime, AfterValidator(_storable_instant)]
"""A point in time with its offset; answered in UTC."""


class InputModel(BaseModel):
    """Request bodies: unknown fields are an error (422), strings are trimmed, text PostgreSQL cannot store
    (NUL characters, unpaired surrogates) is refused wherever it hides."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        found = unstorable_path(data)
        if found is not None:
            where, why = found
            raise ValueError(f"{where or 'value'}: {why}")
        return data


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


@lru_cache(maxsize=4096)  # pure; an import checks each address twice (dedupe key, then the record)
def normalize_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


Email = Annotated[
    str,
    Field(min_length=3, max_length=320, examples=["ana@example.com"]),
    AfterValidator(normalize_email),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]


Text200 = Annotated[str, Field(max_length=200)]
Source = Annotated[str, Field(min_length=1, max_length=64, examples=["web_form"])]
Tag = Annotated[str, Field(min_length=1, max_length=64)]


class Utm(InputModel):
    source: Text200 | None = None
    medium: Text200 | None = None
    campaign: Text200 | None = None
    term: Text200 | None = None
    content: Text200 | None = None


class Address(InputModel):
    """Merged key by key on PATCH; `null` clears a key."""

    street: Text200 | None = None
    street2: Text200 | None = None
    city: Text200 | None = None
    region: Text200 | None = None
    postal_code: Annotated[str, Field(max_length=32)] | None = None
    country: Annotated[str, Field(max_length=64, examples=["DE"])] | None = None


MAX_EXTERNAL_IDS = 20


class ExternalId(InputModel):
    source: Annotated[str, Field(min_length=1, max_length=64, examples=["erp"])]
    id: Annotated[str, Field(min_length=1, max_length=200, examples=["C-10042"])]


def _money_amount(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0 or value >= Decimal("1e16"):
        raise ValueError("amount must be between 0 and 9999999999999999.99")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError("amount has at most 2 decimal places")
    return value.quantize(Decimal("0.01"))


Amount = Annotated[Decimal, AfterValidator(_money_amount), Field(examples=["1200.00"])]


def _money_amount_any_currency(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0 or value >= Decimal("1e16"):
        raise ValueError("amount must be between 0 and 9999999999999999.999")
    if value != value.quantize(Decimal("0.001")):
        raise ValueError("amount has at most 3 decimal places (2 for most currencies)")
    return value


CurrencyAmount = Annotated[Decimal, AfterValidator(_money_amount_any_currency), Field(
    examples=["1200.00"], description="a decimal string (numbers accepted): at most 2 places, 3 for currencies with "
                                      "three minor digits (BHD, KWD...)")]
"""An amount whose places depend on its currency: checked again once the currency is known (`amount_places`)."""

_CURRENCIES = frozenset(list_currencies())  # ISO 4217, as CLDR (through babel) knows it


def _currency(value: str) -> str:
    value = value.upper()
    if value not in _CURRENCIES:
        raise ValueError(f"unknown ISO 4217 currency {value!r}")
    return value


Currency = Annotated[str, Field(min_length=3, max_length=3, examples=["EUR"], description="ISO 4217 code"),
                     AfterValidator(_currency)]
"""A currency wherever one is accepted: deals, pipelines, the organisation's default, report filters."""


class RecordRead(ReadModel):
    """Fields every sales record has."""

    id: UUID
    owner_id: UUID
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int
    deleted_at: datetime | None = None
    import_id: UUID | None = Field(None, description="the import that created the record, if any")


CustomFieldValues = Annotated[
    dict[str, Any],
    Field(max_length=200, description="values of the org's custom fields, by key; PATCH merges key by key"),
]


class Actor(BaseModel):
    """Who made a change: a user (through a login or a personal token), an API key, a web form, an automation
    rule (`id`: the rule; `depth`: how many automation writes led to this one), or the system itself
    (reminders, imports, mail sync), whose `id` is null or names what acted (the mailbox of a lead made from an
    email)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"type": "user", "id": "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"}]})

    type: Literal["user", "api_key", "form", "system", "automation"]
    id: UUID | None
    depth: int | None = Field(None, description="automations only", exclude_if=lambda v: v is None)


def minor_digits(currency: str) -> int:
    """Digits after the decimal point of the currency's minor unit (ISO 4217 as CLDR knows it): 0 for JPY, 2 for
    most, 3 for BHD, KWD, OMR, TND..."""
    return get_currency_precision(currency.upper())


def amount_places(currency: str) -> int:
    """Places an amount of this currency is written with: 2, or 3 for currencies with three minor digits (an
    amount in yen is written "1200.00", as every other amount with cents)."""
    return max(2, minor_digits(currency))


def round_money(value: Decimal, currency: str) -> Decimal:
    """`value` rounded half-up to the currency's minor unit, written with `amount_places` places."""
    with localcontext() as ctx:
        ctx.prec = 60
        rounded = value.quantize(Decimal(1).scaleb(-minor_digits(currency)), rounding=ROUND_HALF_UP)
        return rounded.quantize(Decimal(1).scaleb(-amount_places(currency)))


class Money(ReadModel):
    amount: Decimal = Field(examples=["1200.00"], description=(
        "decimal string, 2 places (3 for currencies with three minor digits, such as BHD and KWD)"))
    currency: str = Field(examples=["EUR"])
