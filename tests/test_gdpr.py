"""GDPR: a contact's export holds every linked record as its own GET returns it; an erasure leaves no trace of
the person in the organisation's rows (records, events, webhook history, notifications, lookups) while deal
values still count; access rules and tenancy."""

from __future__ import annotations

import asyncio
import random
import uuid
from uuid import UUID

from sqlalchemy import select, text

from app.domain.events import dispatch as dispatcher
from app.domain.events.catalog import known
from app.domain.events.models import Event
from tests.concurrency import gate
from tests.factories import signup


def _person() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {"first_name": "Zoraida", "last_name": f"Quexwell{tag}", "email": f"zoraida.{tag}@example.com",
            "phone": "+351 91" + "".join(random.choice("0123456789") for _ in range(7))}


def _needles(person: dict[str, str]) -> list[str]:
    """What must not be found after erasure: the phone's digits also match its E.164 form and search vectors."""
    return [person["first_name"], person["last_name"], person["email"], person["phone"].replace(" ", "")[1:]]


async def _scenario(client, session) -> dict:
    """A person who came in as a lead (converted, with a deal), has a note and filled in a web form; the org
    has a webhook, and every event has been dispatched (deliveries and notifications written)."""
    acct = await signup(client)
    p = _person()
    r = await client.post("/v1/webhooks", headers=acct.headers,
                          json={"url": "https://hooks.example.com/crm", "events": ["*"]})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/leads", headers=acct.headers, json={
        **p, "title": f"Website enquiry from {p['first_name']} {p['last_name']}"})
    assert r.status_code == 201, r.text
    lead = r.json()
    r = await client.post(f"/v1/leads/{lead['id']}/convert", headers=acct.headers, json={
        "create_deal": True, "value": {"amount": "1000.00", "currency": "EUR"}})
    assert r.status_code == 200, r.text
    contact, deal = r.json()["contact"], r.json()["deal"]
    assert p["last_name"] in deal["title"]  # named after the person: erasure cuts the name out
    r = await client.patch(f"/v1/contacts/{contact['id']}", headers=acct.headers, json={
        "address": {"street": f"1 {p['last_name']} Lane", "city": "Porto"}, "birthday": "1990-04-01",
        "external_ids": [{"source": "erp", "id": f"ERP-{p['last_name']}"}]})
    assert r.status_code == 200, r.text
    r = await client.post("/v1/activities", headers=acct.headers, json={
        "type": "note", "subject": f"Met {p['first_name']}", "contact_id": contact["id"],
        "body": f"{p['first_name']} {p['last_name']} prefers calls on {p['phone']}, or mail to {p['email']}"})
    assert r.status_code == 201, r.text
    note = r.json()
    r = await client.post("/v1/forms", headers=acct.headers, json={"name": "Demo request"})
    assert r.status_code == 201, r.text
    form = r.json()
    r = await client.post(f"/v1/public/forms/{form['public_key']}/submissions", json={
        **p, "message": f"Hello, this is {p['first_name']} again"})
    assert r.status_code == 202, r.text
    submission_id = r.json()["id"]
    org = UUID(acct.org_id)
    for event_id in await session.scalars(select(Event.id).where(Event.org_id == org,
                                                                 Event.dispatched_at.is_(None))):
        await dispatcher.dispatch(session, org, event_id)
    await session.commit()
    counts = dict((await session.execute(text(
        "SELECT (SELECT count(*) FROM webhook_deliveries WHERE org_id = :o), "
        "(SELECT count(*) FROM notifications WHERE org_id = :o)"), {"o": org})).one()._mapping)
    assert all(counts.values()), counts  # the history the erasure has to reach is there
    return {"acct": acct, "person": p, "lead": lead, "contact": contact, "deal": deal, "note": note,
            "form": form, "submission_id": submission_id}


async def _traces(session, org_id: str, needle: str) -> list[str]:
    """Every text, JSON, array or search column of every table with an org_id, searched for `needle` in this
    org's rows: -> the "table.column"s that hold it."""
    columns = (await session.execute(text(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
        "AND (c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY', 'tsvector')) "
        "AND EXISTS (SELECT 1 FROM information_schema.columns o WHERE o.table_schema = 'public' "
        "AND o.table_name = c.table_name AND o.column_name = 'org_id') ORDER BY 1, 2"))).all()
    assert len(columns) > 20
    found = []
    for table, column in columns:
        hit = await session.scalar(text(
            f'SELECT count(*) FROM "{table}" WHERE org_id = :org AND "{column}"::text ILIKE :needle'),
            {"org": UUID(org_id), "needle": f"%{needle}%"})
        if hit:
            found.append(f"{table}.{column}")
    return found


