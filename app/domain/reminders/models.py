from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base


class TimerFailure(Base):
    """A timer (reminder, overdue check, SLA check) that raised when it fired: its error, how often it failed,
    and when it is tried again. The row goes once the timer fires."""

    __tablename__ = "timer_failures"

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    timer: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[UUID] = mapped_column(primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime] = mapped_column()
    first_failed_at: Mapped[datetime] = mapped_column()
