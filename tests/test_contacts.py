"""Contacts and companies: CRUD, normalisation, filters, search, merge patch, soft delete."""

from __future__ import annotations

import uuid

from tests.factories import signup


async def _contact(client, acct, **fields):
    r = await client.post("/v1/contacts", headers=acct.headers, json=fields)
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_normalises_and_defaults_owner(client):
    acct = await signup(client)
    r = await client.post("/v1/contacts", headers=acct.headers,
                          json={"first_name": " Ana ", "last_name": "Silva", "email": "Ana.Silva@Example.COM",
                                "phone": "+49 (30) 123-4567", "tags": ["vip", "vip", "berlin"],
                                "address": {"city": "Berlin", "country": "DE"}, "birthday": "1990-04-01"})
    assert r.status_code == 201
    c = r.json()
    assert (c["first_name"], c["email"], c["phone"]) == ("Ana", "ana.silva@example.com", "+49301234567")
    assert c["tags"] == ["vip", "berlin"] and c["owner_id"] == acct.user_id and c["version"] == 1
    assert c["address"] == {"city": "Berlin", "country": "DE"}
    assert r.headers["location"] == f"/v1/contacts/{c['id']}" and r.headers["etag"] == '"1"'


async def test_create_needs_someone_and_valid_values(client):
    acct = await signup(client)
    for body, loc in (({}, ["body"]), ({"email": "nope"}, ["body", "email"]), ({"phone": "12"}, ["body", "phone"]),
                      ({"first_name": "x" * 101}, ["body", "first_name"]),
                      ({"first_name": "A", "owner_id": str(uuid.uuid4())}, ["body", "owner_id"]),
                      ({"first_name": "A", "company_id": str(uuid.uuid4())}, ["body", "company_id"]),
                      ({"first_name": "A", "tags": ["x" * 65]}, ["body", "tags", 0])):
        r = await client.post("/v1/contacts", headers=acct.headers, json=body)
        assert r.status_code == 422, body
        assert r.json()["errors"][0]["loc"] == loc, (body, r.json())


async def test_merge_patch(client):
    acct = await signup(client)
    c = await _contact(client, acct, first_name="Ana", last_name="Silva", title="CEO", tags=["a", "b"],
                       address={"city": "Berlin", "street": "Unter den Linden 1"})
    r = await client.patch(f"/v1/contacts/{c['id']}", headers=acct.headers,
                           json={"title": None, "tags": ["c"], "address": {"city": "Hamburg", "street": None}})
    assert r.status_code == 200
    got = r.json()
    assert got["title"] is None and got["first_name"] == "Ana" and got["tags"] == ["c"]
    assert got["address"] == {"city": "Hamburg"} and got["version"] == 2
    r = await client.patch(f"/v1/contacts/{c['id']}", headers=acct.headers, json={"owner_id": None})
    assert r.status_code == 422
    r = await client.patch(f"/v1/contacts/{c['id']}", headers=acct.headers,
                           json={"first_name": None, "last_name": None})
    assert r.status_code == 422  # nobody left: no name, email or phone
    assert (await client.get(f"/v1/contacts/{c['id']}", headers=acct.headers)).json()["first_name"] == "Ana"


async def test_teammate_takes_over_a_client(client):
    acct = await signup(client)
    rep = await acct.invite("member")
    c = await _contact(client, acct, first_name="Ana")
    r = await client.patch(f"/v1/contacts/{c['id']}", headers=rep.headers, json={"owner_id": rep.user_id})
    assert r.status_code == 200 and r.json()["owner_id"] == rep.user_id


async def test_filters_and_search(client):
    acct = await signup(client)
    co = (await client.post("/v1/companies", headers=acct.headers, json={"name": "Acme", "domain": "ACME.com"})).json()
    assert co["domain"] == "acme.com"
    ana = await _contact(client, acct, first_name="Ana", last_name="Silva", email="ana@acme.com",
                         phone="+351912345678", company_id=co["id"], tags=["vip", "lisbon"], source="referral")
    bob = await _contact(client, acct, first_name="Bob", last_name="Stone", email="bob@stone.io", tags=["vip"])
    rep = await acct.invite("member")
    cid = await _contact(client, rep, first_name="Cid", last_name="Silvano")

    async def ids(**params):
        r = await client.get("/v1/contacts", headers=acct.headers, params=params)
        assert r.status_code == 200, r.text
        return {c["id"] for c in r.json()["data"]}

    assert await ids(company_id=co["id"]) == {ana["id"]}
    assert await ids(tags=["vip"]) == {ana["id"], bob["id"]}
    assert await ids(tags=["vip", "lisbon"]) == {ana["id"]}
    assert await ids(source="referral") == {ana["id"]}
    assert await ids(owner_id=rep.user_id) == {cid["id"]}
    assert await ids(q="silv") == {ana["id"], cid["id"]}  # word prefix
    assert await ids(q="ana silva") == {ana["id"]}
    assert await ids(q="ANA@ACME.COM") == {ana["id"]}
    assert await ids(q="+351 912 345 678") == {ana["id"]}
    assert await ids(q="zzz") == set()
    assert await ids(q="'); drop table contacts; --") == set()
    names = [c["last_name"] for c in (await client.get("/v1/contacts", headers=acct.headers,
                                                       params={"sort": "last_name"})).json()["data"]]
    assert names == ["Silva", "Silvano", "Stone"]


