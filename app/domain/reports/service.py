"""Reports on live data: each one is ONE SQL statement, scoped by org first, that also reads the org's time
zone and currency and checks the pipeline and team asked for, so a report costs one round trip after
authentication. This module holds the deal reports of the first release (funnel, win-loss, forecast);
`app.domain.reports.sales` and `app.domain.reports.people` hold the others, `app.domain.reports.query` what
they share.

The `*_statement(params)` functions build that statement (a SQLAlchemy `TextClause` with its parameters
bound); the endpoints run exactly it, and a benchmark can run the same text with asyncpg
(`asyncpg_args(statement)`). Reports read deals, stages, stage history and leads directly: a report is
one join over several areas' tables, which no area's service could answer in one statement.

Conventions shared by the reports:
- deals in another currency than the report's (`currency`, default the org's) are left out entirely;
- deals, leads and pipelines are those the caller may read: the registry's one readable rule
  (`RecordType.readable_sql`), which also leaves soft-deleted ones out; deleted stages are left out too
  (a stage is part of its pipeline, not a record of its own);
- `from`/`to` are calendar dates in the org's time zone, both inclusive; each report says which date it
  filters on (funnel: `created_at`, win-loss: `closed_at`, forecast: `expected_close_date`);
- `source` is the source of the lead a deal was converted from (`leads.deal_id`);
- `owner_id` and `team_id` name whose records count: a deal's or lead's owner, or one of a team's members.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.errors import NotFound
from app.domain.kinds import LEAD
from app.domain.reports.query import ReportParams, Sql, asyncpg_args, check_found
from app.domain.reports.query import money as _money
from app.domain.reports.schemas import (
    ForecastCategoryTotal,
    ForecastReport,
    ForecastRow,
    ForecastTotals,
    FunnelReport,
    FunnelRow,
    FunnelTotals,
    LostReasonCount,
    WinLossReport,
    WinLossRow,
    WinLossTotals,
)

__all__ = ["ReportParams", "asyncpg_args", "forecast", "forecast_statement", "funnel", "funnel_statement", "win_loss",
           "win_loss_statement"]

FORECAST_ORDER = ("pipeline", "best_case", "commit")  # omitted deals are left out of the forecast


def funnel_statement(p: ReportParams) -> TextClause:
    """Per stage of one pipeline (`pipeline_id`, else the org's default), for its deals created in the
    period: reached, current, value_current, conversion_to_next; the totals repeat on every row.

    How far a deal got is the highest position among the open and won stages it ever entered (its stage
    history plus its current stage); it reached every open or won stage up to that position. Lost stages
    are exits, not steps: a lost stage counts the deals that ever entered it, and entering one does not
    carry a deal further down the funnel. Stages are taken in their current order; a deal counts in the
    pipeline it is in now.

    The stages a deal entered are on its row (`deals.entered_stage_ids`, kept by every move), so the
    statement reads the deals once (from `ix_deals_funnel` alone), grouped by that set and the current stage
    (as many groups as distinct sets of stages entered, not deals), and ranks the stages of each set by their current positions
    afterwards."""
    q = Sql(p)
    pipe, in_pipe = q.stages_cte()
    sql = f"""
WITH {q.org_cte(timestamps=True)},
{pipe},
steps AS (  -- the open and won stages by position, and the lost ones: entries map to a rank by array lookup
    SELECT array_agg(s.id ORDER BY s.position) FILTER (WHERE s.kind <> 'lost') AS ranked,
           coalesce(array_agg(s.id) FILTER (WHERE s.kind = 'lost'), '{{}}') AS exits
    FROM stages s),
g AS MATERIALIZED (  -- the one pass over the deals: how many share a set of entered stages and a current stage
    SELECT d.entered_stage_ids AS entered, d.stage_id, count(*) AS n, sum(d.value_amount) AS value
    FROM deals d
    WHERE {q.deal_where("created_at", pipeline=in_pipe)}
    GROUP BY d.entered_stage_ids, d.stage_id),
sets AS MATERIALIZED (SELECT g.entered, sum(g.n)::bigint AS n FROM g GROUP BY g.entered),
by_depth AS MATERIALIZED (  -- how far the deals of a set got: the highest rank among its open and won stages
    SELECT x.depth, sum(x.n)::bigint AS n
    FROM (SELECT (SELECT max(array_position((SELECT ranked FROM steps), e)) FROM unnest(s.entered) e) AS depth, s.n
          FROM sets s) x
    WHERE x.depth IS NOT NULL GROUP BY x.depth),
exits AS MATERIALIZED (
    SELECT e.stage_id, sum(s.n)::bigint AS n FROM sets s CROSS JOIN LATERAL unnest(s.entered) AS e(stage_id)
    WHERE e.stage_id = ANY(CAST((SELECT exits FROM steps) AS uuid[])) GROUP BY e.stage_id),
now_in AS MATERIALIZED (
    SELECT g.stage_id, sum(g.n)::bigint AS n, sum(g.value) AS value FROM g GROUP BY g.stage_id),
funnel AS (
    SELECT s.id, s.name, s.position, s.kind,
           CASE WHEN s.kind = 'lost' THEN coalesce(x.n, 0)
                ELSE (sum(coalesce(b.n, 0)) OVER (PARTITION BY s.kind = 'lost' ORDER BY s.position DESC))::bigint
           END AS reached,
           coalesce(c.n, 0) AS current, coalesce(c.value, 0) AS value_current
    FROM stages s
    LEFT JOIN by_depth b ON b.depth = array_position((SELECT ranked FROM steps), s.id)
    LEFT JOIN exits x ON x.stage_id = s.id
    LEFT JOIN now_in c ON c.stage_id = s.id)
SELECT r.id AS stage_id, r.name, r.position, r.kind, r.reached, r.current, r.value_current,
       CASE WHEN r.kind <> 'lost' THEN
           (lead(r.reached) OVER (PARTITION BY r.kind = 'lost' ORDER BY r.position))::float8 / NULLIF(r.reached, 0)
       END AS conversion_to_next,
       sum(r.current) OVER () AS deals, sum(r.current) FILTER (WHERE r.kind = 'open') OVER () AS open,
       sum(r.current) FILTER (WHERE r.kind = 'won') OVER () AS won,
       sum(r.current) FILTER (WHERE r.kind = 'lost') OVER () AS lost,
       sum(r.value_current) OVER () AS value, (SELECT currency FROM org) AS currency, {q.found()}
FROM funnel r
ORDER BY r.position"""
    return q.statement(sql)


_GROUPS = {
    "owner": "d.owner_id::text",
    "month": "to_char(d.closed_at AT TIME ZONE (SELECT tz FROM org), 'YYYY-MM')",
    "source": "ls.source",
}
_LEAD_SOURCES = f"""
    LEFT JOIN (SELECT l.deal_id, min(l.source) AS source FROM leads l
               WHERE {LEAD.readable_sql("l")} AND l.deal_id IS NOT NULL
               GROUP BY l.deal_id) ls ON ls.deal_id = d.id"""


def win_loss_statement(p: ReportParams) -> TextClause:
    """Won and lost deals closed in the period (closed_at in the org's time zone), per group, with the
    totals and the lost reasons, from one scan (GROUPING SETS). Rows by `level`: 1 a group, 2 a lost
    reason, 3 the totals."""
    q = Sql(p)
    grouped = p.group_by is not None
    group = _GROUPS[p.group_by] if p.group_by else "NULL::text"
    if grouped:
        sets, level = "(grp), (lost_reason), ()", "GROUPING(grp, lost_reason)"
    else:
        sets, level = "(lost_reason), ()", "GROUPING(lost_reason) + 2"
    by_value = "" if p.group_by == "month" else "CASE WHEN r.level = 1 THEN r.won_value END DESC NULLS LAST, "
    sql = f"""
WITH {q.org_cte(timestamps=True)},
closed AS (
    SELECT d.status, d.value_amount, d.lost_reason, {group} AS grp
    FROM deals d{_LEAD_SOURCES if p.group_by == "source" else ""}
    WHERE {q.deal_where("closed_at")} AND d.status IN ('won', 'lost')),
report AS (
    SELECT {level} AS level, {"grp" if grouped else "NULL::text AS grp"}, lost_reason,
           count(*) FILTER (WHERE status = 'won') AS won,
           count(*) FILTER (WHERE status = 'lost') AS lost,
           coalesce(sum(value_amount) FILTER (WHERE status = 'won'), 0) AS won_value,
           coalesce(sum(value_amount) FILTER (WHERE status = 'lost'), 0) AS lost_value,
           (count(*) FILTER (WHERE status = 'won'))::float8 / NULLIF(count(*), 0) AS win_rate
    FROM closed
    GROUP BY GROUPING SETS ({sets}))
SELECT r.*, (SELECT currency FROM org) AS currency, {q.found()}
FROM report r
WHERE r.level <> 2 OR r.lost > 0
ORDER BY r.level, {by_value}CASE WHEN r.level = 2 THEN r.lost END DESC NULLS LAST, r.grp NULLS LAST,
         r.lost_reason NULLS LAST"""
    return q.statement(sql)


def forecast_statement(p: ReportParams) -> TextClause:
    """Open deals by month of expected_close_date (`from`/`to` bound that date) and forecast category, with
    per-category and overall totals (GROUPING SETS). Omitted deals and deals without an expected close date
    are left out; weighted value uses the probability of the deal's current stage. Rows by `level`: 0 a
    month and category, 2 a category, 3 the totals."""
    q = Sql(p)
    where = [q.deal_where(None), "d.status = 'open'", "d.forecast_category <> 'omitted'",
             "d.expected_close_date IS NOT NULL"]
    if p.date_from is not None:
        where.append(f"d.expected_close_date >= {q.bind('date_from', p.date_from)}")
    if p.date_to is not None:
        where.append(f"d.expected_close_date <= {q.bind('date_to', p.date_to)}")
    sql = f"""
WITH {q.org_cte(timestamps=False)},
by_stage AS (  -- deals summed per month, category and stage first; the stages' probabilities join after
    SELECT date_trunc('month', d.expected_close_date::timestamp) AS month, d.forecast_category AS category,
           d.stage_id, count(*) AS deals, sum(d.value_amount) AS value
    FROM deals d
    WHERE {" AND ".join(where)}
    GROUP BY 1, 2, 3)
SELECT GROUPING(b.month, b.category) AS level, to_char(b.month, 'YYYY-MM') AS month, b.category,
       coalesce(sum(b.deals), 0)::bigint AS deals, coalesce(sum(b.value), 0) AS open_value,
       coalesce(round(sum(b.value * s.probability) / 100, 2), 0) AS weighted_value,
       (SELECT currency FROM org) AS currency, {q.found()}
FROM by_stage b JOIN pipeline_stages s ON s.org_id = :org_id AND s.id = b.stage_id
GROUP BY GROUPING SETS ((b.month, b.category), (b.category), ())
ORDER BY level, b.month, array_position(ARRAY['pipeline', 'best_case', 'commit']::varchar[], b.category)"""
    return q.statement(sql)


# --- running them --------------------------------------------------------------------------------------


async def funnel(session: AsyncSession, p: ReportParams) -> FunnelReport:
    rows = (await session.execute(funnel_statement(p))).mappings().all()
    if not rows:  # every pipeline has stages: no rows means no such pipeline here
        raise NotFound("Pipeline not found" if p.pipeline_id else "The organisation has no default pipeline")
    first = rows[0]
    check_found(first)
    cur = first["currency"]
    return FunnelReport(
        rows=[FunnelRow(stage_id=r["stage_id"], name=r["name"], position=r["position"], kind=r["kind"],
                        reached=r["reached"], current=r["current"], value_current=_money(r["value_current"], cur),
                        conversion_to_next=r["conversion_to_next"]) for r in rows],
        totals=FunnelTotals(deals=first["deals"], open=first["open"], won=first["won"], lost=first["lost"],
                            value=_money(first["value"], cur)),
    )


async def win_loss(session: AsyncSession, p: ReportParams) -> WinLossReport:
    rows = (await session.execute(win_loss_statement(p))).mappings().all()
    total = rows[-1]  # level 3 sorts last and always exists (the empty grouping set)
    check_found(total)
    cur = total["currency"]

    def row(r: Any) -> WinLossRow:
        return WinLossRow(group=r["grp"], won=r["won"], lost=r["lost"], won_value=_money(r["won_value"], cur),
                          lost_value=_money(r["lost_value"], cur), win_rate=r["win_rate"])

    groups = [row(r) for r in rows if r["level"] == 1] if p.group_by else [row(total)]
    return WinLossReport(rows=groups, totals=WinLossTotals(
        won=total["won"], lost=total["lost"], won_value=_money(total["won_value"], cur),
        lost_value=_money(total["lost_value"], cur), win_rate=total["win_rate"],
        lost_reasons=[LostReasonCount(reason=r["lost_reason"], count=r["lost"]) for r in rows if r["level"] == 2],
    ))


async def forecast(session: AsyncSession, p: ReportParams) -> ForecastReport:
    rows = (await session.execute(forecast_statement(p))).mappings().all()
    total = rows[-1]
    check_found(total)
    cur = total["currency"]
    return ForecastReport(
        rows=[ForecastRow(month=r["month"], category=r["category"], deals=r["deals"],
                          open_value=_money(r["open_value"], cur), weighted_value=_money(r["weighted_value"], cur))
              for r in rows if r["level"] == 0],
        totals=ForecastTotals(
            deals=total["deals"], open_value=_money(total["open_value"], cur),
            weighted_value=_money(total["weighted_value"], cur),
            categories=[ForecastCategoryTotal(category=r["category"], deals=r["deals"],
                                              open_value=_money(r["open_value"], cur),
                                              weighted_value=_money(r["weighted_value"], cur))
                        for r in rows if r["level"] == 2]),
    )
