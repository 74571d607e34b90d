"""Reports on people's work and on leads: activities, lead sources, response times, emails. One statement each
(see `app.domain.reports.query`), with the totals as a row of their own (GROUPING SETS), so a statement always
answers at least one row, which also carries the 404 check of `team_id`.

- activities: an activity falls in the period by its due date, or by its creation when it has none; the
  user is its assignee.
- lead-sources and response-times: leads created in the period; the user is the lead's owner. A lead's
  response time runs from its creation (for a lead from a web form, the submission that created it) to its
  first completed activity (`first_response_at`, stamped once by the transaction that completes it).
- emails: mail by `sent_at` (the message's date), sent mail (outbound, status `sent`) and received mail
  (inbound); the user of sent mail is who sent it through the API (`created_by`), else the mailbox's owner,
  and of received mail the mailbox's owner.
`owner_id` and `team_id` apply to the report's user.
"""

from __future__ import annotations

from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities.models import TYPES
from app.domain.kinds import ACTIVITY, DEAL, EMAIL
from app.domain.reports.query import ReportParams, Sql, check_found, money, period_label
from app.domain.reports.schemas import (
    ActivitiesReport,
    ActivitiesRow,
    ActivitiesTotals,
    EmailsReport,
    EmailsRow,
    EmailsTotals,
    LeadSourcesReport,
    LeadSourcesRow,
    LeadSourcesTotals,
    ResponseTimesReport,
    ResponseTimesRow,
    ResponseTimesTotals,
)

_TYPE_ORDER = "ARRAY[" + ", ".join(f"'{t}'" for t in TYPES) + "]::varchar[]"


def _and(conditions: list[str]) -> str:
    return "".join(f" AND {c}" for c in conditions)


def activities_statement(p: ReportParams) -> TextClause:
    """Activities due in the period (or, without a due date, created in it), per assignee and type: open (not
    done, overdue included), completed, overdue (not done, due before now); rows by `level`: 0 an assignee
    and type, 3 the totals."""
    q = Sql(p)
    due, created = q.in_period("a.due_at"), q.in_period("a.created_at")
    period = (f" AND ((a.due_at IS NOT NULL{_and(due)}) OR (a.due_at IS NULL{_and(created)}))" if due else "")
    sql = f"""
WITH {q.org_cte(timestamps=True)},
a AS (
    SELECT a.assignee_id AS user_id, a.type, a.done_at IS NOT NULL AS done,
           a.done_at IS NULL AND a.due_at < now() AS overdue
    FROM activities a
    WHERE {ACTIVITY.readable_sql("a")}{period}{_and(q.users("a.assignee_id"))})
SELECT GROUPING(a.user_id, a.type) AS level, a.user_id, a.type,
       count(*) FILTER (WHERE NOT a.done) AS open, count(*) FILTER (WHERE a.done) AS completed,
       count(*) FILTER (WHERE a.overdue) AS overdue, {q.found()}
FROM a
GROUP BY GROUPING SETS ((a.user_id, a.type), ())
ORDER BY level, a.user_id NULLS LAST, array_position({_TYPE_ORDER}, a.type)"""
    return q.statement(sql)


async def activities(session: AsyncSession, p: ReportParams) -> ActivitiesReport:
    rows = (await session.execute(activities_statement(p))).mappings().all()
    total = rows[-1]
    check_found(total)
    return ActivitiesReport(
        rows=[ActivitiesRow(user_id=r["user_id"], type=r["type"], open=r["open"], completed=r["completed"],
                            overdue=r["overdue"]) for r in rows if r["level"] == 0],
        totals=ActivitiesTotals(open=total["open"], completed=total["completed"], overdue=total["overdue"]))


_LEAD_KEYS = {"source": "l.source", "utm_campaign": "l.utm ->> 'campaign'", "form": "l.form_id::text",
              "owner": "l.owner_id::text"}
_LEAD_FIELDS = {"source": "source", "utm_campaign": "utm_campaign", "form": "form_id", "owner": "user_id"}


def lead_sources_statement(p: ReportParams) -> TextClause:
    """Leads created in the period per source (or `utm.campaign`, or form): how many, how many converted,
    the won deals (in the report's currency) they were converted into and their value; rows by `level`: 0 a
    group, 1 the totals."""
    q = Sql(p)
    key = _LEAD_KEYS[p.group_by or "source"]
    sql = f"""
WITH {q.org_cte(timestamps=True)},
l AS (
    SELECT {key} AS grp, l.status = 'converted' AS converted, d.value_amount AS won_value
    FROM leads l
    LEFT JOIN deals d ON {DEAL.readable_sql("d")} AND d.id = l.deal_id AND d.status = 'won'
                     AND d.currency = (SELECT currency FROM org)
    WHERE {q.lead_where("created_at")})
SELECT GROUPING(l.grp) AS level, l.grp, count(*) AS leads, count(*) FILTER (WHERE l.converted) AS converted,
       count(l.won_value) AS deals_won, coalesce(sum(l.won_value), 0) AS won_value,
       (SELECT currency FROM org) AS currency, {q.found()}
FROM l
GROUP BY GROUPING SETS ((l.grp), ())
ORDER BY level, leads DESC, l.grp NULLS LAST"""
    return q.statement(sql)


