"""The one-statement writes (`Kind._insert`, `records.hold_inserts`): a record created with its event and audit
row in one INSERT, and a form submission's rows all in one, answer and store exactly what a flush of the ORM
objects did. What the response says, what a later GET reads back from the row, and the `created` event's
`object` are the same document, field by field (custom fields of every type, decimals, dates, timestamps with
time zone, nulls, lists); the audit row is there; a failure leaves nothing."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, select

from app.domain.audit.models import AuditEntry
from app.domain.forms.models import FormSubmission, SlaTimer
from tests.factories import signup
from tests.test_events import Outbox, by_type
from tests.test_round_trips import count_statements

FIELDS = [
    {"object": "contact", "key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"]},
    {"object": "contact", "key": "langs", "label": "Languages", "type": "multiselect", "options": ["en", "de"]},
    {"object": "contact", "key": "seats", "label": "Seats", "type": "number"},
    {"object": "contact", "key": "ratio", "label": "Ratio", "type": "number"},
    {"object": "contact", "key": "since", "label": "Since", "type": "date"},
    {"object": "contact", "key": "vip", "label": "VIP", "type": "boolean"},
    {"object": "contact", "key": "site", "label": "Site", "type": "url"},
    {"object": "contact", "key": "billing", "label": "Billing", "type": "email"},
    {"object": "contact", "key": "desk", "label": "Desk", "type": "phone"},
    {"object": "contact", "key": "notes", "label": "Notes", "type": "text"},
    {"object": "lead", "key": "budget", "label": "Budget", "type": "number"},
    {"object": "lead", "key": "wish", "label": "Wish", "type": "text"},
]


async def _fields(client, acct) -> None:
    for body in FIELDS:
        r = await client.post("/v1/custom-fields", headers=acct.headers, json=body)
        assert r.status_code == 201, r.text


async def _audit_count(session, org_id: str, object_id: str) -> int:
    return await session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.org_id == UUID(org_id), AuditEntry.object_id == UUID(object_id), AuditEntry.action == "create"))


async def test_created_contact_answers_stores_and_emits_one_document(client, session):
    acct = await signup(client)
    await _fields(client, acct)
    company = (await client.post("/v1/companies", headers=acct.headers, json={"name": "Acme"})).json()
    outbox = Outbox(session, acct.org_id)
    await outbox.new()
    body = {"first_name": "Ana", "last_name": None, "email": "Ana.Silva@Example.com", "phone": "+49 30 1234567",
            "company_id": company["id"], "title": "CTO", "tags": ["a", "b", "a"], "source": "referral",
            "utm": {"source": "news", "medium": None}, "birthday": "1990-02-28",
            "address": {"street": "Main 1", "city": "Berlin", "region": None},
            "consent": {"email": "subscribed"},
            "custom_fields": {"tier": "gold", "langs": ["en", "de", "en"], "seats": 12, "ratio": 0.25,
                              "since": "2020-01-31", "vip": True, "site": "https://acme.example/x",
                              "billing": "Bill@Acme.com", "desk": "+49 30 7654321", "notes": "x" * 50}}
    r = await client.post("/v1/contacts", headers=acct.headers, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["etag"] == '"1"' and r.headers["location"] == f"/v1/contacts/{created['id']}"
    got = await client.get(f"/v1/contacts/{created['id']}", headers=acct.headers)
    assert got.json() == created  # the row holds what the response said, field by field
    assert list(got.json()) == list(created)  # and in the same order
    assert created["version"] == 1 and created["created_at"] == created["updated_at"]
    assert created["deleted_at"] is None and created["import_id"] is None and created["external_ids"] == []
    assert created["tags"] == ["a", "b"] and created["phone"] == "+49301234567"
    assert created["consent"] == {"email": "subscribed", "sms": "unknown"}
    assert created["metrics"]["won_deals_count"] == 0 and created["metrics"]["lifetime_value"] is None
    event = await outbox.one("contact.created")
    assert event.data == {"object": created} and event.version == 1 and event.object_id == UUID(created["id"])
    assert await _audit_count(session, acct.org_id, created["id"]) == 1


async def test_created_lead_with_api_key_answers_stores_and_emits_one_document(client, session):
    acct = await signup(client)
    await _fields(client, acct)
    key = await acct.api_key(["*"])
    outbox = Outbox(session, acct.org_id)
    await outbox.new()
    r = await client.post("/v1/leads", headers=key, json={
        "first_name": "Jo", "email": "JO@park.io", "utm": {"campaign": "q1"}, "custom_fields": {"budget": 1.5}})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["source"] == "api" and created["status"] == "new" and created["owner_id"] == acct.user_id
    assert (await client.get(f"/v1/leads/{created['id']}", headers=key)).json() == created
    event = await outbox.one("lead.created")
    assert event.data == {"object": created}
    assert event.actor["type"] == "api_key"
    assert await _audit_count(session, acct.org_id, created["id"]) == 1


async def test_created_record_can_be_changed_in_the_same_transaction(client):
    """The new object joins the session as if flushed: a later PATCH reads it and bumps its version."""
    acct = await signup(client)
    created = (await client.post("/v1/leads", headers=acct.headers, json={"first_name": "Jo"})).json()
    r = await client.patch(f"/v1/leads/{created['id']}", headers={**acct.headers, "If-Match": '"1"'},
                           json={"last_name": "Park"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["last_name"] == "Park"


async def test_bad_create_writes_nothing(client, session):
    acct = await signup(client)
    await client.post("/v1/custom-fields", headers=acct.headers, json={
        "object": "contact", "key": "must", "label": "Must", "type": "text", "required": True})
    outbox = Outbox(session, acct.org_id)
    await outbox.new()
    r = await client.post("/v1/contacts", headers=acct.headers, json={"first_name": "A"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "custom_fields", "must"]
    assert await outbox.new() == []


async def _form(client, acct, **extra) -> dict:
    r = await client.post("/v1/forms", headers=acct.headers, json={"name": "Contact us", **extra})
    assert r.status_code == 201, r.text
    return r.json()


async def test_form_submission_rows_and_events_match_their_reads(client, session, database):
    acct = await signup(client)
    await _fields(client, acct)
    form = await _form(client, acct, field_map={"wish_text": "cf.wish"})
    outbox = Outbox(session, acct.org_id)
    await outbox.new()
    url = f"/v1/public/forms/{form['public_key']}/submissions"
    with count_statements(database) as seen:
        r = await client.post(url, json={"first_name": "Ana", "last_name": "Silva", "email": "ana@example.com",
                                         "phone": "+351 912 345 678", "message": "call me", "wish_text": "a demo",
                                         "utm_source": "news", "page_url": "https://site.example/p?gclid=g1"})
    assert r.status_code == 202, r.text
    # the key, the form (with what the writes read), the person's lock, the matches, then every row at once
    assert len(seen) == 5, "\n".join(s.split("\n")[0][:120] for s in seen)
    fresh = [e for e in await outbox.all() if e.id not in outbox.seen]  # (form.submitted carries the submission)
    assert [e.type for e in fresh] == ["lead.created", "activity.created", "activity.created", "form.submitted"]
    events = by_type([fresh[0], fresh[3]])
    lead = events["lead.created"].data["object"]
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=acct.headers)).json() == lead
    assert lead["source"] == "web_form" and lead["form_id"] == form["id"] and lead["utm"] == {"source": "news"}
    assert lead["custom_fields"] == {"wish": "a demo"}
    subs = (await client.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers)).json()["data"]
    assert len(subs) == 1 and subs[0]["id"] == r.json()["id"]
    assert events["form.submitted"].data["object"] == subs[0]
    assert subs[0]["lead_id"] == lead["id"] and subs[0]["gclid"] == "g1"
    activities = {a["id"]: a for a in (await client.get("/v1/activities", headers=acct.headers,
                                                        params={"limit": 100})).json()["data"]}
    for e in fresh[1:3]:  # the note with the message, the call task
        assert activities[str(e.object_id)] == e.data["object"]
    assert [activities[str(e.object_id)]["type"] for e in fresh[1:3]] == ["note", "call"]
    timers = (await session.scalars(select(SlaTimer).where(SlaTimer.org_id == UUID(acct.org_id)))).all()
    assert len(timers) == 1 and str(timers[0].submission_id) == subs[0]["id"] and timers[0].lead_id == UUID(lead["id"])
    assert await _audit_count(session, acct.org_id, lead["id"]) == 1


async def test_form_submission_that_fails_a_required_field_leaves_nothing(client, session):
    acct = await signup(client)
    await client.post("/v1/custom-fields", headers=acct.headers, json={
        "object": "activity", "key": "must", "label": "Must", "type": "text", "required": True})
    form = await _form(client, acct)
    r = await client.post(f"/v1/public/forms/{form['public_key']}/submissions",
                          json={"first_name": "Ana", "email": "ana@example.com"})
    assert r.status_code == 422, r.text
    count = await session.scalar(select(func.count()).select_from(FormSubmission).where(
        FormSubmission.org_id == UUID(acct.org_id)))
    assert count == 0
    leads = (await client.get("/v1/leads", headers=acct.headers)).json()["data"]
    assert leads == []
