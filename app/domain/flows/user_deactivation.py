"""A user deactivated: they can no longer log in, and with an heir their open leads, open deals, contacts and
open tasks go to that colleague, events written, in one transaction."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities import service as activities
from app.domain.auth import users
from app.domain.auth.models import User
from app.domain.auth.principal import Principal
from app.domain.contacts import service as contacts
from app.domain.deals import service as deals
from app.domain.leads import service as leads


async def deactivate(session: AsyncSession, actor: Principal, user_id: UUID, reassign_to: UUID | None) -> User:
    """The org's row is held first (an owner always remains; the locking rule in `app.domain.flows`), then the
    records change hands in one UPDATE per kind."""
    user, deactivated = await users.deactivate(session, actor, user_id, reassign_to)
    if deactivated and reassign_to is not None:
        for area in (leads, deals, contacts, activities):
            await area.reassign(session, actor, user_id, reassign_to)
    return user
