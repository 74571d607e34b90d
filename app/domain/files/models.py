"""Files attached to records: the metadata row; the bytes are kept by the storage (`app.domain.files.storage`)
under `<org_id>/<id>`."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import BigInteger, CheckConstraint, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord

# The kinds of record a file can be attached to (`object_type`, singular as in events).
PARENTS = ("contact", "company", "lead", "deal", "activity")


class StoredFile(TenantRecord, Base):
    __tablename__ = "files"
    __table_args__ = (
        CheckConstraint("object_type IN ('contact', 'company', 'lead', 'deal', 'activity')", name="object_type"),
        CheckConstraint("size >= 0", name="size"),
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "object_type", "object_id", "created_at", "id"),
        # the worker's purge, over every org: deleted files past the restore window
        Index("ix_files_purge_due", "deleted_at", postgresql_where=text("deleted_at IS NOT NULL")),
    )

    object_type: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[UUID] = mapped_column()
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[UUID | None] = mapped_column()

    @property
    def storage_key(self) -> str:
        return storage_key(self.org_id, self.id)


def storage_key(org_id: UUID, file_id: UUID) -> str:
    """Where a file's bytes are kept (`app.domain.files.storage`): one folder, or key prefix, per org."""
    return f"{org_id}/{file_id}"
