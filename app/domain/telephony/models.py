"""Telephony: the org's provider settings (one row per org), every call logged (by the API or the provider's
signed webhook), and the click-to-call requests a worker hands to the provider."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord, Timestamps, Versioned, ref_fk

DIRECTIONS = ("inbound", "outbound")
STATUSES = ("answered", "missed", "busy", "failed")


class TelephonySettings(Timestamps, Versioned, Base):
    """`GET, PUT /v1/settings/telephony`. `auth_header` and `webhook_secret` are sealed at rest
    (`app.domain.sealing`), in one sealed JSON object."""

    __tablename__ = "telephony_settings"

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    originate_url: Mapped[str | None] = mapped_column(String(2000))
    sealed_secrets: Mapped[str] = mapped_column(Text)
    assignees: Mapped[list[UUID]] = mapped_column(ARRAY(PGUUID(as_uuid=True)), default=list, server_default="{}")
    round_robin: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # unknown callers' turns


class Call(TenantRecord, Base):
    __tablename__ = "calls"
    __table_args__ = (
        ref_fk("calls", "contact_id", "contacts"),
        ref_fk("calls", "lead_id", "leads"),
        ref_fk("calls", "activity_id", "activities"),
        ref_fk("calls", "task_id", "activities"),
        ref_fk("calls", "user_id", "users"),
        CheckConstraint(f"direction IN ({', '.join(repr(d) for d in DIRECTIONS)})", name="direction"),
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "contact_id", "created_at", "id"),
        Index(None, "org_id", "lead_id", "created_at", "id"),
        Index(None, "org_id", "user_id", "created_at", "id"),
        # the provider's webhook-id: a redelivered event is the same call
        Index("ix_calls_event_id", "org_id", "event_id", unique=True, postgresql_where=text("event_id IS NOT NULL")),
    )

    direction: Mapped[str] = mapped_column(String(8))
    from_phone: Mapped[str] = mapped_column(String(40))
    to_phone: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column()
    duration_seconds: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(8))
    recording_url: Mapped[str | None] = mapped_column(String(2000))
    user_id: Mapped[UUID | None] = mapped_column()
    contact_id: Mapped[UUID | None] = mapped_column()
    lead_id: Mapped[UUID | None] = mapped_column()
    activity_id: Mapped[UUID] = mapped_column()  # the done `call` activity that logs it
    task_id: Mapped[UUID | None] = mapped_column()  # the call-back task it opened, if any
    event_id: Mapped[str | None] = mapped_column(String(255))


class CallOrigination(TenantRecord, Base):
    """`POST /v1/calls/originate`: one click-to-call request, queued for a worker like an email."""

    __tablename__ = "call_originations"
    __table_args__ = (
        ref_fk("call_originations", "user_id", "users"),
        CheckConstraint("status IN ('queued', 'sent', 'failed')", name="status"),
        Index(None, "org_id", "created_at", "id"),
        Index("ix_call_originations_send_due", "next_attempt_at", postgresql_where=text("status = 'queued'")),
    )

    status: Mapped[str] = mapped_column(String(8), default="queued")
    to_phone: Mapped[str] = mapped_column(String(32))  # E.164
    user_id: Mapped[UUID] = mapped_column()  # whose phone rings first
    created_by: Mapped[UUID | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    provider_answer: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    leased_until: Mapped[datetime | None] = mapped_column()

    @property
    def to(self) -> str:
        return self.to_phone
