"""`crm seed-bench` writes a consistent, skewed dataset the API can serve (tiny scale here)."""

from __future__ import annotations

from uuid import UUID

import httpx

from app.bench_seed import seed
from app.domain.reports.query import ReportParams
from app.domain.reports.service import funnel_statement
from app.main import create_app
from bench.funnel_depth import history_statement


async def test_seed_small_scale_is_served_by_the_api(settings, database, redis):
    result = await seed(database, settings, scale=0.0002, small_orgs=2)
    rows = result["rows"]
    assert rows["deals"] == 200 and rows["contacts"] == 60 and rows["activities"] == 400 and rows["leads"] == 40
    assert rows["events"] == sum(rows[k] for k in ("companies", "contacts", "deals", "activities", "leads"))
    assert rows["deal_stage_history"] >= rows["deals"]
    app = create_app(settings, db=database, redis=redis)
    auth = {"Authorization": f"Bearer {result['api_key']}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as c:
        deals = (await c.get("/v1/deals", headers=auth, params={"limit": 200})).json()["data"]
        assert len(deals) == 200 and {d["status"] for d in deals} <= {"open", "won", "lost"}
        assert all(d["lost_reason"] for d in deals if d["status"] == "lost")
        assert {d["forecast_category"] for d in deals if d["status"] == "lost"} == {"omitted"}  # from the stage
        assert {d["forecast_category"] for d in deals if d["status"] == "won"} == {"commit"}
        owners = [d["owner_id"] for d in deals]
        assert owners.count(max(set(owners), key=owners.count)) > len(owners) / 5  # skewed towards a few owners
        hot = (await c.get("/v1/contacts", headers=auth, params={"sort": "created_at", "limit": 1})).json()["data"][0]
        timeline = (await c.get(f"/v1/contacts/{hot['id']}/timeline", headers=auth, params={"limit": 200})).json()
        assert len(timeline["data"]) > 400 / 60  # a hot contact has far more history than the average one
        times = [e["occurred_at"] for e in timeline["data"]]
        assert times == sorted(times, reverse=True)
        history = (await c.get(f"/v1/deals/{deals[0]['id']}/stage-history", headers=auth)).json()["data"]
        assert history and history[-1]["to_stage_id"] == deals[0]["stage_id"]
        feed = (await c.get("/v1/changes", headers=auth, params={"limit": 10})).json()
        assert len(feed["data"]) == 10
    async with database.for_org(result["org_id"]) as session:  # the seeded deals carry the stages they entered
        params = ReportParams(who=UUID(result["org_id"]))
        funnel = (await session.execute(funnel_statement(params))).mappings().all()
        assert funnel == (await session.execute(history_statement(params))).mappings().all()
        assert funnel[0]["reached"] == funnel[0]["deals"] > 0  # every seeded deal entered the first stage
