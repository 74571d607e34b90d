"""Report responses: `{rows, totals}`, money as `{amount, currency}` in the report's one currency."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from app.domain.deals.schemas import Money
from app.domain.pipelines.schemas import ForecastCategory, StageKind

GroupBy = Literal["owner", "month", "source"]

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
