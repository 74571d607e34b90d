"""Products (API.md "Catalog"): admins write the catalogue, everyone reads it; lists with the common filters and
keyset pages, soft delete and restore, upsert by external id and batches as for contacts, custom fields with
`object: product`, product.* events; and the products report."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from app.domain.events.models import Event
from tests.factories import signup

SEAT = {"sku": "SEAT-PRO", "name": "Pro seat", "unit": "seat", "tax_rate": "19.00",
        "prices": [{"amount": "240.00", "currency": "EUR"}, {"amount": "260.00", "currency": "USD"}]}


async def _ok(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json() if r.content else {}


def _names(r, *field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    locs = [tuple(str(x) for x in e["loc"]) for e in r.json()["errors"]]
    assert any(loc[1:1 + len(field)] == field for loc in locs), (field, locs)


async def test_create_read_update_delete_restore(client, session):
    acct = await signup(client)
    h = acct.headers
    made = await client.post("/v1/products", headers=h, json=SEAT)
    product = await _ok(made, 201)
    assert made.headers["Location"] == f"/v1/products/{product['id']}"
    assert {k: product[k] for k in SEAT} == SEAT
    assert product["active"] is True and product["custom_fields"] == {} and product["external_ids"] == []
    got = await client.get(f"/v1/products/{product['id']}", headers=h)
    assert got.json() == product and got.headers["ETag"] == f'"{product["version"]}"'
    # numbers are accepted; prices are replaced whole; null clears
    patched = await _ok(await client.patch(f"/v1/products/{product['id']}", headers=h, json={
        "tax_rate": 7, "prices": [{"amount": 199.5, "currency": "eur"}], "unit": None}))
    assert patched["tax_rate"] == "7.00" and patched["prices"] == [{"amount": "199.50", "currency": "EUR"}]
    assert patched["unit"] is None and patched["version"] == product["version"] + 1
    _names(await client.patch(f"/v1/products/{product['id']}", headers=h, json={"name": None}), "name")
    assert (await client.patch(f"/v1/products/{product['id']}", headers={**h, "If-Match": '"1"'},
                               json={"active": False})).status_code == 412

    assert (await client.delete(f"/v1/products/{product['id']}", headers=h)).status_code == 204
    assert (await client.get(f"/v1/products/{product['id']}", headers=h)).status_code == 404
    assert (await _ok(await client.get("/v1/products", headers=h)))["data"] == []
    tomb = await _ok(await client.get(f"/v1/products/{product['id']}", headers=h,
                                      params={"include_deleted": "true"}))
    assert tomb["deleted_at"] is not None
    back = await _ok(await client.post(f"/v1/products/{product['id']}/restore", headers=h))
    assert back["deleted_at"] is None
    types = (await session.scalars(select(Event.type).where(Event.object_id == product["id"])
                                   .order_by(Event.version))).all()
    assert types == ["product.created", "product.updated", "product.deleted", "product.restored"]


async def test_lists_filter_sort_and_page(client):
    acct = await signup(client)
    h = acct.headers
    ids = []
    for i in range(5):
        ids.append((await _ok(await client.post("/v1/products", headers=h, json={
            "sku": f"SKU-{i}", "name": f"Widget {i}" if i % 2 else f"Gadget {i}", "active": i != 4}), 201))["id"])
    first = await _ok(await client.get("/v1/products", headers=h, params={"limit": 2}))
    second = await _ok(await client.get("/v1/products", headers=h, params={"limit": 2, "cursor": first["next_cursor"]}))
    third = await _ok(await client.get("/v1/products", headers=h, params={"limit": 2, "cursor": second["next_cursor"]}))
    assert [p["id"] for p in first["data"] + second["data"] + third["data"]] == ids[::-1]
    assert third["next_cursor"] is None
    by = await _ok(await client.get("/v1/products", headers=h, params={"sort": "created_at"}))
    assert [p["id"] for p in by["data"]] == ids
    assert {p["sku"] for p in (await _ok(await client.get("/v1/products", headers=h,
                                                          params={"active": "false"})))["data"]} == {"SKU-4"}
    assert [p["id"] for p in (await _ok(await client.get("/v1/products", headers=h,
                                                         params={"sku": "SKU-2"})))["data"]] == [ids[2]]
    assert {p["sku"] for p in (await _ok(await client.get("/v1/products", headers=h,
                                                          params={"q": "widg"})))["data"]} == {"SKU-1", "SKU-3"}
    assert len((await _ok(await client.get("/v1/products", headers=h, params={"ids": f"{ids[0]},{ids[1]}"})))["data"]) == 2
    for bad in ({"sort": "name"}, {"owner_id": acct.user_id}, {"limit": 201}, {"colour": "red"}):
        assert (await client.get("/v1/products", headers=h, params=bad)).status_code == 422, bad
    export = await client.get("/v1/products/export.csv", headers=h)
    assert export.status_code == 200 and len(list(csv.reader(io.StringIO(export.text)))) == 6


async def test_custom_fields_on_products(client):
    acct = await signup(client)
    h = acct.headers
    await _ok(await client.post("/v1/custom-fields", headers=h, json={
        "object": "product", "key": "tier", "label": "Tier", "type": "select", "options": ["basic", "pro"]}), 201)
    pro = await _ok(await client.post("/v1/products", headers=h, json={
        "name": "Pro", "custom_fields": {"tier": "pro"}}), 201)
    await _ok(await client.post("/v1/products", headers=h, json={"name": "Basic", "custom_fields": {"tier": "basic"}}),
              201)
    _names(await client.post("/v1/products", headers=h, json={"name": "X", "custom_fields": {"tier": "gold"}}),
           "custom_fields", "tier")
    _names(await client.post("/v1/products", headers=h, json={"name": "X", "custom_fields": {"nope": 1}}),
           "custom_fields", "nope")
    listed = await _ok(await client.get("/v1/products", headers=h, params={"cf.tier": "pro"}))
    assert [p["id"] for p in listed["data"]] == [pro["id"]]
    schema = await _ok(await client.get("/v1/schema/product", headers=h))
    assert schema["properties"]["custom_fields"]["properties"]["tier"]["enum"] == ["basic", "pro"]


async def test_upsert_by_external_id_and_batches(client):
    acct = await signup(client)
    h = acct.headers
    url = "/v1/products/by-external-id/erp/P-1"
    created = await client.put(url, headers=h, json={"name": "Seat", "prices": [{"amount": "10", "currency": "EUR"}]})
    assert created.status_code == 201, created.text
    updated = await _ok(await client.put(url, headers=h, json={"name": "Seat v2"}))
    assert updated["id"] == created.json()["id"] and updated["name"] == "Seat v2"
    assert updated["prices"] == [{"amount": "10.00", "currency": "EUR"}]
    assert updated["external_ids"] == [{"source": "erp", "id": "P-1"}]
    assert (await _ok(await client.get(url, headers=h)))["id"] == updated["id"]
    # a deleted product is restored by an upsert
    assert (await client.delete(f"/v1/products/{updated['id']}", headers=h)).status_code == 204
    assert (await client.put(url, headers=h, json={"name": "Seat v3"})).status_code == 200
    assert (await _ok(await client.get(f"/v1/products/{updated['id']}", headers=h)))["name"] == "Seat v3"

    batch = await _ok(await client.post("/v1/products/batch", headers=h, json={"mode": "upsert", "items": [
        {"name": "A", "external_ids": [{"source": "erp", "id": "P-1"}]},
        {"name": "B", "external_ids": [{"source": "erp", "id": "P-2"}]},
        {"name": "C", "tax_rate": "abc", "external_ids": [{"source": "erp", "id": "P-3"}]}]}))
    assert [r["status"] for r in batch["results"]] == ["updated", "created", "failed"]
    assert batch["results"][2]["error"]["status"] == 422
    made = await _ok(await client.post("/v1/products/batch", headers=h, json={"items": [{"name": "D"}, {}]}))
    assert [r["status"] for r in made["results"]] == ["created", "failed"]
    upd = await _ok(await client.post("/v1/products/batch", headers=h, json={
        "mode": "update", "items": [{"id": made["results"][0]["id"], "active": False}]}))
    assert upd["results"][0]["status"] == "updated"
    too_many = await client.post("/v1/products/batch", headers=h, json={"items": [{"name": "x"}] * 101})
    assert too_many.status_code == 422


@pytest.mark.parametrize(("body", "field"), [
    ({}, ("name",)),
    ({"name": ""}, ("name",)),
    ({"name": "x", "tax_rate": "abc"}, ("tax_rate",)),
    ({"name": "x", "tax_rate": "19.005"}, ("tax_rate",)),
    ({"name": "x", "tax_rate": -1}, ("tax_rate",)),
    ({"name": "x", "tax_rate": 1000}, ("tax_rate",)),
    ({"name": "x", "prices": [{"amount": "1.005", "currency": "EUR"}]}, ("prices",)),
    ({"name": "x", "prices": [{"amount": "-1", "currency": "EUR"}]}, ("prices",)),
    ({"name": "x", "prices": [{"amount": "1", "currency": "ZZZ"}]}, ("prices",)),
    ({"name": "x", "prices": [{"amount": "1", "currency": "EUR"}, {"amount": "2", "currency": "eur"}]}, ("prices",)),
    ({"name": "x", "sku": "s" * 65}, ("sku",)),
    ({"name": "x", "id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e91"}, ("id",)),
    ({"name": "x", "colour": "red"}, ("colour",)),
])
async def test_bad_input_is_422_naming_the_field(client, body, field):
    acct = await signup(client)
    _names(await client.post("/v1/products", headers=acct.headers, json=body), *field)
    assert (await _ok(await client.get("/v1/products", headers=acct.headers)))["data"] == []


async def test_admins_write_everyone_reads_other_orgs_get_404(client):
    acct = await signup(client)
    product = await _ok(await client.post("/v1/products", headers=acct.headers, json=SEAT), 201)
    member = await acct.invite("member")
    manager = await acct.invite("manager")
    assert (await client.get(f"/v1/products/{product['id']}", headers=member.headers)).status_code == 200
    assert len((await _ok(await client.get("/v1/products", headers=member.headers)))["data"]) == 1
    for who in (member, manager):
        assert (await client.post("/v1/products", headers=who.headers, json={"name": "x"})).status_code == 403
        assert (await client.patch(f"/v1/products/{product['id']}", headers=who.headers,
                                   json={"name": "x"})).status_code == 403
        assert (await client.delete(f"/v1/products/{product['id']}", headers=who.headers)).status_code == 403
    reader = await acct.api_key(["products:read"])
    assert (await client.get("/v1/products", headers=reader)).status_code == 200
    assert (await client.post("/v1/products", headers=reader, json={"name": "x"})).status_code == 403
    writer = await acct.api_key(["products:write"])
    assert (await client.post("/v1/products", headers=writer, json={"name": "x"})).status_code == 201
    assert (await client.get("/v1/products")).status_code == 401

    other = await signup(client, "Other")
    for method, path in (("get", f"/v1/products/{product['id']}"), ("patch", f"/v1/products/{product['id']}"),
                         ("delete", f"/v1/products/{product['id']}"),
                         ("post", f"/v1/products/{product['id']}/restore")):
        kwargs = {"json": {"name": "x"}} if method == "patch" else {}
        r = await getattr(client, method)(path, headers=other.headers, **kwargs)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", (method, path)
    assert (await _ok(await client.get("/v1/products", headers=other.headers)))["data"] == []


# --- the products report -------------------------------------------------------------------------------------

async def _won_deal(client, acct, pipeline: dict, lines: list[dict], currency: str = "EUR") -> dict:
    h = acct.headers
    deal = await _ok(await client.post("/v1/deals", headers=h, json={
        "title": "D", "value": {"amount": "0", "currency": currency}}), 201)
    for line in lines:
        await _ok(await client.post(f"/v1/deals/{deal['id']}/line-items", headers=h, json=line), 201)
    won = next(s for s in pipeline["stages"] if s["kind"] == "won")
    return await _ok(await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": won["id"]}))


async def test_products_report_by_hand(client):
    acct = await signup(client)
    h = acct.headers
    pipeline = next(p for p in (await _ok(await client.get("/v1/pipelines", headers=h)))["data"] if p["is_default"])
    seat = await _ok(await client.post("/v1/products", headers=h, json={
        "name": "Seat", "prices": [{"amount": "100.00", "currency": "EUR"}, {"amount": "120.00", "currency": "USD"}]}),
        201)
    setup = await _ok(await client.post("/v1/products", headers=h, json={
        "name": "Setup", "prices": [{"amount": "500.00", "currency": "EUR"}]}), 201)
    # won: 3 seats at 10 % off (270.00) + setup (500.00); won: 2.5 seats (250.00); an item without a product
    await _won_deal(client, acct, pipeline, [{"product_id": seat["id"], "quantity": 3, "discount_percent": 10},
                                             {"product_id": setup["id"]}])
    await _won_deal(client, acct, pipeline, [{"product_id": seat["id"], "quantity": "2.5"},
                                             {"name": "Travel", "unit_price": {"amount": "80.00"}}])
    # not counted: an open deal, a deal in USD, a deleted deal, and another organisation's deal
    open_deal = await _ok(await client.post("/v1/deals", headers=h, json={"title": "Open"}), 201)
    await _ok(await client.post(f"/v1/deals/{open_deal['id']}/line-items", headers=h,
                                json={"product_id": seat["id"], "quantity": 50}), 201)
    await _won_deal(client, acct, pipeline, [{"product_id": seat["id"], "quantity": 7}], currency="USD")
    gone = await _won_deal(client, acct, pipeline, [{"product_id": seat["id"], "quantity": 11}])
    assert (await client.delete(f"/v1/deals/{gone['id']}", headers=h)).status_code == 204
    other = await signup(client, "Other")
    other_pipeline = next(p for p in (await _ok(await client.get("/v1/pipelines", headers=other.headers)))["data"])
    theirs = await _ok(await client.post("/v1/products", headers=other.headers, json={
        "name": "Seat", "prices": [{"amount": "100.00", "currency": "EUR"}]}), 201)
    await _won_deal(client, other, other_pipeline, [{"product_id": theirs["id"], "quantity": 13}])

    report = await _ok(await client.get("/v1/reports/products", headers=h))
    assert report["rows"] == [
        {"product_id": seat["id"], "name": "Seat", "quantity": "5.500", "revenue": {"amount": "520.00", "currency": "EUR"},
         "deals": 2},
        {"product_id": setup["id"], "name": "Setup", "quantity": "1.000",
         "revenue": {"amount": "500.00", "currency": "EUR"}, "deals": 1},
    ]
    assert report["totals"] == {"products": 2, "deals": 2, "revenue": {"amount": "1020.00", "currency": "EUR"}}
    usd = await _ok(await client.get("/v1/reports/products", headers=h, params={"currency": "USD"}))
    assert [(r["name"], r["quantity"], r["revenue"]["amount"]) for r in usd["rows"]] == [("Seat", "7.000", "840.00")]
    # a period without closes, and the CSV
    empty = await _ok(await client.get("/v1/reports/products", headers=h, params={"to": "2020-01-01"}))
    assert empty["rows"] == [] and empty["totals"]["deals"] == 0
    as_csv = await client.get("/v1/reports/products", headers={**h, "Accept": "text/csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["product_id", "name", "quantity", "revenue", "deals", "currency"]
    assert rows[1] == [seat["id"], "Seat", "5.500", "520.00", "2", "EUR"]
    # the other organisation sees its own sale only; bad filters are 422, another org's pipeline 404
    assert (await _ok(await client.get("/v1/reports/products", headers=other.headers)))["totals"]["deals"] == 1
    assert (await client.get("/v1/reports/products", headers=h, params={"group_by": "owner"})).status_code == 422
    assert (await client.get("/v1/reports/products", headers=h, params={"pipeline_id": other_pipeline["id"]})
            ).status_code == 404
