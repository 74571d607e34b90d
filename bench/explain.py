"""Index check: seed one large organisation (plus many small ones) and EXPLAIN ANALYZE the exact SQL that
the main list endpoints issue. Prints one JSON document; any sequential scan on a big table is a finding.

    python -m bench.explain [--rows 300000]

Uses CRM_DATABASE_URL when set, else an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event, text

from app import migrate
from app.db import Database
from app.demo import create_org_with_key
from app.main import create_app
from app.settings import Settings

SEEDED = {"contacts", "deals", "activities", "companies"}  # the tables the seed fills


SEED = """
WITH owners AS (SELECT array_agg(id) AS ids FROM users WHERE org_id = :org)
INSERT INTO companies (org_id, id, owner_id, name, custom_fields, external_ids, created_at, updated_at, version)
SELECT :org, gen_random_uuid(), (SELECT ids[1 + (g % array_length(ids, 1))] FROM owners), 'Company ' || g, '{}', '[]',
       now() - (g || ' seconds')::interval, now(), 1
FROM generate_series(1, :rows / 10) g;

WITH owners AS (SELECT array_agg(id) AS ids FROM users WHERE org_id = :org),
     cos AS (SELECT array_agg(id) AS ids FROM companies WHERE org_id = :org)
INSERT INTO contacts (org_id, id, owner_id, first_name, last_name, email, phone, company_id, tags, source,
                      custom_fields, external_ids, created_at, updated_at, version)
SELECT :org, gen_random_uuid(),
       (SELECT ids[1 + ((g::bigint * g) % array_length(ids, 1))::int] FROM owners),
       'First' || (g % 997), 'Last' || g, 'person' || g || '@example.com', '+4930' || (1000000 + g),
       CASE WHEN g % 3 = 0 THEN (SELECT ids[1 + (g % array_length(ids, 1))] FROM cos) END,
       CASE WHEN g % 10 = 0 THEN ARRAY['vip'] ELSE ARRAY[]::varchar[] END,
       (ARRAY['web_form', 'import', 'referral', 'api'])[1 + g % 4],
       jsonb_build_object('tier', (ARRAY['gold', 'silver', 'bronze'])[1 + g % 3]), '[]',
       now() - (g || ' seconds')::interval, now() - ((g % 1000) || ' minutes')::interval, 1
FROM generate_series(1, :rows) g;

WITH owners AS (SELECT array_agg(id) AS ids FROM users WHERE org_id = :org),
     st AS (SELECT array_agg(s.id ORDER BY s.position) AS ids, min(p.id::text)::uuid AS pipeline
            FROM pipeline_stages s JOIN pipelines p ON p.org_id = s.org_id AND p.id = s.pipeline_id
            WHERE s.org_id = :org AND p.is_default)
INSERT INTO deals (org_id, id, owner_id, title, pipeline_id, stage_id, value_amount, currency, expected_close_date,
                   status, stage_entered_at, custom_fields, external_ids, created_at, updated_at, version,
                   entered_stage_ids)
SELECT :org, gen_random_uuid(), (SELECT ids[1 + ((g * 7) % array_length(ids, 1))] FROM owners),
       'Deal ' || g, (SELECT pipeline FROM st), (SELECT ids[1 + g % 3] FROM st), (g % 50000) + 0.5, 'EUR',
       CASE WHEN g % 5 = 0 THEN NULL ELSE current_date + (g % 365) END, 'open',
       now() - ((g % 10000) || ' minutes')::interval, '{}', '[]', now() - (g || ' seconds')::interval, now(), 1,
       ARRAY[(SELECT ids[1 + g % 3] FROM st)]
FROM generate_series(1, :rows) g;

WITH owners AS (SELECT array_agg(id) AS ids FROM users WHERE org_id = :org),
     cs AS (SELECT array_agg(id) AS ids FROM (SELECT id FROM contacts WHERE org_id = :org LIMIT 1000) x)
INSERT INTO activities (org_id, id, owner_id, type, subject, due_at, done_at, assignee_id, contact_id, priority,
                        custom_fields, created_at, updated_at, version)
SELECT :org, gen_random_uuid(), o, (ARRAY['task', 'call', 'note'])[1 + g % 3], 'Activity ' || g,
       now() + ((g % 2000 - 1000) || ' minutes')::interval, CASE WHEN g % 2 = 0 THEN now() END, o,
       (SELECT ids[1 + (g % 50)] FROM cs), 'normal', '{}', now() - (g || ' seconds')::interval, now(), 1
