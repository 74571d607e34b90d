from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.concurrency import check_version
from app.domain.errors import NotFound
from app.domain.orgs.models import Org
from app.domain.orgs.schemas import OrgUpdate


async def create(session: AsyncSession, name: str) -> Org:
    org = Org(name=name)
    session.add(org)
    await session.flush()
    return org


async def get(session: AsyncSession, org_id: UUID) -> Org:
    org = await session.get(Org, org_id)
    if org is None or org.deleted_at is not None:
        raise NotFound("Organisation not found")
    return org


async def update(session: AsyncSession, org_id: UUID, patch: OrgUpdate, expected_version: int | None) -> Org:
    org = await get(session, org_id)
    check_version(org.version, expected_version)
    for field, value in patch.model_dump(exclude_unset=True).items():
        if value is None and field != "default_phone_region":
            continue  # required settings cannot be cleared
        setattr(org, field, value)
    await session.flush()
    return org
