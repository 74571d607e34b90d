"""The customer-metric filters of the contact and company lists (API.md "Analytics")."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Query
from sqlalchemy import ColumnElement

from app.domain import metrics
from app.domain.schemas import Instant


def metric_filters(model: Any) -> Any:
    """A dependency answering the where-clauses of the four metric filters over `model`."""

    async def where(
        won_deals_count_gte: Annotated[int | None, Query(ge=0, le=1_000_000_000,
                                                         description="at least this many won deals")] = None,
        lifetime_value_gte: Annotated[Decimal | None, Query(ge=0, max_digits=18, decimal_places=2, description=(
            "Σ won deals' values at least this (a decimal amount in the org's default currency)"))] = None,
        last_won_before: Annotated[Instant | None, Query(description=(
            "last won before this time (exclusive); records that never won are left out"))] = None,
        last_activity_before: Annotated[Instant | None, Query(description=(
            "last done activity before this time (exclusive); records without one are left out"))] = None,
    ) -> list[ColumnElement[bool]]:
        return metrics.filters(model, won_deals_count_gte, lifetime_value_gte, last_won_before, last_activity_before)

    return Depends(where)
