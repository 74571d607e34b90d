from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Path

from app.api.deps import PageDep, SessionDep, require
from app.api.problems import AUTHED, NOT_FOUND
from app.api.records import JSONBytes
from app.api.schemas import ListPage
from app.domain import kinds
from app.domain.auth.principal import Principal
from app.domain.custom_fields import service as custom_fields
from app.domain.custom_fields.schemas import ObjectName
from app.domain.schemas import ReadModel
from app.domain.timeline import service as timeline_service

router = APIRouter(tags=["schema and timeline"])


@router.get("/v1/schema/{object}", operation_id="getObjectSchema", responses=AUTHED,
            response_model=dict[str, Any])
async def object_schema(object: ObjectName, session: SessionDep,
                        who: Annotated[Principal, require("custom_fields:read")]) -> JSONBytes:
    """JSON Schema (2020-12) of the object as the API returns it, including the organisation's custom fields
    (types, options, required) under `custom_fields`, so a front end can render and validate forms."""
    defs = await custom_fields.definitions(session, who.org_id, object)
    read = kinds.named(object).read
    assert read is not None  # every kind with custom fields has its read model in the registry
    return JSONBytes(orjson.dumps(custom_fields.object_schema(read, defs, object)))


class TimelineEntry(ReadModel):
    id: UUID
    kind: Literal["activity", "stage_change", "email", "sms", "form_submission", "call", "document", "file"]
    occurred_at: str
    actor: dict[str, Any] | None
    summary: str
    object_type: str
    object_id: UUID
    data: dict[str, Any]


def _timeline_route(plural: str, object_type: str, area: str) -> None:
    reader = Annotated[Principal, require(f"{area}:read")]

    async def get_timeline(record_id: Annotated[UUID, Path()], session: SessionDep, who: reader,  # type: ignore[valid-type]
                           page: PageDep) -> JSONBytes:
        result = await timeline_service.timeline(session, who, object_type, record_id, page)
        # OPT_UTC_Z: times end in "Z", as pydantic writes them in every other response; default=str: the
        # driver's own UUID type
        return JSONBytes(orjson.dumps({"data": list(result.items), "next_cursor": result.next_cursor},
                                      option=orjson.OPT_UTC_Z, default=str))

    get_timeline.__doc__ = (f"The {object_type}'s history, newest first: activities and stage moves"
                            + (" (a contact's includes its deals' and leads'; a company's its contacts' and deals')"
                               if object_type in ("contact", "company") else "") + ". Keyset-paginated. "
                            "Only entries the credential may read elsewhere are shown, the others are left out "
                            "(not refused): activities need `activities:read`, stage moves `deals:read`, form "
                            "submissions `forms:read`, and entries reached through a related deal, lead or contact "
                            "need that kind's read scope too.")
    router.add_api_route(f"/v1/{plural}/{{record_id}}/timeline", get_timeline, methods=["GET"],
                         response_model=ListPage[TimelineEntry], operation_id=f"get{object_type.title()}Timeline",
                         tags=[plural], responses={**AUTHED, **NOT_FOUND})


for _kind in kinds.having("timeline"):
    _timeline_route(_kind.plural, _kind.object_type, _kind.plural)

