"""Automation rules: CRUD (admins), the runs an event starts (written in the transaction that dispatches the
event, one per rule and event: never missed, never twice), a worker running each in one transaction with
everything its actions write, the runs log and the dry run.

A run's actions go in order, each in a savepoint: one that fails (as the API would refuse it) is rolled back
alone, ends the run `failed` with its reason, and the actions after it are `skipped`. A worker that dies
mid-run commits nothing of it: the run is still `queued`, and it runs again from its start (or from the end
of its last delay: a `delay` commits what ran before it and the run waits, `queued`, until `resume_at`).
A `webhook` action is an HTTP call no transaction can take back, so it starts a turn of its own: what ran
before it is committed first (the receiver may read it back), and a temporary failure waits, `queued`, for
the next attempt on `CRM_WEBHOOK_RETRY_SCHEDULE`. A worker that dies after the call may call again: the
`webhook-id` is the same on every attempt, so receivers drop repeats as with webhook deliveries.
Loops: a run caused by an automation's write has the depth of that write; deeper than
`CRM_AUTOMATION_MAX_DEPTH` it ends `failed` with reason `loop`, doing nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.domain import kinds
from app.domain.auth.principal import Principal
from app.domain.automations import engine, schedules
from app.domain.automations.models import Automation, AutomationRun
from app.domain.automations.schemas import AutomationCreate, AutomationUpdate, EventTrigger
from app.domain.concurrency import check_version
from app.domain.errors import CRMError, ValidationFailed
from app.domain.events import catalog
from app.domain.events import service as events
from app.domain.events.models import Event
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.records import Kind, require_ref
from app.domain.webhooks import signing
from app.ids import new_id

AUTOMATION = Kind.of(kinds.AUTOMATION)
SORTS = {"created_at": Automation.created_at, "name": Automation.name}
RUN_SORTS = {"created_at": AutomationRun.created_at}
JOBS = "automation_jobs"


def _now() -> datetime:
    return datetime.now(UTC)


# --- rules ---------------------------------------------------------------------------------------------


async def _check_refs(session: AsyncSession, who: Principal, body: AutomationCreate | AutomationUpdate) -> None:
    """The trigger's event is in the catalogue; templates, mailboxes, users and teams the rule names are this
    org's."""
    from app.domain.records import require_user

    if isinstance(body.trigger, EventTrigger) and not catalog.known(body.trigger.event):
        raise ValidationFailed(f"trigger.event: {body.trigger.event!r} is not in the event catalogue",
                               loc=("body", "trigger", "event"))
    for action in body.actions or []:
        for field, kind in (("template_id", kinds.TEMPLATE), ("mailbox_id", kinds.MAILBOX)):
            if getattr(action, field, None) is not None:
                await require_ref(session, Kind.of(kind), who, getattr(action, field), f"actions.{field}")
        spec = getattr(action, "assignee", None)
        for user in [spec.user_id] + list(spec.user_ids or []) if spec is not None else []:
            if user is not None:
                await require_user(session, who.org_id, user, "actions.assignee", active=False)
        if spec is not None and spec.team_id is not None:
            await require_ref(session, Kind.of(kinds.TEAM), who, spec.team_id, "actions.assignee.team_id")


def _dump(body: AutomationCreate | AutomationUpdate, field: str) -> Any:
    return body.model_dump(mode="json", exclude_none=True)[field]


async def create(session: AsyncSession, who: Principal, body: AutomationCreate) -> Automation:
    await _check_refs(session, who, body)
    rule = Automation(org_id=who.org_id, id=new_id(), name=body.name, enabled=body.enabled,
                      trigger=_dump(body, "trigger"), conditions=_dump(body, "conditions"),
                      actions=_dump(body, "actions"), created_by=who.user_id)
    return await AUTOMATION.created(session, who, rule)