async def test_export_holds_every_linked_record_as_its_get_returns_it(client, session):
    s = await _scenario(client, session)
    acct = s["acct"]
    r = await client.get(f"/v1/contacts/{s['contact']['id']}/export", headers=acct.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"contact", "activities", "deals", "leads", "submissions", "events", "emails", "sms", "calls",
                         "files", "exported_at"}
    assert body["contact"] == (await client.get(f"/v1/contacts/{s['contact']['id']}", headers=acct.headers)).json()
    assert body["deals"] == [(await client.get(f"/v1/deals/{s['deal']['id']}", headers=acct.headers)).json()]
    assert body["leads"] == [(await client.get(f"/v1/leads/{s['lead']['id']}", headers=acct.headers)).json()]
    note = (await client.get(f"/v1/activities/{s['note']['id']}", headers=acct.headers)).json()
    assert note in body["activities"]
    # the web form's note and call task (linked to the contact the submission matched) are there too
    assert {a["type"] for a in body["activities"]} == {"note", "call"} and len(body["activities"]) == 3
    subs = (await client.get(f"/v1/forms/{s['form']['id']}/submissions", headers=acct.headers)).json()["data"]
    assert body["submissions"] == subs and subs[0]["id"] == s["submission_id"]
    seen = {(e["type"], e["object_id"]) for e in body["events"]}
    assert {("contact.created", s["contact"]["id"]), ("contact.updated", s["contact"]["id"]),
            ("lead.converted", s["lead"]["id"]), ("deal.created", s["deal"]["id"]),
            ("activity.created", s["note"]["id"]), ("form.submitted", s["form"]["id"])} <= seen
    assert [e["occurred_at"] for e in body["events"]] == sorted(e["occurred_at"] for e in body["events"])
    assert (body["emails"], body["calls"], body["files"]) == ([], [], [])


async def test_export_access_and_tenancy(client, session):
    s = await _scenario(client, session)
    url = f"/v1/contacts/{s['contact']['id']}/export"
    assert (await client.get(url)).status_code == 401
    other = await signup(client, "Other Org")
    r = await client.get(url, headers=other.headers)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    viewer = await s["acct"].invite("viewer")
    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    narrow = await s["acct"].api_key(["contacts:read"])
    r = await client.get(url, headers=narrow)
    assert r.status_code == 403 and "activities:read" in r.json()["detail"]
    full = await s["acct"].api_key(["contacts:read", "activities:read", "deals:read", "leads:read", "changes:read",
                                          "mail:read", "calls:read", "documents:read", "files:read"])
    assert (await client.get(url, headers=full)).status_code == 200


async def test_erase_leaves_no_trace_of_the_person_and_keeps_deal_values(client, session):
    s = await _scenario(client, session)
    acct, p, contact_id = s["acct"], s["person"], s["contact"]["id"]
    funnel = (await client.get("/v1/reports/funnel", headers=acct.headers)).json()["totals"]
    assert funnel["deals"] == 1 and funnel["value"] == {"amount": "1000.00", "currency": "EUR"}
    for needle in _needles(p):
        assert await _traces(session, acct.org_id, needle), needle  # found everywhere before

    r = await client.post(f"/v1/contacts/{contact_id}/erase", headers=acct.headers)
    assert r.status_code == 202, r.text
    result = r.json()
    assert result["id"] == contact_id and result["status"] == "erased"
    assert result["counts"]["activities"] == 3 and result["counts"]["leads"] == 1
    assert result["counts"]["submissions"] == 1 and result["counts"]["deals"] == 1
    assert result["counts"]["webhook_deliveries"] > 0 and result["counts"]["notifications"] > 0

    for needle in _needles(p):
        assert await _traces(session, acct.org_id, needle) == [], needle
    assert (await client.get(f"/v1/contacts/{contact_id}", headers=acct.headers)).status_code == 404
    tombstone = (await client.get(f"/v1/contacts/{contact_id}", headers=acct.headers,
                                  params={"include_deleted": "true"})).json()
    assert (tombstone["first_name"], tombstone["email"], tombstone["phone"], tombstone["address"]) == (None,) * 4
    assert (await client.post(f"/v1/contacts/{contact_id}/restore", headers=acct.headers)).status_code == 404
    for q in (p["email"], p["last_name"], p["phone"].replace(" ", "")):
        for plural in ("contacts", "leads"):
            r = await client.get(f"/v1/{plural}", headers=acct.headers, params={"q": q})
            assert r.status_code == 200 and r.json()["data"] == [], (plural, q)
    r = await client.get("/v1/contacts/by-external-id/erp/ERP-" + p["last_name"], headers=acct.headers)
    assert r.status_code == 404
    note = (await client.get(f"/v1/activities/{s['note']['id']}", headers=acct.headers)).json()
    assert (note["subject"], note["body"], note["contact_id"]) == ("(erased)", None, contact_id)
    deal = (await client.get(f"/v1/deals/{s['deal']['id']}", headers=acct.headers)).json()
    assert deal["value"] == {"amount": "1000.00", "currency": "EUR"} and deal["contact_id"] == contact_id
    assert deal["stage_id"] == s["deal"]["stage_id"]
    assert (await client.get("/v1/reports/funnel", headers=acct.headers)).json()["totals"] == funnel

    assert known("contact.erased")

    again = await client.post(f"/v1/contacts/{contact_id}/erase", headers=acct.headers)
    assert again.status_code == 202 and again.json()["erased_at"] == result["erased_at"]