FROM generate_series(1, :rows) g, LATERAL (SELECT (SELECT ids[1 + (g % array_length(ids, 1))] FROM owners) AS o) x;
"""


def _scans(plan: dict[str, Any], out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = {"node": plan["Node Type"], "relation": plan.get("Relation Name"), "index": plan.get("Index Name"),
            "rows": plan.get("Actual Rows")}
    if "Scan" in plan["Node Type"]:
        out.append(node)
    for child in plan.get("Plans", []):
        _scans(child, out)
    return out


async def main(rows: int) -> dict[str, Any]:
    tmp = None
    url = os.environ.get("CRM_DATABASE_URL")
    if not url:
        from tests.servers import PostgresCluster

        tmp = PostgresCluster()
        url = tmp.create_database("bench")
    migrate.upgrade(url)
    settings = Settings(env="test", database_url=url, redis_url="redis://unused", jwt_secret="x" * 40, db_statement_timeout_ms=0,
                        argon2_time_cost=1, argon2_memory_kib=1024, log_level="WARNING", data_dir=tempfile.mkdtemp())
    db = Database.from_settings(settings)
    org_id, owner_id, key = await create_org_with_key(db, settings, "Big", f"big-{time.time()}@example.com", "O", None)
    small = [await create_org_with_key(db, settings, f"Small {i}", f"s{i}-{time.time()}@example.com", "S", None)
             for i in range(20)]
    started = time.perf_counter()
    async with db.engine.begin() as conn:
        for i in range(19):
            await conn.execute(text(
                "INSERT INTO users (org_id, id, email, name, role, active, out_of_office, created_at, updated_at,"
                " version) VALUES (:org, gen_random_uuid(), :e, 'Rep', 'member', true, false, now(), now(), 1)"),
                {"org": org_id, "e": f"rep{i}-{time.time()}@example.com"})
        for statement in SEED.split(";\n\n"):
            await conn.execute(text(statement), {"org": org_id, "rows": rows})
        for s_org, _, _ in small:  # small tenants share the indexes
            for statement in SEED.split(";\n\n"):
                await conn.execute(text(statement), {"org": s_org, "rows": 200})
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))
    seeded_s = time.perf_counter() - started

    captured: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        captured.append((statement, parameters))

    app = create_app(settings, db=db, redis=None)
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        some = (await client.get("/v1/contacts", headers=auth, params={"limit": 1})).json()["data"][0]
        deal = (await client.get("/v1/deals", headers=auth, params={"limit": 1})).json()["data"][0]
        cases = {
            "contacts newest": ("/v1/contacts", {}),
            "contacts by owner": ("/v1/contacts", {"owner_id": some["owner_id"]}),
            "contacts by tag": ("/v1/contacts", {"tags": "vip"}),
            "contacts q prefix": ("/v1/contacts", {"q": "last12345"}),
            "contacts q email": ("/v1/contacts", {"q": "person777@example.com"}),
            "contacts by source": ("/v1/contacts", {"source": "api"}),
            "contacts by last_name": ("/v1/contacts", {"sort": "last_name"}),
            "deals by stage and owner": ("/v1/deals", {"stage_id": deal["stage_id"], "owner_id": deal["owner_id"]}),
            "deals by value": ("/v1/deals", {"sort": "-value"}),
            "deals by expected close": ("/v1/deals", {"sort": "expected_close_date"}),
            "deals open in pipeline": ("/v1/deals", {"pipeline_id": deal["pipeline_id"], "status": "open"}),
            "my open tasks due": ("/v1/activities", {"assignee_id": some["owner_id"], "done": "false",
                                                     "sort": "due_at"}),
            "overdue": ("/v1/activities", {"overdue": "true"}),
            "deals q title": ("/v1/deals", {"q": "deal 4242"}),
            "activities q subject": ("/v1/activities", {"q": "activity 4242"}),
            "my tasks today": ("/v1/activities", {"assignee_id": some["owner_id"], "done": "false",
                                                  "due_after": datetime.now(UTC).isoformat(),
                                                  "due_before": (datetime.now(UTC) + timedelta(hours=8)).isoformat(),
                                                  "sort": "due_at"}),
            "contact timeline": (f"/v1/contacts/{some['id']}/timeline", {}),
            "get deal": (f"/v1/deals/{deal['id']}", {}),
        }
        report = []
        engine = db.engine.sync_engine
        for name, (path, params) in cases.items():
            captured.clear()
            event.listen(engine, "before_cursor_execute", capture)
            r = await client.get(path, headers=auth, params=params)
            event.remove(engine, "before_cursor_execute", capture)
            assert r.status_code == 200, (name, r.text)
            statements = []
            async with db.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                for sql, args in captured:
                    if not sql.lstrip().upper().startswith("SELECT"):
                        continue
                    plan = await raw.driver_connection.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *(args or ()))
                    plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]
                    scans = _scans(plan["Plan"], [])
                    statements.append({"sql": " ".join(sql.split())[:160], "ms": round(plan["Execution Time"], 2),
                                       "scans": scans,
                                       # an empty table is read by a sequential scan, rightly: not a finding
                                       "seq_scan_on_big_table": any(s["node"] == "Seq Scan" and s["relation"]
                                                                    in SEEDED for s in scans)})
            report.append({"case": name, "path": path, "params": params, "round_trips": len(captured),
                           "statements": statements})
    await db.dispose()
    if tmp:
        tmp.stop()
    return {"rows_per_big_table": rows, "seed_seconds": round(seeded_s, 1), "cases": report,
            "seq_scans_on_big_tables": sum(s["seq_scan_on_big_table"] for c in report for s in c["statements"])}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300_000)
    result = asyncio.run(main(parser.parse_args().rows))
    json.dump(result, sys.stdout, indent=2)
    print()
