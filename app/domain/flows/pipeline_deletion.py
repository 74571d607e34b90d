"""A pipeline deleted: only when no deal is left in it and it is not the default one."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.deals import service as deals
from app.domain.errors import Conflict
from app.domain.pipelines import service as pipelines


async def delete_pipeline(session: AsyncSession, actor: Principal, pipeline_id: UUID,
                          expected_version: int | None) -> None:
    """Held exclusively, the pipeline takes no new deal between the count and the deletion."""
    pipeline = await pipelines.held(session, actor.org_id, pipeline_id)
    pipelines.check_deletable(pipeline, expected_version)
    count = await deals.count(session, actor.org_id, pipeline_id=pipeline_id)
    if count:
        raise Conflict(f"The pipeline still holds {count} deal(s); move or delete them first", deals=count)
    await pipelines.delete_pipeline(session, actor, pipeline)
