from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from app.domain.companies.schemas import CompanyRead
from app.domain.contacts.schemas import ContactRead, ExternalIds
from app.domain.leads.schemas import LeadRead, MoneyIn
from app.domain.pipelines.schemas import ForecastCategory
from app.domain.schemas import Actor, CustomFieldValues, InputModel, Money, Name, ReadModel, RecordRead, Text200

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
    `pipeline_id` needs a `stage_id` of the new pipeline."""

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
    value: Money
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
