"""Customer metrics on contacts and companies: kept exact by every write of a deal or an activity (moves to
and from won, values, links, deletes and restores, batches), by a change of the org's currency, filterable in
lists and segments, and never written through the API."""

from __future__ import annotations

import pytest

from tests.factories import signup

STAGES = [{"name": "New", "probability": 10}, {"name": "Won", "probability": 100, "kind": "won"},
          {"name": "Lost", "probability": 0, "kind": "lost"}]


def _migration(name: str):
    import importlib.util
    from pathlib import Path

    path = next(Path("migrations/versions").glob(f"*_{name}.py"))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _ok(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json()


async def _setup(client):
    acct = await signup(client)
    h = acct.headers
    pipeline = await _ok(await client.post("/v1/pipelines", headers=h, json={"name": "Sales", "stages": STAGES}), 201)
    stages = {s["name"]: s["id"] for s in pipeline["stages"]}
    company = await _ok(await client.post("/v1/companies", headers=h, json={"name": "Acme"}), 201)
    ana = await _ok(await client.post("/v1/contacts", headers=h, json={
        "first_name": "Ana", "company_id": company["id"]}), 201)
    bo = await _ok(await client.post("/v1/contacts", headers=h, json={"first_name": "Bo"}), 201)
    return acct, pipeline, stages, company, ana, bo


async def _deal(client, acct, pipeline, stage_id, amount: str, currency: str = "EUR", **links) -> dict:
    return await _ok(await client.post("/v1/deals", headers=acct.headers, json={
        "title": "Deal", "pipeline_id": pipeline["id"], "stage_id": stage_id,
        "value": {"amount": amount, "currency": currency}, **links}), 201)


async def _metrics(client, acct, plural: str, record_id: str) -> dict:
    return (await _ok(await client.get(f"/v1/{plural}/{record_id}", headers=acct.headers)))["metrics"]


def _eur(amount: str) -> dict:
    return {"amount": amount, "currency": "EUR"}


async def test_metrics_follow_every_deal_write(client):
    acct, pipeline, stages, company, ana, bo = await _setup(client)
    h = acct.headers
    assert await _metrics(client, acct, "contacts", ana["id"]) == {
        "won_deals_count": 0, "lifetime_value": None, "avg_deal_value": None, "last_won_at": None,
        "last_activity_at": None}
    links = {"contact_id": ana["id"], "company_id": company["id"]}
    first = await _deal(client, acct, pipeline, stages["Won"], "100.00", **links)
    second = await _deal(client, acct, pipeline, stages["New"], "250.51", **links)
    await _deal(client, acct, pipeline, stages["Won"], "999.00", "USD", **links)  # another currency: left out
    await _deal(client, acct, pipeline, stages["New"], "5.00", **links)  # open: left out
    assert (await _metrics(client, acct, "contacts", ana["id"]))["won_deals_count"] == 1

    moved = await _ok(await client.patch(f"/v1/deals/{second['id']}", headers=h, json={"stage_id": stages["Won"]}))
    m = await _metrics(client, acct, "contacts", ana["id"])
    assert m["won_deals_count"] == 2 and m["lifetime_value"] == _eur("350.51")
    assert m["avg_deal_value"] == _eur("175.26")  # 175.255, half-up
    assert m["last_won_at"] == moved["closed_at"]
    assert await _metrics(client, acct, "companies", company["id"]) == m

    # a won deal's value changes; then it moves back out of won; then it goes to Bo
    await client.patch(f"/v1/deals/{first['id']}", headers=h, json={"value": {"amount": "200.00", "currency": "EUR"}})
    assert (await _metrics(client, acct, "contacts", ana["id"]))["lifetime_value"] == _eur("450.51")
    await client.patch(f"/v1/deals/{second['id']}", headers=h, json={"stage_id": stages["New"]})
    m = await _metrics(client, acct, "contacts", ana["id"])
    assert m["won_deals_count"] == 1 and m["lifetime_value"] == _eur("200.00")
    await client.patch(f"/v1/deals/{first['id']}", headers=h, json={"contact_id": bo["id"]})
    assert (await _metrics(client, acct, "contacts", ana["id"]))["won_deals_count"] == 0
    assert (await _metrics(client, acct, "contacts", bo["id"]))["lifetime_value"] == _eur("200.00")
    assert (await _metrics(client, acct, "companies", company["id"]))["won_deals_count"] == 1  # still Acme's

    # deleted and restored
    assert (await client.delete(f"/v1/deals/{first['id']}", headers=h)).status_code == 204
    assert (await _metrics(client, acct, "contacts", bo["id"]))["won_deals_count"] == 0
    assert (await client.post(f"/v1/deals/{first['id']}/restore", headers=h)).status_code == 200
    assert (await _metrics(client, acct, "contacts", bo["id"]))["won_deals_count"] == 1

    # a batch of won deals: each contact recomputed once, exactly
    r = await client.post("/v1/deals/batch", headers=h, json={"mode": "create", "items": [
        {"title": f"B{i}", "pipeline_id": pipeline["id"], "stage_id": stages["Won"], "contact_id": bo["id"],
         "value": {"amount": "10.00", "currency": "EUR"}} for i in range(5)]})
    assert r.status_code == 200, r.text
    m = await _metrics(client, acct, "contacts", bo["id"])
    assert m["won_deals_count"] == 6 and m["lifetime_value"] == _eur("250.00")

    # the org's default currency decides which deals count
    await client.patch("/v1/org", headers=h, json={"default_currency": "USD"})
    m = await _metrics(client, acct, "contacts", ana["id"])
    assert m["won_deals_count"] == 1 and m["lifetime_value"] == {"amount": "999.00", "currency": "USD"}


async def test_last_activity_is_the_latest_done_activity(client):
    acct, _, _, company, ana, _ = await _setup(client)
    h = acct.headers
    call = await _ok(await client.post("/v1/activities", headers=h, json={
        "type": "call", "subject": "Intro", "contact_id": ana["id"], "company_id": company["id"],
        "done_at": "2026-11-02T10:00:00Z"}), 201)
    task = await _ok(await client.post("/v1/activities", headers=h, json={
        "type": "task", "subject": "Follow up", "contact_id": ana["id"], "due_at": "2026-12-20T10:00:00Z"}), 201)
    assert (await _metrics(client, acct, "contacts", ana["id"]))["last_activity_at"] == "2026-11-02T10:00:00Z"
    await client.patch(f"/v1/activities/{task['id']}", headers=h, json={"done_at": "2026-11-20T08:00:00Z"})
    assert (await _metrics(client, acct, "contacts", ana["id"]))["last_activity_at"] == "2026-11-20T08:00:00Z"
    assert (await _metrics(client, acct, "companies", company["id"]))["last_activity_at"] == "2026-11-02T10:00:00Z"
    assert (await client.delete(f"/v1/activities/{task['id']}", headers=h)).status_code == 204
    assert (await _metrics(client, acct, "contacts", ana["id"]))["last_activity_at"] == "2026-11-02T10:00:00Z"
    await client.patch(f"/v1/activities/{call['id']}", headers=h, json={"done_at": None})
    assert (await _metrics(client, acct, "contacts", ana["id"]))["last_activity_at"] is None


async def test_lists_and_segments_filter_on_metrics(client):
    acct, pipeline, stages, company, ana, bo = await _setup(client)
    h = acct.headers
    for amount in ("100.00", "300.00"):
        await _deal(client, acct, pipeline, stages["Won"], amount, contact_id=ana["id"], company_id=company["id"])
    await _deal(client, acct, pipeline, stages["Won"], "50.00", contact_id=bo["id"])
    await client.post("/v1/activities", headers=h, json={"type": "call", "subject": "Hi", "contact_id": bo["id"],
                                                         "done_at": "2026-01-05T10:00:00Z"})

    async def ids(plural: str, **params) -> list[str]:
        return sorted(x["id"] for x in (await _ok(await client.get(f"/v1/{plural}", headers=h,
                                                                    params=params)))["data"])

    assert await ids("contacts", won_deals_count_gte=2) == [ana["id"]]
    assert await ids("contacts", lifetime_value_gte="50.00") == sorted([ana["id"], bo["id"]])
    assert await ids("contacts", lifetime_value_gte="50.01") == [ana["id"]]
    assert await ids("contacts", last_won_before="2000-01-01T00:00:00Z") == []
    assert await ids("contacts", last_won_before="2100-01-01T00:00:00Z") == sorted([ana["id"], bo["id"]])
    assert await ids("contacts", last_activity_before="2026-02-01T00:00:00Z") == [bo["id"]]
    assert await ids("companies", lifetime_value_gte="400") == [company["id"]]
    for params in ({"won_deals_count_gte": -1}, {"lifetime_value_gte": "lots"}, {"lifetime_value_gte": "1.234"},
                   {"last_won_before": "yesterday"}, {"last_activity_before": "2026-01-01T00:00:00"}):
        r = await client.get("/v1/contacts", headers=h, params=params)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", params

    segment = await _ok(await client.post("/v1/segments", headers=h, json={
        "name": "Repeat buyers", "object": "contact", "filter": {"won_deals_count_gte": 2}}), 201)
    assert (await _ok(await client.get(f"/v1/segments/{segment['id']}/count", headers=h))) == {"count": 1}
    r = await client.post("/v1/segments", headers=h, json={
        "name": "Leads", "object": "lead", "filter": {"lifetime_value_gte": "1"}})
    assert r.status_code == 422


@pytest.mark.parametrize("plural", ["contacts", "companies"])
async def test_metrics_are_read_only(client, plural):
    acct, *_ = await _setup(client)
    body = {"first_name": "X"} if plural == "contacts" else {"name": "X"}
    r = await client.post(f"/v1/{plural}", headers=acct.headers, json={**body, "metrics": {"won_deals_count": 9}})
    assert r.status_code == 422


async def test_the_migration_backfills_existing_records(api, database):
    """Records as they were before the metrics existed (columns at their defaults) get them from the backfill."""
    from sqlalchemy import text

    acct, pipeline, stages, company, ana, _ = await _setup(api)
    await _deal(api, acct, pipeline, stages["Won"], "120.00", contact_id=ana["id"], company_id=company["id"])
    await api.post("/v1/activities", headers=acct.headers, json={
        "type": "call", "subject": "Hi", "contact_id": ana["id"], "done_at": "2026-03-01T09:00:00Z"})
    expected = await _metrics(api, acct, "contacts", ana["id"])
    migration = _migration("customer_metrics")
    async with database.sessions() as s:
        for table in ("contacts", "companies"):
            await s.execute(text(f"UPDATE {table} SET won_deals_count = 0, lifetime_value = 0, last_won_at = NULL, "
                                 "last_activity_at = NULL, metrics_currency = NULL WHERE org_id = :org"),
                            {"org": acct.org_id})
        await s.commit()
    assert (await _metrics(api, acct, "contacts", ana["id"]))["won_deals_count"] == 0
    async with database.sessions() as s:
        for statement in migration.BACKFILL:
            await s.execute(text(statement))
        await s.commit()
    assert await _metrics(api, acct, "contacts", ana["id"]) == expected
    assert expected["won_deals_count"] == 1 and expected["last_activity_at"] == "2026-03-01T09:00:00Z"
    assert (await _metrics(api, acct, "companies", company["id"]))["lifetime_value"] == _eur("120.00")
