"""Messages sent by workers one at a time, email and SMS alike: a `queued` row is leased by one worker, handed
over (SMTP server, SMS gateway), then recorded `sent`, `failed`, or queued again after a back-off
(`CRM_MAIL_RETRY_SCHEDULE`), with `<object>.sent` / `<object>.failed` in the same commit. A worker dying
between the hand-over and the record leaves the lease to expire: the message goes again (at least once)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.domain.events import service as events

SYSTEM = {"type": "system", "id": None}


def _now() -> datetime:
    return datetime.now(UTC)


async def due(session: AsyncSession, model: Any, limit: int = 1000) -> list[tuple[UUID, UUID]]:
    """Queued rows whose time came and whose lease (if any) expired: new, retried, or left by a dead worker."""
    now = _now()
    rows = await session.execute(select(model.org_id, model.id).where(
        model.status == "queued", model.next_attempt_at <= now,
        or_(model.leased_until.is_(None), model.leased_until < now)).order_by(model.next_attempt_at).limit(limit))
    return [(r.org_id, r.id) for r in rows]


async def lease(db: Database, model: Any, org_id: UUID, row_id: UUID, seconds: float) -> Any | None:
    """The row, leased to this worker; None when it is not due, not queued, or another worker holds it."""
    now = _now()
    async with db.for_org(org_id) as session:
        return (await session.execute(
            update(model).where(model.org_id == org_id, model.id == row_id, model.status == "queued",
                                model.next_attempt_at <= now,
                                or_(model.leased_until.is_(None), model.leased_until < now))
            .values(leased_until=now + timedelta(seconds=seconds))
            .returning(model).execution_options(synchronize_session=False))).scalar_one_or_none()


def not_sent(attempts: int, schedule: list[float], final: bool, error: str) -> tuple[str, dict[str, Any]]:
    """After a failed attempt: `failed` (a refusal, or the schedule is spent) or `retry in <s>`, with the row's
    new values."""
    if final or attempts > len(schedule):
        return "failed", {"status": "failed", "error": error[:500], "next_attempt_at": None, "attempts": attempts}
    delay = schedule[attempts - 1]
    return f"retry in {delay:g}", {"error": error[:500], "next_attempt_at": _now() + timedelta(seconds=delay),
                                   "attempts": attempts}


async def record(db: Database, model: Any, object_type: str, org_id: UUID, row_id: UUID, outcome: str,
                 values: dict[str, Any], dump: Callable[[Any], dict[str, Any]]) -> list[tuple[UUID, UUID]]:
    """The attempt's outcome, committed with its event when it is final. -> the events written."""
    async with db.for_org(org_id) as session:
        stored = (await session.execute(
            update(model).where(model.org_id == org_id, model.id == row_id)
            .values(**values, leased_until=None, updated_at=_now(), version=model.version + 1)
            .returning(model).execution_options(synchronize_session=False))).scalar_one()
        if outcome in ("sent", "failed"):
            await events.emit(session, SYSTEM, f"{object_type}.{outcome}", object_type, stored.id, org_id,
                              {"object": dump(stored)}, stored.version)
        return events.committed_event_ids(session)
