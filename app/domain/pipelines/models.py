from __future__ import annotations

from uuid import UUID

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, and_, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domain.base import Base, TenantRecord, ref_fk

STAGE_KINDS = ("open", "won", "lost")
FORECAST_CATEGORIES = ("pipeline", "best_case", "commit", "omitted")


def default_forecast_category(kind: str, probability: int) -> str:
    """A stage's forecast category when none is given: won stages commit, lost stages are omitted, open
    stages by probability (70 and up commit, 40 and up best case, below that pipeline)."""
    if kind == "won":
        return "commit"
    if kind == "lost":
        return "omitted"
    return "commit" if probability >= 70 else "best_case" if probability >= 40 else "pipeline"


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
        CheckConstraint(f"forecast_category IN ({', '.join(repr(c) for c in FORECAST_CATEGORIES)})",
                        name="forecast_category"),
        Index(None, "org_id", "pipeline_id", "position"),
    )

    pipeline_id: Mapped[UUID] = mapped_column()
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    probability: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    rotting_days: Mapped[int | None] = mapped_column(Integer)
    forecast_category: Mapped[str] = mapped_column(String(16))


Pipeline.stages = relationship(  # type: ignore[attr-defined]
    Stage,
    primaryjoin=lambda: and_(Stage.org_id == Pipeline.org_id, Stage.pipeline_id == Pipeline.id,
                             Stage.deleted_at.is_(None)),
    foreign_keys=lambda: [Stage.org_id, Stage.pipeline_id],
    order_by=lambda: Stage.position,
    lazy="selectin",
    viewonly=True,
)
