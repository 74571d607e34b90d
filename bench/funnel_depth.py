"""The funnel report on a seeded database, before and after `deals.entered_stage_ids`: EXPLAIN ANALYZE and
timed runs (asyncpg, one connection) of the funnel statement the endpoint runs now and of the one it ran before,
which joined every deal with its stage history (`history_statement`, also the tests' reference); both must
return the same rows. Prints one JSON document.

    python -m bench.funnel_depth --org <the big org's id> [--repeat 5] [--history-only]

Uses CRM_DATABASE_URL: a role that row-level security does not limit, as `bench.reports`, or with `--rls` the
API's role, limited by it as in production (the org is set for the session, as `app.db.set_org` does per
transaction). `--history-only` runs the old statement alone, on a database migrated before 0029.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import TextClause

from app.domain.reports.query import ReportParams, Sql
from app.domain.reports.service import asyncpg_args, funnel_statement


def history_statement(p: ReportParams) -> TextClause:
    """The funnel as computed from every deal's whole stage history: the statement `funnel_statement` was before
    `deals.entered_stage_ids`, the reference the tests compare it with."""
    q = Sql(p)
    pipe, in_pipe = q.stages_cte()
    sql = f"""
WITH {q.org_cte(timestamps=True)},
{pipe},
steps AS (
    SELECT array_agg(s.id ORDER BY s.position) FILTER (WHERE s.kind <> 'lost') AS ranked,
           coalesce(array_agg(s.id) FILTER (WHERE s.kind = 'lost'), '{{}}') AS exits
    FROM stages s),
d AS MATERIALIZED (
    SELECT d.id, d.stage_id, d.value_amount FROM deals d
    WHERE {q.deal_where("created_at", pipeline=in_pipe)}),
entered AS MATERIALIZED (
    SELECT h.deal_id, h.to_stage_id AS stage_id
    FROM d JOIN deal_stage_history h ON h.org_id = :org_id AND h.deal_id = d.id
    UNION ALL
    SELECT d.id, d.stage_id FROM d),
depth AS (
    SELECT max(array_position((SELECT ranked FROM steps), e.stage_id)) AS depth FROM entered e GROUP BY e.deal_id),
by_depth AS MATERIALIZED (SELECT depth, count(*) AS n FROM depth WHERE depth IS NOT NULL GROUP BY depth),
exits AS MATERIALIZED (
    SELECT e.stage_id, count(DISTINCT e.deal_id) AS n FROM entered e
    WHERE e.stage_id = ANY(CAST((SELECT exits FROM steps) AS uuid[])) GROUP BY e.stage_id),
now_in AS MATERIALIZED (SELECT d.stage_id, count(*) AS n, sum(d.value_amount) AS value FROM d GROUP BY d.stage_id),
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



async def _run(conn: asyncpg.Connection, statement: TextClause, repeat: int) -> dict[str, Any]:
    sql, args = asyncpg_args(statement)
    plan = await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, *args)
    plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]
    timings, rows = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = await conn.fetch(sql, *args)
        timings.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(timings), 1), "runs_ms": [round(t, 1) for t in timings],
            "explain_ms": round(plan["Execution Time"], 1), "rows": [dict(r) for r in rows]}


async def main(org: UUID, repeat: int, history_only: bool, rls: bool) -> dict[str, Any]:
    url = os.environ["CRM_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    if rls:
        await conn.execute("SELECT set_config('crm.org_id', $1, false)", str(org))
    owner = await conn.fetchval("SELECT owner_id FROM deals WHERE org_id = $1 GROUP BY owner_id "
                                "ORDER BY count(*) DESC LIMIT 1", org)
    today = date.today()
    cases = {
        "funnel, all time": ReportParams(org),
        "funnel, last quarter": ReportParams(org, date_from=today - timedelta(days=90), date_to=today),
        "funnel, one owner, last year": ReportParams(org, owner_id=owner, date_from=today - timedelta(days=365),
                                                     date_to=today),
    }
    report = []
    for name, params in cases.items():
        case: dict[str, Any] = {"case": name, "history": await _run(conn, history_statement(params), repeat)}
        if not history_only:
            case["stored"] = await _run(conn, funnel_statement(params), repeat)
            case["same_rows"] = case["stored"]["rows"] == case["history"]["rows"]
        for run in ("history", "stored"):
            if run in case:
                case[run]["reached"] = [r["reached"] for r in case[run].pop("rows")]
        report.append(case)
    counts = dict(await conn.fetchrow(
        "SELECT (SELECT count(*) FROM deals WHERE org_id = $1) AS deals,"
        " (SELECT count(*) FROM deal_stage_history WHERE org_id = $1) AS stage_moves", org))
    settings = dict(await conn.fetchrow("SELECT version() AS version, current_user AS role,"
                                        " current_setting('work_mem') AS work_mem,"
                                        " current_setting('max_parallel_workers_per_gather') AS parallel_workers"))
    await conn.close()
    return {"org": str(org), "rows": counts, "postgres": settings, "cases": report}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--org", type=UUID, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--history-only", action="store_true", help="the old statement alone (before 0029)")
    parser.add_argument("--rls", action="store_true", help="set the org for the session (the API's role)")
    options = parser.parse_args()
    json.dump(asyncio.run(main(options.org, options.repeat, options.history_only, options.rls)), sys.stdout,
              indent=2, default=str)
    print()
