"""Scheduled rules: the worker's sweep finds, per enabled rule, the objects whose moment came, and writes one
run per rule, object and occurrence: the occurrence's id (`event_id` of the run) is derived from the rule, the
object and the occurrence, and the runs' unique key makes a second sweep, or a sweep after a worker was down
(catch-up), find nothing new.

- `in_stage_longer_than`: open deals in (a) stage since at least `days`; one run per stay in a stage.
- `no_activity_for`: contacts, open deals or open leads with no done activity for `days` (since created, if
  none); one run per quiet spell (a new activity starts another).
- `date_offset`: `days` after (or before) a date field, at `at` in the org's time zone; birthdays every year,
  other dates once. Missed occurrences are caught up for `CRM_AUTOMATION_CATCH_UP_DAYS`.

`now` is the settings' clock (`CRM_CLOCK_OFFSET_SECONDS` moves it, for tests and drills)."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.automations.models import Automation, AutomationRun
from app.ids import new_id

_NAMESPACE = uuid.UUID("6f1c2a3e-5b7d-4e8f-9a0b-1c2d3e4f5a6b")

_IN_STAGE = """
SELECT d.id, d.stage_id::text || '@' || d.stage_entered_at::text AS occurrence
FROM deals d
WHERE d.org_id = :org AND d.deleted_at IS NULL AND d.status = 'open'
  AND d.stage_entered_at <= CAST(:now AS timestamptz) - make_interval(days => CAST(:days AS integer))
  AND (CAST(:stage AS uuid) IS NULL OR d.stage_id = CAST(:stage AS uuid))"""

_QUIET_CONTACTS = """
SELECT c.id, coalesce(c.last_activity_at, c.created_at)::text AS occurrence
FROM contacts c
WHERE c.org_id = :org AND c.deleted_at IS NULL
  AND coalesce(c.last_activity_at, c.created_at) <= CAST(:now AS timestamptz) - make_interval(days => CAST(:days AS integer))"""

# Deals and leads keep no last activity of their own: the latest done activity linked to each, by its index.
_QUIET_OPEN = """
SELECT r.id, greatest(r.created_at, a.last)::text AS occurrence
FROM {table} r
LEFT JOIN LATERAL (SELECT max(x.done_at) AS last FROM activities x
                   WHERE x.org_id = r.org_id AND x.{column} = r.id AND x.deleted_at IS NULL) a ON true
WHERE r.org_id = :org AND r.deleted_at IS NULL AND r.status IN ({open})
  AND greatest(r.created_at, a.last) <= CAST(:now AS timestamptz) - make_interval(days => CAST(:days AS integer))"""
_QUIET = {"contact": _QUIET_CONTACTS,
          "deal": _QUIET_OPEN.format(table="deals", column="deal_id", open="'open'"),
          "lead": _QUIET_OPEN.format(table="leads", column="lead_id", open="'new', 'working', 'qualified'")}

# One row per object and candidate occurrence (this and last year's for yearly dates), with its moment in the
# org's time zone; those whose moment passed within the catch-up window fire.
_DATES = """
WITH org AS (SELECT timezone AS tz FROM orgs WHERE id = :org),
base AS (
    SELECT r.id, {date_expr} AS day FROM {table} r
    WHERE r.org_id = :org AND r.deleted_at IS NULL {extra}),
occurrences AS (
    SELECT b.id, CASE WHEN CAST(:yearly AS boolean) THEN (b.day + make_interval(years => y.year - extract(year FROM b.day)::int))::date
                      ELSE b.day END AS day
    FROM base b
    CROSS JOIN LATERAL (SELECT extract(year FROM CAST(:now AS timestamptz) AT TIME ZONE (SELECT tz FROM org))::int
                               + k AS year FROM generate_series(-1, 1) k) y
    WHERE b.day IS NOT NULL AND (CAST(:yearly AS boolean) OR y.year = extract(year FROM CAST(:now AS timestamptz)
                                                             AT TIME ZONE (SELECT tz FROM org))::int))
