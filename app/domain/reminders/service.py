"""Timers that turn into events: reminders due, tasks overdue, contacts' birthdays. Each fires once."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities.models import Activity
from app.domain.activities.service import ACTIVITY
from app.domain.contacts.models import Contact
from app.domain.contacts.service import CONTACT
from app.domain.events import service as events
from app.domain.notifications.models import OnceMark
from app.domain.reminders import isolation

SYSTEM = {"type": "system", "id": None}

_DUE = """
SELECT t.org_id, t.id FROM activities t
WHERE t.done_at IS NULL AND t.deleted_at IS NULL AND t.{mark} IS NULL AND {due} <= :now AND {not_waiting}
ORDER BY {due} LIMIT :limit FOR UPDATE SKIP LOCKED
"""


async def _fire(session: AsyncSession, mark: str, due: str, event_type: str, now: datetime, limit: int) -> int:
    """Claim due activities (locked until commit) and announce them; each organisation's in one savepoint, an
    activity that fails alone in its own (see `isolation`)."""
    claimed = (await session.execute(text(_DUE.format(mark=mark, due=due, not_waiting=isolation.NOT_WAITING)),
                                     {"now": now, "limit": limit, "timer": event_type})).all()

    async def fire(org_id: UUID, ids: list[UUID]) -> int:
        await session.execute(text(f"UPDATE activities SET {mark} = :now WHERE org_id = :org AND id = ANY(:ids)"),
                              {"now": now, "org": org_id, "ids": ids})
        rows = await session.scalars(ACTIVITY.scoped(org_id).where(Activity.id.in_(ids))
                                     .execution_options(populate_existing=True))
        events_ = [(event_type, "activity", a.id, a.version, {"object": ACTIVITY.dump(a)}) for a in rows]
        await events.emit_many(session, SYSTEM, org_id, events_)
        return len(events_)

    return await isolation.fire_each(session, event_type, now, claimed, fire)


async def fire_due(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    """`activity.due` once when `remind_at` (or `due_at` without one) has come and the activity is open."""
    return await _fire(session, "reminded_at", "coalesce(t.remind_at, t.due_at)", "activity.due", now, limit)


async def fire_overdue(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    """`activity.overdue` once when `due_at` passed and the activity is still open."""
    return await _fire(session, "overdue_at", "t.due_at", "activity.overdue", now, limit)


_BIRTHDAYS = """
SELECT c.org_id, c.id, (CAST(:now AS timestamptz) AT TIME ZONE o.timezone)::date AS local_day
FROM orgs o JOIN contacts c ON c.org_id = o.id
WHERE c.birthday IS NOT NULL AND c.deleted_at IS NULL AND o.deleted_at IS NULL
  AND extract(hour FROM CAST(:now AS timestamptz) AT TIME ZONE o.timezone) >= :hour
  AND extract(month FROM c.birthday) = extract(month FROM CAST(:now AS timestamptz) AT TIME ZONE o.timezone)
  AND (extract(day FROM c.birthday) = extract(day FROM CAST(:now AS timestamptz) AT TIME ZONE o.timezone)
       OR (extract(month FROM c.birthday) = 2 AND extract(day FROM c.birthday) = 29
           AND extract(day FROM CAST(:now AS timestamptz) AT TIME ZONE o.timezone) = 28
           AND extract(day FROM (CAST(:now AS timestamptz) AT TIME ZONE o.timezone)::date + 1) = 1))
"""


async def fire_birthdays(session: AsyncSession, now: datetime, hour: int) -> int:
    """`contact.birthday` from `hour` o'clock in the org's time zone on the birthday (Feb 29 → Feb 28), once a year."""
    found = (await session.execute(text(_BIRTHDAYS), {"now": now, "hour": hour})).all()
    if not found:
        return 0
    fresh: set[tuple[UUID, str]] = set()
    for chunk in _chunks(found, CHUNK):  # a busy day must not exceed a statement's parameter limit
        marks = [{"org_id": org_id, "key": f"birthday:{contact_id}:{day.isoformat()}"} for org_id, contact_id, day in chunk]
        fresh |= {(r.org_id, r.key) for r in (await session.execute(
            insert(OnceMark).values(marks).on_conflict_do_nothing().returning(OnceMark.org_id, OnceMark.key))).all()}
    by_org: dict[UUID, list[tuple[UUID, date]]] = defaultdict(list)
    for org_id, contact_id, local_day in found:
        if (org_id, f"birthday:{contact_id}:{local_day.isoformat()}") in fresh:
            by_org[org_id].append((contact_id, local_day))
    count = 0
    for org_id, items in by_org.items():
        for chunk in _chunks(items, CHUNK):
            days = dict(chunk)
            contacts = await session.scalars(CONTACT.scoped(org_id).where(Contact.id.in_(list(days))))
            rows: list[tuple[str, str, UUID, int | None, dict[str, Any]]] = [
                ("contact.birthday", "contact", c.id, c.version,
                 {"object": CONTACT.dump(c), "date": days[c.id].isoformat()}) for c in contacts]
            await events.emit_many(session, SYSTEM, org_id, rows)
            count += len(rows)
    return count


CHUNK = 2000


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


