"""Timers fire in isolation: one that raises rolls back alone, is recorded with its error and is tried again
later with back-off; the others fire. Sweeps claim items with `NOT_WAITING` in their WHERE clause."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.reminders.models import TimerFailure

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)

# SQL condition on a claim aliased `t`: leaves out items waiting for their retry (binds :timer and :now).
NOT_WAITING = """NOT EXISTS (SELECT 1 FROM timer_failures f WHERE f.org_id = t.org_id AND f.timer = :timer
                 AND f.item_id = t.id AND f.next_attempt_at > :now)"""

Fire = Callable[[UUID, list[UUID]], Awaitable[int]]


async def fire_each(session: AsyncSession, timer: str, now: datetime, items: Iterable[tuple[UUID, UUID]],
                    fire: Fire) -> int:
    """`fire(org_id, ids)` for each organisation's items inside a savepoint; when it raises, once more item by
    item, each in its own savepoint, so that only the failing ones roll back. -> what `fire` counted."""
    by_org: dict[UUID, list[UUID]] = defaultdict(list)
    for org_id, item_id in items:
        by_org[org_id].append(item_id)
    count = 0
    for org_id, ids in by_org.items():
        try:
            async with session.begin_nested():
                count += await fire(org_id, ids)
            fired = ids
        except Exception:  # noqa: BLE001 - find the item(s) that raise; the others fire
            fired = []
            for item_id in ids:
                try:
                    async with session.begin_nested():
                        count += await fire(org_id, [item_id])
                    fired.append(item_id)
                except Exception as exc:  # noqa: BLE001 - recorded and retried; never blocks the rest
                    await _record(session, timer, org_id, item_id, exc, now)
        if fired:
            await session.execute(delete(TimerFailure).where(
                TimerFailure.org_id == org_id, TimerFailure.timer == timer, TimerFailure.item_id.in_(fired)))
    return count


def _describe(exc: Exception) -> str:
    """The error's kind and message; for the database, its kind and SQLSTATE (never the SQL or the values)."""
    if isinstance(exc, StatementError):
        orig = exc.orig
        return f"{type(orig).__name__}: SQLSTATE {getattr(orig, 'sqlstate', None) or 'unknown'}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


async def _record(session: AsyncSession, timer: str, org_id: UUID, item_id: UUID, exc: Exception,
                  now: datetime) -> None:
    before = await session.scalar(select(TimerFailure.attempts).where(
        TimerFailure.org_id == org_id, TimerFailure.timer == timer, TimerFailure.item_id == item_id))
    attempts = (before or 0) + 1
    retry_at = now + min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)
    error = _describe(exc)
    await session.execute(
        insert(TimerFailure).values(org_id=org_id, timer=timer, item_id=item_id, attempts=attempts, last_error=error,
                                    next_attempt_at=retry_at, first_failed_at=now)
        .on_conflict_do_update(index_elements=["org_id", "timer", "item_id"],
                               set_={"attempts": attempts, "last_error": error, "next_attempt_at": retry_at}))
    session.info.setdefault("timer_failures", []).append(
        {"timer": timer, "org_id": str(org_id), "item_id": str(item_id), "attempts": attempts, "error": error})


def failures(session: AsyncSession) -> list[dict[str, object]]:
    """The timers that failed in this session (for the worker's log)."""
    return session.info.pop("timer_failures", [])
