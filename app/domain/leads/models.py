from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, Computed, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, SalesRecord, jsonb_gin, owner_fk, ref_fk
from app.domain.contacts.models import PERSON_SEARCH

STATUSES = ("new", "working", "qualified", "disqualified", "converted")
OPEN_STATUSES = ("new", "working", "qualified")


class Lead(SalesRecord, Base):
    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_import", "org_id", "import_id", postgresql_where=text("import_id IS NOT NULL")),
        owner_fk("leads"),
        ref_fk("leads", "contact_id", "contacts"),
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "updated_at", "id"),
        Index(None, "org_id", "last_name", "id"),
        Index(None, "org_id", "owner_id", "created_at", "id"),
        Index(None, "org_id", "status", "created_at", "id"),
        Index(None, "org_id", "source", "created_at", "id"),
        Index(None, "org_id", "form_id", "created_at", "id"),
        Index(None, "org_id", "contact_id"),
        Index(None, "org_id", "email"),
        Index(None, "org_id", "phone"),
        Index("ix_leads_search", "search", postgresql_using="gin"),
        jsonb_gin("leads", "custom_fields"),
        jsonb_gin("leads", "external_ids"),
    )

    title: Mapped[str | None] = mapped_column(String(200))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    company_name: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="new", server_default="new")
    utm: Mapped[dict | None] = mapped_column(JSONB)
    form_id: Mapped[UUID | None] = mapped_column()
    contact_id: Mapped[UUID | None] = mapped_column()
    company_id: Mapped[UUID | None] = mapped_column()
    deal_id: Mapped[UUID | None] = mapped_column()
    converted_at: Mapped[datetime | None] = mapped_column()
    first_response_at: Mapped[datetime | None] = mapped_column()
    external_ids: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    search: Mapped[str] = mapped_column(TSVECTOR, Computed(
        PERSON_SEARCH.format(extra=" || ' ' || coalesce(company_name, '') || ' ' || coalesce(title, '')"),
        persisted=True))
