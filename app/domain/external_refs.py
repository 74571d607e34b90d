"""External ids: a partner's own key for a record, `(source, id)`, unique per object type in an org.

Records keep them in `external_ids` (what clients read and write); this table enforces uniqueness and
answers lookups by external id with a primary-key read."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base
from app.domain.errors import Conflict


class ExternalRef(Base):
    __tablename__ = "external_refs"
    __table_args__ = (Index(None, "org_id", "object_type", "record_id"),)

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    object_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    record_id: Mapped[UUID] = mapped_column()


async def sync(session: AsyncSession, object_type: str, record: Any) -> None:
    """Make the table match the record's `external_ids`; 409 when one belongs to another record."""
    desired = {(e["source"], e["id"]) for e in record.external_ids or []}
    r = ExternalRef
    current = {(x.source, x.external_id) for x in await session.scalars(select(r).where(
        r.org_id == record.org_id, r.object_type == object_type, r.record_id == record.id))}
    stale = current - desired
    if stale:
        await session.execute(delete(r).where(r.org_id == record.org_id, r.object_type == object_type,
                                              tuple_(r.source, r.external_id).in_(list(stale))))
    new = desired - current
    if not new:
        return
    taken = (await session.execute(select(r.source, r.external_id).where(
        r.org_id == record.org_id, r.object_type == object_type, tuple_(r.source, r.external_id).in_(list(new))))).all()
    if taken:
        source, ext = taken[0]
        raise Conflict(f"external id {source}/{ext} already belongs to another {object_type}",
                       field="external_ids", source=source, external_id=ext)
    session.add_all([r(org_id=record.org_id, object_type=object_type, source=s, external_id=e, record_id=record.id)
                     for s, e in new])
    await session.flush()


async def find(session: AsyncSession, org_id: UUID, object_type: str, source: str, external_id: str) -> UUID | None:
    return await session.scalar(select(ExternalRef.record_id).where(
        ExternalRef.org_id == org_id, ExternalRef.object_type == object_type, ExternalRef.source == source,
        ExternalRef.external_id == external_id))
