"""In-app notifications: what a person must see (task assigned, reminder due, SLA breached, webhook off).

They are made by the event consumer, once per (event, person), and each writes `notification.created`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.models import Role, User
from app.domain.errors import NotFound
from app.domain.events import service as events
from app.domain.notifications.models import Notification
from app.domain.notifications.schemas import NotificationRead
from app.domain.pagination import Page, PageRequest, keyset_page
from app.ids import new_id

SORTS = {"created_at": Notification.created_at}


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


async def _admins(session: AsyncSession, org_id: UUID) -> list[UUID]:
    return list(await session.scalars(select(User.id).where(
        User.org_id == org_id, User.active.is_(True), User.deleted_at.is_(None),
        User.role.in_([Role.owner.value, Role.admin.value]))))


async def recipients(session: AsyncSession, event: Any) -> list[tuple[UUID, str, str]]:
    """-> [(user id, kind, title)] this event should tell someone."""
    obj = (event.data or {}).get("object") or {}
    actor_id = _uuid((event.actor or {}).get("id"))
    if event.type in ("activity.created", "activity.updated"):
        assignee = _uuid(obj.get("assignee_id"))
        newly = event.type == "activity.created" or "assignee_id" in ((event.data or {}).get("previous") or {})
        if assignee and newly and assignee != actor_id and obj.get("done_at") is None:
            return [(assignee, "task_assigned", f"New {obj.get('type', 'task')} for you: {obj.get('subject', '')}")]
    elif event.type == "activity.due":
        who = _uuid(obj.get("assignee_id")) or _uuid(obj.get("owner_id"))
        if who:
            return [(who, "reminder_due", f"Reminder: {obj.get('subject', '')}")]
    elif event.type == "lead.sla_breached":
        return [(u, "sla_breached", event.data.get("title") or "A lead was not called back in time")
                for u in (_uuid(x) for x in event.data.get("notify", [])) if u]
    elif event.type == "webhook.disabled":
        return [(u, "webhook_disabled", f"Webhook switched off: {obj.get('url', '')}")
                for u in await _admins(session, event.org_id)]
    elif event.type == "import.finished":
        who = _uuid(obj.get("created_by"))
        if who:
            return [(who, "import_finished", "Your import has finished")]
    return []


async def from_event(session: AsyncSession, event: Any) -> int:
    return await from_events(session, event.org_id, [event])


async def from_events(session: AsyncSession, org_id: UUID, batch: list[Any]) -> int:
    """The notifications a batch of one org's events calls for, once per (event, person), in one statement,
    with their `notification.created` events in one more. -> how many were made."""
    rows = []
    for event in batch:
        if event.type.startswith("notification."):
            continue
        rows += [{"org_id": org_id, "id": new_id(), "user_id": user_id, "kind": kind, "title": title[:300],
                  "object_type": event.object_type, "object_id": event.object_id, "source_event_id": event.id}
                 for user_id, kind, title in dict.fromkeys(await recipients(session, event))]
    if not rows:
        return 0
    created = (await session.scalars(  # executemany: pages of rows, never past the driver's parameter limit
        insert(Notification).on_conflict_do_nothing(
            index_elements=["org_id", "source_event_id", "user_id"]).returning(Notification), rows)).all()
    await events.emit_many(session, {"type": "system", "id": None}, org_id, [
        ("notification.created", "notification", n.id, None,
         {"object": {**NotificationRead.model_validate(n).model_dump(mode="json"), "user_id": str(n.user_id)}})
        for n in created
    ])
    return len(created)


async def list_page(session: AsyncSession, org_id: UUID, user_id: UUID, page: PageRequest,
                    unread: bool | None) -> Page[Notification]:
    stmt = select(Notification).where(Notification.org_id == org_id, Notification.user_id == user_id)
    if unread is not None:
        stmt = stmt.where(Notification.read_at.is_(None) if unread else Notification.read_at.is_not(None))
    return await keyset_page(session, stmt, page, SORTS, Notification.id)


async def mark_read(session: AsyncSession, org_id: UUID, user_id: UUID, notification_id: UUID) -> Notification:
    n = await session.scalar(select(Notification).where(
        Notification.org_id == org_id, Notification.user_id == user_id, Notification.id == notification_id))
    if n is None:
        raise NotFound("Notification not found")
    if n.read_at is None:
        n.read_at = datetime.now(UTC)
        await session.flush()
    return n


async def mark_all_read(session: AsyncSession, org_id: UUID, user_id: UUID) -> int:
    result = await session.execute(update(Notification).where(
        Notification.org_id == org_id, Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=datetime.now(UTC)))
    return result.rowcount or 0
