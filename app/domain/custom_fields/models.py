from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Integer, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.domain import kinds
from app.domain.base import Base, TenantRecord

OBJECTS = kinds.names("custom_fields")
TYPES = ("text", "number", "date", "boolean", "select", "multiselect", "url", "email", "phone")


class CustomField(TenantRecord, Base):
    __tablename__ = "custom_fields"
    __table_args__ = (
        UniqueConstraint("org_id", "object", "key"),
        CheckConstraint(f"object IN ({', '.join(repr(o) for o in OBJECTS)})", name="object"),
        CheckConstraint(f"type IN ({', '.join(repr(t) for t in TYPES)})", name="type"),
    )

    object: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    options: Mapped[list[str]] = mapped_column(ARRAY(String(200)), default=list, server_default="{}")
    required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