async def update_rule(session: AsyncSession, who: Principal, rule_id: UUID, patch: AutomationUpdate,
                      expected_version: int | None) -> Automation:
    rule = await AUTOMATION.get(session, who, rule_id, for_update=True)
    check_version(rule.version, expected_version)
    before = AUTOMATION.dump(rule)
    await _check_refs(session, who, patch)
    for field in patch.model_fields_set:
        value = getattr(patch, field)
        if value is None:
            continue
        setattr(rule, field, _dump(patch, field) if field in ("trigger", "conditions", "actions") else value)
    return await AUTOMATION.updated(session, who, rule, before)


async def list_rules(session: AsyncSession, who: Principal, page: PageRequest) -> Page[Automation]:
    return await keyset_page(session, AUTOMATION.readable(who), page, SORTS, Automation.id)


async def runs(session: AsyncSession, who: Principal, rule_id: UUID, page: PageRequest) -> Page[AutomationRun]:
    await AUTOMATION.get(session, who, rule_id)
    stmt = select(AutomationRun).where(AutomationRun.org_id == who.org_id, AutomationRun.automation_id == rule_id)
    return await keyset_page(session, stmt, PageRequest(page.limit, page.cursor, page.sort or "-created_at"),
                             RUN_SORTS, AutomationRun.id)


# --- runs from events ----------------------------------------------------------------------------------


def _matches(trigger: dict[str, Any], event: Event) -> bool:
    """The narrowing fields of an event trigger against the event's record (and its previous values)."""
    if trigger.get("event") != event.type:
        return False
    data = event.data or {}
    obj, previous = data.get("object") or {}, data.get("previous") or {}
    wanted = {"pipeline_id": obj.get("pipeline_id"), "to_stage_id": obj.get("stage_id"),
              "from_stage_id": previous.get("stage_id"), "source": obj.get("source"),
              "form_id": obj.get("form_id") or (str(event.object_id) if event.object_type == "form" else None)}
    return all(str(wanted[k]) == str(trigger[k]) for k in wanted if trigger.get(k) is not None)


async def from_events(session: AsyncSession, org_id: UUID, batch: list[Any]) -> list[tuple[UUID, UUID]]:
    """Runs for the enabled rules each of a batch of one org's events triggers, written in the dispatching
    transaction: the rules read once, the runs written in one executemany. -> their ids."""
    types = sorted({e.type for e in batch if e.object_type in engine.OBJECTS})
    if not types:
        return []
    rules = (await session.execute(select(Automation.id, Automation.trigger).where(
        Automation.org_id == org_id, Automation.enabled.is_(True), Automation.deleted_at.is_(None),
        Automation.trigger["event"].astext.in_(types)))).all()
    rows = []
    for event in batch:
        if event.object_type not in engine.OBJECTS:
            continue
        actor = event.actor or {}
        depth = int(actor.get("depth") or 0) if actor.get("type") == "automation" else 0
        rows += [{"org_id": org_id, "id": new_id(), "automation_id": r.id, "event_id": event.id,
                  "object_type": event.object_type, "object_id": event.object_id, "status": "queued", "depth": depth}
                 for r in rules if _matches(r.trigger, event)]
    if not rows:
        return []
    # executemany (insertmanyvalues): pages of rows, never past the driver's 32,767 parameters
    created = await session.scalars(insert(AutomationRun).on_conflict_do_nothing(
        index_elements=["org_id", "automation_id", "event_id"]).returning(AutomationRun.id), rows)
    return [(org_id, run_id) for run_id in created]


async def claim(db: Database, org_id: UUID, run_ids: list[UUID], lease_seconds: float, now: datetime) -> list[UUID]:
    """Lease the runs of this list that are queued, due by `now` and not leased, counting an attempt for each,
    in one committed statement (a worker that dies mid-run leaves the attempt counted and the lease to expire).
    -> the ones claimed, in the list's order."""
    async with db.for_org(org_id) as session:
        claimed = set((await session.scalars(update(AutomationRun).where(
            AutomationRun.org_id == org_id, AutomationRun.id.in_(run_ids), AutomationRun.status == "queued",
            or_(AutomationRun.resume_at.is_(None), AutomationRun.resume_at <= now),
            or_(AutomationRun.leased_until.is_(None), AutomationRun.leased_until < _now()))
            .values(leased_until=_now() + timedelta(seconds=lease_seconds), attempts=AutomationRun.attempts + 1,
                    started_at=func.coalesce(AutomationRun.started_at, func.now()))
            .returning(AutomationRun.id).execution_options(synchronize_session=False))).all())
    return [r for r in run_ids if r in claimed]


