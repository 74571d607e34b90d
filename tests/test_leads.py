"""Leads as a front-end uses them: CRUD, the status rule, conversion into contact + company + deal
(reusing what is already known), the contact's timeline afterwards, and the list filters."""

from __future__ import annotations

import uuid

from tests.factories import signup

LEAD = {"title": "Demo request", "first_name": "Jo", "last_name": "Park", "email": "Jo.Park@Park.io",
        "phone": "+49 30 1234567", "company_name": "Park Ltd", "source": "website"}


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


def _locs(body: dict) -> list[list]:
    return [e["loc"] for e in body.get("errors", [])]


async def _lead(client, acct, **body) -> dict:
    r = await client.post("/v1/leads", headers=acct.headers, json=body or LEAD)
    assert r.status_code == 201, r.text
    return r.json()


async def _get(client, acct, path: str) -> dict:
    r = await client.get(path, headers=acct.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _convert(client, acct, lead_id: str, **body) -> dict:
    r = await client.post(f"/v1/leads/{lead_id}/convert", headers=acct.headers, json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def _list(client, acct, path: str, **params) -> list[dict]:
    r = await client.get(path, headers=acct.headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def _sales(client, acct) -> dict:
    (pipeline,) = [p for p in await _list(client, acct, "/v1/pipelines") if p["is_default"]]
    return pipeline


async def test_lead_crud(client):
    acct = await signup(client)
    r = await client.post("/v1/leads", headers=acct.headers, json=LEAD)
    assert r.status_code == 201, r.text
    lead = r.json()
    assert r.headers["Location"] == f"/v1/leads/{lead['id']}"
    assert r.headers["ETag"] == f'"{lead["version"]}"'
    assert lead["status"] == "new"
    assert lead["email"] == "jo.park@park.io"
    assert lead["phone"] == "+49301234567"
    assert (lead["first_name"], lead["last_name"], lead["company_name"], lead["source"]) == (
        "Jo", "Park", "Park Ltd", "website")
    assert lead["owner_id"] == acct.user_id
    assert lead["contact_id"] is None and lead["deal_id"] is None and lead["converted_at"] is None
    assert await _get(client, acct, f"/v1/leads/{lead['id']}") == lead

    r = await client.patch(f"/v1/leads/{lead['id']}", headers=acct.headers,
                           json={"title": "Pricing question", "phone": None, "utm": {"source": "google"}})
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["title"] == "Pricing question"
    assert patched["phone"] is None
    assert patched["utm"]["source"] == "google"
    assert patched["email"] == lead["email"] and patched["last_name"] == "Park"  # absent = unchanged
    assert patched["version"] > lead["version"]
    assert await _get(client, acct, f"/v1/leads/{lead['id']}") == patched
    assert [x["id"] for x in await _list(client, acct, "/v1/leads")] == [lead["id"]]

    r = await client.patch(f"/v1/leads/{lead['id']}", headers={**acct.headers, "If-Match": f'"{lead["version"]}"'},
                           json={"title": "Stale"})
    _problem(r, 412)

    # Something to go on is required; unknown fields are refused.
    _problem(await client.post("/v1/leads", headers=acct.headers, json={"source": "website"}), 422)
    _problem(await client.post("/v1/leads", headers=acct.headers, json={**LEAD, "contact_id": str(uuid.uuid4())}), 422)
    _problem(await client.post("/v1/leads", headers=acct.headers, json={"email": "not an email"}), 422)

    r = await client.delete(f"/v1/leads/{lead['id']}", headers=acct.headers)
    assert r.status_code == 204
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=acct.headers)).status_code == 404
    assert await _list(client, acct, "/v1/leads") == []
    r = await client.post(f"/v1/leads/{lead['id']}/convert", headers=acct.headers, json={})
    assert r.status_code == 404
    r = await client.post(f"/v1/leads/{lead['id']}/restore", headers=acct.headers)
    assert r.status_code == 200 and r.json()["deleted_at"] is None
    assert [x["id"] for x in await _list(client, acct, "/v1/leads")] == [lead["id"]]


async def test_status_moves_freely_but_never_to_converted(client):
    acct = await signup(client)
    lead = await _lead(client, acct)
    for status in ("working", "qualified", "disqualified", "new", "qualified", "working", "new"):
        r = await client.patch(f"/v1/leads/{lead['id']}", headers=acct.headers, json={"status": status})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status

    r = await client.patch(f"/v1/leads/{lead['id']}", headers=acct.headers, json={"status": "converted"})
    body = _problem(r, 422)
    assert ["body", "status"] in _locs(body)
    r = await client.patch(f"/v1/leads/{lead['id']}", headers=acct.headers, json={"status": None})
    _problem(r, 422)
    r = await client.post("/v1/leads", headers=acct.headers, json={**LEAD, "status": "converted"})
    assert ["body", "status"] in _locs(_problem(r, 422))
    assert (await _get(client, acct, f"/v1/leads/{lead['id']}"))["status"] == "new"
    assert (await _lead(client, acct, **{**LEAD, "status": "qualified"}))["status"] == "qualified"


async def test_convert_with_a_deal(client):
    acct = await signup(client)
    rep = await acct.invite("member")
    sales = await _sales(client, acct)
    lead = await _lead(client, acct, **{**LEAD, "owner_id": rep.user_id})

    result = await _convert(client, acct, lead["id"], create_deal=True)
    assert set(result) >= {"lead", "contact", "company", "deal"}
    contact, company, deal = result["contact"], result["company"], result["deal"]

    assert (contact["first_name"], contact["last_name"], contact["email"], contact["phone"]) == (
        "Jo", "Park", "jo.park@park.io", "+49301234567")
    assert contact["company_id"] == company["id"]
    assert contact["owner_id"] == rep.user_id  # the lead's owner keeps the relationship
    assert company["name"] == "Park Ltd"
    assert deal["pipeline_id"] == sales["id"]
    assert deal["stage_id"] == sales["stages"][0]["id"]
    assert deal["status"] == "open"
    assert deal["contact_id"] == contact["id"] and deal["company_id"] == company["id"]
    assert deal["owner_id"] == rep.user_id
    assert deal["title"] == "Demo request"

    converted = result["lead"]
    assert converted["status"] == "converted"
    assert converted["converted_at"] is not None
    assert (converted["contact_id"], converted["company_id"], converted["deal_id"]) == (
        contact["id"], company["id"], deal["id"])

    # What convert answered is what the API now holds.
    assert await _get(client, acct, f"/v1/leads/{lead['id']}") == converted
    assert await _get(client, acct, f"/v1/contacts/{contact['id']}") == contact
    assert await _get(client, acct, f"/v1/companies/{company['id']}") == company
    stored = await _get(client, acct, f"/v1/deals/{deal['id']}")
    assert (stored["stage_id"], stored["contact_id"], stored["company_id"]) == (
        deal["stage_id"], contact["id"], company["id"])
    assert [d["id"] for d in await _list(client, acct, "/v1/deals", contact_id=contact["id"])] == [deal["id"]]

    # Converting again: 409, nothing new created.
    r = await client.post(f"/v1/leads/{lead['id']}/convert", headers=acct.headers, json={"create_deal": True})
    body = _problem(r, 409)
    assert "converted" in body["detail"]
    assert len(await _list(client, acct, "/v1/contacts")) == 1
    assert len(await _list(client, acct, "/v1/companies")) == 1
    assert len(await _list(client, acct, "/v1/deals")) == 1

    # A converted lead stays converted.
    r = await client.patch(f"/v1/leads/{lead['id']}", headers=acct.headers, json={"status": "working"})
    _problem(r, 422)
    assert (await _get(client, acct, f"/v1/leads/{lead['id']}"))["status"] == "converted"
    assert [x["id"] for x in await _list(client, acct, "/v1/leads", status="converted")] == [lead["id"]]


async def test_convert_without_a_deal_or_company(client):
    acct = await signup(client)
    lead = await _lead(client, acct, first_name="Solo", email="solo@example.com")
    result = await _convert(client, acct, lead["id"])
    assert result["deal"] is None and result["company"] is None
    assert result["contact"]["first_name"] == "Solo" and result["contact"]["company_id"] is None
    assert result["lead"]["status"] == "converted"
    assert result["lead"]["deal_id"] is None and result["lead"]["company_id"] is None
    assert await _list(client, acct, "/v1/deals") == []
    assert await _list(client, acct, "/v1/companies") == []


async def test_convert_reuses_a_contact_with_the_same_email(client):
    acct = await signup(client)
    r = await client.post("/v1/contacts", headers=acct.headers,
                          json={"first_name": "Joanna", "last_name": "Park", "email": "JO.PARK@park.IO"})
    assert r.status_code == 201, r.text
    existing = r.json()
    r = await client.post("/v1/companies", headers=acct.headers, json={"name": "park ltd"})
    assert r.status_code == 201, r.text
    company = r.json()

    lead = await _lead(client, acct, first_name="Jo", email="jo.park@PARK.io", company_name="PARK LTD")
    result = await _convert(client, acct, lead["id"], create_deal=True)
    assert result["contact"]["id"] == existing["id"]
    assert result["contact"]["first_name"] == "Joanna"  # the known contact is not overwritten
    assert result["company"]["id"] == company["id"]
    assert result["lead"]["contact_id"] == existing["id"]
    assert result["lead"]["company_id"] == company["id"]
    assert result["deal"]["contact_id"] == existing["id"]
    assert result["deal"]["company_id"] == company["id"]

    contacts = await _list(client, acct, "/v1/contacts")
    assert [c["id"] for c in contacts] == [existing["id"]]  # no duplicate
    assert [c["id"] for c in await _list(client, acct, "/v1/companies")] == [company["id"]]
    # The reused contact, which had no company, is now linked to it.
    assert (await _get(client, acct, f"/v1/contacts/{existing['id']}"))["company_id"] == company["id"]


async def test_convert_reuses_a_contact_with_the_same_phone(client):
    acct = await signup(client)
    r = await client.post("/v1/contacts", headers=acct.headers, json={"last_name": "Caller", "phone": "+4930 123 4567"})
    assert r.status_code == 201, r.text
    existing = r.json()
    lead = await _lead(client, acct, first_name="Unknown", phone="+49 (30) 1234567")
    result = await _convert(client, acct, lead["id"])
    assert result["contact"]["id"] == existing["id"]
    assert len(await _list(client, acct, "/v1/contacts")) == 1


async def test_convert_into_another_pipeline_with_a_value(client):
    acct = await signup(client)
    r = await client.post("/v1/pipelines", headers=acct.headers, json={"name": "Partners", "currency": "USD", "stages": [
        {"name": "Intro", "probability": 10}, {"name": "Signed", "probability": 100, "kind": "won"},
        {"name": "Dropped", "probability": 0, "kind": "lost"}]})
    assert r.status_code == 201, r.text
    partners = r.json()
    lead = await _lead(client, acct)
    result = await _convert(client, acct, lead["id"], create_deal=True, pipeline_id=partners["id"],
                            deal_title="Park: 20 seats", value={"amount": "4800.5"})
    deal = result["deal"]
    assert deal["pipeline_id"] == partners["id"]
    assert deal["stage_id"] == partners["stages"][0]["id"]
    assert deal["title"] == "Park: 20 seats"
    assert deal["value"] == {"amount": "4800.50", "currency": "USD"}
    assert (await _get(client, acct, f"/v1/deals/{deal['id']}"))["value"] == {"amount": "4800.50", "currency": "USD"}

    # A bad value or a pipeline of another org changes nothing.
    other = await _lead(client, acct, first_name="Other", email="other@example.com")
    stranger = await signup(client, "Other org")
    for body in ({"create_deal": True, "value": {"amount": "1.001"}},
                 {"create_deal": True, "pipeline_id": (await _sales(client, stranger))["id"]}):
        r = await client.post(f"/v1/leads/{other['id']}/convert", headers=acct.headers, json=body)
        _problem(r, 422)
    assert (await _get(client, acct, f"/v1/leads/{other['id']}"))["status"] == "new"
    assert len(await _list(client, acct, "/v1/contacts")) == 1
    assert len(await _list(client, acct, "/v1/deals")) == 1


async def test_contact_timeline_shows_the_leads_activities_and_the_deals_moves(client):
    acct = await signup(client)
    sales = await _sales(client, acct)
    lead = await _lead(client, acct)
    r = await client.post("/v1/activities", headers=acct.headers,
                          json={"type": "note", "subject": "Wants 20 seats", "lead_id": lead["id"]})
    assert r.status_code == 201, r.text
    note = r.json()
    lead_timeline = await _list(client, acct, f"/v1/leads/{lead['id']}/timeline")
    assert [e["id"] for e in lead_timeline] == [note["id"]]

    result = await _convert(client, acct, lead["id"], create_deal=True)
    contact, deal = result["contact"], result["deal"]
    proposal = sales["stages"][1]["id"]
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"stage_id": proposal})
    assert r.status_code == 200, r.text

    timeline = await _list(client, acct, f"/v1/contacts/{contact['id']}/timeline")
    activities = [e for e in timeline if e["kind"] == "activity"]
    assert [(e["object_id"], e["data"]["subject"], e["data"]["lead_id"]) for e in activities] == [
        (note["id"], "Wants 20 seats", lead["id"])]
    moves = [e for e in timeline if e["kind"] == "stage_change"]
    assert {e["object_id"] for e in moves} == {deal["id"]}
    assert sorted((e["data"]["from_stage_id"] or "", e["data"]["to_stage_id"]) for e in moves) == sorted([
        ("", sales["stages"][0]["id"]), (sales["stages"][0]["id"], proposal)])
    assert any(e["summary"] == "Moved from Qualification to Proposal" for e in moves)
    assert len(timeline) == 3
    assert [e["occurred_at"] for e in timeline] == sorted((e["occurred_at"] for e in timeline), reverse=True)


