"""SMS: the org's HTTP gateway (one per org) and every text message sent through it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord, Timestamps, Versioned, ref_fk


class SmsGateway(Timestamps, Versioned, Base):
    """`GET, PUT /v1/settings/sms`: where and how to hand a text to the provider. The headers (API keys) are
    sealed at rest (`app.domain.sealing`)."""

    __tablename__ = "sms_gateways"
    __table_args__ = (CheckConstraint("method IN ('POST', 'PUT', 'GET')", name="method"),)

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    method: Mapped[str] = mapped_column(String(6), default="POST")
    body_template: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str] = mapped_column(String(32))  # the contract's `from`
    rate_per_minute: Mapped[int] = mapped_column(Integer, default=60, server_default="60")  # campaigns
    sealed_headers: Mapped[str] = mapped_column(Text)


class Sms(TenantRecord, Base):
    __tablename__ = "sms_messages"
    __table_args__ = (
        ref_fk("sms_messages", "contact_id", "contacts"),
        ref_fk("sms_messages", "lead_id", "leads"),
        ref_fk("sms_messages", "deal_id", "deals"),
        CheckConstraint("status IN ('queued', 'sent', 'failed')", name="status"),
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "contact_id", "created_at", "id"),
        Index(None, "org_id", "lead_id", "created_at", "id"),
        Index(None, "org_id", "deal_id", "created_at", "id"),
        Index("ix_sms_messages_send_due", "next_attempt_at", postgresql_where=text("status = 'queued'")),
    )

    status: Mapped[str] = mapped_column(String(8), default="queued")
    to_phone: Mapped[str] = mapped_column(String(32))  # E.164
    sender: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(1600))
    contact_id: Mapped[UUID | None] = mapped_column()
    lead_id: Mapped[UUID | None] = mapped_column()
    deal_id: Mapped[UUID | None] = mapped_column()
    created_by: Mapped[UUID | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    gateway_answer: Mapped[str | None] = mapped_column(String(500))  # the provider's reply, for support
    error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    leased_until: Mapped[datetime | None] = mapped_column()

    @property
    def to(self) -> str:  # the read model's name
        return self.to_phone
