"""A stage edited. Its kind decides the status of the deals in it, so the kind changes only while it is empty."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.deals import service as deals
from app.domain.errors import Conflict
from app.domain.pipelines import service as pipelines
from app.domain.pipelines.models import Stage
from app.domain.pipelines.schemas import StageUpdate


async def update_stage(session: AsyncSession, actor: Principal, pipeline_id: UUID, stage_id: UUID,
                       patch: StageUpdate, expected_version: int | None) -> Stage:
    """Held exclusively, the pipeline lets no deal into the stage between the count and the change."""
    pipeline = await pipelines.held(session, actor.org_id, pipeline_id)
    stage = pipelines.stage_of(pipeline, stage_id)
    changes = pipelines.stage_changes(pipeline, stage, patch, expected_version)
    if changes.get("kind", stage.kind) != stage.kind:
        count = await deals.count(session, actor.org_id, stage_id=stage_id)
        if count:
            raise Conflict(f"The stage holds {count} deal(s) whose status depends on its kind; move them first",
                           deals=count)
    return await pipelines.change_stage(session, actor, pipeline, stage, changes)
