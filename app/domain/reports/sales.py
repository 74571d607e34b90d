"""Deal reports: stage durations, velocity, rotting deals and customers. One statement each (see
`app.domain.reports.query`); every statement returns its totals as a row of its own (GROUPING SETS or a
UNION), so it always answers at least one row, which also carries the 404 checks.

- stage-durations reads the stage history: a stay is a history row's `from_stage_id` (the stage the deal
  left), ended at `moved_at`, lasting `seconds_in_previous`; a deal that comes back to a stage stays there
  again, and each stay counts.
- velocity and customers read won and lost deals by `closed_at`, as win-loss does: a deal's current status
  decides (a deal won and then moved back to an open stage is no longer won).
- rotting reads the deals as they are now: open deals whose `stage_entered_at` is longer ago than their stage's
  `rotting_days`.
Money reports (velocity, customers) cover one currency; stage-durations and rotting count deals in every
currency.
"""

from __future__ import annotations

from functools import lru_cache

from babel.numbers import list_currencies
from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.kinds import CONTACT
from app.domain.reports.query import JsonReport, ReportParams, Sql, check_found, maybe_money, money, period_label
from app.domain.reports.schemas import (
    ProductsReport,
    ProductsRow,
    ProductsTotals,
    StageDurationsReport,
    StageDurationsRow,
    StageDurationsTotals,
    VelocityReport,
    VelocityRow,
    VelocityTotals,
)
from app.domain.schemas import amount_places


def stage_durations_statement(p: ReportParams) -> TextClause:
    """Per stage of one pipeline (`pipeline_id`, else the org's default): the stays in it that ended in the
    period, their mean and median length; rows by `level`: 0 a stage, 1 the totals. A stay counts for the
    stage it was in, whatever pipeline the deal is in now; owner, team and source filters apply to the deal."""
    q = Sql(p)
    stages, _ = q.stages_cte()
    period = "".join(f" AND {c}" for c in q.in_period("h.moved_at"))
    sql = f"""
WITH {q.org_cte(timestamps=True)},
{stages},
d AS MATERIALIZED (SELECT d.id FROM deals d WHERE {q.deal_where(None, money=False, by_pipeline=False)}),
stays AS MATERIALIZED (  -- computed once, then spread over the stages
    SELECT h.from_stage_id AS stage_id, h.seconds_in_previous AS seconds
    FROM d JOIN deal_stage_history h ON h.org_id = :org_id AND h.deal_id = d.id
    WHERE h.from_stage_id IN (SELECT id FROM stages){period})
SELECT GROUPING(s.id) AS level, s.id AS stage_id, s.name, count(x.seconds) AS deals,
       avg(x.seconds)::float8 AS avg_seconds,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY x.seconds) AS median_seconds, {q.found()}
FROM stages s LEFT JOIN stays x ON x.stage_id = s.id
GROUP BY GROUPING SETS ((s.id, s.name, s.position), ())
ORDER BY level, s.position"""
    return q.statement(sql)


async def stage_durations(session: AsyncSession, p: ReportParams) -> StageDurationsReport:
    rows = (await session.execute(stage_durations_statement(p))).mappings().all()
    total = rows[-1]
    check_found(total)
    return StageDurationsReport(
        rows=[StageDurationsRow(stage_id=r["stage_id"], name=r["name"], deals=r["deals"], avg_seconds=r["avg_seconds"],
                                median_seconds=r["median_seconds"]) for r in rows if r["level"] == 0],
        totals=StageDurationsTotals(deals=total["deals"], avg_seconds=total["avg_seconds"],
                                    median_seconds=total["median_seconds"]))


