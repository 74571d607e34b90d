from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, SalesRecord, Timestamps, Versioned, jsonb_gin, owner_fk, ref_fk
from app.domain.pipelines.models import FORECAST_CATEGORIES
from app.domain.schemas import amount_places
from app.ids import new_id

STATUSES = ("open", "won", "lost")


def written(amount: Decimal | None, currency: str | None) -> Decimal | None:
    """An amount as the API writes it: with the currency's places (2, or 3 for BHD, KWD...)."""
    if amount is None or currency is None:
        return amount
    return Decimal(amount).quantize(Decimal(1).scaleb(-amount_places(currency)))


class Deal(SalesRecord, Base):
    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_import", "org_id", "import_id", postgresql_where=text("import_id IS NOT NULL")),
        owner_fk("deals"),
        ref_fk("deals", "pipeline_id", "pipelines"),
        ref_fk("deals", "stage_id", "pipeline_stages"),
        ref_fk("deals", "contact_id", "contacts"),
        ref_fk("deals", "company_id", "companies"),
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
        CheckConstraint(f"forecast_category IN ({', '.join(repr(c) for c in FORECAST_CATEGORIES)})",
                        name="forecast_category"),
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "updated_at", "id"),
        Index(None, "org_id", "value_amount", "id"),
        Index(None, "org_id", "expected_close_date", "id"),
        Index(None, "org_id", "stage_entered_at", "id"),
        Index(None, "org_id", "closed_at", postgresql_where=text("closed_at IS NOT NULL")),  # win-loss periods
        Index(None, "org_id", "stage_id", "owner_id", "created_at", "id"),
        Index(None, "org_id", "owner_id", "created_at", "id"),
        Index(None, "org_id", "pipeline_id", "status", "created_at", "id"),
        # The funnel report reads an org's live deals of one pipeline (and a period): this covers what it reads,
        # so it scans the index alone whatever share of the org's deals the planner expects.
        Index("ix_deals_funnel", "org_id", "pipeline_id", "created_at",
              postgresql_include=["stage_id", "entered_stage_ids", "value_amount", "currency", "owner_id", "id"],
              postgresql_where=text("deleted_at IS NULL")),
        Index(None, "org_id", "status", "created_at", "id"),
        Index(None, "org_id", "contact_id", "created_at", "id"),
        Index(None, "org_id", "company_id", "created_at", "id"),
        Index("ix_deals_search", "search", postgresql_using="gin"),
        jsonb_gin("deals", "custom_fields"),
        jsonb_gin("deals", "external_ids"),
    )

    title: Mapped[str] = mapped_column(String(200))
    pipeline_id: Mapped[UUID] = mapped_column()
    stage_id: Mapped[UUID] = mapped_column()
    # written with the currency's places (`app.domain.schemas.amount_places`: 2, or 3 for BHD, KWD...)
    value_amount: Mapped[Decimal] = mapped_column(Numeric, default=Decimal("0.00"), server_default="0")
    # Σ the line items' values with tax; null while the deal has no line items
    value_with_tax_amount: Mapped[Decimal | None] = mapped_column(Numeric, default=None)
    currency: Mapped[str] = mapped_column(String(3))
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    contact_id: Mapped[UUID | None] = mapped_column()
    company_id: Mapped[UUID | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(8), default="open", server_default="open")
    lost_reason: Mapped[str | None] = mapped_column(String(200))
    closed_at: Mapped[datetime | None] = mapped_column()
    stage_entered_at: Mapped[datetime] = mapped_column()
    forecast_category: Mapped[str] = mapped_column(String(16), default="pipeline", server_default="pipeline")
    external_ids: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    search: Mapped[str] = mapped_column(TSVECTOR, Computed("to_tsvector('simple', title)", persisted=True))
    # Every stage the deal ever entered, its current one included, sorted and without repeats: what its stage
    # history says about how far it got, kept on the row by every move (`entered_stages`) so that the funnel
    # report reads deals alone. Stage ids, not positions: a reorder, a kind change or a deletion changes nothing
    # here. Internal (not in `DealRead`).
    entered_stage_ids: Mapped[list[UUID]] = mapped_column(ARRAY(Uuid), default=list, server_default="{}")

    @property
    def value(self) -> dict[str, Any]:
        return {"amount": written(self.value_amount, self.currency), "currency": self.currency}

    @property
    def value_with_tax(self) -> dict[str, Any] | None:
        if self.value_with_tax_amount is None:
            return None
        return {"amount": written(self.value_with_tax_amount, self.currency), "currency": self.currency}


class StageMove(Base):
    """deal_stage_history: every move, with who, when, and how long the deal sat in the previous stage."""

    __tablename__ = "deal_stage_history"
    __table_args__ = (
        ref_fk("deal_stage_history", "deal_id", "deals", ondelete="CASCADE"),
        Index(None, "org_id", "deal_id", "moved_at", "id"),
        Index(None, "org_id", "to_stage_id", "moved_at"),
        Index(None, "org_id", "moved_at"),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    deal_id: Mapped[UUID] = mapped_column()
    from_stage_id: Mapped[UUID | None] = mapped_column()
    to_stage_id: Mapped[UUID] = mapped_column()
    moved_at: Mapped[datetime] = mapped_column()
    moved_by: Mapped[dict[str, Any]] = mapped_column(JSONB)
    seconds_in_previous: Mapped[int | None] = mapped_column(BigInteger)


class LineItem(Timestamps, Versioned, Base):
    """deal_line_items: what a deal sells. `amount` (quantity × unit price × (1 − discount), rounded half-up to the
    currency's minor unit) and `amount_with_tax` (amount × (1 + tax rate), rounded the same) are kept on the row;
    the deal's value is their sum (`app.domain.deals.line_items`)."""

    __tablename__ = "deal_line_items"
    __table_args__ = (
        ref_fk("deal_line_items", "deal_id", "deals", ondelete="CASCADE"),
        ref_fk("deal_line_items", "product_id", "products"),
        CheckConstraint("quantity > 0", name="quantity"),
        CheckConstraint("discount_percent >= 0 AND discount_percent <= 100", name="discount_percent"),
        CheckConstraint("tax_rate >= 0", name="tax_rate"),
        Index(None, "org_id", "deal_id", "position", "id"),
        Index(None, "org_id", "product_id", postgresql_where=text("product_id IS NOT NULL")),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True, sort_order=-10)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id, sort_order=-9)
    deal_id: Mapped[UUID] = mapped_column()
    product_id: Mapped[UUID | None] = mapped_column()
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    unit_price_amount: Mapped[Decimal] = mapped_column(Numeric(19, 3))
    currency: Mapped[str] = mapped_column(String(3))
    discount_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0.00"), server_default="0")
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0.00"), server_default="0")
    amount: Mapped[Decimal] = mapped_column(Numeric)
    amount_with_tax: Mapped[Decimal] = mapped_column(Numeric)
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def unit_price(self) -> dict[str, Any]:
        return {"amount": written(self.unit_price_amount, self.currency), "currency": self.currency}

    @property
    def value(self) -> dict[str, Any]:
        return {"amount": written(self.amount, self.currency), "currency": self.currency}

    @property
    def value_with_tax(self) -> dict[str, Any]:
        return {"amount": written(self.amount_with_tax, self.currency), "currency": self.currency}
