from __future__ import annotations

from uuid import UUID

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, and_, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domain.base import Base, TenantRecord, ref_fk

STAGE_KINDS = ("open", "won", "lost")


class Pipeline(TenantRecord, Base):
    __tablename__ = "pipelines"
    __table_args__ = (
        Index(None, "org_id", "created_at", "id"),
        Index("uq_pipelines_default", "org_id", unique=True, postgresql_where=text("is_default AND deleted_at IS NULL")),
    )

    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class Stage(TenantRecord, Base):
    __tablename__ = "pipeline_stages"
    __table_args__ = (
        ref_fk("pipeline_stages", "pipeline_id", "pipelines", ondelete="CASCADE"),
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in STAGE_KINDS)})", name="kind"),
        CheckConstraint("probability BETWEEN 0 AND 100", name="probability"),
        Index(None, "org_id", "pipeline_id", "position"),
    )

    pipeline_id: Mapped[UUID] = mapped_column()
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    probability: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    rotting_days: Mapped[int | None] = mapped_column(Integer)


Pipeline.stages = relationship(  # type: ignore[attr-defined]
    Stage,
    primaryjoin=lambda: and_(Stage.org_id == Pipeline.org_id, Stage.pipeline_id == Pipeline.id,
                             Stage.deleted_at.is_(None)),
    foreign_keys=lambda: [Stage.org_id, Stage.pipeline_id],
    order_by=lambda: Stage.position,
    lazy="selectin",
    viewonly=True,
)
