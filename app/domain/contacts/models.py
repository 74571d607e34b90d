from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from sqlalchemy import Computed, Date, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, SalesRecord, jsonb_gin, owner_fk, ref_fk
from app.domain.metrics import CustomerMetrics
from app.domain.metrics import indexes as metric_indexes

PERSON_SEARCH = (
    "to_tsvector('simple', coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || "
    "coalesce(email, '') || ' ' || coalesce(phone, ''){extra})"
)


NO_CONSENT = {"email": "unknown", "sms": "unknown"}  # neither given nor refused

class Contact(CustomerMetrics, SalesRecord, Base):
    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_import", "org_id", "import_id", postgresql_where=text("import_id IS NOT NULL")),
        owner_fk("contacts"),
        ref_fk("contacts", "company_id", "companies", ondelete="SET NULL (company_id)"),
        Index(None, "org_id", "created_at", "id"),
        *metric_indexes(),
        Index(None, "org_id", "updated_at", "id"),
        Index(None, "org_id", "last_name", "id"),
        Index(None, "org_id", "owner_id", "created_at", "id"),
        Index(None, "org_id", "company_id", "created_at", "id"),
        Index(None, "org_id", "source", "created_at", "id"),
        Index(None, "org_id", "email"),
        Index(None, "org_id", "phone"),
        Index("ix_contacts_tags", "tags", postgresql_using="gin"),
        Index("ix_contacts_birthday", "org_id", text("extract(month from birthday)"), text("extract(day from birthday)"),
              postgresql_where=text("birthday IS NOT NULL AND deleted_at IS NULL")),
        Index("ix_contacts_search", "search", postgresql_using="gin"),
        jsonb_gin("contacts", "custom_fields"),
        jsonb_gin("contacts", "external_ids"),
    )

    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    company_id: Mapped[UUID | None] = mapped_column()
    title: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list, server_default="{}")
    source: Mapped[str | None] = mapped_column(String(64))
    utm: Mapped[dict | None] = mapped_column(JSONB)
    consent: Mapped[dict[str, str]] = mapped_column(
        JSONB, default=lambda: dict(NO_CONSENT), server_default='{"email": "unknown", "sms": "unknown"}')
    birthday: Mapped[date | None] = mapped_column(Date)
    address: Mapped[dict | None] = mapped_column(JSONB)
    external_ids: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    erased_at: Mapped[datetime | None] = mapped_column(default=None)  # personal data removed (GDPR erasure)
    search: Mapped[str] = mapped_column(TSVECTOR, Computed(PERSON_SEARCH.format(extra=""), persisted=True))
