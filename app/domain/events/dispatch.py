"""The event consumer: hands one committed event to everything that reacts to it, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.automations import service as automations
from app.domain.events.models import Event
from app.domain.notifications import service as notifications
from app.domain.webhooks import service as webhooks

RUNS = "automation_runs"


async def dispatch(session: AsyncSession, org_id: UUID, event_id: UUID) -> list[tuple[UUID, UUID]] | None:
    """Fan the event out (webhook deliveries, notifications, automation runs) and mark it dispatched, in one
    transaction. -> the new deliveries, or None when the event is unknown, already dispatched or being
    dispatched. The runs are left in the session for the caller (`committed_runs`)."""
    event = await session.scalar(
        select(Event).where(Event.org_id == org_id, Event.id == event_id, Event.dispatched_at.is_(None))
        .with_for_update(skip_locked=True))
    if event is None:
        return None
    deliveries = await webhooks.fan_out(session, event)
    await notifications.from_event(session, event)
    session.info.setdefault(RUNS, []).extend(await automations.from_event(session, event))
    event.dispatched_at = datetime.now(UTC)
    await session.flush()
    return deliveries


def committed_runs(session: AsyncSession) -> list[tuple[UUID, UUID]]:
    return session.info.pop(RUNS, [])


async def undispatched(session: AsyncSession, older_than_seconds: float, limit: int = 1000) -> list[tuple[UUID, UUID]]:
    """Events whose hand-over to the relay was lost (Redis down, crash between commit and enqueue)."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
    rows = await session.execute(
        select(Event.org_id, Event.id).where(Event.dispatched_at.is_(None), Event.occurred_at <= cutoff)
        .order_by(Event.occurred_at).limit(limit))
    return [(r.org_id, r.id) for r in rows]
