from datetime import date
from typing import Annotated, Literal
from uuid import UUID

import orjson
from fastapi import Query
from sqlalchemy import ColumnElement

from app.api.deps import AnyCaller, SessionDep, require
from app.api.problems import AUTHED, NOT_FOUND
from app.api.records import JSONBytes, record_routes
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain import kinds
from app.domain.auth.principal import Principal
from app.domain.deals import service
from app.domain.deals.models import Deal
from app.domain.deals.schemas import DealCreate, DealUpdate, StageMoveRead
from app.domain.listing import belongs_to
from app.domain.pipelines.schemas import ForecastCategory

router = Router(prefix="/v1/deals", tags=["deals"])
SEARCHES = "titles"
SORTS = {"created_at": Deal.created_at, "updated_at": Deal.updated_at, "value": Deal.value_amount,
         "expected_close_date": Deal.expected_close_date, "stage_entered_at": Deal.stage_entered_at}


async def filters(
    who: AnyCaller,
    pipeline_id: UUID | None = None,
    stage_id: UUID | None = None,
    status: Literal["open", "won", "lost"] | None = None,
    forecast_category: ForecastCategory | None = None,
    contact_id: UUID | None = None,
    company_id: UUID | None = None,
    expected_close_after: Annotated[date | None, Query(description="inclusive")] = None,
    expected_close_before: Annotated[date | None, Query(description="exclusive")] = None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    for column, value in ((Deal.pipeline_id, pipeline_id), (Deal.stage_id, stage_id), (Deal.status, status),
                          (Deal.forecast_category, forecast_category)):
        if value is not None:
            where.append(column == value)
    for parent, value in ((kinds.CONTACT, contact_id), (kinds.COMPANY, company_id)):
        if value is not None:
            where.append(belongs_to(getattr(Deal, f"{parent.object_type}_id"), parent, value, who))
    if expected_close_after is not None:
        where.append(Deal.expected_close_date >= expected_close_after)
    if expected_close_before is not None:
        where.append(Deal.expected_close_date < expected_close_before)
    return where


record_routes(router, kind=service.DEAL, plural="deals", area="deals", create_schema=DealCreate,
              update_schema=DealUpdate, create=service.create, update=service.update, sorts=SORTS, filters=filters,
              searches=SEARCHES,
              sort_doc="Sorts: created_at, updated_at, value, expected_close_date, stage_entered_at. "
                       "A pipeline board: `?pipeline_id=...&status=open` grouped by `stage_id`.")


@router.get("/{record_id}/stage-history", response_model=ListPage[StageMoveRead],
            operation_id="getDealStageHistory", responses={**AUTHED, **NOT_FOUND})
async def stage_history(record_id: UUID, session: SessionDep,
                        who: Annotated[Principal, require("deals:read")]) -> JSONBytes:
    """Every stage the deal went through, oldest first: who moved it, when, and how long it sat before."""
    moves = await service.history(session, who, record_id)
    data = [StageMoveRead.model_validate(m).model_dump(mode="json") for m in moves]
    return JSONBytes(orjson.dumps({"data": data, "next_cursor": None}))
