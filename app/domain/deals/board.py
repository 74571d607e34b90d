"""A pipeline board's column totals: deals and value per stage, under the deal list's filters, in one statement
(API.md: `GET /v1/pipelines/{id}/summary`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import Field
from sqlalchemy import ColumnElement, func
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.deals.models import Deal
from app.domain.deals.service import DEAL
from app.domain.listing import ListQuery, filtered
from app.domain.pipelines.models import Pipeline
from app.domain.pipelines.schemas import StageKind
from app.domain.schemas import Money, ReadModel, amount_places


class Totals(ReadModel):
    deals: int = Field(description="deals matching the filters")
    value: Money = Field(description="their total value in the pipeline's currency (deals in it only)")
    other_currencies: list[Money] = Field(
        default_factory=list, description="totals of the deals valued in other currencies, one per currency "
                                          "(never converted)")


class StageTotal(ReadModel):
    stage_id: UUID
    name: str
    position: int
    kind: StageKind
    deals: int = Field(description="deals in this stage matching the filters")
    value: Money = Field(description="their total value in the pipeline's currency (deals in it only)")
    other_currencies: list[Money] = Field(
        default_factory=list, description="totals of the deals of this stage valued in other currencies, one per "
                                          "currency (never converted)")


class BoardSummary(ReadModel):
    model_config = {"json_schema_extra": {"examples": [{
        "pipeline_id": "0190a8f4-0000-7000-8000-000000000001", "currency": "EUR",
        "stages": [{"stage_id": "0190a8f4-0000-7000-8000-000000000002", "name": "Qualification", "position": 0,
                    "kind": "open", "deals": 12, "value": {"amount": "48000.00", "currency": "EUR"},
                    "other_currencies": []}],
        "totals": {"deals": 12, "value": {"amount": "48000.00", "currency": "EUR"}, "other_currencies": []}}]}}

    pipeline_id: UUID
    currency: str
    stages: list[StageTotal] = Field(description="every stage of the pipeline in board order, empty ones too")
    totals: Totals = Field(description="over all stages")


def _money(amount: Decimal | None, currency: str) -> dict[str, Any]:
    return {"amount": str((amount or Decimal(0)).quantize(Decimal(1).scaleb(-amount_places(currency)))),
            "currency": currency}


async def summary(session: AsyncSession, who: Principal, pipeline: Pipeline, query: ListQuery,
                  where: Sequence[ColumnElement[bool]] = ()) -> dict[str, Any]:
    deals = await filtered(session, DEAL, who, query, [*where, Deal.pipeline_id == pipeline.id])
    rows = (await session.execute(
        deals.with_only_columns(Deal.stage_id, Deal.currency, func.count(), func.sum(Deal.value_amount))
        .group_by(Deal.stage_id, Deal.currency).order_by(None))).all()
    per_stage: dict[UUID, dict[str, tuple[int, Decimal]]] = {}
    for stage_id, currency, count, amount in rows:
        per_stage.setdefault(stage_id, {})[currency] = (count, amount)

    def totals(by_currency: dict[str, tuple[int, Decimal]]) -> dict[str, Any]:
        own = by_currency.get(pipeline.currency, (0, Decimal(0)))
        return {"deals": sum(c for c, _ in by_currency.values()), "value": _money(own[1], pipeline.currency),
                "other_currencies": [_money(a, cur) for cur, (_, a) in sorted(by_currency.items())
                                     if cur != pipeline.currency]}

    everything: dict[str, tuple[int, Decimal]] = {}
    for by_currency in per_stage.values():
        for currency, (count, amount) in by_currency.items():
            seen = everything.get(currency, (0, Decimal(0)))
            everything[currency] = (seen[0] + count, seen[1] + amount)
    return {
        "pipeline_id": str(pipeline.id), "currency": pipeline.currency,
        "stages": [{"stage_id": str(s.id), "name": s.name, "position": s.position, "kind": s.kind,
                    **totals(per_stage.get(s.id, {}))} for s in pipeline.stages],
        "totals": totals(everything),
    }