def _keyed(group_by: str, value: str | None, fields: tuple[str, ...]) -> dict[str, str | None]:
    """The row's key fields: the grouping's field holds the group, the others are null."""
    chosen = _LEAD_FIELDS[group_by]
    return {f: value if f == chosen else None for f in fields}


async def lead_sources(session: AsyncSession, p: ReportParams) -> LeadSourcesReport:
    rows = (await session.execute(lead_sources_statement(p))).mappings().all()
    total = rows[-1]
    check_found(total)
    cur = total["currency"]
    keys = ("source", "utm_campaign", "form_id")
    return LeadSourcesReport(
        rows=[LeadSourcesRow(**_keyed(p.group_by or "source", r["grp"], keys), leads=r["leads"],
                             converted=r["converted"], deals_won=r["deals_won"], won_value=money(r["won_value"], cur))
              for r in rows if r["level"] == 0],
        totals=LeadSourcesTotals(leads=total["leads"], converted=total["converted"], deals_won=total["deals_won"],
                                 won_value=money(total["won_value"], cur)))


def response_times_statement(p: ReportParams) -> TextClause:
    """Leads created in the period that got a first completed activity, per owner (or form): how many, and the
    median and 90th percentile (interpolated) of the seconds from creation to that activity; rows by
    `level`: 0 a group, 1 the totals."""
    q = Sql(p)
    key = _LEAD_KEYS[p.group_by or "owner"]
    sql = f"""
WITH {q.org_cte(timestamps=True)},
l AS (
    SELECT {key} AS grp, greatest(0, extract(epoch FROM l.first_response_at - l.created_at))::float8 AS seconds
    FROM leads l
    WHERE {q.lead_where("created_at")} AND l.first_response_at IS NOT NULL)
SELECT GROUPING(l.grp) AS level, l.grp, count(*) AS count,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY l.seconds) AS p50_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY l.seconds) AS p90_seconds, {q.found()}
FROM l
GROUP BY GROUPING SETS ((l.grp), ())
ORDER BY level, count DESC, l.grp NULLS LAST"""
    return q.statement(sql)


async def response_times(session: AsyncSession, p: ReportParams) -> ResponseTimesReport:
    rows = (await session.execute(response_times_statement(p))).mappings().all()
    total = rows[-1]
    check_found(total)
    keys = ("user_id", "form_id")
    return ResponseTimesReport(
        rows=[ResponseTimesRow(**_keyed(p.group_by or "owner", r["grp"], keys), count=r["count"],
                               p50_seconds=r["p50_seconds"], p90_seconds=r["p90_seconds"])
              for r in rows if r["level"] == 0],
        totals=ResponseTimesTotals(count=total["count"], p50_seconds=total["p50_seconds"],
                                   p90_seconds=total["p90_seconds"]))


def emails_statement(p: ReportParams) -> TextClause:
    """Mail sent and received in the period (`sent_at`), per user and calendar month or ISO week in the org's
    time zone, or for the report's days as one period; rows by `level`: 0 a user and period, 3 the totals."""
    q = Sql(p)
    unit = p.group_by
    label = period_label(unit, "e.local") if unit else "(SELECT label FROM span)"
    sql = f"""
WITH {q.org_cte(timestamps=True, today=unit is None)},
e AS MATERIALIZED (
    SELECT CASE WHEN e.direction = 'outbound' THEN coalesce(e.created_by, m.owner_id) ELSE m.owner_id END
               AS user_id,
           e.direction, e.sent_at AT TIME ZONE (SELECT tz FROM org) AS local
    FROM emails e JOIN mailboxes m ON m.org_id = :org_id AND m.id = e.mailbox_id
    WHERE {EMAIL.readable_sql("e")} AND (e.direction = 'inbound' OR e.status = 'sent')
          {_and(q.in_period("e.sent_at"))}),
mine AS (SELECT * FROM e WHERE TRUE{_and(q.users("e.user_id"))}){"," if unit is None else ""}
{q.span_cte("SELECT local::date FROM mine") if unit is None else ""}
SELECT GROUPING(x.user_id, x.period) AS level, x.user_id, x.period,
       count(*) FILTER (WHERE x.direction = 'outbound') AS sent,
       count(*) FILTER (WHERE x.direction = 'inbound') AS received, {q.found()}
FROM (SELECT e.user_id, e.direction, {label} AS period FROM mine e) x
GROUP BY GROUPING SETS ((x.user_id, x.period), ())
ORDER BY level, x.period, x.user_id NULLS LAST"""
    return q.statement(sql)


async def emails(session: AsyncSession, p: ReportParams) -> EmailsReport:
    rows = (await session.execute(emails_statement(p))).mappings().all()
    total = rows[-1]
    check_found(total)
    return EmailsReport(
        rows=[EmailsRow(user_id=r["user_id"], period=r["period"], sent=r["sent"], received=r["received"])
              for r in rows if r["level"] == 0],
        totals=EmailsTotals(sent=total["sent"], received=total["received"]))
