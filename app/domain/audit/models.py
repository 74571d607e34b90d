"""The audit log: who did what to which object, from where, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base
from app.ids import new_id


class AuditEntry(Base):
    """One audited action, written in the same transaction as the change it describes (append-only)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index(None, "org_id", "occurred_at", "id"),
        Index(None, "org_id", "object_type", "object_id", "occurred_at"),
        Index(None, "org_id", "actor_id", "occurred_at"),
        Index(None, "occurred_at"),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.clock_timestamp())
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[UUID | None] = mapped_column()
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[UUID | None] = mapped_column()
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
