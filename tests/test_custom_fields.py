"""Custom fields: admin-defined, validated on every write (422 names the field), filterable, in /v1/schema."""

from __future__ import annotations

from tests.factories import signup


async def _define(client, acct, **body):
    r = await client.post("/v1/custom-fields", headers=acct.headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_values_are_validated_by_type(client):
    acct = await signup(client)
    await _define(client, acct, object="contact", key="seats", label="Seats", type="number")
    await _define(client, acct, object="contact", key="plan", label="Plan", type="select", options=["basic", "pro"])
    await _define(client, acct, object="contact", key="langs", label="Languages", type="multiselect",
                  options=["en", "de", "pt"])
    await _define(client, acct, object="contact", key="renews", label="Renews", type="date")
    await _define(client, acct, object="contact", key="site", label="Site", type="url")
    await _define(client, acct, object="contact", key="billing", label="Billing", type="email")
    await _define(client, acct, object="contact", key="active", label="Active", type="boolean")
    good = {"seats": 12, "plan": "pro", "langs": ["en", "de", "en"], "renews": "2027-01-31",
            "site": "https://acme.com", "billing": "Bill@Acme.com", "active": True}
    r = await client.post("/v1/contacts", headers=acct.headers, json={"first_name": "A", "custom_fields": good})
    assert r.status_code == 201, r.text
    assert r.json()["custom_fields"] == {**good, "langs": ["en", "de"], "billing": "bill@acme.com",
                                         "site": "https://acme.com/"}
    for key, bad in (("seats", "twelve"), ("seats", True), ("plan", "gold"), ("langs", ["fr"]), ("renews", "soon"),
                     ("site", "ftp://x"), ("billing", "nope"), ("active", "yes"), ("nosuch", 1)):
        r = await client.post("/v1/contacts", headers=acct.headers,
                              json={"first_name": "A", "custom_fields": {key: bad}})
        assert r.status_code == 422, (key, bad)
        assert r.json()["errors"][0]["loc"] == ["body", "custom_fields", key]


async def test_required_fields_and_merge(client):
    acct = await signup(client)
    await _define(client, acct, object="deal", key="contract", label="Contract", type="select",
                  options=["annual", "monthly"], required=True)
    await _define(client, acct, object="deal", key="notes", label="Notes", type="text")
    r = await client.post("/v1/deals", headers=acct.headers, json={"title": "D"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "custom_fields", "contract"]
    r = await client.post("/v1/deals", headers=acct.headers,
                          json={"title": "D", "custom_fields": {"contract": "annual", "notes": "hi"}})
    deal = r.json()
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"custom_fields": {"notes": None}})
    assert r.json()["custom_fields"] == {"contract": "annual"}
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"custom_fields": {"contract": None}})
    assert r.status_code == 422


async def test_filter_by_custom_field(client):
    acct = await signup(client)
    await _define(client, acct, object="contact", key="seats", label="Seats", type="number")
    await _define(client, acct, object="contact", key="langs", label="Languages", type="multiselect",
                  options=["en", "de"])
    await _define(client, acct, object="contact", key="vip", label="VIP", type="boolean")
    a = (await client.post("/v1/contacts", headers=acct.headers, json={
        "first_name": "A", "custom_fields": {"seats": 5, "langs": ["en", "de"], "vip": True}})).json()
    b = (await client.post("/v1/contacts", headers=acct.headers, json={
        "first_name": "B", "custom_fields": {"seats": 7, "langs": ["en"], "vip": False}})).json()

    async def ids(**params):
        r = await client.get("/v1/contacts", headers=acct.headers, params=params)
        assert r.status_code == 200, r.text
        return {c["id"] for c in r.json()["data"]}

    assert await ids(**{"cf.seats": "5"}) == {a["id"]}
    assert await ids(**{"cf.langs": "en"}) == {a["id"], b["id"]}
    assert await ids(**{"cf.langs": "de"}) == {a["id"]}
    assert await ids(**{"cf.vip": "false"}) == {b["id"]}
    r = await client.get("/v1/contacts", headers=acct.headers, params={"cf.nosuch": "1"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "cf.nosuch"]
    assert (await client.get("/v1/contacts", headers=acct.headers, params={"cf.seats": "many"})).status_code == 422


async def test_definitions_crud_and_schema(client):
    acct = await signup(client)
    f = await _define(client, acct, object="lead", key="budget", label="Budget", type="number", required=True)
    assert (await client.post("/v1/custom-fields", headers=acct.headers, json={
        "object": "lead", "key": "budget", "label": "Again", "type": "text"})).status_code == 409
    assert (await client.post("/v1/custom-fields", headers=acct.headers, json={
        "object": "lead", "key": "Bad Key", "label": "x", "type": "text"})).status_code == 422
    assert (await client.post("/v1/custom-fields", headers=acct.headers, json={
        "object": "lead", "key": "tier", "label": "Tier", "type": "select"})).status_code == 422  # needs options
    schema = (await client.get("/v1/schema/lead", headers=acct.headers)).json()
    assert schema["properties"]["custom_fields"]["properties"]["budget"] == {"type": "number", "title": "Budget"}
    assert schema["properties"]["custom_fields"]["required"] == ["budget"]
    assert "email" in schema["properties"]
    r = await client.patch(f"/v1/custom-fields/{f['id']}", headers=acct.headers, json={"label": "Budget (EUR)"})
    assert r.status_code == 200 and r.json()["label"] == "Budget (EUR)"
    listed = (await client.get("/v1/custom-fields", headers=acct.headers, params={"object": "lead"})).json()["data"]
    assert [x["key"] for x in listed] == ["budget"]
    assert (await client.delete(f"/v1/custom-fields/{f['id']}", headers=acct.headers)).status_code == 204
    assert (await client.get("/v1/schema/lead", headers=acct.headers)).json()["properties"]["custom_fields"][
        "properties"] == {}
    member = await acct.invite("member")
    assert (await client.post("/v1/custom-fields", headers=member.headers, json={
        "object": "lead", "key": "x", "label": "x", "type": "text"})).status_code == 403
