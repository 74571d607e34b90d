"""A stage deleted: the deals in it move to another stage of the pipeline first, in a few set-based statements."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.deals import service as deals
from app.domain.errors import Conflict, ValidationFailed
from app.domain.pipelines import service as pipelines


async def delete_stage(session: AsyncSession, actor: Principal, pipeline_id: UUID, stage_id: UUID,
                       move_deals_to: UUID | None) -> None:
    """A stage holding deals needs `move_deals_to`, another stage of the pipeline; each move is recorded in the
    deal's stage history with its events. The pipeline is held exclusively throughout, so no deal enters the
    stage meanwhile."""
    pipeline = await pipelines.held(session, actor.org_id, pipeline_id)
    stage = pipelines.stage_of(pipeline, stage_id)
    rest = pipelines.remaining_stages(pipeline, stage)
    count = await deals.count(session, actor.org_id, stage_id=stage_id)
    if count:
        if move_deals_to is None:
            raise Conflict(f"The stage holds {count} deal(s); pass move_deals_to=<stage id> to move them first",
                           deals=count)
        target = next((s for s in rest if s.id == move_deals_to), None)
        if target is None:
            raise ValidationFailed("move_deals_to must be another stage of this pipeline",
                                   loc=("query", "move_deals_to"))
        await deals.move_all(session, actor, stage, target)
    await pipelines.remove_stage(session, actor, pipeline, stage)
