"""Round-robin assignment, one rule for every intake that hands new work to people (forms, shared mailboxes,
telephony): among the listed users who are active and not out of office, in their listed order, each taking
the next turn of a counter the caller keeps (a row's `round_robin` column, or a counter in Redis). With nobody
available: the caller's fallback, then the organisation's first active owner or admin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.models import Role, User

Turn = Callable[[], Awaitable[int]]  # -> the next turn, 1, 2, 3, ...


async def available(session: AsyncSession, org_id: UUID, candidates: Sequence[UUID]) -> list[UUID]:
    """The candidates who can take work now, in their listed order."""
    if not candidates:
        return []
    present = set(await session.scalars(select(User.id).where(
        User.org_id == org_id, User.id.in_(candidates), User.active.is_(True), User.out_of_office.is_(False),
        User.deleted_at.is_(None))))
    return [u for u in candidates if u in present]


async def first_admin(session: AsyncSession, org_id: UUID) -> UUID | None:
    return await session.scalar(select(User.id).where(
        User.org_id == org_id, User.active.is_(True), User.deleted_at.is_(None),
        User.role.in_([Role.owner.value, Role.admin.value])).order_by(User.created_at).limit(1))


async def next_assignee(session: AsyncSession, org_id: UUID, candidates: Sequence[UUID], turn: Turn,
                        fallback: UUID | None = None, eligible: list[UUID] | None = None) -> UUID | None:
    """The user whose turn it is (the counter moves only when someone is available). `eligible`: what
    `available` answers for `candidates`, when the caller read it already."""
    if eligible is None:
        eligible = await available(session, org_id, candidates)
    if not eligible:
        return fallback or await first_admin(session, org_id)
    return eligible[(await turn() - 1) % len(eligible)]
