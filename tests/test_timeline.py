"""Timelines merge activities and stage moves, newest first, paginated, across related records."""

from __future__ import annotations

from tests.factories import signup


async def test_contact_and_company_timelines(client):
    acct = await signup(client)
    h = acct.headers
    co = (await client.post("/v1/companies", headers=h, json={"name": "Acme"})).json()
    ana = (await client.post("/v1/contacts", headers=h, json={"first_name": "Ana", "company_id": co["id"]})).json()
    other = (await client.post("/v1/contacts", headers=h, json={"first_name": "Zed"})).json()
    deal = (await client.post("/v1/deals", headers=h, json={"title": "D", "contact_id": ana["id"]})).json()
    stages = (await client.get(f"/v1/pipelines/{deal['pipeline_id']}", headers=h)).json()["stages"]
    await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": stages[1]["id"]})
    note = (await client.post("/v1/activities", headers=h,
                              json={"type": "note", "subject": "Met at fair", "contact_id": ana["id"]})).json()
    call = (await client.post("/v1/activities", headers=h,
                              json={"type": "call", "subject": "Pricing", "deal_id": deal["id"]})).json()
    await client.post("/v1/activities", headers=h, json={"type": "note", "subject": "unrelated",
                                                          "contact_id": other["id"]})

    r = await client.get(f"/v1/contacts/{ana['id']}/timeline", headers=h)
    assert r.status_code == 200
    entries = r.json()["data"]
    kinds = sorted((e["kind"], e["summary"]) for e in entries)
    assert kinds == [("activity", "call: Pricing"), ("activity", "note: Met at fair"),
                     ("stage_change", "Entered Qualification"), ("stage_change", "Moved from Qualification to Proposal")]
    times = [(e["occurred_at"], e["id"]) for e in entries]
    assert times == sorted(times, reverse=True)
    by_id = {e["id"]: e for e in entries}
    assert by_id[note["id"]]["data"]["subject"] == "Met at fair" and by_id[note["id"]]["actor"]["id"] == acct.user_id
    assert by_id[call["id"]]["object_type"] == "activity"
    company = (await client.get(f"/v1/companies/{co['id']}/timeline", headers=h)).json()["data"]
    assert {e["id"] for e in company} == {e["id"] for e in entries}  # via its contact and the contact's deal
    deal_tl = (await client.get(f"/v1/deals/{deal['id']}/timeline", headers=h)).json()["data"]
    assert {e["kind"] for e in deal_tl} == {"activity", "stage_change"} and len(deal_tl) == 3


async def test_timeline_pages_visit_each_entry_once(client):
    acct = await signup(client)
    lead = (await client.post("/v1/leads", headers=acct.headers, json={"first_name": "Jo"})).json()
    made = set()
    for i in range(11):
        a = await client.post("/v1/activities", headers=acct.headers,
                              json={"type": "note", "subject": f"n{i}", "lead_id": lead["id"]})
        made.add(a.json()["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/v1/leads/{lead['id']}/timeline", headers=acct.headers, params=params)).json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 11 and set(seen) == made


async def test_timeline_of_missing_or_foreign_record_is_404(client):
    a, b = await signup(client), await signup(client)
    c = (await client.post("/v1/contacts", headers=a.headers, json={"first_name": "A"})).json()
    assert (await client.get(f"/v1/contacts/{c['id']}/timeline", headers=b.headers)).status_code == 404
    assert (await client.get(f"/v1/contacts/{c['id']}/timeline", headers=a.headers,
                             params={"cursor": "bad"})).status_code == 422


async def test_an_activity_in_a_timeline_reads_exactly_as_the_activity_itself(client):
    """Byte for byte the same fields and formats as GET /v1/activities/{id}: times, ids, custom fields, nulls."""
    acct = await signup(client)
    h = acct.headers
    await client.post("/v1/custom-fields", headers=h, json={"object": "activity", "key": "channel",
                                                             "label": "Channel", "type": "text"})
    ana = (await client.post("/v1/contacts", headers=h, json={"first_name": "Ana"})).json()
    task = (await client.post("/v1/activities", headers=h, json={
        "type": "task", "subject": "Send the offer", "contact_id": ana["id"], "due_at": "2030-01-02T03:04:05Z",
        "custom_fields": {"channel": "phone"}})).json()
    done = await client.post(f"/v1/activities/{task['id']}/complete", headers=h)
    assert done.status_code == 200, done.text
    r = await client.get(f"/v1/contacts/{ana['id']}/timeline", headers=h)
    [entry] = [e for e in r.json()["data"] if e["kind"] == "activity"]
    itself = (await client.get(f"/v1/activities/{task['id']}", headers=h)).json()
    assert entry["data"] == itself
    assert entry["data"]["done_at"].endswith("Z") and entry["data"]["custom_fields"] == {"channel": "phone"}
