"""The read paths' JSON written in one pass (list pages, the screen pop) holds exactly the values each record's own
dump wrote: money and decimals, timestamps with time zone, nulls, custom fields, tags; `fields` and `expand` still
shape the rows."""

from __future__ import annotations

import json
import uuid

from pydantic import TypeAdapter

from app.api.records import page_json
from app.domain import kinds
from app.domain.auth.principal import Principal
from app.domain.records import Kind
from tests.factories import signup


async def _ok(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json()


async def _records(client) -> tuple:
    acct = await signup(client)
    h = acct.headers
    for obj in ("contact", "deal"):
        await _ok(await client.post("/v1/custom-fields", headers=h, json={
            "object": obj, "key": "score", "label": "Score", "type": "number"}), 201)
        await _ok(await client.post("/v1/custom-fields", headers=h, json={
            "object": obj, "key": "renews", "label": "Renews", "type": "date"}), 201)
    company = await _ok(await client.post("/v1/companies", headers=h, json={"name": "Acme GmbH"}), 201)
    contact = await _ok(await client.post("/v1/contacts", headers=h, json={
        "first_name": "Ana", "last_name": "Müller – ü", "company_id": company["id"], "tags": ["vip", "ünicode"],
        "custom_fields": {"score": 0.1, "renews": "2027-01-31"}}), 201)
    await _ok(await client.post("/v1/contacts", headers=h, json={"first_name": "Bo"}), 201)  # nulls, no tags
    for i, amount in enumerate(("0.10", "1234567.89", "5", "0")):
        await _ok(await client.post("/v1/deals", headers=h, json={
            "title": f"D{i} €", "contact_id": contact["id"] if i % 2 else None,
            "company_id": company["id"] if i == 2 else None, "value": {"amount": amount, "currency": "EUR"},
            "expected_close_date": "2027-01-31" if i else None,
            "custom_fields": {"score": -2.5, "renews": "2026-12-31"} if i else {}}), 201)
    return acct, h


async def test_list_pages_hold_each_records_own_json(client):
    acct, h = await _records(client)
    for plural in ("deals", "contacts", "companies"):
        page = await _ok(await client.get(f"/v1/{plural}", headers=h, params={"limit": 50}))
        assert page["data"] and set(page) == {"data", "next_cursor"}
        for record in page["data"]:
            assert record == await _ok(await client.get(f"/v1/{plural}/{record['id']}", headers=h))
    # pages of two: the cursor is written as before, and the next page follows it
    first = await _ok(await client.get("/v1/deals", headers=h, params={"limit": 2}))
    assert isinstance(first["next_cursor"], str)
    second = await _ok(await client.get("/v1/deals", headers=h, params={"limit": 2, "cursor": first["next_cursor"]}))
    assert len(second["data"]) == 2 and not {d["id"] for d in second["data"]} & {d["id"] for d in first["data"]}
    # `fields` and `expand` still shape the rows
    shaped = await _ok(await client.get("/v1/deals", headers=h, params={"fields": "id,value", "expand": "contact"}))
    assert all(set(d) <= {"id", "value", "expanded"} for d in shaped["data"])
    assert any(d.get("expanded", {}).get("contact") for d in shaped["data"])


async def test_page_json_equals_the_per_record_dump(client, session):
    acct, h = await _records(client)
    who = Principal.for_user(uuid.UUID(acct.org_id), uuid.UUID(acct.user_id), "owner")
    for name in ("deal", "contact"):
        kind = Kind.of(kinds.named(name))
        items = (await session.scalars(kind.readable(who).order_by(kind.model.created_at))).all()
        assert items
        rows = TypeAdapter(list[kind.read])
        new = json.loads(page_json(rows, items, "abc"))
        assert new == json.loads(json.dumps({"data": [kind.dump(r) for r in items], "next_cursor": "abc"}))
        assert json.loads(page_json(rows, [], None)) == {"data": [], "next_cursor": None}