def velocity_statement(p: ReportParams) -> TextClause:
    """Deals closed in the period, per calendar month or ISO week of `closed_at` in the org's time zone (every
    period of the report's days, empty ones included) or for the report's days as one period; rows by `level`:
    0 a period, 1 the whole span.

    The report's days run from `from` (else the day of the first close counted) to `to` (else today, or the
    last close if later); a period's days are its days within them. velocity_per_day = value won in the
    period ÷ its days."""
    q = Sql(p)
    unit = p.group_by
    if unit is None:
        periods = "SELECT first AS start, label AS period, first AS lo, last AS hi FROM span"
    else:
        periods = (f"SELECT g::date AS start, {period_label(unit, 'g')} AS period, greatest(g::date, span.first) AS lo,"
                   f" least((g + interval '1 {unit}')::date - 1, span.last) AS hi"
                   f" FROM span, generate_series(date_trunc('{unit}', span.first::timestamp), span.last::timestamp,"
                   f" interval '1 {unit}') g")
    sql = f"""
WITH {q.org_cte(timestamps=True, today=True)},
closed AS MATERIALIZED (
    SELECT d.status, d.value_amount, (d.closed_at AT TIME ZONE (SELECT tz FROM org))::date AS day,
           -- a deal closed "before" its record was created (imported history) has a cycle of 0
           greatest(0, extract(epoch FROM d.closed_at - d.created_at)) / 86400 AS cycle_days
    FROM deals d
    WHERE {q.deal_where("closed_at")} AND d.status IN ('won', 'lost')),
{q.span_cte("SELECT day FROM closed")},
periods AS ({periods}),
report AS (
    SELECT GROUPING(p.start) AS level, p.start,
           CASE WHEN GROUPING(p.start) = 0 THEN min(p.period) ELSE (SELECT label FROM span) END AS period,
           CASE WHEN GROUPING(p.start) = 0 THEN min(p.hi - p.lo + 1)
                ELSE (SELECT last - first + 1 FROM span) END AS days,
           count(*) FILTER (WHERE c.status = 'won') AS won,
           count(*) FILTER (WHERE c.status = 'lost') AS lost,
           coalesce(sum(c.value_amount) FILTER (WHERE c.status = 'won'), 0) AS won_value,
           round(avg(c.value_amount) FILTER (WHERE c.status = 'won'), 2) AS avg_won_value,
           (count(*) FILTER (WHERE c.status = 'won'))::float8 / NULLIF(count(c.status), 0) AS win_rate,
           round(avg(c.cycle_days) FILTER (WHERE c.status = 'won'), 2)::float8 AS avg_cycle_days
    FROM periods p LEFT JOIN closed c ON c.day BETWEEN p.lo AND p.hi
    GROUP BY GROUPING SETS ((p.start), ()))
SELECT r.*, round(r.won_value / NULLIF(r.days, 0), 2) AS velocity_per_day, (SELECT currency FROM org) AS currency,
       {q.found()}
FROM report r
ORDER BY r.level, r.start"""
    return q.statement(sql)


async def velocity(session: AsyncSession, p: ReportParams) -> VelocityReport:
    rows = (await session.execute(velocity_statement(p))).mappings().all()
    total = rows[-1]
    check_found(total)
    cur = total["currency"]

    def fields(r: dict) -> dict:
        return {"period": r["period"], "won": r["won"], "avg_won_value": maybe_money(r["avg_won_value"], cur),
                "win_rate": r["win_rate"], "avg_cycle_days": r["avg_cycle_days"],
                "velocity_per_day": maybe_money(r["velocity_per_day"], cur)}

    return VelocityReport(
        rows=[VelocityRow(**fields(r)) for r in rows if r["level"] == 0],
        totals=VelocityTotals(**fields(total), lost=total["lost"], won_value=money(total["won_value"], cur)))


def rotting_statement(p: ReportParams) -> TextClause:
    """Open deals in a stage with `rotting_days` that entered it longer ago than that many days (of 24 hours).
    One row: the totals, and `rows_json`, the report's rows as the JSON the API answers with (longest past the
    threshold first), built by PostgreSQL: every idle deal of a large pipeline can be tens of thousands."""
    q = Sql(p)
    sql = f"""
WITH {q.org_cte(timestamps=False)},
rotting AS MATERIALIZED (
    SELECT d.id, d.title, d.stage_id, d.owner_id, s.rotting_days,
           floor(extract(epoch FROM now() - d.stage_entered_at) / 86400)::int AS days_in_stage,
           d.stage_entered_at + make_interval(days => s.rotting_days) AS rotting_since
    FROM deals d JOIN pipeline_stages s ON s.org_id = :org_id AND s.id = d.stage_id AND s.deleted_at IS NULL
    WHERE {q.deal_where(None, money=False)} AND d.status = 'open' AND s.rotting_days IS NOT NULL
      AND d.stage_entered_at + make_interval(days => s.rotting_days) < now())
SELECT {q.found()}, (SELECT count(*) FROM rotting) AS deals,
       (SELECT coalesce(json_agg(json_build_object(
            'deal_id', id, 'title', title, 'stage_id', stage_id, 'owner_id', owner_id,
            'days_in_stage', days_in_stage, 'rotting_days', rotting_days) ORDER BY rotting_since, id), '[]'::json)
        FROM rotting)::text AS rows_json
FROM org o"""
    return q.statement(sql)


async def rotting(session: AsyncSession, p: ReportParams) -> JsonReport:
    """The totals read here; the rows come as JSON text from the statement, passed on as they are."""
    total = (await session.execute(rotting_statement(p))).mappings().one()
    check_found(total)
    return JsonReport(total["rows_json"], {"deals": total["deals"]})


