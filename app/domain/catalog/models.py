"""The catalogue: products (what deals' line items sell) and reference lists (the values an organisation allows
for lost reasons, industries and lead sources)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from sqlalchemy import Boolean, Computed, ForeignKey, ForeignKeyConstraint, Index, Integer, Numeric, String, text
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord, Timestamps, Versioned, jsonb_gin
from app.ids import new_id


class Product(TenantRecord, Base):
    """`/v1/products`: a price per currency (`prices`, `[{amount, currency}]` with amounts as decimal strings)."""

    __tablename__ = "products"
    __table_args__ = (
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "updated_at", "id"),
        Index(None, "org_id", "sku"),
        Index("ix_products_search", "search", postgresql_using="gin"),
        jsonb_gin("products", "custom_fields"),
        jsonb_gin("products", "external_ids"),
    )

    sku: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(32))
    prices: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0.00"), server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    custom_fields: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    external_ids: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    search: Mapped[str] = mapped_column(
        TSVECTOR, Computed("to_tsvector('simple', coalesce(sku, '') || ' ' || name)", persisted=True))


class RefList(Timestamps, Versioned, Base):
    """`/v1/lists`: a reference list, by its `key` (unique in the org)."""

    __tablename__ = "reference_lists"
    __table_args__ = (Index(None, "org_id", "key", unique=True),)

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True, sort_order=-10)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id, sort_order=-9)
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))


class RefListItem(Timestamps, Versioned, Base):
    """`/v1/lists/{key}/items`: one allowed value, unique in its list."""

    __tablename__ = "reference_list_items"
    __table_args__ = (
        ForeignKeyConstraint(["org_id", "list_id"], ["reference_lists.org_id", "reference_lists.id"],
                             name="fk_reference_list_items_list_id", ondelete="CASCADE"),
        Index(None, "org_id", "list_id", "value", unique=True),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True, sort_order=-10)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id, sort_order=-9)
    list_id: Mapped[UUID] = mapped_column()
    value: Mapped[str] = mapped_column(String(200))
    label: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