async def release(db: Database, org_id: UUID, run_ids: list[UUID]) -> None:
    """Give back claimed runs that this worker will not run after all (another job takes them at once)."""
    if run_ids:
        async with db.for_org(org_id) as session:
            await session.execute(update(AutomationRun).where(
                AutomationRun.org_id == org_id, AutomationRun.id.in_(run_ids), AutomationRun.status == "queued")
                .values(leased_until=None).execution_options(synchronize_session=False))


async def run(db: Database, org_id: UUID, run_id: UUID, max_depth: int, now: datetime,
              out: engine.Outbound | None = None) -> tuple[str, list[tuple[UUID, UUID]]]:
    """Run one claimed run (from its start, or on from a delay that ended by `now`), in one transaction.
    -> (outcome: `succeeded`, `failed`, `skipped`, `delayed <seconds>`, or `busy`; the events written)."""
    async with db.for_org(org_id) as session:
        record = await session.scalar(select(AutomationRun).where(
            AutomationRun.org_id == org_id, AutomationRun.id == run_id, AutomationRun.status == "queued")
            .with_for_update())
        if record is None:
            return "busy", []
        rule = await session.scalar(select(Automation).where(Automation.org_id == org_id,
                                                             Automation.id == record.automation_id))
        assert rule is not None
        status, reason, results = await _execute(session, rule, record, max_depth, now, out)
        record.status, record.reason, record.actions = status, reason, [*record.actions, *results]
        record.leased_until = None
        outcome = status
        if status == "queued":  # a delay: the rest goes on at resume_at
            outcome = f"delayed {(record.resume_at - now).total_seconds():g}" if record.resume_at else status
        else:
            record.finished_at, record.resume_at = _now(), None
        await session.flush()
        written = events.committed_event_ids(session)
    return outcome, written


async def _execute(session: AsyncSession, rule: Automation, record: AutomationRun, max_depth: int,
                   now: datetime, out: engine.Outbound | None) -> tuple[str, str | None, list[dict[str, Any]]]:
    """-> (status, reason, the results of the actions run now)."""
    if record.depth > max_depth:
        return "failed", "loop", []
    if rule.deleted_at is not None or not rule.enabled:
        return "skipped", "the rule was disabled or deleted before it ran", []
    who = engine.acting(rule, record.depth)
    try:
        current = await engine.load(session, rule.org_id, record.object_type, record.object_id)
    except CRMError:
        return "skipped", f"the {record.object_type} is gone", []
    if record.next_action == 0:
        checked = await engine.check(session, rule.org_id, record.object_type, current, rule.conditions)
        failed = [c for c in checked if not c["passed"]]
        if failed:
            return "skipped", f"condition not met: {failed[0]['field']} {failed[0]['op']}", []
    results: list[dict[str, Any]] = []
    reason = None
    start = record.next_action
    for index in range(start, len(rule.actions)):
        action = rule.actions[index]
        if reason is not None:
            results.append({"type": action["type"], "status": "skipped", "result": None})
            continue
        if action["type"] == "webhook":
            if index > start:  # what ran before is committed first: the receiver may read it back
                record.next_action, record.resume_at = index, now
                return "queued", "the webhook goes out once the actions before it are committed", results
            try:
                called = await engine.call_webhook(out, rule.webhook_secret, action["url"],
                                                   str(uuid5(record.id, f"action-{index}")), _webhook_payload(
                                                       rule, record, current))
            except engine.TryLater as exc:
                schedule = out.settings.webhook_retry_schedule if out else []
                if record.retries < len(schedule):
                    record.retries += 1
                    record.next_action = index
                    record.resume_at = now + timedelta(seconds=schedule[record.retries - 1])
                    return "queued", (f"webhook: {exc}; attempt {record.retries + 1} at "
                                      f"{record.resume_at.isoformat()}"), results
                reason = f"webhook: {exc}, {record.retries + 1} attempts"
                results.append({"type": "webhook", "status": "failed", "result": reason.removeprefix("webhook: ")})
                continue
            except engine.ActionFailed as exc:
                reason = f"webhook: {exc}"[:500]
                results.append({"type": "webhook", "status": "failed", "result": str(exc)[:500]})
                continue
            record.retries = 0
            results.append({"type": "webhook", "status": "succeeded", "result": called})
            continue
        if action["type"] == "delay":
            record.next_action, record.resume_at = index + 1, now + timedelta(minutes=action["minutes"])
            results.append({"type": "delay", "status": "succeeded", "result": {"until": record.resume_at.isoformat()}})
            return "queued", f"delayed until {record.resume_at.isoformat()}", results
        try:
            async with session.begin_nested():
                outcome = await engine.perform(session, rule, who, record.object_type, record.object_id, action,
                                               now, current if index == start else None)
            results.append({"type": action["type"], "status": "succeeded", "result": outcome})
        except (CRMError, engine.ActionFailed) as exc:
            reason = f"{action['type']}: {engine.explain(exc)}"[:500]
            results.append({"type": action["type"], "status": "failed", "result": engine.explain(exc)[:500]})
    return ("failed" if reason else "succeeded"), reason, results