def _utc_text(column: str) -> str:
    """A timestamp as JSON text the way the API writes times: `2026-03-11T15:00:00Z`, microseconds when any."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_part('microseconds', {utc})::bigint "
            f"% 1000000 <> 0 THEN to_char({utc}, '.US') ELSE '' END || 'Z'")


@lru_cache(maxsize=1)
def _three_place_currencies() -> list[str]:
    """Currencies whose amounts are written with 3 places (`amount_places`), for statements that write money."""
    return sorted(c for c in list_currencies() if amount_places(c) == 3)


def customers_statement(p: ReportParams) -> TextClause:
    """Per contact: the won deals closed in the period whose `contact_id` it is (a live contact the caller may
    read), their count, total value, first and last `closed_at`. One row: the totals, and `rows_json`, the
    report's rows as the JSON the API answers with (highest lifetime value first), built by PostgreSQL: a
    report of every customer can hold hundreds of thousands of rows."""
    q = Sql(p)
    places = f"CASE WHEN o.currency = ANY({q.bind('three_places', _three_place_currencies())}) THEN 3 ELSE 2 END"
    sql = f"""
WITH {q.org_cte(timestamps=True)},
per AS MATERIALIZED (
    SELECT d.contact_id, count(*) AS won_deals, sum(d.value_amount) AS lifetime_value,
           min(d.closed_at) AS first_won_at, max(d.closed_at) AS last_won_at
    FROM deals d
    WHERE {q.deal_where("closed_at")} AND d.status = 'won' AND d.contact_id IS NOT NULL
      AND EXISTS (SELECT 1 FROM contacts c WHERE {CONTACT.readable_sql("c")} AND c.id = d.contact_id)
    GROUP BY d.contact_id)
SELECT o.currency, {q.found()},
       (SELECT count(*) FROM per) AS customers,
       (SELECT count(*) FROM per WHERE won_deals >= 2) AS repeat_customers,
       (SELECT coalesce(sum(won_deals), 0) FROM per)::bigint AS won_deals,
       (SELECT coalesce(sum(lifetime_value), 0) FROM per) AS lifetime_value,
       (SELECT coalesce(json_agg(json_build_object(
            'contact_id', contact_id, 'won_deals', won_deals,
            'lifetime_value', json_build_object('amount', round(lifetime_value, {places})::text,
                                                'currency', o.currency),
            'first_won_at', {_utc_text("first_won_at")}, 'last_won_at', {_utc_text("last_won_at")},
            'repeat', won_deals >= 2) ORDER BY lifetime_value DESC, contact_id), '[]'::json)
        FROM per)::text AS rows_json
FROM org o"""
    return q.statement(sql)


async def customers(session: AsyncSession, p: ReportParams) -> JsonReport:
    """The totals read here; the rows come as JSON text from the statement, passed on as they are."""
    total = (await session.execute(customers_statement(p))).mappings().one()
    check_found(total)
    cur = total["currency"]
    totals = {"customers": total["customers"], "repeat_customers": total["repeat_customers"],
              "won_deals": total["won_deals"],
              "lifetime_value": money(total["lifetime_value"], cur).model_dump(mode="json")}
    return JsonReport(total["rows_json"], totals)


def products_statement(p: ReportParams) -> TextClause:
    """Per product: the line items of the deals won in the period (`closed_at` in the org's time zone; a deal
    counts once, whichever of its pipeline's won stages it is in), in the report's currency; items without a
    product are left out. Σ quantity, Σ item value (revenue, before tax) and the number of such deals; rows by
    `level`: 0 a product, 1 the totals."""
    q = Sql(p)
    sql = f"""
WITH {q.org_cte(timestamps=True)},
sold AS MATERIALIZED (
    SELECT i.product_id, i.quantity, i.amount, i.deal_id
    FROM deals d JOIN deal_line_items i ON i.org_id = :org_id AND i.deal_id = d.id AND i.product_id IS NOT NULL
    WHERE {q.deal_where("closed_at")} AND d.status = 'won')
SELECT GROUPING(s.product_id) AS level, s.product_id, min(pr.name) AS name, sum(s.quantity) AS quantity,
       coalesce(sum(s.amount), 0) AS revenue, count(DISTINCT s.deal_id) AS deals,
       count(DISTINCT s.product_id) AS products, (SELECT currency FROM org) AS currency, {q.found()}
FROM sold s LEFT JOIN products pr ON pr.org_id = :org_id AND pr.id = s.product_id
GROUP BY GROUPING SETS ((s.product_id), ())
ORDER BY level, revenue DESC, s.product_id"""
    return q.statement(sql)


async def products(session: AsyncSession, p: ReportParams) -> ProductsReport:
    rows = (await session.execute(products_statement(p))).mappings().all()
    total = rows[-1]
    check_found(total)
    cur = total["currency"]
    return ProductsReport(
        rows=[ProductsRow(product_id=r["product_id"], name=r["name"], quantity=r["quantity"],
                          revenue=money(r["revenue"], cur), deals=r["deals"]) for r in rows if r["level"] == 0],
        totals=ProductsTotals(products=total["products"], deals=total["deals"], revenue=money(total["revenue"], cur)))
