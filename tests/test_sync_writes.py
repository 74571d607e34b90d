"""Partner writes: upsert by external id, batches with per-item results, CSV export, list ETags."""

from __future__ import annotations

import csv
import io

from tests.factories import signup


async def test_upsert_by_external_id_creates_then_updates_then_restores(client):
    acct = await signup(client)
    url = "/v1/contacts/by-external-id/erp/C-1"
    r = await client.put(url, headers=acct.headers, json={"first_name": "Ana", "email": "ana@erp.io"})
    assert r.status_code == 201
    created = r.json()
    assert created["external_ids"] == [{"source": "erp", "id": "C-1"}]
    r = await client.put(url, headers=acct.headers, json={"first_name": "Ana", "title": "CFO"})
    assert r.status_code == 200 and r.json()["id"] == created["id"]
    assert (r.json()["title"], r.json()["email"]) == ("CFO", "ana@erp.io")  # merged, not replaced
    got = await client.get(url, headers=acct.headers)
    assert got.status_code == 200 and got.json()["id"] == created["id"]
    await client.delete(f"/v1/contacts/{created['id']}", headers=acct.headers)
    assert (await client.get(url, headers=acct.headers)).status_code == 404
    r = await client.put(url, headers=acct.headers, json={"first_name": "Ana"})
    assert r.status_code == 200 and r.json()["id"] == created["id"] and r.json()["deleted_at"] is None
    assert (await client.get("/v1/contacts/by-external-id/erp/C-404", headers=acct.headers)).status_code == 404


async def test_external_ids_are_unique_per_object_type(client):
    acct = await signup(client)
    a = (await client.post("/v1/contacts", headers=acct.headers,
                           json={"first_name": "A", "external_ids": [{"source": "crm2", "id": "7"}]})).json()
    dup = await client.post("/v1/contacts", headers=acct.headers,
                            json={"first_name": "B", "external_ids": [{"source": "crm2", "id": "7"}]})
    assert dup.status_code == 409
    same_id_other_type = await client.post("/v1/companies", headers=acct.headers,
                                           json={"name": "Co", "external_ids": [{"source": "crm2", "id": "7"}]})
    assert same_id_other_type.status_code == 201
    await client.patch(f"/v1/contacts/{a['id']}", headers=acct.headers, json={"external_ids": []})
    again = await client.post("/v1/contacts", headers=acct.headers,
                              json={"first_name": "B", "external_ids": [{"source": "crm2", "id": "7"}]})
    assert again.status_code == 201  # freed by the first contact
    other = await signup(client)
    theirs = await client.get("/v1/contacts/by-external-id/crm2/7", headers=other.headers)
    assert theirs.status_code == 404


async def test_batch_one_bad_item_fails_alone(client):
    acct = await signup(client)
    r = await client.post("/v1/contacts/batch", headers=acct.headers, json={"mode": "create", "items": [
        {"first_name": "Ok1"}, {"email": "not-an-email"}, {"first_name": "Ok2", "bogus": 1}, {"first_name": "Ok3"}]})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["created", "failed", "failed", "created"]
    assert results[1]["error"]["status"] == 422 and results[1]["error"]["errors"][0]["loc"] == ["body", "items", 1,
                                                                                                "email"]
    names = {c["first_name"] for c in (await client.get("/v1/contacts", headers=acct.headers)).json()["data"]}
    assert names == {"Ok1", "Ok3"}
    ok_id = results[0]["id"]
    r = await client.post("/v1/contacts/batch", headers=acct.headers, json={"mode": "update", "items": [
        {"id": ok_id, "title": "Boss"}, {"id": "00000000-0000-0000-0000-000000000000", "title": "x"}]})
    assert [x["status"] for x in r.json()["results"]] == ["updated", "failed"]
    assert r.json()["results"][1]["error"]["status"] == 404
    r = await client.post("/v1/contacts/batch", headers=acct.headers, json={"mode": "upsert", "items": [
        {"external_id": {"source": "erp", "id": "9"}, "first_name": "Nine"},
        {"external_id": {"source": "erp", "id": "9"}, "title": "Updated"},
        {"first_name": "no ref"}]})
    assert [x["status"] for x in r.json()["results"]] == ["created", "updated", "failed"]
    assert (await client.post("/v1/contacts/batch", headers=acct.headers,
                              json={"items": [{"first_name": "x"}] * 101})).status_code == 422
    assert (await client.post("/v1/contacts/batch", headers=acct.headers, json={"mode": "merge",
                                                                               "items": [{}]})).status_code == 422


async def test_export_csv_streams_with_filters(committed_client):
    client = committed_client  # the export streams from its own connection, after the request's transaction
    acct = await signup(client)
    for i in range(5):
        await client.post("/v1/contacts", headers=acct.headers,
                          json={"first_name": f"P{i}", "tags": ["vip"] if i % 2 else [], "address": {"city": "Rome"}})
    for i in range(450):  # more than one page of the export
        await client.post("/v1/companies", headers=acct.headers, json={"name": f"Co {i}"})
    companies = list(csv.DictReader(io.StringIO((await client.get("/v1/companies/export.csv",
                                                                  headers=acct.headers)).text)))
    assert len(companies) == 450 and len({c["id"] for c in companies}) == 450
    r = await client.get("/v1/contacts/export.csv", headers=acct.headers, params={"tags": "vip"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted(row["first_name"] for row in rows) == ["P1", "P3"]
    assert rows[0]["tags"] == '["vip"]' and rows[0]["address"] == '{"city":"Rome"}'
    assert (await client.get("/v1/deals/export.csv", headers=acct.headers)).status_code == 200
    assert (await client.get("/v1/contacts/export.csv")).status_code == 401


async def test_list_weak_etag_gives_304_until_something_changes(client):
    acct = await signup(client)
    await client.post("/v1/contacts", headers=acct.headers, json={"first_name": "A"})
    first = await client.get("/v1/contacts", headers=acct.headers)
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    same = await client.get("/v1/contacts", headers={**acct.headers, "If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    await client.post("/v1/contacts", headers=acct.headers, json={"first_name": "B"})
    changed = await client.get("/v1/contacts", headers={**acct.headers, "If-None-Match": etag})
    assert changed.status_code == 200 and len(changed.json()["data"]) == 2
