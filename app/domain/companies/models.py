from __future__ import annotations

from sqlalchemy import CheckConstraint, Computed, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, SalesRecord, jsonb_gin, owner_fk
from app.domain.metrics import CustomerMetrics
from app.domain.metrics import indexes as metric_indexes

SIZES = ("1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001+")


class Company(CustomerMetrics, SalesRecord, Base):
    __tablename__ = "companies"
    __table_args__ = (
        Index("ix_companies_import", "org_id", "import_id", postgresql_where=text("import_id IS NOT NULL")),
        owner_fk("companies"),
        CheckConstraint(f"size IN ({', '.join(repr(s) for s in SIZES)})", name="size"),
        Index(None, "org_id", "created_at", "id"),
        *metric_indexes(),
        Index(None, "org_id", "updated_at", "id"),
        Index(None, "org_id", "name", "id"),
        Index(None, "org_id", "owner_id", "created_at", "id"),
        Index(None, "org_id", "domain"),
        Index(None, "org_id", "phone"),
        Index("ix_companies_search", "search", postgresql_using="gin"),
        jsonb_gin("companies", "custom_fields"),
        jsonb_gin("companies", "external_ids"),
    )

    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(253))
    phone: Mapped[str | None] = mapped_column(String(32))
    industry: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[dict | None] = mapped_column(JSONB)
    external_ids: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    search: Mapped[str] = mapped_column(TSVECTOR, Computed(
        "to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(domain, '') || ' ' || coalesce(phone, ''))",
        persisted=True))
