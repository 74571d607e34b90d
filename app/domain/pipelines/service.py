"""Pipelines and their ordered stages. Every pipeline keeps an open, a won and a lost stage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.pipelines.models import Pipeline, Stage, default_forecast_category
from app.domain.pipelines.schemas import (
    PipelineCreate,
    PipelineRead,
    PipelineUpdate,
    StageCreate,
    StageUpdate,
    check_stage_kinds,
)
from app.domain.records import Kind, org_settings

PIPELINE = Kind(Pipeline, "pipeline", "Pipeline", PipelineRead)
SORTS = {"created_at": Pipeline.created_at, "updated_at": Pipeline.updated_at, "name": Pipeline.name}

DEFAULT_STAGES = [
    StageCreate(name="Qualification", probability=10),
    StageCreate(name="Proposal", probability=40),
    StageCreate(name="Negotiation", probability=70),
    StageCreate(name="Won", probability=100, kind="won"),
    StageCreate(name="Lost", probability=0, kind="lost"),
]


async def create_default(session: AsyncSession, org_id: UUID, currency: str) -> Pipeline:
    """Every new organisation starts with one pipeline: Qualification → Proposal → Negotiation → Won / Lost."""
    body = PipelineCreate(name="Sales", currency=currency, is_default=True, stages=DEFAULT_STAGES)
    return await _insert(session, None, org_id, body)


async def _insert(session: AsyncSession, actor: Principal | None, org_id: UUID, body: PipelineCreate) -> Pipeline:
    if body.is_default:
        await _clear_default(session, org_id)
    currency = body.currency or (await org_settings(session, org_id)).default_currency
    pipeline = Pipeline(org_id=org_id, name=body.name, currency=currency, is_default=body.is_default)
    session.add(pipeline)
    await session.flush()
    session.add_all([
        Stage(org_id=org_id, pipeline_id=pipeline.id, name=s.name, position=i, probability=s.probability,
              kind=s.kind, rotting_days=s.rotting_days,
              forecast_category=s.forecast_category or default_forecast_category(s.kind, s.probability))
        for i, s in enumerate(_ordered(body.stages))
    ])
    await session.flush()
    await session.refresh(pipeline, ["stages"])
    await PIPELINE.emit(session, actor, pipeline, "created")
    return pipeline


def _ordered(stages: list[StageCreate]) -> list[StageCreate]:
    """Stages with an explicit `position` take that place (clamped); the others fill the gaps in order."""
    slots: list[StageCreate | None] = [None] * len(stages)
    for stage in sorted((s for s in stages if s.position is not None), key=lambda s: s.position or 0):
        place = min(stage.position or 0, len(stages) - 1)
        while slots[place] is not None:
            place = (place + 1) % len(stages)
        slots[place] = stage
    rest = iter(s for s in stages if s.position is None)
    return [slot if slot is not None else next(rest) for slot in slots]


async def create(session: AsyncSession, actor: Principal, body: PipelineCreate) -> Pipeline:
    return await _insert(session, actor, actor.org_id, body)


async def _clear_default(session: AsyncSession, org_id: UUID) -> None:
    await session.execute(
        update(Pipeline).where(Pipeline.org_id == org_id, Pipeline.is_default.is_(True))
        .values(is_default=False, version=Pipeline.version + 1).execution_options(synchronize_session="fetch")
    )


async def get(session: AsyncSession, org_id: UUID, pipeline_id: UUID, include_deleted: bool = False) -> Pipeline:
    return await PIPELINE.get(session, org_id, pipeline_id, include_deleted)


async def list_page(session: AsyncSession, org_id: UUID, page: PageRequest) -> Page[Pipeline]:
    return await keyset_page(session, PIPELINE.scoped(org_id), page, SORTS, Pipeline.id)


async def default_pipeline(session: AsyncSession, org_id: UUID) -> Pipeline | None:
    return await session.scalar(PIPELINE.scoped(org_id).where(Pipeline.is_default.is_(True)))


async def update_pipeline(session: AsyncSession, actor: Principal, pipeline_id: UUID, patch: PipelineUpdate,
                          expected_version: int | None) -> Pipeline:
    pipeline = await PIPELINE.get(session, actor.org_id, pipeline_id, for_update=True)
    check_version(pipeline.version, expected_version)
    before = PIPELINE.dump(pipeline)
    changes = {k: v for k, v in patch.model_dump(exclude_unset=True).items() if v is not None}
    if changes.get("is_default") is False and pipeline.is_default:
        raise ValidationFailed("make another pipeline the default instead", loc=("body", "is_default"))
    if changes.get("is_default") and not pipeline.is_default:
        await _clear_default(session, actor.org_id)
    for key, value in changes.items():
        setattr(pipeline, key, value)
    return await PIPELINE.updated(session, actor, pipeline, before)


async def _open_deals(session: AsyncSession, org_id: UUID, **where: Any) -> int:
    from app.domain.deals.models import Deal

    stmt = select(func.count()).select_from(Deal).where(Deal.org_id == org_id, Deal.deleted_at.is_(None))
    for column, value in where.items():
        stmt = stmt.where(getattr(Deal, column) == value)
    return await session.scalar(stmt) or 0


async def delete_pipeline(session: AsyncSession, actor: Principal, pipeline_id: UUID,
                          expected_version: int | None) -> None:
    pipeline = await PIPELINE.get(session, actor.org_id, pipeline_id)
    if pipeline.is_default:
        raise Conflict("The default pipeline cannot be deleted; make another one the default first")
    count = await _open_deals(session, actor.org_id, pipeline_id=pipeline_id)
    if count:
        raise Conflict(f"The pipeline still holds {count} deal(s); move or delete them first", deals=count)
    await PIPELINE.delete(session, actor, pipeline_id, expected_version)


# --- stages -------------------------------------------------------------------------------------------


async def get_stage(session: AsyncSession, org_id: UUID, pipeline_id: UUID, stage_id: UUID) -> Stage:
    stage = await session.scalar(select(Stage).where(
        Stage.org_id == org_id, Stage.pipeline_id == pipeline_id, Stage.id == stage_id, Stage.deleted_at.is_(None)))
    if stage is None:
        raise NotFound("Stage not found")
    return stage


async def stages_by_id(session: AsyncSession, org_id: UUID, stage_ids: set[UUID]) -> dict[UUID, Stage]:
    if not stage_ids:
        return {}
    rows = await session.scalars(select(Stage).where(Stage.org_id == org_id, Stage.id.in_(stage_ids)))
    return {s.id: s for s in rows}


async def _changed_stages(session: AsyncSession, actor: Principal, pipeline: Pipeline,
                          before: dict[str, Any]) -> Pipeline:
    """Stage edits are pipeline edits: bump its version and write `pipeline.updated` with the stages inside."""
    pipeline.updated_at = datetime.now(UTC)  # a write to the row, so the version moves
    await session.flush()
    await session.refresh(pipeline, ["stages"])
    return await PIPELINE.updated(session, actor, pipeline, before)


async def _renumber(stages: list[Stage]) -> None:
    for i, s in enumerate(stages):
        s.position = i


async def add_stage(session: AsyncSession, actor: Principal, pipeline_id: UUID, body: StageCreate) -> Stage:
    pipeline = await PIPELINE.get(session, actor.org_id, pipeline_id, for_update=True)
    before = PIPELINE.dump(pipeline)
    stages = list(pipeline.stages)
    stage = Stage(org_id=actor.org_id, pipeline_id=pipeline_id, name=body.name, probability=body.probability,
                  kind=body.kind, rotting_days=body.rotting_days, position=len(stages),
                  forecast_category=body.forecast_category or default_forecast_category(body.kind, body.probability))
    session.add(stage)
    stages.insert(min(body.position if body.position is not None else len(stages), len(stages)), stage)
    await _renumber(stages)
    await session.flush()
    await _changed_stages(session, actor, pipeline, before)
    return stage


async def update_stage(session: AsyncSession, actor: Principal, pipeline_id: UUID, stage_id: UUID,
                       patch: StageUpdate, expected_version: int | None) -> Stage:
    pipeline = await PIPELINE.get(session, actor.org_id, pipeline_id, for_update=True)
    stage = await get_stage(session, actor.org_id, pipeline_id, stage_id)
    check_version(stage.version, expected_version)
    before = PIPELINE.dump(pipeline)
    changes = {k: v for k, v in patch.model_dump(exclude_unset=True).items() if v is not None or k == "rotting_days"}
    if "kind" in changes and changes["kind"] != stage.kind:
        kinds = [changes["kind"] if s.id == stage.id else s.kind for s in pipeline.stages]
        try:
            check_stage_kinds(kinds)
        except ValueError as exc:
            raise ValidationFailed(str(exc), loc=("body", "kind")) from None
        count = await _open_deals(session, actor.org_id, stage_id=stage_id)
        if count:
            raise Conflict(f"The stage holds {count} deal(s) whose status depends on its kind; move them first",
                           deals=count)
    on_default = stage.forecast_category == default_forecast_category(stage.kind, stage.probability)
    if "forecast_category" not in changes and (on_default or "forecast_category" in patch.model_fields_set):
        # null resets it; a stage still on its default follows the new kind / probability
        changes["forecast_category"] = default_forecast_category(changes.get("kind", stage.kind),
                                                                 changes.get("probability", stage.probability))
    for key, value in changes.items():
        setattr(stage, key, value)
    await session.flush()
    await _changed_stages(session, actor, pipeline, before)
    return stage


async def delete_stage(session: AsyncSession, actor: Principal, pipeline_id: UUID, stage_id: UUID,
                       move_deals_to: UUID | None) -> None:
    from app.domain.deals import service as deals

    pipeline = await PIPELINE.get(session, actor.org_id, pipeline_id, for_update=True)
    stage = await get_stage(session, actor.org_id, pipeline_id, stage_id)
    before = PIPELINE.dump(pipeline)
    rest = [s for s in pipeline.stages if s.id != stage_id]
    try:
        check_stage_kinds([s.kind for s in rest])
    except ValueError as exc:
        raise Conflict(str(exc)) from None
    count = await _open_deals(session, actor.org_id, stage_id=stage_id)
    if count:
        if move_deals_to is None:
            raise Conflict(f"The stage holds {count} deal(s); pass move_deals_to=<stage id> to move them first",
                           deals=count)
        if move_deals_to == stage_id or move_deals_to not in {s.id for s in rest}:
            raise ValidationFailed("move_deals_to must be another stage of this pipeline", loc=("query", "move_deals_to"))
        await deals.move_all(session, actor, stage_id, move_deals_to)
    stage.deleted_at = datetime.now(UTC)
    await _renumber(rest)
    await session.flush()
    await _changed_stages(session, actor, pipeline, before)


async def reorder_stages(session: AsyncSession, actor: Principal, pipeline_id: UUID, stage_ids: list[UUID],
                         expected_version: int | None) -> Pipeline:
    pipeline = await PIPELINE.get(session, actor.org_id, pipeline_id, for_update=True)
    check_version(pipeline.version, expected_version)
    before = PIPELINE.dump(pipeline)
    current = {s.id: s for s in pipeline.stages}
    if len(stage_ids) != len(set(stage_ids)) or set(stage_ids) != set(current):
        raise ValidationFailed("stage_ids must list every stage of the pipeline exactly once",
                               loc=("body", "stage_ids"))
    await _renumber([current[i] for i in stage_ids])
    await session.flush()
    return await _changed_stages(session, actor, pipeline, before)
