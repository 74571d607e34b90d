"""Reports on a seeded database: EXPLAIN ANALYZE the exact statement each report endpoint runs (built by
`app.domain.reports.service.*_statement`), executed directly with asyncpg. Prints one JSON document.

    crm seed-bench --scale 0.1            # once, into CRM_DATABASE_URL
    python -m bench.reports --org <the big org's id printed by seed-bench> [--repeat 5]

Any sequential scan on a big table is a finding (small tables are rightly read whole).
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

from app.domain.reports.people import (
    activities_statement,
    emails_statement,
    lead_sources_statement,
    response_times_statement,
)
from app.domain.reports.sales import (
    customers_statement,
    products_statement,
    rotting_statement,
    stage_durations_statement,
    velocity_statement,
)
from app.domain.reports.service import (
    ReportParams,
    asyncpg_args,
    forecast_statement,
    funnel_statement,
    win_loss_statement,
)

BIG = {"deals", "deal_stage_history", "leads", "activities", "emails", "contacts"}


def _scans(plan: dict[str, Any], out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if "Scan" in plan["Node Type"]:
        out.append({"node": plan["Node Type"], "relation": plan.get("Relation Name"), "index": plan.get("Index Name"),
                    "rows": plan.get("Actual Rows"), "loops": plan.get("Actual Loops")})
    for child in plan.get("Plans", []):
        _scans(child, out)
    return out


async def main(org: UUID, repeat: int) -> dict[str, Any]:
    url = os.environ["CRM_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    owner = await conn.fetchval("SELECT owner_id FROM deals WHERE org_id = $1 GROUP BY owner_id "
                                "ORDER BY count(*) DESC LIMIT 1", org)
    pipeline = await conn.fetchval("SELECT id FROM pipelines WHERE org_id = $1 AND is_default", org)
    today = date.today()
    year = {"date_from": today - timedelta(days=365), "date_to": today}
    quarter = {"date_from": today - timedelta(days=90), "date_to": today}
    cases = {
        "funnel, all time": funnel_statement(ReportParams(org)),
        "funnel, last quarter": funnel_statement(ReportParams(org, **quarter)),
        "funnel, one owner, last year": funnel_statement(ReportParams(org, owner_id=owner, **year)),
        "win-loss, all time": win_loss_statement(ReportParams(org)),
        "win-loss by month, last year": win_loss_statement(ReportParams(org, group_by="month", **year)),
        "win-loss by owner, last quarter": win_loss_statement(ReportParams(org, group_by="owner", **quarter)),
        "win-loss by source, last year": win_loss_statement(ReportParams(org, group_by="source", **year)),
        "win-loss, source filter": win_loss_statement(ReportParams(org, source="web_form")),
        "forecast, all": forecast_statement(ReportParams(org)),
        "forecast, next quarter, pipeline": forecast_statement(ReportParams(
            org, pipeline_id=pipeline, date_from=today, date_to=today + timedelta(days=90))),
        "forecast, one owner": forecast_statement(ReportParams(org, owner_id=owner)),
        "stage-durations, all time": stage_durations_statement(ReportParams(org)),
        "stage-durations, last quarter, one owner": stage_durations_statement(ReportParams(
            org, owner_id=owner, **quarter)),
        "velocity by month, last year": velocity_statement(ReportParams(org, group_by="month", **year)),
        "velocity by week, last quarter, pipeline": velocity_statement(ReportParams(
            org, group_by="week", pipeline_id=pipeline, **quarter)),
        "rotting, all": rotting_statement(ReportParams(org)),
        "activities, last quarter": activities_statement(ReportParams(org, **quarter)),
        "activities, one assignee": activities_statement(ReportParams(org, owner_id=owner)),
        "lead-sources, last year": lead_sources_statement(ReportParams(org, **year)),
        "lead-sources by form, last quarter": lead_sources_statement(ReportParams(org, group_by="form", **quarter)),
        "response-times, last quarter": response_times_statement(ReportParams(org, **quarter)),
        "emails by month, last year": emails_statement(ReportParams(org, group_by="month", **year)),
        "customers, all time": customers_statement(ReportParams(org)),
        "customers, last quarter": customers_statement(ReportParams(org, **quarter)),
        "products, last year": products_statement(ReportParams(org, **year)),
        "products, one owner, all time": products_statement(ReportParams(org, owner_id=owner)),
    }
    report = []
    for name, statement in cases.items():
        sql, args = asyncpg_args(statement)
        plan = await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, *args)
        plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            await conn.fetch(sql, *args)
            timings.append((time.perf_counter() - started) * 1000)
        scans = _scans(plan["Plan"], [])
        report.append({"case": name, "median_ms": round(statistics.median(timings), 1),
                       "explain_ms": round(plan["Execution Time"], 1), "scans": scans,
                       "seq_scans_on_big_tables": [s["relation"] for s in scans
                                                   if s["node"] == "Seq Scan" and s["relation"] in BIG]})
    counts = dict(await conn.fetchrow(
        "SELECT (SELECT count(*) FROM deals WHERE org_id = $1) AS deals,"
        " (SELECT count(*) FROM deal_stage_history WHERE org_id = $1) AS stage_moves,"
        " (SELECT count(*) FROM leads WHERE org_id = $1) AS leads", org))
    await conn.close()
    return {"org": str(org), "rows": counts, "cases": report}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--org", type=UUID, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    json.dump(asyncio.run(main(options.org, options.repeat)), sys.stdout, indent=2)
    print()
