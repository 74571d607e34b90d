"""Email and SMS templates: sandboxed Jinja2 placeholders over the documented objects."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord


class Template(TenantRecord, Base):
    __tablename__ = "templates"
    __table_args__ = (CheckConstraint("channel IN ('email', 'sms')", name="channel"),
                      Index(None, "org_id", "created_at", "id"))

    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(998), default="")
    body_html: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
