from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID
from zoneinfo import available_timezones

import phonenumbers
from pydantic import AfterValidator, Field

from app.domain.schemas import Currency, InputModel, Name, ReadModel

_TIMEZONES = frozenset(available_timezones())


def _timezone(value: str) -> str:
    if value not in _TIMEZONES:
        raise ValueError(f"unknown IANA time zone {value!r}")
    return value


def _region(value: str) -> str:
    value = value.upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown ISO 3166 region {value!r}")
    return value


TimeZone = Annotated[str, Field(max_length=64, examples=["Europe/Berlin"]), AfterValidator(_timezone)]
PhoneRegion = Annotated[str, Field(min_length=2, max_length=2, examples=["DE"]), AfterValidator(_region)]
RecordVisibility = Literal["all", "team", "own"]


class OrgRead(ReadModel):
    id: UUID
    name: str
    timezone: str
    default_phone_region: str | None
    default_currency: str
    record_visibility: RecordVisibility
    password_max_age_days: int | None = Field(description="passwords older than this many days must be changed; "
                                                          "null = never")
    max_marketing_per_week: int | None = Field(None, description="campaign messages a contact may get in 7 days; "
                                                                 "null = no cap")
    created_at: datetime
    updated_at: datetime
    version: int


class OrgUpdate(InputModel):
    """JSON Merge Patch: absent fields stay as they are."""

    model_config = {
        "json_schema_extra": {"examples": [{"timezone": "Europe/Berlin", "default_phone_region": "DE"}]}
    }

    name: Name | None = None
    timezone: TimeZone | None = None
    default_phone_region: PhoneRegion | None = None
    default_currency: Currency | None = None
    record_visibility: RecordVisibility | None = None
    password_max_age_days: int | None = Field(None, ge=1, le=3650, description="null = passwords never expire")
    max_marketing_per_week: int | None = Field(None, ge=1, le=1000, description="null = no cap on campaign mail")
