from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_org
from app.domain.audit import service as audit
from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.errors import NotFound
from app.domain.orgs.models import Org
from app.domain.orgs.schemas import OrgUpdate
from app.ids import new_id


async def create(session: AsyncSession, name: str) -> Org:
    """A new org; the transaction acts for it from here on (row-level security)."""
    org = Org(id=new_id(), name=name)
    await set_org(session, org.id)
    session.add(org)
    await session.flush()
    return org


async def get(session: AsyncSession, org_id: UUID) -> Org:
    org = await session.get(Org, org_id)
    if org is None or org.deleted_at is not None:
        raise NotFound("Organisation not found")
    return org


CLEARABLE = frozenset({"default_phone_region", "password_max_age_days", "max_marketing_per_week"})


async def update(session: AsyncSession, org_id: UUID, patch: OrgUpdate, expected_version: int | None,
                 who: Principal | None = None) -> Org:
    """Change settings; with `who`, the changed ones are audited (`settings.changed`, `{setting: [before, after]}`)."""
    org = await get(session, org_id)
    check_version(org.version, expected_version)
    changes: dict[str, list[object]] = {}
    for field, value in patch.model_dump(exclude_unset=True, mode="json").items():
        if value is None and field not in CLEARABLE:
            continue  # required settings cannot be cleared
        before = getattr(org, field)
        if before != value:
            changes[field] = [before, value]
        setattr(org, field, value)
    await session.flush()
    if who is not None and changes:
        await audit.record(session, who, "settings.changed", "org", org.id, changes)
    return org