async def test_list_filters_and_search(client):
    acct = await signup(client)
    a = await _lead(client, acct, first_name="Joanna", last_name="Smith", email="joanna@smith.io", source="website",
                    status="working")
    b = await _lead(client, acct, first_name="Mark", last_name="Jones", phone="+1 415 555 0100", source="referral")
    c = await _lead(client, acct, title="Conference", company_name="Globex", source="website", status="qualified")
    d = await _lead(client, acct, first_name="Eve", email="eve@example.com", status="disqualified")

    async def ids(**params) -> set[str]:
        return {x["id"] for x in await _list(client, acct, "/v1/leads", **params)}

    assert await ids() == {a["id"], b["id"], c["id"], d["id"]}
    assert await ids(status="new") == {b["id"]}
    assert await ids(status=["working", "qualified"]) == {a["id"], c["id"]}
    assert await ids(status=["disqualified", "new", "working"]) == {a["id"], b["id"], d["id"]}
    assert await ids(status="converted") == set()
    assert await ids(source="website") == {a["id"], c["id"]}
    assert await ids(source="website", status="working") == {a["id"]}
    assert await ids(source="referral") == {b["id"]}

    assert await ids(q="Joa") == {a["id"]}  # name prefix
    assert await ids(q="jon") == {b["id"]}
    assert await ids(q="joanna smith") == {a["id"]}
    assert await ids(q="JOANNA@smith.io") == {a["id"]}  # exact email, any case
    assert await ids(q="eve@example.com") == {d["id"]}
    assert await ids(q="+14155550100") == {b["id"]}  # exact phone
    assert await ids(q="+1 (415) 555-0100") == {b["id"]}
    assert await ids(q="glob") == {c["id"]}
    assert await ids(q="nobody") == set()

    _problem(await client.get("/v1/leads", headers=acct.headers, params={"status": "lost"}), 422)
    _problem(await client.get("/v1/leads", headers=acct.headers, params={"sort": "email"}), 422)
    names = [x["last_name"] for x in await _list(client, acct, "/v1/leads", sort="last_name")]
    assert names == ["Jones", "Smith", None, None]


