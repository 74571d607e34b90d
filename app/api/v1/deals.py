from datetime import date
from typing import Annotated, Literal
from uuid import UUID

import orjson
from fastapi import Query, Response
from sqlalchemy import ColumnElement

from app.api.deps import AnyCaller, IfMatch, SessionDep, require
from app.api.problems import AUTHED, NOT_FOUND, PRECONDITION
from app.api.records import JSONBytes, one, record_routes
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain import kinds
from app.domain.auth.principal import Principal
from app.domain.deals import line_items, service
from app.domain.deals.models import Deal
from app.domain.deals.schemas import (
    DealCreate,
    DealUpdate,
    LineItemCreate,
    LineItemRead,
    LineItemUpdate,
    StageMoveRead,
)
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


DealsReader = Annotated[Principal, require("deals:read")]
DealsWriter = Annotated[Principal, require("deals:write")]


@router.get("/{record_id}/line-items", response_model=ListPage[LineItemRead], operation_id="listDealLineItems",
            responses={**AUTHED, **NOT_FOUND})
async def list_line_items(record_id: UUID, session: SessionDep, who: DealsReader) -> JSONBytes:
    """The deal's line items in order (`position`), for whoever may read the deal."""
    found = await line_items.list_items(session, who, record_id)
    return JSONBytes(orjson.dumps({"data": [line_items.dump(i) for i in found], "next_cursor": None}))


@router.post("/{record_id}/line-items", status_code=201, response_model=LineItemRead,
             operation_id="createDealLineItem", responses={**AUTHED, **NOT_FOUND})
async def create_line_item(record_id: UUID, body: LineItemCreate, session: SessionDep, who: DealsWriter) -> Response:
    """Add a line item. The deal's `value` becomes Σ round(quantity × unit_price × (1 − discount_percent/100))
    and its `value_with_tax` Σ round(item value × (1 + tax_rate/100)), each item rounded half-up to the minor
    unit of the deal's currency (JPY: none; BHD, KWD: 3 digits), in the same transaction, with a `deal.updated`
    event. With `product_id` and no `unit_price` the item takes the product's price in the deal's currency (422
    naming `unit_price` when it has none); a `unit_price` in another currency than the deal's is a 422."""
    item = await line_items.add(session, who, record_id, body)
    return one(line_items.dump(item), item.version, None, 201,
               {"Location": f"/v1/deals/{record_id}/line-items/{item.id}"})


@router.patch("/{record_id}/line-items/{item_id}", response_model=LineItemRead, operation_id="updateDealLineItem",
              responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def update_line_item(record_id: UUID, item_id: UUID, body: LineItemUpdate, session: SessionDep,
                           who: DealsWriter, expected: IfMatch) -> Response:
    """Change a line item (merge patch); the deal's value and value_with_tax follow at once."""
    item = await line_items.update(session, who, record_id, item_id, body, expected)
    return one(line_items.dump(item), item.version, None)


@router.delete("/{record_id}/line-items/{item_id}", status_code=204, response_class=Response,
               operation_id="deleteDealLineItem", responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_line_item(record_id: UUID, item_id: UUID, session: SessionDep, who: DealsWriter,
                           expected: IfMatch) -> Response:
    """Remove a line item; the deal's sums follow. Without items left, `value` stays as it was and
    `value_with_tax` is null."""
    await line_items.remove(session, who, record_id, item_id, expected)
    return Response(status_code=204)
