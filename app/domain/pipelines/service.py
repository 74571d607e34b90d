"""Pipelines and their ordered stages. Every pipeline keeps an open, a won and a lost stage.

Every write here holds the pipeline exclusively (the locking rule in `app.domain.flows`); what also depends on
the pipeline's deals (deleting a stage or the pipeline, changing a stage's kind) is a flow in that package."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import locks
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
        await _clear_default(session, actor, org_id)
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
    """The stages in the order of their `position`s (any integers, gaps allowed; ties keep the order given),
    those without one last in the order given. They are stored as 0..n-1."""
    return sorted(stages, key=lambda s: (s.position is None, s.position or 0))


async def create(session: AsyncSession, actor: Principal, body: PipelineCreate) -> Pipeline:
    return await _insert(session, actor, actor.org_id, body)


async def _clear_default(session: AsyncSession, actor: Principal | None, org_id: UUID) -> None:
    """The current default stops being one: a write to it like any other, with its `pipeline.updated`."""
    old = await session.scalar(
        update(Pipeline).where(Pipeline.org_id == org_id, Pipeline.is_default.is_(True), Pipeline.deleted_at.is_(None))
        .values(is_default=False, version=Pipeline.version + 1).returning(Pipeline)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if old is not None:
        await PIPELINE.emit(session, actor, old, "updated", previous={"is_default": True})


async def get(session: AsyncSession, org_id: UUID, pipeline_id: UUID, include_deleted: bool = False) -> Pipeline:
    return await PIPELINE.get(session, org_id, pipeline_id, include_deleted)


async def list_page(session: AsyncSession, org_id: UUID, page: PageRequest) -> Page[Pipeline]:
    return await keyset_page(session, PIPELINE.scoped(org_id), page, SORTS, Pipeline.id)


async def default_pipeline(session: AsyncSession, org_id: UUID) -> Pipeline | None:
    return await session.scalar(PIPELINE.scoped(org_id).where(Pipeline.is_default.is_(True)))


async def held(session: AsyncSession, org_id: UUID, pipeline_id: UUID) -> Pipeline:
    """The pipeline, held exclusively for a change (deal moves wait until the transaction ends)."""
    pipeline = await locks.pipeline_exclusive(session, org_id, pipeline_id)
    if pipeline is None:
        raise NotFound("Pipeline not found")
    return pipeline


async def update_pipeline(session: AsyncSession, actor: Principal, pipeline_id: UUID, patch: PipelineUpdate,
                          expected_version: int | None) -> Pipeline:
    pipeline = await held(session, actor.org_id, pipeline_id)
    check_version(pipeline.version, expected_version)
    before = PIPELINE.dump(pipeline)
    changes = {k: v for k, v in patch.model_dump(exclude_unset=True).items() if v is not None}
    if changes.get("is_default") is False and pipeline.is_default:
        raise ValidationFailed("make another pipeline the default instead", loc=("body", "is_default"))
    if changes.get("is_default") and not pipeline.is_default:
        await _clear_default(session, actor, actor.org_id)
    for key, value in changes.items():
        setattr(pipeline, key, value)
    return await PIPELINE.updated(session, actor, pipeline, before)


def check_deletable(pipeline: Pipeline, expected_version: int | None) -> None:
    check_version(pipeline.version, expected_version)
    if pipeline.is_default:
        raise Conflict("The default pipeline cannot be deleted; make another one the default first")


async def delete_pipeline(session: AsyncSession, actor: Principal, pipeline: Pipeline) -> None:
    """Soft-delete a pipeline the caller holds and has checked (it holds no deals)."""
    pipeline.deleted_at = datetime.now(UTC)
    await session.flush()
    await PIPELINE.emit(session, actor, pipeline, "deleted")


# --- stages -------------------------------------------------------------------------------------------


def stage_of(pipeline: Pipeline, stage_id: UUID) -> Stage:
    """A live stage of a pipeline (its stages were read when it was locked)."""
    stage = next((s for s in pipeline.stages if s.id == stage_id), None)
    if stage is None:
        raise NotFound("Stage not found")
    return stage


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
    pipeline = await held(session, actor.org_id, pipeline_id)
    before = PIPELINE.dump(pipeline)
    stages = list(pipeline.stages)
    stage = Stage(org_id=actor.org_id, pipeline_id=pipeline_id, name=body.name, probability=body.probability,
                  kind=body.kind, rotting_days=body.rotting_days, position=len(stages),
                  forecast_category=body.forecast_category or default_forecast_category(body.kind, body.probability))
    session.add(stage)
    place = len(stages) if body.position is None else max(0, min(body.position, len(stages)))
    stages.insert(place, stage)
    await _renumber(stages)
    await session.flush()
    await _changed_stages(session, actor, pipeline, before)
    return stage


def stage_changes(pipeline: Pipeline, stage: Stage, patch: StageUpdate, expected_version: int | None
                  ) -> dict[str, Any]:
    """The columns a stage patch sets, checked against the pipeline's stage rule."""
    check_version(stage.version, expected_version)
    changes = {k: v for k, v in patch.model_dump(exclude_unset=True).items() if v is not None or k == "rotting_days"}
    if "kind" in changes and changes["kind"] != stage.kind:
        kinds = [changes["kind"] if s.id == stage.id else s.kind for s in pipeline.stages]
        try:
            check_stage_kinds(kinds)
        except ValueError as exc:
            raise ValidationFailed(str(exc), loc=("body", "kind")) from None
    on_default = stage.forecast_category == default_forecast_category(stage.kind, stage.probability)
    if "forecast_category" not in changes and (on_default or "forecast_category" in patch.model_fields_set):
        # null resets it; a stage still on its default follows the new kind / probability
        changes["forecast_category"] = default_forecast_category(changes.get("kind", stage.kind),
                                                                 changes.get("probability", stage.probability))
    return changes


