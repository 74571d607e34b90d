from typing import Annotated

from fastapi import Query
from sqlalchemy import ColumnElement

from app.api.metric_filters import metric_filters
from app.api.records import record_routes
from app.api.routing import Router
from app.domain.companies import service
from app.domain.companies.models import Company
from app.domain.companies.schemas import CompanyCreate, CompanyUpdate

router = Router(prefix="/v1/companies", tags=["companies"])
SORTS = {"created_at": Company.created_at, "updated_at": Company.updated_at, "name": Company.name}


async def filters(
    domain: Annotated[str | None, Query(max_length=253)] = None,
    industry: Annotated[str | None, Query(max_length=100)] = None,
    by_metrics: list[ColumnElement[bool]] = metric_filters(Company),
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = list(by_metrics)
    if domain is not None:
        where.append(Company.domain == domain.lower())
    if industry is not None:
        where.append(Company.industry == industry)
    return where


record_routes(router, kind=service.COMPANY, plural="companies", area="companies", create_schema=CompanyCreate,
              update_schema=CompanyUpdate, create=service.create, update=service.update, sorts=SORTS,
              searches="names, domains and phone numbers",
              filters=filters, sort_doc="Sorts: created_at, updated_at, name.")
