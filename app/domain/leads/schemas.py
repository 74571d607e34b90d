from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from app.domain.contacts.schemas import ExternalIds, PersonName, Phone
from app.domain.schemas import (
    Currency,
    CurrencyAmount,
    CustomFieldValues,
    Email,
    InputModel,
    Name,
    RecordRead,
    Source,
    Text200,
    Utm,
)

Status = Literal["new", "working", "qualified", "disqualified", "converted"]
SettableStatus = Literal["new", "working", "qualified", "disqualified"]


class LeadCreate(InputModel):
    """At least a title, a name, an email, a phone or a company name (the identity rule in
    `app.domain.kinds`, also after every update)."""

    model_config = {"json_schema_extra": {"examples": [{
        "title": "Demo request", "first_name": "Jo", "last_name": "Park", "email": "jo@park.io",
        "company_name": "Park Ltd", "source": "website"}]}}

    title: Text200 | None = None
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    email: Email | None = None
    phone: Phone | None = None
    company_name: Text200 | None = None
    source: Source | None = None
    status: SettableStatus = "new"
    utm: Utm | None = None
    external_ids: ExternalIds = Field(default_factory=list)
    owner_id: UUID | None = None
    custom_fields: CustomFieldValues = Field(default_factory=dict)


class LeadUpdate(InputModel):
    """Status moves freely among new, working, qualified, disqualified; only convert sets `converted`."""

    title: Text200 | None = None
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    email: Email | None = None
    phone: Phone | None = None
    company_name: Text200 | None = None
    source: Source | None = None
    status: SettableStatus | None = None
    utm: Utm | None = None
    external_ids: ExternalIds | None = None
    owner_id: UUID | None = None
    custom_fields: CustomFieldValues | None = None


class LeadRead(RecordRead):
    title: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    company_name: str | None
    source: str | None
    status: Status
    utm: dict[str, str | None] | None
    form_id: UUID | None
    contact_id: UUID | None
    company_id: UUID | None
    deal_id: UUID | None
    converted_at: datetime | None
    first_response_at: datetime | None
    external_ids: list[dict[str, str]]


class MoneyIn(InputModel):
    amount: CurrencyAmount
    currency: Currency | None = Field(None, description="ISO 4217; default: the pipeline's currency")


class LeadConvert(InputModel):
    model_config = {"json_schema_extra": {"examples": [{"create_deal": True, "deal_title": "Park Ltd: 20 seats",
                                                        "value": {"amount": "4800.00", "currency": "EUR"}}]}}

    create_deal: bool = False
    create_company: bool = Field(True, description="make (or reuse by name) a company from company_name")
    pipeline_id: UUID | None = Field(None, description="default: the default pipeline; the deal opens in its first stage")
    stage_id: UUID | None = None
    deal_title: Name | None = None
    value: MoneyIn | None = None