async def test_sparse_fields_and_conditional_get(client):
    acct = await signup(client)
    c = await _contact(client, acct, first_name="Ana", email="ana@x.io")
    r = await client.get(f"/v1/contacts/{c['id']}", headers=acct.headers, params={"fields": "id,email"})
    assert r.json() == {"id": c["id"], "email": "ana@x.io"}
    listed = await client.get("/v1/contacts", headers=acct.headers, params={"fields": "id"})
    assert listed.json()["data"] == [{"id": c["id"]}]
    r = await client.get(f"/v1/contacts/{c['id']}", headers={**acct.headers, "If-None-Match": '"1"'})
    assert r.status_code == 304


async def test_soft_delete_and_restore(client):
    acct = await signup(client)
    c = await _contact(client, acct, first_name="Ana")
    assert (await client.delete(f"/v1/contacts/{c['id']}", headers={**acct.headers, "If-Match": '"9"'})).status_code == 412
    assert (await client.delete(f"/v1/contacts/{c['id']}", headers=acct.headers)).status_code == 204
    assert (await client.get(f"/v1/contacts/{c['id']}", headers=acct.headers)).status_code == 404
    assert (await client.patch(f"/v1/contacts/{c['id']}", headers=acct.headers, json={"title": "x"})).status_code == 404
    assert (await client.delete(f"/v1/contacts/{c['id']}", headers=acct.headers)).status_code == 404
    gone = await client.get(f"/v1/contacts/{c['id']}", headers=acct.headers, params={"include_deleted": "true"})
    assert gone.status_code == 200 and gone.json()["deleted_at"] is not None
    assert (await client.get("/v1/contacts", headers=acct.headers)).json()["data"] == []
    back = await client.post(f"/v1/contacts/{c['id']}/restore", headers=acct.headers)
    assert back.status_code == 200 and back.json()["deleted_at"] is None
    assert [x["id"] for x in (await client.get("/v1/contacts", headers=acct.headers)).json()["data"]] == [c["id"]]


async def test_companies_crud(client):
    acct = await signup(client)
    r = await client.post("/v1/companies", headers=acct.headers,
                          json={"name": "Acme", "size": "11-50", "phone": "+1 212 555 0100", "industry": "Retail"})
    assert r.status_code == 201 and r.json()["phone"] == "+12125550100"
    co = r.json()
    assert (await client.post("/v1/companies", headers=acct.headers, json={"name": "X", "size": "12"})).status_code == 422
    r = await client.patch(f"/v1/companies/{co['id']}", headers=acct.headers, json={"name": None})
    assert r.status_code == 422
    r = await client.get("/v1/companies", headers=acct.headers, params={"industry": "Retail", "q": "acm"})
    assert [c["id"] for c in r.json()["data"]] == [co["id"]]


async def test_phone_search_reads_national_numbers_in_the_org_region(client):
    """A rep types the number as it is written locally: in a German org `030 1234567` is +49301234567."""
    acct = await signup(client)
    r = await client.patch("/v1/org", headers=acct.headers, json={"default_phone_region": "DE"})
    assert r.status_code == 200, r.text
    ana = await _contact(client, acct, first_name="Ana", phone="+49 30 1234567")
    await _contact(client, acct, first_name="Bob", phone="+49 40 1234567")
    company = (await client.post("/v1/companies", headers=acct.headers,
                                 json={"name": "Acme", "phone": "030 1234567"})).json()
    assert company["phone"] == "+49301234567"

    async def ids(url: str, q: str) -> set[str]:
        r = await client.get(url, headers=acct.headers, params={"q": q})
        assert r.status_code == 200, r.text
        return {c["id"] for c in r.json()["data"]}

    for q in ("030 1234567", "030/1234567", "(030) 123 45 67", "+49 30 1234567", "0049301234567"):
        assert await ids("/v1/contacts", q) == {ana["id"]}, q
    assert await ids("/v1/companies", "030 1234567") == {company["id"]}
    assert await ids("/v1/contacts", "040 7654321") == set()
    await client.patch("/v1/org", headers=acct.headers, json={"default_phone_region": None})
    assert await ids("/v1/contacts", "030 1234567") == set()  # no region: a national number names no country
    assert await ids("/v1/contacts", "+49 30 1234567") == {ana["id"]}
    doc = (await client.get("/openapi.json")).json()["paths"]["/v1/contacts"]["get"]["parameters"]
    (q_doc,) = [p["description"] for p in doc if p["name"] == "q"]
    assert "030 1234567" in q_doc and "default_phone_region" in q_doc
