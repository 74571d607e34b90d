from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import Field

from app.domain.catalog.schemas import Percent, PriceAmount, Quantity, TaxRate
from app.domain.companies.schemas import CompanyRead
from app.domain.contacts.schemas import ContactRead, ExternalIds
from app.domain.leads.schemas import LeadRead, MoneyIn
from app.domain.pipelines.schemas import ForecastCategory
from app.domain.schemas import (
    Actor,
    Currency,
    CustomFieldValues,
    InputModel,
    Money,
    Name,
    ReadModel,
    RecordRead,
    Text200,
)

Status = Literal["open", "won", "lost"]
FORECAST_DOC = ("where the deal counts in the forecast (`omitted`: left out). Default: its stage's category, "
                "copied whenever the deal enters a stage, unless this write sets it")


class DealCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "title": "Acme: 50 seats", "value": {"amount": "12000.00", "currency": "EUR"},
        "expected_close_date": "2026-12-31"}]}}

    title: Name
    pipeline_id: UUID | None = Field(None, description="default: the organisation's default pipeline")
    stage_id: UUID | None = Field(None, description="default: the pipeline's first open stage")
    value: MoneyIn | None = None
    expected_close_date: date | None = None
    contact_id: UUID | None = None
    company_id: UUID | None = None
    lost_reason: Text200 | None = None
    forecast_category: ForecastCategory | None = Field(None, description=FORECAST_DOC)
    external_ids: ExternalIds = Field(default_factory=list)
    owner_id: UUID | None = None
    custom_fields: CustomFieldValues = Field(default_factory=dict)


class DealUpdate(InputModel):
    """Moving a deal is `{"stage_id": ...}`; into a lost stage it needs `lost_reason`. Changing
    `pipeline_id` needs a `stage_id` of the new pipeline. A deal with line items takes its `value` from them
    (setting it is a 422)."""

    title: Name | None = None
    pipeline_id: UUID | None = None
    stage_id: UUID | None = None
    value: MoneyIn | None = None
    expected_close_date: date | None = None
    contact_id: UUID | None = None
    company_id: UUID | None = None
    lost_reason: Text200 | None = None
    forecast_category: ForecastCategory | None = Field(
        None, description="null: back to the stage's category. A move copies the new stage's category unless "
                          "the same write sets this")
    external_ids: ExternalIds | None = None
    owner_id: UUID | None = None
    custom_fields: CustomFieldValues | None = None


class DealRead(RecordRead):
    title: str
    pipeline_id: UUID
    stage_id: UUID
    value: Money = Field(description="with line items: Σ their values (each rounded half-up to the currency's minor "
                                     "unit), kept by every item write")
    value_with_tax: Money | None = Field(None, description=(
        "Σ the line items' values with tax (each item's value × (1 + tax_rate/100), rounded half-up to the "
        "currency's minor unit); null while the deal has no line items"))
    expected_close_date: date | None
    contact_id: UUID | None
    company_id: UUID | None
    status: Status
    lost_reason: str | None
    closed_at: datetime | None
    stage_entered_at: datetime
    forecast_category: ForecastCategory = Field(description=FORECAST_DOC)
    external_ids: list[dict[str, str]]


class StageMoveRead(ReadModel):
    id: UUID
    deal_id: UUID
    from_stage_id: UUID | None
    to_stage_id: UUID
    moved_at: datetime
    moved_by: Actor
    seconds_in_previous: int | None


class ConvertResult(ReadModel):
    """What `POST /v1/leads/{id}/convert` answers, and the data of the `lead.converted` event."""

    lead: LeadRead
    contact: ContactRead
    company: CompanyRead | None
    deal: DealRead | None = Field(description="the deal, as GET /v1/deals/{id} returns it")


# --- line items --------------------------------------------------------------------------------------------


class UnitPriceIn(InputModel):
    amount: PriceAmount
    currency: Currency | None = Field(None, description="the deal's currency (another one → 422); default: it")


class LineItemCreate(InputModel):
    """With `product_id` and no `unit_price`, the item takes the product's price in the deal's currency (422 when
    it has none); `name` and `tax_rate` default to the product's."""

    model_config = {"json_schema_extra": {"examples": [{
        "product_id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e91", "quantity": "20", "discount_percent": "10"}]}}

    product_id: UUID | None = None
    name: Name | None = Field(None, description="required without product_id; default: the product's name")
    quantity: Quantity = Decimal("1.000")
    unit_price: UnitPriceIn | None = Field(None, description="required without product_id")
    discount_percent: Percent = Decimal("0.00")
    tax_rate: TaxRate | None = Field(None, description="default: the product's, else 0")
    position: int | None = Field(None, ge=0, le=10_000, description="order on the deal; default: after the others")


class LineItemUpdate(InputModel):
    """Merge patch. A new `product_id` without `unit_price` takes that product's price in the deal's currency."""

    product_id: UUID | None = None
    name: Name | None = None
    quantity: Quantity | None = None
    unit_price: UnitPriceIn | None = None
    discount_percent: Percent | None = None
    tax_rate: TaxRate | None = None
    position: int | None = Field(None, ge=0, le=10_000)


class LineItemRead(ReadModel):
    id: UUID
    deal_id: UUID
    product_id: UUID | None
    name: str
    quantity: Decimal = Field(examples=["20.000"], description="a decimal string, 3 places")
    unit_price: Money
    discount_percent: Decimal = Field(examples=["10.00"], description="percent, a decimal string")
    tax_rate: Decimal = Field(examples=["19.00"], description="percent, a decimal string")
    value: Money = Field(description="quantity × unit_price × (1 − discount_percent/100), rounded half-up to the "
                                     "currency's minor unit")
    value_with_tax: Money = Field(description="value × (1 + tax_rate/100), rounded half-up to the currency's minor "
                                              "unit")
    position: int
    created_at: datetime
    updated_at: datetime
    version: int
