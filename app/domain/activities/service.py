"""Tasks, calls, meetings, notes and logged emails, linked to the records they are about."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities.models import Activity
from app.domain.activities.schemas import ActivityCreate, ActivityUpdate
from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.kinds import ACTIVITY as ACTIVITY_TYPE
from app.domain.kinds import having
from app.domain.leads import service as leads
from app.domain.records import Kind, apply, prepare_values, reassign_owner, require_ref, require_user

ACTIVITY: Kind[Activity] = Kind.of(ACTIVITY_TYPE)
# the records an activity can be about: an `<object_type>_id` column per kind the registry flags
REFS = tuple((f"{t.object_type}_id", Kind.of(t)) for t in having("activity_ref"))


async def _check(session: AsyncSession, actor: Principal, values: dict[str, Any], current: Activity | None) -> None:
    for field, kind in REFS:
        if values.get(field) and (current is None or getattr(current, field) != values[field]):
            await require_ref(session, kind, actor, values[field], field)
    if values.get("assignee_id") and (current is None or current.assignee_id != values["assignee_id"]):
        await require_user(session, actor.org_id, values["assignee_id"], "assignee_id")


async def create(session: AsyncSession, actor: Principal, body: ActivityCreate | dict[str, Any],
                 responds: bool = True) -> Activity:
    """`responds=False`: a done activity that is no response to a lead (a logged missed call from it)."""
    data = body.model_dump(mode="python") if isinstance(body, ActivityCreate) else dict(body)
    if data.get("assignee_id") is None and data["type"] in ("task", "call", "meeting"):
        data["assignee_id"] = data.get("owner_id") or actor.user_id
    values = await prepare_values(session, actor, "activity", data)
    await _check(session, actor, values, None)
    activity = await ACTIVITY.created(session, actor, Activity(org_id=actor.org_id, **values))
    if activity.done_at is not None:
        await _completed(session, actor, activity, responds=responds)
    return activity


async def update(session: AsyncSession, actor: Principal, activity_id: UUID, patch: ActivityUpdate,
                 expected_version: int | None) -> Activity:
    activity = await ACTIVITY.get(session, actor, activity_id, for_update=True)
    check_version(activity.version, expected_version)
    before = ACTIVITY.dump(activity)
    was_done = activity.done_at is not None
    values = await prepare_values(session, actor, "activity", patch.model_dump(exclude_unset=True), activity)
    await _check(session, actor, values, activity)
    apply(activity, values, required=("type", "subject", "priority"))
    _rearm_timers(activity, values)
    now_done = activity.done_at is not None and not was_done
    await ACTIVITY.updated(session, actor, activity, before,
                           extra=[("activity.completed", {})] if now_done else ())
    if now_done:
        await _completed(session, actor, activity, emit=False)
    return activity


def _rearm_timers(activity: Activity, values: dict[str, Any]) -> None:
    """A reminder or due time moved into the future fires again when it comes."""
    now = datetime.now(UTC)
    if {"due_at", "remind_at"} & values.keys():
        reminder = activity.remind_at or activity.due_at
        if reminder is None or reminder > now:
            activity.reminded_at = None
    if "due_at" in values and (activity.due_at is None or activity.due_at > now):
        activity.overdue_at = None


async def complete(session: AsyncSession, actor: Principal, activity_id: UUID,
                   expected_version: int | None = None) -> Activity:
    activity = await ACTIVITY.get(session, actor, activity_id, for_update=True)
    check_version(activity.version, expected_version)
    if activity.done_at is not None:
        return activity  # completing twice is harmless
    before = ACTIVITY.dump(activity)
    activity.done_at = datetime.now(UTC)
    await ACTIVITY.updated(session, actor, activity, before, extra=[("activity.completed", {})])
    await _completed(session, actor, activity, emit=False)
    return activity


async def _completed(session: AsyncSession, actor: Principal, activity: Activity, emit: bool = True,
                     responds: bool = True) -> None:
    if emit:
        await ACTIVITY.emit(session, actor, activity, "completed")
    if responds and activity.lead_id is not None and activity.done_at is not None:
        await leads.mark_first_response(session, actor, activity.lead_id, activity.done_at)


async def reassign(session: AsyncSession, actor: Principal, from_user: UUID, to_user: UUID) -> int:
    """A leaving rep's open tasks go to a colleague."""
    return await reassign_owner(session, actor, ACTIVITY,
                                (Activity.assignee_id == from_user) & Activity.done_at.is_(None),
                                from_user, to_user, column="assignee_id")
