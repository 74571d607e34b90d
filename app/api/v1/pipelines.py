from typing import Annotated
from uuid import UUID

import orjson
from fastapi import Depends, Path, Query, Request, Response, status
from sqlalchemy import ColumnElement

from app.api.deps import IfMatch, PageDep, SessionDep, conditional, require
from app.api.problems import AUTHED, CONFLICT, NOT_FOUND, PRECONDITION
from app.api.records import FieldsQuery, JSONBytes, filter_query, one, parse_fields, shape
from app.api.routing import Router
from app.api.schemas import ListPage
from app.api.v1 import deals as deal_routes
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.deals import board
from app.domain.deals.board import BoardSummary
from app.domain.deals.service import DEAL
from app.domain.flows import pipeline_deletion, stage_change, stage_deletion
from app.domain.listing import ListQuery
from app.domain.pipelines import service
from app.domain.pipelines.schemas import (
    PipelineCreate,
    PipelineRead,
    PipelineUpdate,
    StageCreate,
    StageRead,
    StageReorder,
    StageUpdate,
)

router = Router(prefix="/v1/pipelines", tags=["pipelines"])
Reader = Annotated[Principal, require("pipelines:read")]
Admin = Annotated[Principal, require("pipelines:write", Role.admin)]
P = service.PIPELINE


def _stage(stage: object) -> dict:
    return StageRead.model_validate(stage).model_dump(mode="json")


DealFilters = Annotated[ListQuery, Depends(filter_query(DEAL, deal_routes.SEARCHES))]


@router.get("/{id}/summary", response_model=BoardSummary, operation_id="getPipelineSummary",
            summary="Board totals per stage", responses={**AUTHED, **NOT_FOUND})
async def pipeline_summary(board_id: Annotated[UUID, Path(alias="id", description="the pipeline")], session: SessionDep, who: Annotated[Principal, require("deals:read")],
                           query: DealFilters,
                           where: Annotated[list[ColumnElement[bool]], Depends(deal_routes.filters)]) -> JSONBytes:
    """A board's column totals in one request: for every stage of the pipeline, in order, the number of deals
    and their value, under the same filters as `GET /v1/deals` (`owner_id=me`, `q`, `status`, ...). Values are
    summed in the pipeline's currency; deals valued in another currency are totalled apart, per currency.
    Together with `GET /v1/deals?pipeline_id=...&expand=contact,owner` a board takes two requests."""
    pipeline = await service.get(session, who.org_id, board_id)
    return JSONBytes(orjson.dumps(await board.summary(session, who, pipeline, query, where)))


@router.get("", response_model=ListPage[PipelineRead], operation_id="listPipelines", responses=AUTHED)
async def list_pipelines(session: SessionDep, who: Reader, page: PageDep, fields: FieldsQuery = None) -> JSONBytes:
    """Pipelines with their stages in order. Sorts: created_at, updated_at, name."""
    wanted = parse_fields(PipelineRead, fields)
    result = await service.list_page(session, who.org_id, page)
    return JSONBytes(orjson.dumps({"data": [shape(P.dump(p), wanted) for p in result.items],
                                   "next_cursor": result.next_cursor}))


@router.post("", status_code=201, response_model=PipelineRead, operation_id="createPipeline",
             responses={**AUTHED, **CONFLICT})
async def create_pipeline(body: PipelineCreate, session: SessionDep, who: Admin) -> Response:
    """Create a pipeline with its stages inline (at least one open, one won and one lost stage). Admins."""
    pipeline = await service.create(session, who, body)
    return one(P.dump(pipeline), pipeline.version, None, 201, {"Location": f"/v1/pipelines/{pipeline.id}"})


@router.get("/{pipeline_id}", response_model=PipelineRead, operation_id="getPipeline",
            responses={**AUTHED, **NOT_FOUND})
