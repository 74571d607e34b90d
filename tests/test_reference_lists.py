"""Reference lists (API.md "Catalog"): `/v1/lists` and their items; once `lost_reasons`, `industries` or
`lead_sources` holds items, `lost_reason`, `industry` and `source` must be one of its active values (422 naming
the field) on every write path."""

from __future__ import annotations

import pytest

from tests.factories import signup


async def _ok(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json() if r.content else {}


def _names(r, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert any(e["loc"][:2] == ["body", field] for e in r.json()["errors"]), r.json()


async def _list(client, acct, key: str, *values: str) -> dict:
    made = await _ok(await client.post("/v1/lists", headers=acct.headers, json={"key": key, "label": key.title()}), 201)
    for i, value in enumerate(values):
        await _ok(await client.post(f"/v1/lists/{key}/items", headers=acct.headers,
                                    json={"value": value, "position": i}), 201)
    return made


async def test_lists_and_items_crud(client):
    acct = await signup(client)
    h = acct.headers
    made = await client.post("/v1/lists", headers=h, json={"key": "lost_reasons", "label": "Lost reasons"})
    ref = await _ok(made, 201)
    assert made.headers["Location"] == "/v1/lists/lost_reasons"
    assert (await client.post("/v1/lists", headers=h, json={"key": "lost_reasons", "label": "x"})).status_code == 409
    for bad in ({"key": "Lost Reasons", "label": "x"}, {"key": "x"}, {"key": "x", "label": ""},
                {"key": "x", "label": "y", "extra": 1}):
        assert (await client.post("/v1/lists", headers=h, json=bad)).status_code == 422, bad
    # by key or by id
    assert (await _ok(await client.get("/v1/lists/lost_reasons", headers=h)))["id"] == ref["id"]
    assert (await _ok(await client.get(f"/v1/lists/{ref['id']}", headers=h)))["key"] == "lost_reasons"
    assert (await client.get("/v1/lists/nope", headers=h)).status_code == 404
    renamed = await _ok(await client.patch("/v1/lists/lost_reasons", headers=h, json={"label": "Why we lost"}))
    assert renamed["label"] == "Why we lost" and renamed["key"] == "lost_reasons"
    assert [r["key"] for r in (await _ok(await client.get("/v1/lists", headers=h)))["data"]] == ["lost_reasons"]

    url = "/v1/lists/lost_reasons/items"
    price = await _ok(await client.post(url, headers=h, json={"value": "price", "label": "Too expensive",
                                                              "position": 2}), 201)
    assert price["active"] is True and price["list_id"] == ref["id"]
    timing = await _ok(await client.post(url, headers=h, json={"value": "timing", "position": 1}), 201)
    assert (await _ok(await client.get(f"{url}/{timing['id']}", headers=h))) == timing
    assert (await client.get(f"/v1/lists/{ref['id']}/items/{price['id']}", headers=h)).status_code == 200
    assert (await client.post(url, headers=h, json={"value": "price"})).status_code == 409
    assert [i["value"] for i in (await _ok(await client.get(url, headers=h)))["data"]] == ["timing", "price"]
    off = await _ok(await client.patch(f"{url}/{timing['id']}", headers=h, json={"active": False}))
    assert off["active"] is False and off["version"] == timing["version"] + 1
    assert (await client.patch(f"{url}/{timing['id']}", headers=h, json={"value": "price"})).status_code == 409
    assert (await client.patch(f"{url}/{timing['id']}", headers=h, json={"value": None})).status_code == 422
    assert (await client.delete(f"{url}/{price['id']}", headers=h)).status_code == 204
    assert (await client.delete(f"{url}/{price['id']}", headers=h)).status_code == 404
    assert [i["value"] for i in (await _ok(await client.get(url, headers=h)))["data"]] == ["timing"]
    # deleting the list deletes its items
    assert (await client.delete("/v1/lists/lost_reasons", headers=h)).status_code == 204
    assert (await client.get(url, headers=h)).status_code == 404
    assert (await _ok(await client.get("/v1/lists", headers=h)))["data"] == []


async def test_lost_reason_must_be_an_active_value_once_the_list_has_items(client):
    acct = await signup(client)
    h = acct.headers
    pipeline = next(p for p in (await _ok(await client.get("/v1/pipelines", headers=h)))["data"] if p["is_default"])
    lost = next(s["id"] for s in pipeline["stages"] if s["kind"] == "lost")
    deal = await _ok(await client.post("/v1/deals", headers=h, json={"title": "D"}), 201)
    # a list without items constrains nothing
    await _list(client, acct, "lost_reasons")
    free = await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": lost, "lost_reason": "moon"})
    assert free.status_code == 200, free.text
    await _ok(await client.post("/v1/lists/lost_reasons/items", headers=h, json={"value": "price"}), 201)
    retired = await _ok(await client.post("/v1/lists/lost_reasons/items", headers=h,
                                          json={"value": "budget", "active": False}), 201)
    second = await _ok(await client.post("/v1/deals", headers=h, json={"title": "E"}), 201)
    for reason in ("timing", "budget"):  # not in the list; inactive
        _names(await client.patch(f"/v1/deals/{second['id']}", headers=h,
                                  json={"stage_id": lost, "lost_reason": reason}), "lost_reason")
        _names(await client.post("/v1/deals", headers=h, json={"title": "F", "stage_id": lost, "lost_reason": reason}),
               "lost_reason")
    assert (await _ok(await client.get(f"/v1/deals/{second['id']}", headers=h)))["status"] == "open"
    ok = await _ok(await client.patch(f"/v1/deals/{second['id']}", headers=h,
                                      json={"stage_id": lost, "lost_reason": "price"}))
    assert ok["lost_reason"] == "price"
    # batch and upsert paths hold it too
    batch = await _ok(await client.post("/v1/deals/batch", headers=h, json={"mode": "update", "items": [
        {"id": second["id"], "lost_reason": "timing"}]}))
    assert batch["results"][0]["status"] == "failed" and batch["results"][0]["error"]["status"] == 422
    _names(await client.put("/v1/deals/by-external-id/erp/D-1", headers=h, json={
        "title": "G", "stage_id": lost, "lost_reason": "timing"}), "lost_reason")
    # the old value stays on the deal that has it; editing other fields is fine
    assert (await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"title": "Renamed"})).status_code == 200
    # activated again: allowed
    await _ok(await client.patch(f"/v1/lists/lost_reasons/items/{retired['id']}", headers=h, json={"active": True}))
    assert (await client.patch(f"/v1/deals/{second['id']}", headers=h, json={"lost_reason": "budget"})).status_code == 200


