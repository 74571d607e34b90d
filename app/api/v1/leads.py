from typing import Annotated, Literal
from uuid import UUID

import orjson
from fastapi import Query
from sqlalchemy import ColumnElement

from app.api.deps import SessionDep, require
from app.api.problems import AUTHED, CONFLICT, NOT_FOUND
from app.api.records import JSONBytes, record_routes
from app.api.routing import Router
from app.domain.auth.principal import Principal
from app.domain.auth.scopes import grants
from app.domain.deals.schemas import ConvertResult
from app.domain.errors import Forbidden
from app.domain.flows import lead_conversion
from app.domain.leads import service
from app.domain.leads.models import Lead
from app.domain.leads.schemas import LeadConvert, LeadCreate, LeadUpdate

router = Router(prefix="/v1/leads", tags=["leads"])
SORTS = {"created_at": Lead.created_at, "updated_at": Lead.updated_at, "last_name": Lead.last_name}


async def filters(
    status: Annotated[list[Literal["new", "working", "qualified", "disqualified", "converted"]] | None,
                      Query(description="any of these statuses")] = None,
    source: Annotated[str | None, Query(max_length=64)] = None,
    form_id: UUID | None = None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if status:
        where.append(Lead.status.in_(status))
    if source is not None:
        where.append(Lead.source == source)
    if form_id is not None:
        where.append(Lead.form_id == form_id)
    return where


record_routes(router, kind=service.LEAD, plural="leads", area="leads", create_schema=LeadCreate,
              update_schema=LeadUpdate, create=service.create, update=service.update, sorts=SORTS,
              searches="names, email addresses, phone numbers, company names and job titles",
              filters=filters, sort_doc="Sorts: created_at, updated_at, last_name.")


@router.post("/{record_id}/convert", response_model=ConvertResult, operation_id="convertLead",
             responses={**AUTHED, **NOT_FOUND, **CONFLICT})
async def convert_lead(record_id: UUID, body: LeadConvert, session: SessionDep,
                       who: Annotated[Principal, require("leads:write")]) -> JSONBytes:
    """Turn a lead into a contact (reused when its email or phone is already known), a company (reused
    by name) and optionally a deal, in one transaction. The lead becomes `converted`. Besides `leads:write`
    the caller needs `contacts:write`, and `companies:write` / `deals:write` when `create_company` /
    `create_deal` ask for those: 403 naming the missing ones."""
    needed = ["contacts:write"] + ["companies:write"] * body.create_company + ["deals:write"] * body.create_deal
    missing = [scope for scope in needed if not grants(who.scopes, scope)]
    if missing:
        raise Forbidden(f"Converting this lead needs the scopes {', '.join(missing)} as well", missing_scopes=missing)
    return JSONBytes(orjson.dumps(await lead_conversion.convert(session, who, record_id, body)))
