"""The 15-minute rule: at the call task's due time, if it is not done, escalate once."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities import service as activities
from app.domain.activities.models import Activity
from app.domain.auth.models import Role, User
from app.domain.auth.principal import Principal
from app.domain.contacts.service import CONTACT
from app.domain.events import service as events
from app.domain.forms.models import Form, SlaTimer
from app.domain.leads.service import LEAD
from app.domain.reminders import isolation

_DUE = f"""
SELECT t.org_id, t.id FROM sla_timers t
WHERE t.fired_at IS NULL AND t.due_at <= :now AND {isolation.NOT_WAITING}
ORDER BY t.due_at LIMIT :limit FOR UPDATE SKIP LOCKED
"""
TIMER = "lead.sla_breached"


async def fire(session: AsyncSession, now: datetime, limit: int = 200) -> int:
    """Check every call-back promise whose time has come, once; one that fails to escalate is recorded and
    retried later without holding up the others. -> how many were breached."""
    due = (await session.execute(text(_DUE), {"now": now, "limit": limit, "timer": TIMER})).all()

    async def check(org_id: UUID, ids: list[UUID]) -> int:
        breached = 0
        for timer_id in ids:
            timer = await session.get(SlaTimer, (org_id, timer_id), populate_existing=True)
            timer.fired_at = now
            task = await session.get(Activity, (org_id, timer.activity_id))
            done_in_time = task is not None and task.done_at is not None and task.done_at <= timer.due_at
            timer.breached = not done_in_time and task is not None and task.deleted_at is None
            if timer.breached:
                await _escalate(session, timer, task, now)
                breached += 1
        await session.flush()
        return breached

    return await isolation.fire_each(session, TIMER, now, due, check)


async def _active(session: AsyncSession, org_id: UUID, user_id: UUID | None) -> bool:
    return user_id is not None and await session.scalar(select(User.id).where(
        User.org_id == org_id, User.id == user_id, User.active.is_(True), User.deleted_at.is_(None))) is not None


async def _recipients(session: AsyncSession, org_id: UUID, form: Form | None, task: Activity) -> list[UUID]:
    """The form's escalation user, else the assignee's manager; when that one is not an active user (left,
    deactivated), the organisation's active owners and admins."""
    target = form.escalate_to if form is not None and form.escalate_to else None
    if target is None and task.assignee_id:
        target = await session.scalar(select(User.manager_id).where(User.org_id == org_id,
                                                                    User.id == task.assignee_id))
    if await _active(session, org_id, target):
        return [target]
    return list(await session.scalars(select(User.id).where(
        User.org_id == org_id, User.active.is_(True), User.deleted_at.is_(None),
        User.role.in_([Role.owner.value, Role.admin.value])).order_by(User.created_at, User.id)))


async def _escalate(session: AsyncSession, timer: SlaTimer, task: Activity, now: datetime) -> None:
    form = await session.get(Form, (timer.org_id, timer.form_id))
    notify = await _recipients(session, timer.org_id, form, task)
    minutes = form.sla_minutes if form is not None else None
    title = f"Not called back in time: {task.subject}"
    system = Principal(timer.org_id, "form", timer.form_id, Role.admin, frozenset(["*"]), notify[0] if notify else None)
    if notify:
        await activities.create(session, system, {
            "type": "task", "subject": f"Escalation: {task.subject}"[:300], "priority": "high", "due_at": now,
            "assignee_id": notify[0], "owner_id": notify[0], "lead_id": timer.lead_id, "contact_id": timer.contact_id,
            "deal_id": timer.deal_id,
            "body": f"The call-back task was due {minutes} minutes after the submission and is not done."})
    kind, object_id = (LEAD, timer.lead_id) if timer.lead_id else (CONTACT, timer.contact_id)
    record = await kind.get(session, timer.org_id, object_id, include_deleted=True)
    data: dict[str, Any] = {"object": kind.dump(record), "notify": [str(u) for u in notify], "title": title,
                            "activity_id": str(task.id), "form_id": str(timer.form_id),
                            "assignee_id": str(task.assignee_id) if task.assignee_id else None}
    await events.emit(session, {"type": "system", "id": None}, "lead.sla_breached", kind.object_type, object_id,
                      timer.org_id, data, record.version)
