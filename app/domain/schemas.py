"""Shared pydantic building blocks: strict input models, readable output models, normalised values."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any
from uuid import UUID

from babel.numbers import list_currencies
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def nul_path(value: Any, path: str = "") -> str | None:
    """Where a NUL character hides in nested input (PostgreSQL text and jsonb cannot store one), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return where
            found = nul_path(item, where)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = nul_path(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


class InputModel(BaseModel):
    """Request bodies: unknown fields are an error (422), strings are trimmed, NUL characters refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        where = nul_path(data)
        if where is not None:
            raise ValueError(f"{where or 'value'}: text must not contain NUL (\\u0000) characters")
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