async def test_leads_of_another_org_and_viewers(client):
    acct = await signup(client)
    lead = await _lead(client, acct)
    viewer = await acct.invite("viewer")
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=viewer.headers)).status_code == 200
    r = await client.post(f"/v1/leads/{lead['id']}/convert", headers=viewer.headers, json={})
    assert r.status_code == 403
    stranger = await signup(client, "Other org")
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=stranger.headers)).status_code == 404
    r = await client.post(f"/v1/leads/{lead['id']}/convert", headers=stranger.headers, json={"create_deal": True})
    assert r.status_code == 404
    assert await _list(client, stranger, "/v1/leads") == []
    assert (await _get(client, acct, f"/v1/leads/{lead['id']}"))["status"] == "new"


async def test_a_lead_created_through_an_api_key_without_a_source_is_marked_api(client):
    acct = await signup(client)
    key = await acct.api_key(["leads:write", "leads:read"])
    r = await client.post("/v1/leads", headers=key, json={"email": "bot@example.com"})
    assert r.status_code == 201, r.text
    lead = r.json()
    assert lead["source"] == "api"
    assert lead["owner_id"] == acct.user_id  # the key's creator
    r = await client.post("/v1/leads", headers=key, json={"email": "partner@example.com", "source": "partner"})
    assert r.json()["source"] == "partner"
    assert (await _lead(client, acct, email="typed@example.com"))["source"] is None
