"""The event consumer: hands committed events to everything that reacts to them, exactly once.

A dispatch takes the events it was given and, with them, every other event of the org still waiting (oldest
first, up to DRAIN_LIMIT): under load one transaction fans out many commits' events, with one statement per
consumer rather than per event, and the jobs for events already taken find nothing left to do. Events are
claimed and marked in one statement (`FOR UPDATE SKIP LOCKED`): two workers never take the same event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.automations import service as automations
from app.domain.events.models import Event
from app.domain.notifications import service as notifications
from app.domain.webhooks import service as webhooks

RUNS = "automation_runs"
DRAIN_LIMIT = 500

_pick = (select(Event.id).where(Event.org_id == bindparam("org"), Event.dispatched_at.is_(None))
         .order_by((Event.id == any_(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))))).desc(),
                   Event.occurred_at, Event.id)
         .limit(bindparam("limit")).with_for_update(skip_locked=True))
# the pick is a materialized CTE: as an `IN (subquery)` PostgreSQL may run a LIMIT ... SKIP LOCKED subquery more
# than once and take more rows than the limit
_picked = _pick.cte("picked").prefix_with("MATERIALIZED")
_CLAIM = (update(Event).where(Event.org_id == bindparam("org"), Event.id == _picked.c.id)
          .values(dispatched_at=func.now())
          .returning(Event.org_id, Event.id, Event.type, Event.object_type, Event.object_id, Event.action,
                     Event.actor, Event.version, Event.data, Event.occurred_at)
          .execution_options(synchronize_session=False))


_CLAIM_THESE = _CLAIM.where(Event.id == any_(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True)))))
_WRITTEN = "event_ids"  # where `events.emit_many` leaves what a transaction wrote (`committed_event_ids`)


class Dispatched(NamedTuple):
    deliveries: list[tuple[UUID, UUID]]
    events: int  # how many waiting events were taken (DRAIN_LIMIT: there may be more)


async def dispatch_many(session: AsyncSession, org_id: UUID, event_ids: list[UUID],
                        limit: int = DRAIN_LIMIT) -> Dispatched:
    """Fan out these events and the org's other waiting ones (webhook deliveries, notifications, automation
    runs) and mark them dispatched, in the session's transaction. Events already dispatched, or being
    dispatched by another worker, are skipped. What the fan-out itself writes (`notification.created`) is
    dispatched in the same transaction, not left for another job. -> the new deliveries and how many events
    were taken; the runs are left in the session for the caller (`committed_runs`)."""
    claimed = (await session.execute(_CLAIM, {"org": org_id, "ids": list(event_ids), "limit": limit})).all()
    return Dispatched(await _fan_out(session, org_id, claimed), len(claimed))


async def dispatch(session: AsyncSession, org_id: UUID, event_id: UUID) -> list[tuple[UUID, UUID]] | None:
    """One event alone (and nothing else of the org). -> its deliveries, or None when it is unknown, already
    dispatched or being dispatched."""
    claimed = (await session.execute(_CLAIM_THESE, {"org": org_id, "ids": [event_id], "limit": 1})).all()
    if not claimed:
        return None
    return await _fan_out(session, org_id, claimed)


async def _fan_out(session: AsyncSession, org_id: UUID, claimed: list[Any]) -> list[tuple[UUID, UUID]]:
    deliveries: list[tuple[UUID, UUID]] = []
    for depth in range(3):  # events -> notification.created -> (nothing more today)
        if not claimed:
            break
        batch: list[Any] = sorted(claimed, key=lambda e: (e.occurred_at, e.id))
        before = len(session.info.get(_WRITTEN, []))
        deliveries += await webhooks.fan_out_many(session, org_id, batch)
        await notifications.from_events(session, org_id, batch)
        session.info.setdefault(RUNS, []).extend(await automations.from_events(session, org_id, batch))
        written = session.info.get(_WRITTEN, [])
        ours = [event_id for org, event_id in written[before:] if org == org_id]
        if not ours or depth == 2:  # left, at the bound, for the caller to hand over
            break
        written[before:] = [w for w in written[before:] if w[0] != org_id]
        claimed = (await session.execute(_CLAIM_THESE, {"org": org_id, "ids": ours, "limit": len(ours)})).all()
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