async def test_industry_and_source_follow_their_lists(client):
    acct = await signup(client)
    h = acct.headers
    await _list(client, acct, "industries", "Software", "Retail")
    await _list(client, acct, "lead_sources", "referral", "fair")
    _names(await client.post("/v1/companies", headers=h, json={"name": "Acme", "industry": "Mining"}), "industry")
    company = await _ok(await client.post("/v1/companies", headers=h, json={"name": "Acme", "industry": "Software"}),
                        201)
    _names(await client.patch(f"/v1/companies/{company['id']}", headers=h, json={"industry": "software"}), "industry")
    assert (await client.patch(f"/v1/companies/{company['id']}", headers=h, json={"industry": None})).status_code == 200
    for plural, body in (("contacts", {"first_name": "Ana"}), ("leads", {"first_name": "Leo"})):
        _names(await client.post(f"/v1/{plural}", headers=h, json={**body, "source": "billboard"}), "source")
        made = await _ok(await client.post(f"/v1/{plural}", headers=h, json={**body, "source": "referral"}), 201)
        _names(await client.patch(f"/v1/{plural}/{made['id']}", headers=h, json={"source": "billboard"}), "source")
        # sources the system gives always pass
        assert (await client.post(f"/v1/{plural}", headers=h, json={**body, "source": "import"})).status_code == 201
    # a lead converted after its source left the list keeps it on its contact
    lead = await _ok(await client.post("/v1/leads", headers=h, json={"first_name": "Old", "source": "fair"}), 201)
    items = (await _ok(await client.get("/v1/lists/lead_sources/items", headers=h)))["data"]
    fair = next(i for i in items if i["value"] == "fair")
    await _ok(await client.patch(f"/v1/lists/lead_sources/items/{fair['id']}", headers=h, json={"active": False}))
    converted = await _ok(await client.post(f"/v1/leads/{lead['id']}/convert", headers=h, json={}))
    assert converted["contact"]["source"] == "fair"
    _names(await client.post("/v1/leads", headers=h, json={"first_name": "New", "source": "fair"}), "source")
    # a web form's lead is made whatever the list says
    form = await _ok(await client.post("/v1/forms", headers=h, json={"name": "Contact us"}), 201)
    submitted = await client.post(f"/v1/public/forms/{form['public_key']}/submissions", json={"email": "x@example.com"})
    assert submitted.status_code in (200, 201, 202), submitted.text
    # another organisation's lists do not apply
    other = await signup(client, "Other")
    assert (await client.post("/v1/companies", headers=other.headers,
                              json={"name": "Pit", "industry": "Mining"})).status_code == 201


async def test_admins_write_lists_everyone_reads_them_other_orgs_get_404(client):
    acct = await signup(client)
    ref = await _list(client, acct, "industries", "Software")
    member = await acct.invite("member")
    assert [r["key"] for r in (await _ok(await client.get("/v1/lists", headers=member.headers)))["data"]] == ["industries"]
    assert len((await _ok(await client.get("/v1/lists/industries/items", headers=member.headers)))["data"]) == 1
    for method, path, body in (("post", "/v1/lists", {"key": "x", "label": "x"}),
                               ("patch", "/v1/lists/industries", {"label": "x"}),
                               ("delete", "/v1/lists/industries", None),
                               ("post", "/v1/lists/industries/items", {"value": "x"})):
        kwargs = {"json": body} if body is not None else {}
        assert (await getattr(client, method)(path, headers=member.headers, **kwargs)).status_code == 403, path
    assert (await client.get("/v1/lists")).status_code == 401
    other = await signup(client, "Other")
    item_id = (await _ok(await client.get("/v1/lists/industries/items", headers=acct.headers)))["data"][0]["id"]
    for path in ("/v1/lists/industries", f"/v1/lists/{ref['id']}", "/v1/lists/industries/items",
                 f"/v1/lists/industries/items/{item_id}"):
        r = await client.get(path, headers=other.headers)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", path
    assert (await client.delete(f"/v1/lists/{ref['id']}", headers=other.headers)).status_code == 404
    assert (await client.post("/v1/lists/industries/items", headers=other.headers, json={"value": "x"})).status_code == 404


@pytest.mark.parametrize("body", [{"value": ""}, {"value": "x" * 201}, {"value": "x", "position": -1},
                                  {"value": "x", "active": "maybe"}, {"value": "x", "colour": "red"}])
async def test_bad_items_are_422(client, body):
    acct = await signup(client)
    await _list(client, acct, "industries")
    r = await client.post("/v1/lists/industries/items", headers=acct.headers, json=body)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
