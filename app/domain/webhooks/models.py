from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord, ref_fk
from app.ids import new_id


class WebhookEndpoint(TenantRecord, Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "org_id", "created_at", "id"),)

    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    description: Mapped[str | None] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))  # whsec_<base64>; needed in clear to sign
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    failing_since: Mapped[datetime | None] = mapped_column()


class WebhookDelivery(Base):
    """One message to one endpoint; `id` is the `webhook-id` header, the same on every attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ref_fk("webhook_deliveries", "endpoint_id", "webhook_endpoints", ondelete="CASCADE"),
        UniqueConstraint("org_id", "endpoint_id", "event_id"),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
        Index(None, "org_id", "endpoint_id", "created_at", "id"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    endpoint_id: Mapped[UUID] = mapped_column()
    event_id: Mapped[UUID | None] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    attempt_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    leased_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
