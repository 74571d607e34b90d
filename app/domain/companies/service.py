from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.companies.models import Company
from app.domain.companies.schemas import CompanyCreate, CompanyUpdate
from app.domain.concurrency import check_version
from app.domain.kinds import COMPANY as COMPANY_TYPE
from app.domain.records import Kind, apply, prepare_values

COMPANY: Kind[Company] = Kind.of(COMPANY_TYPE)


async def create(session: AsyncSession, actor: Principal, body: CompanyCreate, **server_fields: object) -> Company:
    return await COMPANY.created(session, actor, Company(**await new_values(session, actor, body, **server_fields)))


async def new_values(session: AsyncSession, actor: Principal, body: CompanyCreate,
                     **server_fields: object) -> dict[str, Any]:
    """A new company's column values, every rule checked (bulk writers insert them without an ORM object)."""
    values = await prepare_values(session, actor, "company", body.model_dump(mode="python"))
    values["domain"] = values["domain"].lower() if values.get("domain") else None
    return {"org_id": actor.org_id, **values, **server_fields}


async def update(session: AsyncSession, actor: Principal, company_id: UUID, patch: CompanyUpdate,
                 expected_version: int | None) -> Company:
    company = await COMPANY.get(session, actor, company_id, for_update=True)
    check_version(company.version, expected_version)
    before = COMPANY.dump(company)
    values = await prepare_values(session, actor, "company", patch.model_dump(exclude_unset=True), company)
    if values.get("domain"):
        values["domain"] = values["domain"].lower()
    apply(company, values, required=("name",))
    return await COMPANY.updated(session, actor, company, before)
