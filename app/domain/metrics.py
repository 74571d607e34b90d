"""Customer metrics on contacts and companies (API.md "Analytics"): won deals, lifetime value, average deal
value, when they last won and when an activity with them was last done.

They are derived, never written through the API, and kept current by database triggers (migration 0028) in
the same transaction as every write of a deal, an activity or the org's default currency, whatever path it
took (API, batch, import, COPY, a sweep). They count won, not deleted deals in the org's default currency
(`metrics_currency`, so `avg_deal_value` = `lifetime_value` ÷ `won_deals_count` holds); `last_activity_at`
is the latest `done_at` of the record's own activities. A metric change is no new version of the record and
writes no event: partners read metrics with the record."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import Field
from sqlalchemy import ColumnElement, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.schemas import Money, ReadModel

COLUMNS = ("won_deals_count", "lifetime_value", "last_won_at", "last_activity_at")


class CustomerMetrics:
    """The columns, as a mixin of Contact and Company."""

    won_deals_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lifetime_value: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0"), server_default="0")
    last_won_at: Mapped[datetime | None] = mapped_column()
    last_activity_at: Mapped[datetime | None] = mapped_column()
    metrics_currency: Mapped[str | None] = mapped_column(String(3))

    @property
    def metrics(self) -> dict[str, Any]:
        count = self.won_deals_count or 0
        value = Decimal(self.lifetime_value or 0)
        money = count > 0 and self.metrics_currency is not None
        return {
            "won_deals_count": count,
            "lifetime_value": {"amount": value, "currency": self.metrics_currency} if money else None,
            "avg_deal_value": {"amount": (value / count).quantize(Decimal("0.01"), ROUND_HALF_UP),
                               "currency": self.metrics_currency} if money else None,
            "last_won_at": self.last_won_at,
            "last_activity_at": self.last_activity_at,
        }


def indexes() -> tuple[Index, ...]:
    """One per list filter (`won_deals_count_gte`, ...)."""
    return tuple(Index(None, "org_id", column, "id") for column in COLUMNS)


class MetricsRead(ReadModel):
    won_deals_count: int = Field(description="won deals (not deleted) in the org's default currency")
    lifetime_value: Money | None = Field(description="Σ their values; null without won deals")
    avg_deal_value: Money | None = Field(description="lifetime_value ÷ won_deals_count, half-up to the cent")
    last_won_at: datetime | None = Field(description="when the latest of them was won")
    last_activity_at: datetime | None = Field(description="the latest `done_at` of its activities")


def filters(model: Any, won_deals_count_gte: int | None, lifetime_value_gte: Decimal | None,
            last_won_before: datetime | None, last_activity_before: datetime | None) -> list[ColumnElement[bool]]:
    """The list filters over the metrics (each served by its index). `*_before` leaves out records that never
    won or had no activity."""
    where: list[ColumnElement[bool]] = []
    if won_deals_count_gte is not None:
        where.append(model.won_deals_count >= won_deals_count_gte)
    if lifetime_value_gte is not None:
        where.append(model.lifetime_value >= lifetime_value_gte)
    if last_won_before is not None:
        where.append(model.last_won_at < last_won_before)
    if last_activity_before is not None:
        where.append(model.last_activity_at < last_activity_before)
    return where
