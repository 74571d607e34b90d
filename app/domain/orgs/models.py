from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, Timestamps, Versioned
from app.ids import new_id


class Org(Timestamps, Versioned, Base):
    """The tenant. Its `id` is the `org_id` that leads every other table's key."""

    __tablename__ = "orgs"
    __table_args__ = (
        CheckConstraint("record_visibility IN ('all', 'team', 'own')", name="record_visibility"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    default_phone_region: Mapped[str | None] = mapped_column(String(2))
    default_currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default="EUR")
    record_visibility: Mapped[str] = mapped_column(String(8), default="all", server_default="all")
    password_max_age_days: Mapped[int | None] = mapped_column(Integer)  # None: passwords never expire
    max_marketing_per_week: Mapped[int | None] = mapped_column(Integer)  # None: no cap on campaign mail
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
