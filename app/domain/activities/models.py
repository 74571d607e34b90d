from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, Computed, Index, String, Text, text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, SalesRecord, jsonb_gin, owner_fk, ref_fk

TYPES = ("task", "call", "meeting", "note", "email")
PRIORITIES = ("low", "normal", "high")


class Activity(SalesRecord, Base):
    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_import", "org_id", "import_id", postgresql_where=text("import_id IS NOT NULL")),
        owner_fk("activities"),
        ref_fk("activities", "assignee_id", "users"),
        ref_fk("activities", "contact_id", "contacts"),
        ref_fk("activities", "company_id", "companies"),
        ref_fk("activities", "deal_id", "deals"),
        ref_fk("activities", "lead_id", "leads"),
        CheckConstraint(f"type IN ({', '.join(repr(t) for t in TYPES)})", name="type"),
        CheckConstraint(f"priority IN ({', '.join(repr(p) for p in PRIORITIES)})", name="priority"),
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "updated_at", "id"),
        Index(None, "org_id", "due_at", "id"),
        # "my open tasks due before X" and overdue lists
        Index("ix_activities_open_by_assignee", "org_id", "assignee_id", "due_at", "id",
              postgresql_where=text("done_at IS NULL AND deleted_at IS NULL")),
        Index("ix_activities_open_due", "org_id", "due_at", postgresql_where=text("done_at IS NULL AND deleted_at IS NULL")),
        Index(None, "org_id", "assignee_id", "created_at", "id"),
        Index(None, "org_id", "contact_id", "created_at", "id"),
        # customer metrics: the latest done activity of a contact or company (app.domain.metrics)
        Index("ix_activities_contact_done", "org_id", "contact_id", "done_at",
              postgresql_where=text("deleted_at IS NULL AND done_at IS NOT NULL")),
        Index("ix_activities_company_done", "org_id", "company_id", "done_at",
              postgresql_where=text("deleted_at IS NULL AND done_at IS NOT NULL")),
        Index(None, "org_id", "company_id", "created_at", "id"),
        Index(None, "org_id", "deal_id", "created_at", "id"),
        Index(None, "org_id", "lead_id", "created_at", "id"),
        # reminder sweeps: activities whose reminder or due time has come, not yet announced
        Index("ix_activities_reminder_pending", text("coalesce(remind_at, due_at)"),
              postgresql_where=text("done_at IS NULL AND deleted_at IS NULL AND reminded_at IS NULL")),
        Index("ix_activities_overdue_pending", "due_at",
              postgresql_where=text("done_at IS NULL AND deleted_at IS NULL AND overdue_at IS NULL")),
        Index("ix_activities_search", "search", postgresql_using="gin"),
        jsonb_gin("activities", "custom_fields"),
    )

    type: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column()
    remind_at: Mapped[datetime | None] = mapped_column()
    done_at: Mapped[datetime | None] = mapped_column()
    assignee_id: Mapped[UUID | None] = mapped_column()
    contact_id: Mapped[UUID | None] = mapped_column()
    company_id: Mapped[UUID | None] = mapped_column()
    deal_id: Mapped[UUID | None] = mapped_column()
    lead_id: Mapped[UUID | None] = mapped_column()
    priority: Mapped[str] = mapped_column(String(8), default="normal", server_default="normal")
    reminded_at: Mapped[datetime | None] = mapped_column()  # activity.due written
    overdue_at: Mapped[datetime | None] = mapped_column()  # activity.overdue written
    search: Mapped[str] = mapped_column(TSVECTOR, Computed("to_tsvector('simple', subject)", persisted=True))