async def get_pipeline(pipeline_id: UUID, request: Request, session: SessionDep, who: Reader,
                       fields: FieldsQuery = None) -> Response:
    """A pipeline with its stages in board order. `ETag` for conditional reads and writes."""
    wanted = parse_fields(PipelineRead, fields)
    pipeline = await service.get(session, who.org_id, pipeline_id)
    conditional(request, pipeline.version)
    return one(P.dump(pipeline), pipeline.version, wanted)


@router.patch("/{pipeline_id}", response_model=PipelineRead, operation_id="updatePipeline",
              responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def update_pipeline(pipeline_id: UUID, body: PipelineUpdate, session: SessionDep, who: Admin,
                          expected: IfMatch) -> Response:
    """Rename, change currency, or make it the default (the previous default stops being one)."""
    pipeline = await service.update_pipeline(session, who, pipeline_id, body, expected)
    return one(P.dump(pipeline), pipeline.version, None)


@router.delete("/{pipeline_id}", status_code=204, response_class=Response, operation_id="deletePipeline",
               responses={**AUTHED, **NOT_FOUND, **CONFLICT, **PRECONDITION})
async def delete_pipeline(pipeline_id: UUID, session: SessionDep, who: Admin, expected: IfMatch) -> Response:
    """Only a pipeline without deals, and not the default one (409 otherwise)."""
    await pipeline_deletion.delete_pipeline(session, who, pipeline_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{pipeline_id}/stages", response_model=ListPage[StageRead], operation_id="listStages",
            responses={**AUTHED, **NOT_FOUND})
async def list_stages(pipeline_id: UUID, session: SessionDep, who: Reader) -> JSONBytes:
    """The pipeline's stages in board order (position 0 first)."""
    pipeline = await service.get(session, who.org_id, pipeline_id)
    return JSONBytes(orjson.dumps({"data": [_stage(s) for s in pipeline.stages], "next_cursor": None}))


@router.post("/{pipeline_id}/stages", status_code=201, response_model=StageRead, operation_id="createStage",
             responses={**AUTHED, **NOT_FOUND})
async def create_stage(pipeline_id: UUID, body: StageCreate, session: SessionDep, who: Admin) -> Response:
    """Add a stage at `position` (default: last); later stages shift."""
    stage = await service.add_stage(session, who, pipeline_id, body)
    return one(_stage(stage), stage.version, None, 201)


@router.patch("/{pipeline_id}/stages/{stage_id}", response_model=StageRead, operation_id="updateStage",
              responses={**AUTHED, **NOT_FOUND, **CONFLICT, **PRECONDITION})
async def update_stage(pipeline_id: UUID, stage_id: UUID, body: StageUpdate, session: SessionDep, who: Admin,
                       expected: IfMatch) -> Response:
    """Rename, change probability, rotting days or forecast category; changing the kind of a stage holding
    deals is a 409."""
    stage = await stage_change.update_stage(session, who, pipeline_id, stage_id, body, expected)
    return one(_stage(stage), stage.version, None)


@router.delete("/{pipeline_id}/stages/{stage_id}", status_code=204, response_class=Response,
               operation_id="deleteStage", responses={**AUTHED, **NOT_FOUND, **CONFLICT})
async def delete_stage(pipeline_id: UUID, stage_id: UUID, session: SessionDep, who: Admin,
                       move_deals_to: Annotated[UUID | None, Query(description="stage to move the stage's deals to")] = None,
                       ) -> Response:
    """A stage holding deals needs `move_deals_to` (409 otherwise); each move is recorded in stage history."""
    await stage_deletion.delete_stage(session, who, pipeline_id, stage_id, move_deals_to)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{pipeline_id}/stages/reorder", response_model=PipelineRead, operation_id="reorderStages",
             responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def reorder_stages(pipeline_id: UUID, body: StageReorder, session: SessionDep, who: Admin,
                         expected: IfMatch) -> Response:
    """Put the stages in the given order (every stage exactly once)."""
    pipeline = await service.reorder_stages(session, who, pipeline_id, body.stage_ids, expected)
    return one(P.dump(pipeline), pipeline.version, None)
