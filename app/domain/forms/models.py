from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.orm import Mapped, mapped_column, validates

from app.domain.base import Base, TenantRecord, ref_fk
from app.domain.text import web_url
from app.ids import new_id


class Form(TenantRecord, Base):
    __tablename__ = "forms"
    __table_args__ = (
        CheckConstraint("creates IN ('lead', 'deal')", name="creates"),
        Index(None, "org_id", "created_at", "id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    creates: Mapped[str] = mapped_column(String(8), default="lead", server_default="lead")
    pipeline_id: Mapped[UUID | None] = mapped_column()
    redirect_url: Mapped[str | None] = mapped_column(String(2048))
    allowed_origins: Mapped[list[str]] = mapped_column(ARRAY(String(300)), default=list, server_default="{}")
    assignees: Mapped[list[UUID]] = mapped_column(ARRAY(PGUUID(as_uuid=True)), default=list, server_default="{}")
    sla_minutes: Mapped[int] = mapped_column(Integer, default=15, server_default="15")
    escalate_to: Mapped[UUID | None] = mapped_column()
    field_map: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict, server_default="{}")
    min_fill_seconds: Mapped[int | None] = mapped_column(Integer)
    public_key: Mapped[str] = mapped_column(String(64))
    round_robin: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by: Mapped[UUID] = mapped_column()
    spam_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_spam_at: Mapped[datetime | None] = mapped_column()


class FormKey(Base):
    """Global lookup: a form's public key -> (org, form). Rotation replaces the row; the old key 404s."""

    __tablename__ = "form_keys"
    __table_args__ = (ref_fk("form_keys", "form_id", "forms", ondelete="CASCADE"),)

    public_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[UUID] = mapped_column()
    form_id: Mapped[UUID] = mapped_column()


class FormSubmission(Base):
    __tablename__ = "form_submissions"
    __table_args__ = (
        ref_fk("form_submissions", "form_id", "forms", ondelete="CASCADE"),
        UniqueConstraint("org_id", "form_id", "idempotency_key"),
        CheckConstraint("matched IN ('none', 'contact', 'lead')", name="matched"),
        CheckConstraint("status IN ('accepted', 'spam')", name="status"),
        CheckConstraint("spam_reason IN ('honeypot', 'too_fast', 'rate_limited')", name="spam_reason"),
        Index(None, "org_id", "form_id", "received_at", "id"),
        Index(None, "org_id", "form_id", "status", "received_at", "id"),
        Index("ix_form_submissions_spam_received", "received_at", postgresql_where=text("status = 'spam'")),
        Index(None, "org_id", "lead_id", "received_at", "id"),
        Index(None, "org_id", "contact_id", "received_at", "id"),
        Index(None, "org_id", "deal_id", "received_at", "id"),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    form_id: Mapped[UUID] = mapped_column()
    received_at: Mapped[datetime] = mapped_column()
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB)
    utm: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    gclid: Mapped[str | None] = mapped_column(String(2048))
    fbclid: Mapped[str | None] = mapped_column(String(2048))
    page_url: Mapped[str | None] = mapped_column(String(2048))
    referrer: Mapped[str | None] = mapped_column(String(2048))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    ip: Mapped[str | None] = mapped_column(String(64))
    lead_id: Mapped[UUID | None] = mapped_column()
    contact_id: Mapped[UUID | None] = mapped_column()
    deal_id: Mapped[UUID | None] = mapped_column()
    matched: Mapped[str] = mapped_column(String(8), default="none")
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(8), default="accepted", server_default="accepted")
    spam_reason: Mapped[str | None] = mapped_column(String(16))
    invalid_fields: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    @validates("page_url", "referrer")
    def _web_urls_only(self, key: str, value: str | None) -> str | None:
        """Only http(s) URLs are kept: a `javascript:`, `data:` or `vbscript:` "page" is dropped (the submission
        itself is still taken), so no screen ever shows it as a link."""
        return web_url(value)


class SlaTimer(Base):
    """The call-back promise of one submission: checked once at `due_at`."""

    __tablename__ = "sla_timers"
    __table_args__ = (
        ref_fk("sla_timers", "activity_id", "activities", ondelete="CASCADE"),
        Index("ix_sla_timers_pending", "due_at", postgresql_where=text("fired_at IS NULL")),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    form_id: Mapped[UUID] = mapped_column()
    submission_id: Mapped[UUID] = mapped_column()
    activity_id: Mapped[UUID] = mapped_column()
    lead_id: Mapped[UUID | None] = mapped_column()
    contact_id: Mapped[UUID | None] = mapped_column()
    deal_id: Mapped[UUID | None] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    fired_at: Mapped[datetime | None] = mapped_column()
    breached: Mapped[bool | None] = mapped_column(Boolean)