async def change_stage(session: AsyncSession, actor: Principal, pipeline: Pipeline, stage: Stage,
                       changes: dict[str, Any]) -> Stage:
    """Apply checked `stage_changes` to a stage of a pipeline the caller holds."""
    before = PIPELINE.dump(pipeline)
    for key, value in changes.items():
        setattr(stage, key, value)
    await session.flush()
    await _changed_stages(session, actor, pipeline, before)
    return stage


def remaining_stages(pipeline: Pipeline, stage: Stage) -> list[Stage]:
    """The stages left once `stage` goes; 409 if they would break the stage rule."""
    rest = [s for s in pipeline.stages if s.id != stage.id]
    try:
        check_stage_kinds([s.kind for s in rest])
    except ValueError as exc:
        raise Conflict(str(exc)) from None
    return rest


async def remove_stage(session: AsyncSession, actor: Principal, pipeline: Pipeline, stage: Stage) -> None:
    """Soft-delete an empty stage of a pipeline the caller holds; the others close ranks."""
    before = PIPELINE.dump(pipeline)
    rest = remaining_stages(pipeline, stage)
    stage.deleted_at = datetime.now(UTC)
    await _renumber(rest)
    await session.flush()
    await _changed_stages(session, actor, pipeline, before)


async def reorder_stages(session: AsyncSession, actor: Principal, pipeline_id: UUID, stage_ids: list[UUID],
                         expected_version: int | None) -> Pipeline:
    pipeline = await held(session, actor.org_id, pipeline_id)
    check_version(pipeline.version, expected_version)
    before = PIPELINE.dump(pipeline)
    current = {s.id: s for s in pipeline.stages}
    if len(stage_ids) != len(set(stage_ids)) or set(stage_ids) != set(current):
        raise ValidationFailed("stage_ids must list every stage of the pipeline exactly once",
                               loc=("body", "stage_ids"))
    await _renumber([current[i] for i in stage_ids])
    await session.flush()
    return await _changed_stages(session, actor, pipeline, before)