SELECT o.id, o.day::text AS occurrence
FROM occurrences o
WHERE ((o.day + CAST(:days AS integer) + CAST(:at AS time)) AT TIME ZONE (SELECT tz FROM org))
      BETWEEN CAST(:now AS timestamptz) - make_interval(days => CAST(:catch_up AS integer)) AND CAST(:now AS timestamptz)"""

_DATE_FIELDS = {"contact.birthday": ("contacts", "r.birthday", "", True),
                "deal.expected_close_date": ("deals", "r.expected_close_date", "AND r.status = 'open'", False)}
_TABLES = {"contact": "contacts", "deal": "deals", "lead": "leads", "company": "companies"}


def occurrence_id(rule_id: UUID, object_id: UUID, occurrence: str) -> UUID:
    return uuid.uuid5(_NAMESPACE, f"{rule_id}:{object_id}:{occurrence}")


def _dated(field: str) -> tuple[str, str, str, bool]:
    if field in _DATE_FIELDS:
        return _DATE_FIELDS[field]
    head, _, key = field.partition(".cf.")
    # a date custom field holds an ISO date string; anything else is no date
    expr = (f"CASE WHEN r.custom_fields->>'{key}' ~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}$' "
            f"THEN CAST(r.custom_fields->>'{key}' AS date) END")
    return _TABLES[head], expr, "", False


def object_of(trigger: dict[str, Any]) -> str:
    if trigger["schedule"] == "in_stage_longer_than":
        return "deal"
    if trigger["schedule"] == "no_activity_for":
        return str(trigger["object"])
    return str(trigger["field"]).split(".", 1)[0]


async def due(session: AsyncSession, rule: Automation, now: datetime, catch_up_days: int) -> list[tuple[UUID, str]]:
    trigger = rule.trigger
    params: dict[str, Any] = {"org": rule.org_id, "now": now, "days": int(trigger["days"])}
    kind = trigger["schedule"]
    if kind == "in_stage_longer_than":
        sql, params["stage"] = _IN_STAGE, trigger.get("stage_id")
    elif kind == "no_activity_for":
        sql = _QUIET[trigger["object"]]
    else:
        table, expr, extra, yearly = _dated(trigger["field"])
        sql = _DATES.format(table=table, date_expr=expr, extra=extra)
        params.update(yearly=yearly, at=time.fromisoformat(trigger.get("at", "09:00")), catch_up=catch_up_days)
    return [(r.id, r.occurrence) for r in await session.execute(text(sql), params)]


async def sweep(session: AsyncSession, now: datetime, catch_up_days: int) -> list[tuple[UUID, UUID]]:
    """Runs for every scheduled rule whose moment came, once per object and occurrence. -> the new runs."""
    rules = list(await session.scalars(select(Automation).where(
        Automation.enabled.is_(True), Automation.deleted_at.is_(None), Automation.trigger.has_key("schedule"))))
    created: list[tuple[UUID, UUID]] = []
    for rule in rules:
        found = await due(session, rule, now, catch_up_days)
        object_type = object_of(rule.trigger)
        for start in range(0, len(found), 1000):
            rows = [{"org_id": rule.org_id, "id": new_id(), "automation_id": rule.id,
                     "event_id": occurrence_id(rule.id, object_id, occurrence), "object_type": object_type,
                     "object_id": object_id, "status": "queued", "depth": 0}
                    for object_id, occurrence in found[start:start + 1000]]
            created += [(rule.org_id, run_id) for run_id in await session.scalars(
                insert(AutomationRun).values(rows).on_conflict_do_nothing(
                    index_elements=["org_id", "automation_id", "event_id"]).returning(AutomationRun.id))]
    return created


def clock(offset_seconds: float) -> datetime:
    from datetime import UTC

    return datetime.now(UTC) + timedelta(seconds=offset_seconds)
