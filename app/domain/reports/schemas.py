"""Report responses: `{rows, totals}`, money as `{amount, currency}` in the report's one currency."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from app.domain.activities.schemas import Type as ActivityType
from app.domain.pipelines.schemas import ForecastCategory, StageKind
from app.domain.schemas import Money

GroupBy = Literal["owner", "month", "source"]  # win-loss
PeriodGroupBy = Literal["month", "week"]  # velocity, emails
LeadGroupBy = Literal["source", "utm_campaign", "form"]  # lead-sources
ResponseGroupBy = Literal["owner", "form"]  # response-times

_EUR = {"amount": "48000.00", "currency": "EUR"}
_STAGE = "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"
_USER = "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3b"


class FunnelRow(BaseModel):
    stage_id: UUID
    name: str = Field(examples=["Proposal"])
    position: int = Field(examples=[1])
    kind: StageKind = Field(description="lost stages are exits, not steps of the funnel")
    reached: int = Field(examples=[120], description=(
        "open and won stages: deals that ever entered this stage or a later open or won stage (by position); "
        "lost stages: deals that ever entered this stage"))
    current: int = Field(examples=[35], description="deals now in this stage (for won and lost stages: the won or "
                                                    "lost deals there)")
    value_current: Money = Field(description="total value of the deals now in this stage")
    conversion_to_next: float | None = Field(None, ge=0, le=1, examples=[0.5], description=(
        "reached of the next open or won stage ÷ reached of this one; null for the last of them, for lost "
        "stages and when nothing reached this stage"))


class FunnelTotals(BaseModel):
    deals: int = Field(description="deals counted: in the pipeline, in the currency, created in the period")
    open: int
    won: int
    lost: int
    value: Money = Field(description="total value of the deals counted")


class FunnelReport(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "rows": [{"stage_id": _STAGE, "name": "Qualification", "position": 0, "kind": "open", "reached": 200,
                  "current": 40, "value_current": _EUR, "conversion_to_next": 0.6}],
        "totals": {"deals": 200, "open": 120, "won": 50, "lost": 30, "value": _EUR}}]}}

    rows: list[FunnelRow] = Field(description="every stage of the pipeline, in order")
    totals: FunnelTotals


class WinLossRow(BaseModel):
    group: str | None = Field(examples=["2026-03"], description=(
        "owner: the owner's user id; month: YYYY-MM of closed_at in the organisation's time zone; source: the "
        "source of the lead the deal was converted from (null: not converted from a lead). Null when not grouped"))
    won: int
    lost: int
    won_value: Money
    lost_value: Money
    win_rate: float | None = Field(ge=0, le=1, examples=[0.4], description="won ÷ (won + lost); null when neither")


class LostReasonCount(BaseModel):
    reason: str | None = Field(examples=["price"])
    count: int


class WinLossTotals(BaseModel):
    won: int
    lost: int
    won_value: Money
    lost_value: Money
    win_rate: float | None = Field(ge=0, le=1)
    lost_reasons: list[LostReasonCount] = Field(description="most frequent first")


class WinLossReport(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "rows": [{"group": _USER, "won": 4, "lost": 6, "won_value": _EUR,
                  "lost_value": {"amount": "61000.00", "currency": "EUR"}, "win_rate": 0.4}],
        "totals": {"won": 4, "lost": 6, "won_value": _EUR, "lost_value": {"amount": "61000.00", "currency": "EUR"},
                   "win_rate": 0.4, "lost_reasons": [{"reason": "price", "count": 4}, {"reason": "timing", "count": 2}]},
    }]}}

    rows: list[WinLossRow]
    totals: WinLossTotals


class ForecastRow(BaseModel):
    month: str = Field(examples=["2026-12"], description="YYYY-MM of expected_close_date")
    category: ForecastCategory
    deals: int
    open_value: Money
    weighted_value: Money = Field(description="Σ value × the stage's probability ÷ 100")


class ForecastCategoryTotal(BaseModel):
    category: ForecastCategory
    deals: int
    open_value: Money
    weighted_value: Money


class ForecastTotals(BaseModel):
    deals: int
    open_value: Money
    weighted_value: Money
    categories: list[ForecastCategoryTotal] = Field(description="per category, over all months")


class ForecastReport(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "rows": [{"month": "2026-12", "category": "commit", "deals": 3, "open_value": _EUR,
                  "weighted_value": {"amount": "33600.00", "currency": "EUR"}}],
        "totals": {"deals": 3, "open_value": _EUR, "weighted_value": {"amount": "33600.00", "currency": "EUR"},
                   "categories": [{"category": "commit", "deals": 3, "open_value": _EUR,
                                   "weighted_value": {"amount": "33600.00", "currency": "EUR"}}]}}]}}

    rows: list[ForecastRow]
    totals: ForecastTotals


# --- stage durations, velocity, rotting, customers (deals) ---------------------------------------------

_DAY = 86400.0
_CONTACT = "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3c"
_DEAL = "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3d"
Seconds = Annotated[float, Field(ge=0, examples=[3 * _DAY])]


class StageDurationsRow(BaseModel):
    stage_id: UUID
    name: str = Field(examples=["Proposal"])
    deals: int = Field(examples=[42], description=(
        "stays in this stage that ended in the period (the deal moved on); a deal that entered the stage twice "
        "counts twice"))
    avg_seconds: Seconds | None = Field(description="mean length of those stays; null when none")
    median_seconds: Seconds | None = Field(description="median length of those stays; null when none")


class StageDurationsTotals(BaseModel):
    deals: int = Field(description="stays counted, over every stage of the pipeline")
    avg_seconds: Seconds | None
    median_seconds: Seconds | None


class StageDurationsReport(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "rows": [{"stage_id": _STAGE, "name": "Proposal", "deals": 42, "avg_seconds": 302400.0,
                  "median_seconds": 259200.0}],
        "totals": {"deals": 42, "avg_seconds": 302400.0, "median_seconds": 259200.0}}]}}

    rows: list[StageDurationsRow] = Field(description="every stage of the pipeline, in order")
    totals: StageDurationsTotals


Period = Annotated[str | None, Field(examples=["2026-03"], description=(
    "month: YYYY-MM; week: the ISO week YYYY-Www (weeks start on Monday); not grouped: the report's days as "
    "YYYY-MM-DD/YYYY-MM-DD (null when there is no first day: no `from` and nothing counted)"))]


class VelocityRow(BaseModel):
    period: Period
    won: int = Field(description="deals won in the period")
    avg_won_value: Money | None = Field(description="mean value of those deals; null when none")
    win_rate: float | None = Field(ge=0, le=1, examples=[0.4], description=(
        "won ÷ (won + lost) among the deals closed in the period; null when none"))
    avg_cycle_days: float | None = Field(ge=0, examples=[23.5], description=(
        "mean days from creation to closing of the deals won in the period (to 0.01); null when none"))
    velocity_per_day: Money | None = Field(description=(
        "value won in the period ÷ days in the period (the period's days within `from`..`to`), to the cent; "
        "null when the period has no first day"))


class VelocityTotals(VelocityRow):
    lost: int = Field(description="deals lost in the report's days")
    won_value: Money = Field(description="value of the deals won in the report's days")


class VelocityReport(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "rows": [{"period": "2026-03", "won": 4, "avg_won_value": {"amount": "12000.00", "currency": "EUR"},
                  "win_rate": 0.4, "avg_cycle_days": 23.5,
                  "velocity_per_day": {"amount": "1548.39", "currency": "EUR"}}],
        "totals": {"period": "2026-03-01/2026-03-31", "won": 4, "lost": 6, "won_value": _EUR,
                   "avg_won_value": {"amount": "12000.00", "currency": "EUR"}, "win_rate": 0.4,
                   "avg_cycle_days": 23.5, "velocity_per_day": {"amount": "1548.39", "currency": "EUR"}}}]}}

    rows: list[VelocityRow] = Field(description="one per period, in calendar order, empty periods included; not "
                                                "grouped: one row for the report's days")
    totals: VelocityTotals = Field(description="the report's days as one period")


class RottingRow(BaseModel):
    deal_id: UUID
    title: str = Field(examples=["Acme renewal"])
    stage_id: UUID
    owner_id: UUID
    days_in_stage: int = Field(ge=0, examples=[19], description="whole days (of 24 hours) since it entered the stage")
    rotting_days: int = Field(ge=1, examples=[14], description="the stage's `rotting_days`")


class RottingTotals(BaseModel):
    deals: int = Field(description="rotting deals")


class RottingReport(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "rows": [{"deal_id": _DEAL, "title": "Acme renewal", "stage_id": _STAGE, "owner_id": _USER,
                  "days_in_stage": 19, "rotting_days": 14}],
        "totals": {"deals": 1}}]}}

    rows: list[RottingRow] = Field(description="longest past the stage's threshold first")
    totals: RottingTotals


class CustomersRow(BaseModel):
    contact_id: UUID = Field(description="the won deals' `contact_id`")
    won_deals: int = Field(ge=1, examples=[3])
    lifetime_value: Money = Field(description="Σ the won deals' values")
    first_won_at: datetime = Field(description="the earliest `closed_at` of those deals")
    last_won_at: datetime = Field(description="the latest `closed_at` of those deals")
    repeat: bool = Field(description="won_deals ≥ 2")


class CustomersTotals(BaseModel):
    customers: int = Field(description="contacts with a won deal counted")
    repeat_customers: int = Field(description="of them, those with won_deals ≥ 2")
    won_deals: int
    lifetime_value: Money


class CustomersReport(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "rows": [{"contact_id": _CONTACT, "won_deals": 3, "lifetime_value": _EUR,
                  "first_won_at": "2025-04-02T09:30:00Z", "last_won_at": "2026-03-11T15:00:00Z", "repeat": True}],
        "totals": {"customers": 1, "repeat_customers": 1, "won_deals": 3, "lifetime_value": _EUR}}]}}

    rows: list[CustomersRow] = Field(description="highest lifetime value first")
    totals: CustomersTotals


# --- activities, lead sources, response times, emails (people and leads) ---------------------------------


class ActivitiesRow(BaseModel):
    user_id: UUID | None = Field(description="the assignee (null: unassigned)")
    type: ActivityType
    open: int = Field(description="not done (overdue ones included)")
    completed: int = Field(description="done")
    overdue: int = Field(description="not done and due before now")


class ActivitiesTotals(BaseModel):
    open: int
    completed: int
    overdue: int


class ActivitiesReport(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "rows": [{"user_id": _USER, "type": "call", "open": 5, "completed": 12, "overdue": 2}],
        "totals": {"open": 5, "completed": 12, "overdue": 2}}]}}

    rows: list[ActivitiesRow] = Field(description="per assignee and type")
    totals: ActivitiesTotals


class LeadSourcesRow(BaseModel):
    """The group is in the field the grouping names; the other two are null (always present in responses)."""

    source: str | None = Field(None, examples=["web_form"], description=(
        "grouped by source (the default): the leads' source (null: none); otherwise null"))
    utm_campaign: str | None = Field(None, examples=["spring-sale"], description=(
        "grouped by utm_campaign: the leads' `utm.campaign` (null: none); otherwise null"))
    form_id: UUID | None = Field(None, description=(
        "grouped by form: the form the leads came from (null: not from a form); otherwise null"))
    leads: int = Field(description="leads created in the period")
    converted: int = Field(description="of them, those converted")
    deals_won: int = Field(description="won deals (in the report's currency) those leads were converted into")
    won_value: Money = Field(description="Σ the values of those won deals")


class LeadSourcesTotals(BaseModel):
    leads: int
    converted: int
    deals_won: int
    won_value: Money


class LeadSourcesReport(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "rows": [{"source": "web_form", "leads": 120, "converted": 30,
                  "deals_won": 9, "won_value": _EUR}],
        "totals": {"leads": 120, "converted": 30, "deals_won": 9, "won_value": _EUR}}]}}

    rows: list[LeadSourcesRow] = Field(description="most leads first")
    totals: LeadSourcesTotals


class ResponseTimesRow(BaseModel):
    """The group is in the field the grouping names; the other one is null (always present in responses)."""

    user_id: UUID | None = Field(None, description="grouped by owner (the default): the leads' owner; otherwise null")
    form_id: UUID | None = Field(None, description=(
        "grouped by form: the form the leads came from (null: not from a form); otherwise null"))
    count: int = Field(ge=1, description="leads created in the period that got a first completed activity")
    p50_seconds: Seconds = Field(description="median seconds from the lead's creation to its first completed activity")
    p90_seconds: Seconds = Field(description="90th percentile of the same (interpolated)")


class ResponseTimesTotals(BaseModel):
    count: int
    p50_seconds: Seconds | None
    p90_seconds: Seconds | None


class ResponseTimesReport(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "rows": [{"user_id": _USER, "count": 40, "p50_seconds": 540.0, "p90_seconds": 3600.0}],
        "totals": {"count": 40, "p50_seconds": 540.0, "p90_seconds": 3600.0}}]}}

    rows: list[ResponseTimesRow] = Field(description="most leads first")
    totals: ResponseTimesTotals


class EmailsRow(BaseModel):
    user_id: UUID | None = Field(description=(
        "sent mail: who sent it through the API (`created_by`), else the mailbox's owner (mail synced from a "
        "Sent folder, auto-replies); received mail: the mailbox's owner. Null: a mailbox without an owner"))
    period: Period
    sent: int = Field(description="outbound mail sent (queued and failed mail is not counted)")
    received: int = Field(description="inbound mail")


class EmailsTotals(BaseModel):
    sent: int
    received: int


class EmailsReport(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "rows": [{"user_id": _USER, "period": "2026-03", "sent": 48, "received": 61}],
        "totals": {"sent": 48, "received": 61}}]}}

    rows: list[EmailsRow] = Field(description="by period, then user")
    totals: EmailsTotals


# --- products (the catalogue) --------------------------------------------------------------------------------

_PRODUCT = "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3d"


class ProductsRow(BaseModel):
    product_id: UUID = Field(description="the line items' product")
    name: str = Field(examples=["Pro seat (annual)"], description="the product's name now")
    quantity: Decimal = Field(examples=["120.000"], description="Σ the items' quantities (a decimal string)")
    revenue: Money = Field(description="Σ the items' values (after discount, before tax)")
    deals: int = Field(examples=[7], description="won deals with at least one item of the product")


class ProductsTotals(BaseModel):
    products: int = Field(description="products sold")
    deals: int = Field(description="won deals with at least one item of a product")
    revenue: Money


class ProductsReport(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "rows": [{"product_id": _PRODUCT, "name": "Pro seat (annual)", "quantity": "120.000", "revenue": _EUR,
                  "deals": 7}],
        "totals": {"products": 1, "deals": 7, "revenue": _EUR}}]}}

    rows: list[ProductsRow] = Field(description="highest revenue first")
    totals: ProductsTotals
