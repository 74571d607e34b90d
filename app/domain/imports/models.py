from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


class Import(TenantRecord, Base):
    __tablename__ = "imports"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
        Index(None, "org_id", "created_at", "id"),
        Index("ix_imports_unfinished", "created_at", postgresql_where=text("status IN ('queued', 'running')")),
    )

    object: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    filename: Mapped[str] = mapped_column(String(300))
    file_format: Mapped[str] = mapped_column(String(8))
    size_bytes: Mapped[int] = mapped_column(Integer)
    mapping: Mapped[dict[str, str]] = mapped_column(JSONB)
    dedupe_by: Mapped[str] = mapped_column(String(16))
    external_source: Mapped[str | None] = mapped_column(String(64))
    on_duplicate: Mapped[str] = mapped_column(String(8))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    encoding: Mapped[str | None] = mapped_column(String(32))
    delimiter: Mapped[str | None] = mapped_column(String(4))
    total: Mapped[int | None] = mapped_column(Integer)
    processed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    skipped: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[UUID] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    leased_until: Mapped[datetime | None] = mapped_column()  # a worker is on it until then


class ImportKey(Base):
    """Dedupe keys an import has seen (email, phone or external id), so a repeat later in the file is caught
    without holding the file in memory. UNLOGGED: scratch data, dropped when the import finishes."""

    __tablename__ = "import_keys"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    org_id: Mapped[UUID] = mapped_column(primary_key=True)
    import_id: Mapped[UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