def _webhook_payload(rule: Automation, record: AutomationRun, current: dict[str, Any]) -> dict[str, Any]:
    return {"type": "automation.webhook", "timestamp": _now().isoformat(), "data": {
        "automation_id": str(rule.id), "run_id": str(record.id), "event_id": str(record.event_id),
        "object_type": record.object_type, "object_id": str(record.object_id), "depth": record.depth,
        "object": current}}


async def rotate_secret(session: AsyncSession, who: Principal, rule_id: UUID) -> Automation:
    """A new secret for the rule's `webhook` actions; the old one signs nothing more."""
    rule = await AUTOMATION.get(session, who, rule_id, for_update=True)
    before = AUTOMATION.dump(rule)
    rule.webhook_secret = signing.new_secret()
    return await AUTOMATION.updated(session, who, rule, before)


async def queued(session: AsyncSession, older_than_seconds: float, now: datetime,
                 limit: int = 1000) -> list[tuple[UUID, UUID]]:
    """Runs whose job was lost (Redis down, a worker that died), and delayed ones whose delay ended by `now`:
    the sweep enqueues them (again)."""
    cutoff = _now() - timedelta(seconds=older_than_seconds)
    rows = await session.execute(select(AutomationRun.org_id, AutomationRun.id).where(
        AutomationRun.status == "queued", AutomationRun.created_at <= cutoff,
        or_(AutomationRun.resume_at.is_(None), AutomationRun.resume_at <= now),
        or_(AutomationRun.leased_until.is_(None), AutomationRun.leased_until < _now()))
        .order_by(AutomationRun.created_at).limit(limit))
    return [(r.org_id, r.id) for r in rows]


def object_type_of(trigger: dict[str, Any]) -> str:
    """What the rule's runs are about: the event's object, or the schedule's."""
    return str(trigger["event"]).split(".", 1)[0] if "event" in trigger else schedules.object_of(trigger)


async def dry_run(session: AsyncSession, who: Principal, rule_id: UUID, object_id: UUID) -> dict[str, Any]:
    """The rule's conditions on the object as it is now, and the actions it would do; nothing changes."""
    rule = await AUTOMATION.get(session, who, rule_id)
    object_type = object_type_of(rule.trigger)
    try:
        current = await engine.load(session, who, object_type, object_id)
    except CRMError:
        raise ValidationFailed(f"object_id: no such {object_type} in your organisation",
                               loc=("body", "object_id")) from None
    checked = await engine.check(session, who, object_type, current, rule.conditions)
    would = all(c["passed"] for c in checked)
    return {"would_run": would, "conditions": checked, "actions": list(rule.actions) if would else []}
