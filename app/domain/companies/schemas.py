from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from app.domain.contacts.schemas import ExternalIds, Phone
from app.domain.metrics import MetricsRead
from app.domain.schemas import Address, CustomFieldValues, InputModel, Name, RecordRead

Size = Literal["1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001+"]
Domain = Annotated[str, Field(max_length=253, pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}$", examples=["acme.com"])]
Industry = Annotated[str, Field(max_length=100)]


class CompanyCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{"name": "Acme GmbH", "domain": "acme.de", "size": "51-200"}]}}

    name: Name
    domain: Domain | None = None
    phone: Phone | None = None
    industry: Industry | None = None
    size: Size | None = None
    address: Address | None = None
    external_ids: ExternalIds = Field(default_factory=list)
    owner_id: UUID | None = None
    custom_fields: CustomFieldValues = Field(default_factory=dict)


class CompanyUpdate(InputModel):
    name: Name | None = None
    domain: Domain | None = None
    phone: Phone | None = None
    industry: Industry | None = None
    size: Size | None = None
    address: Address | None = None
    external_ids: ExternalIds | None = None
    owner_id: UUID | None = None
    custom_fields: CustomFieldValues | None = None


class CompanyRead(RecordRead):
    metrics: MetricsRead = Field(description="read-only, over won deals (API.md Analytics): kept current with every deal and activity")
    name: str
    domain: str | None
    phone: str | None
    industry: str | None
    size: Size | None
    address: dict[str, str | None] | None
    external_ids: list[dict[str, str]]