async def test_the_changes_feed_tells_sync_clients_and_holds_no_personal_data(committed_client):
    client, p = committed_client, _person()
    acct = await signup(client)
    r = await client.post("/v1/contacts", headers=acct.headers, json=p)
    assert r.status_code == 201, r.text
    contact = r.json()
    r = await client.patch(f"/v1/contacts/{contact['id']}", headers=acct.headers,
                           json={"last_name": p["last_name"] + "x", "title": f"Friend of {p['email']}"})
    assert r.status_code == 200, r.text
    r = await client.post("/v1/activities", headers=acct.headers, json={
        "type": "call", "subject": f"Call {p['first_name']} {p['last_name']}", "contact_id": contact["id"]})
    assert r.status_code == 201, r.text
    activity = r.json()
    r = await client.get("/v1/changes", headers=acct.headers, params={"limit": 1000})
    assert all(n.lower() in r.text.lower() for n in _needles(p))
    cursor = r.json()["next_cursor"]

    assert (await client.post(f"/v1/contacts/{contact['id']}/erase", headers=acct.headers)).status_code == 202
    r = await client.get("/v1/changes", headers=acct.headers, params={"limit": 1000})
    assert r.status_code == 200
    assert all(n.lower() not in r.text.lower() for n in _needles(p))
    new = (await client.get("/v1/changes", headers=acct.headers, params={"cursor": cursor})).json()["data"]
    assert [(e["type"], e["object_id"]) for e in new] == [("activity.updated", activity["id"]),
                                                          ("contact.erased", contact["id"])]
    erased = new[-1]
    assert erased["object_type"] == "contact" and erased["actor"] == {"type": "user", "id": acct.user_id}
    assert (erased["data"]["object"]["email"], erased["data"]["object"]["first_name"]) == (None, None)
    assert new[0]["data"]["object"]["subject"] == "(erased)"
    history = [e for e in r.json()["data"] if e["object_id"] == contact["id"]]
    assert [e["type"] for e in history] == ["contact.created", "contact.updated", "contact.erased"]
    assert history[1]["data"]["previous"]["last_name"] is None  # old values scrubbed, the keys kept


async def test_erase_access_and_tenancy(client, session):
    s = await _scenario(client, session)
    url = f"/v1/contacts/{s['contact']['id']}/erase"
    assert (await client.post(url)).status_code == 401
    other = await signup(client, "Other Org")
    r = await client.post(url, headers=other.headers)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    for role in ("member", "manager"):
        user = await s["acct"].invite(role)
        r = await client.post(url, headers=user.headers)
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    reader = await s["acct"].api_key(["contacts:read"])
    assert (await client.post(url, headers=reader)).status_code == 403
    assert (await client.get(f"/v1/contacts/{s['contact']['id']}", headers=s["acct"].headers)).status_code == 200
    admin = await s["acct"].invite("admin")
    assert (await client.post(url, headers=admin.headers)).status_code == 202


async def test_a_web_form_submission_racing_the_erasure_is_erased_too(committed_client, database):
    c, p = committed_client, _person()
    acct = await signup(c)
    contact = (await c.post("/v1/contacts", headers=acct.headers, json=p)).json()
    form = (await c.post("/v1/forms", headers=acct.headers, json={"name": "Demo request"})).json()
    async with gate(database) as g:
        # The submission finds the contact, then queues here to store itself; the erasure queues behind it.
        await g.hold("LOCK TABLE form_submissions IN SHARE MODE")
        submitted = asyncio.create_task(c.post(f"/v1/public/forms/{form['public_key']}/submissions", json=p))
        await g.until_queued(1, submitted)
        erased = asyncio.create_task(c.post(f"/v1/contacts/{contact['id']}/erase", headers=acct.headers))
        await g.until_queued(2, submitted, erased)
    answers = await asyncio.gather(submitted, erased)
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    assert answers[1].json()["counts"]["submissions"] == 1
    async with database.sessions() as session:
        for needle in _needles(p):
            assert await _traces(session, acct.org_id, needle) == [], needle
