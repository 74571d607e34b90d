"""Automation rules (a trigger, conditions, actions) and one run per rule and triggering event."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord, ref_fk
from app.domain.webhooks.signing import new_secret
from app.ids import new_id


class Automation(TenantRecord, Base):
    __tablename__ = "automations"
    __table_args__ = (Index(None, "org_id", "created_at", "id"),
                      Index("ix_automations_enabled", "org_id", "enabled"))

    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSONB)
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    created_by: Mapped[UUID | None] = mapped_column()
    round_robin: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # assignee turns
    webhook_secret: Mapped[str] = mapped_column(String(64), default=new_secret)  # signs its `webhook` actions


class AutomationRun(Base):
    """`queued` when its event is dispatched (once per rule and event: the unique key), then run by a worker in
    one transaction with everything its actions write: `succeeded`, `failed` (with `reason`) or `skipped`."""

    __tablename__ = "automation_runs"
    __table_args__ = (
        ref_fk("automation_runs", "automation_id", "automations", ondelete="CASCADE"),
        CheckConstraint("status IN ('queued', 'succeeded', 'failed', 'skipped')", name="status"),
        Index("uq_automation_runs_event", "org_id", "automation_id", "event_id", unique=True),
        Index(None, "org_id", "automation_id", "created_at", "id"),
        Index("ix_automation_runs_queued", "created_at", postgresql_where=text("status = 'queued'")),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    automation_id: Mapped[UUID] = mapped_column()
    event_id: Mapped[UUID] = mapped_column()
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(10), default="queued")
    reason: Mapped[str | None] = mapped_column(String(500))
    depth: Mapped[int] = mapped_column(Integer, default=0)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    next_action: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # after a delay
    resume_at: Mapped[datetime | None] = mapped_column()  # a delay's end
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # of the current webhook action
    leased_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
