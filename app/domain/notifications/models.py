from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, ref_fk
from app.ids import new_id


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        ref_fk("notifications", "user_id", "users", ondelete="CASCADE"),
        UniqueConstraint("org_id", "source_event_id", "user_id"),
        Index(None, "org_id", "user_id", "created_at", "id"),
        Index("ix_notifications_unread", "org_id", "user_id", "created_at", "id", postgresql_where=text("read_at IS NULL")),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[UUID] = mapped_column()
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(300))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[UUID | None] = mapped_column()
    source_event_id: Mapped[UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    read_at: Mapped[datetime | None] = mapped_column()


class OnceMark(Base):
    """Exactly-once bookkeeping for periodic jobs: a key inserted once per org (e.g. a birthday per year)."""

    __tablename__ = "once_marks"

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
