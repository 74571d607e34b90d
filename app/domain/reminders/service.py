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

SYSTEM = {"type": "system", "id": None}

_CLAIM = """
UPDATE activities a SET {mark} = :now
FROM (SELECT org_id, id FROM activities
      WHERE done_at IS NULL AND deleted_at IS NULL AND {mark} IS NULL AND {due} <= :now
      ORDER BY {due} LIMIT :limit FOR UPDATE SKIP LOCKED) due
WHERE a.org_id = due.org_id AND a.id = due.id
RETURNING a.org_id, a.id
"""


async def _fire(session: AsyncSession, mark: str, due: str, event_type: str, now: datetime, limit: int) -> int:
    claimed = (await session.execute(text(_CLAIM.format(mark=mark, due=due)), {"now": now, "limit": limit})).all()
    if not claimed:
        return 0
    by_org: dict[UUID, list[UUID]] = defaultdict(list)
    for org_id, activity_id in claimed:
        by_org[org_id].append(activity_id)
    for org_id, ids in by_org.items():
        rows = await session.scalars(ACTIVITY.scoped(org_id).where(Activity.id.in_(ids)))
        await events.emit_many(session, SYSTEM, org_id, [
            (event_type, "activity", a.id, a.version, {"object": ACTIVITY.dump(a)}) for a in rows])
    return len(claimed)


async def fire_due(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    """`activity.due` once when `remind_at` (or `due_at` without one) has come and the activity is open."""
    return await _fire(session, "reminded_at", "coalesce(remind_at, due_at)", "activity.due", now, limit)


async def fire_overdue(session: AsyncSession, now: datetime, limit: int = 500) -> int:
    """`activity.overdue` once when `due_at` passed and the activity is still open."""
    return await _fire(session, "overdue_at", "due_at", "activity.overdue", now, limit)


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


