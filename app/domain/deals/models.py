from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, CheckConstraint, Computed, Date, ForeignKey, Index, Numeric, String, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, SalesRecord, jsonb_gin, owner_fk, ref_fk
from app.domain.pipelines.models import FORECAST_CATEGORIES
from app.ids import new_id

STATUSES = ("open", "won", "lost")


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
    value_amount: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0.00"), server_default="0")
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
        return {"amount": self.value_amount, "currency": self.currency}


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
