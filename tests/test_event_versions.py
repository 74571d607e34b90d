"""Every change is an event: after a run of writes through every kind of API call, each version that a record
went through is the version of at least one of its events, and no event names a version it never had.

The check reads every versioned table of the schema, so a table added later is held to it too, unless it is
listed below with the reason its changes have no events of their own."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import select, text

import app.domain.models  # noqa: F401  (every table on the metadata)
from app.domain.base import Base
from app.domain.events.models import Event
from app.domain.webhooks import service as webhooks
from tests.factories import signup

NOT_EVENTED = {
    "pipeline_stages": "stages change inside their pipeline: its version and pipeline.updated carry them",
    "users": "users and their roles are not in the event catalogue",
    "api_keys": "API keys are not in the event catalogue",
    "custom_fields": "field definitions are not in the event catalogue",
    "imports": "an import reports through its own status; its records have their events",
    "segments": "saved filters are not in the event catalogue",
    "templates": "templates are not in the event catalogue",
    "campaigns": "a campaign's edits as a draft have no event; campaign.started, campaign.sent and "
                 "campaign.cancelled mark its sending (tests/test_campaigns.py)",
    "mailboxes": "mailbox settings are not in the event catalogue (their mail is: email.*)",
    "emails": "sending states (queued, retries) are the email's own status; email.received, email.sent and "
              "email.failed mark what partners need (tests/test_mail.py)",
    "sms_messages": "sending states (queued, retries) are the text's own status; sms.sent and sms.failed mark "
                    "what partners need (tests/test_sms.py)",
    "sms_gateways": "gateway settings are not in the event catalogue",
    "document_templates": "document templates are not in the event catalogue (their documents are: document.*)",
    "telephony_settings": "telephony settings are not in the event catalogue",
    "call_originations": "click-to-call requests are handed to the provider; the call itself is call.created",
    "automations": "rules are not in the event catalogue (their runs are logged at /v1/automations/{id}/runs)",
    "reference_lists": "reference lists are settings, not in the event catalogue (the audit log has them)",
    "reference_list_items": "items of a reference list are settings, not in the event catalogue (the audit log has "
                            "them)",
    "deal_line_items": "line items change inside their deal: each item write is a new version of the deal and a "
                       "deal.updated (tests/test_line_items.py)",
}

RECORDS = {
    "contacts": {"first_name": "Vera", "email": "vera@example.com"},
    "companies": {"name": "Versioned Ltd"},
    "leads": {"first_name": "Lena", "email": "lena@example.com"},
    "deals": {"title": "Versioned deal"},
    "activities": {"type": "task", "subject": "Versioned task"},
}
PATCHES = {"contacts": {"last_name": "V"}, "companies": {"domain": "versioned.example"}, "leads": {"title": "CTO"},
           "deals": {"value": {"amount": "10"}}, "activities": {"subject": "Renamed"}}


async def _ok(r, *statuses: int) -> dict:
    assert r.status_code in (statuses or (200, 201, 202, 204)), f"{r.request.method} {r.request.url}: {r.text}"
    return r.json() if r.content else {}


async def _write_everything(c, acct, session, settings) -> None:
    h = acct.headers
    rep = await acct.invite("member")
    heir = await acct.invite("member")

    for plural, body in RECORDS.items():  # the generic record routes
        one = await _ok(await c.post(f"/v1/{plural}", headers=h, json={**body, "owner_id": rep.user_id}))
        await _ok(await c.patch(f"/v1/{plural}/{one['id']}", headers=h, json=PATCHES[plural]))
        await _ok(await c.delete(f"/v1/{plural}/{one['id']}", headers=h))
        await _ok(await c.post(f"/v1/{plural}/{one['id']}/restore", headers=h))
        if plural != "activities":
            url = f"/v1/{plural}/by-external-id/erp/{plural}-1"
            await _ok(await c.put(url, headers=h, json=body))
            await _ok(await c.put(url, headers=h, json={**body, **PATCHES[plural]}))
        made = await _ok(await c.post(f"/v1/{plural}/batch", headers=h, json={"mode": "create", "items": [body]}))
        await _ok(await c.post(f"/v1/{plural}/batch", headers=h, json={
            "mode": "update", "items": [{"id": made["results"][0]["id"], **PATCHES[plural]}]}))

    # pipelines: a new default un-defaults the old one; stage edits are pipeline edits
    sales = next(p for p in (await _ok(await c.get("/v1/pipelines", headers=h)))["data"] if p["is_default"])
    stages = {s["name"]: s["id"] for s in sales["stages"]}
    partners = await _ok(await c.post("/v1/pipelines", headers=h, json={"name": "Partners", "stages": [
        {"name": "Talk", "probability": 20}, {"name": "Won", "probability": 100, "kind": "won"},
        {"name": "Lost", "probability": 0, "kind": "lost"}]}))
    await _ok(await c.patch(f"/v1/pipelines/{partners['id']}", headers=h, json={"is_default": True}))
    await _ok(await c.patch(f"/v1/pipelines/{sales['id']}", headers=h, json={"is_default": True}))
    extra = await _ok(await c.post(f"/v1/pipelines/{sales['id']}/stages", headers=h,
                                   json={"name": "Demo", "probability": 30}))
    await _ok(await c.patch(f"/v1/pipelines/{sales['id']}/stages/{extra['id']}", headers=h, json={"probability": 35}))
    order = [s["id"] for s in (await _ok(await c.get(f"/v1/pipelines/{sales['id']}", headers=h)))["stages"]]
    await _ok(await c.post(f"/v1/pipelines/{sales['id']}/stages/reorder", headers=h,
                           json={"stage_ids": order[::-1]}))

    # deals: moves, won and lost, a stage deleted under deals, a restore into a deleted stage
    deals = [await _ok(await c.post("/v1/deals", headers=h, json={"title": f"D{i}", "owner_id": rep.user_id}))
             for i in range(3)]
    await _ok(await c.patch(f"/v1/deals/{deals[0]['id']}", headers=h, json={"stage_id": extra["id"]}))
    await _ok(await c.patch(f"/v1/deals/{deals[1]['id']}", headers=h, json={"stage_id": extra["id"]}))
    await _ok(await c.patch(f"/v1/deals/{deals[2]['id']}", headers=h,
                            json={"stage_id": stages["Lost"], "lost_reason": "price"}))
    await _ok(await c.delete(f"/v1/deals/{deals[1]['id']}", headers=h))
    await _ok(await c.delete(f"/v1/pipelines/{sales['id']}/stages/{extra['id']}", headers=h,
                             params={"move_deals_to": stages["Won"]}))
    await _ok(await c.post(f"/v1/deals/{deals[1]['id']}/restore", headers=h))
    await _ok(await c.patch(f"/v1/deals/{deals[0]['id']}", headers=h,
                            json={"pipeline_id": partners["id"], "stage_id": partners["stages"][0]["id"]}))
    spare = await _ok(await c.post("/v1/pipelines", headers=h, json={"name": "Spare", "stages": [
        {"name": "A", "probability": 20}, {"name": "W", "probability": 100, "kind": "won"},
        {"name": "L", "probability": 0, "kind": "lost"}]}))
    await _ok(await c.delete(f"/v1/pipelines/{spare['id']}", headers=h))

    # leads: the first completed activity stamps the response time; conversion makes three records
    lead = await _ok(await c.post("/v1/leads", headers=h, json={
        "first_name": "Conny", "email": "conny@example.com", "company_name": "Conny Co", "owner_id": rep.user_id}))
    task = await _ok(await c.post("/v1/activities", headers=h,
                                  json={"type": "call", "subject": "Call Conny", "lead_id": lead["id"]}))
    await _ok(await c.post(f"/v1/activities/{task['id']}/complete", headers=h))
    done = await _ok(await c.post("/v1/activities", headers=h, json={
        "type": "call", "subject": "Called", "lead_id": lead["id"], "done_at": "2026-01-01T10:00:00Z"}))
    await _ok(await c.patch(f"/v1/activities/{done['id']}", headers=h, json={"done_at": None}))
    await _ok(await c.patch(f"/v1/activities/{done['id']}", headers=h, json={"done_at": "2026-01-02T10:00:00Z"}))
    await _ok(await c.post(f"/v1/leads/{lead['id']}/convert", headers=h,
                           json={"create_deal": True, "create_company": True}))

    # forms: a new person, the same person again (fills the lead), a known contact, a deal-making form
    form = await _ok(await c.post("/v1/forms", headers=h, json={"name": "Contact us", "assignees": [rep.user_id]}))
    await _ok(await c.patch(f"/v1/forms/{form['id']}", headers=h, json={"sla_minutes": 30}))
    url = f"/v1/public/forms/{form['public_key']}/submissions"
    await _ok(await c.post(url, json={"email": "web@example.com"}))
    await _ok(await c.post(url, json={"email": "web@example.com", "first_name": "Webb", "phone": "+4930901820"}))
    await _ok(await c.post(url, json={"email": "vera@example.com", "message": "again"}))
    deal_form = await _ok(await c.post("/v1/forms", headers=h, json={"name": "Demo", "creates": "deal",
                                                                     "pipeline_id": partners["id"]}))
    await _ok(await c.post(f"/v1/public/forms/{deal_form['public_key']}/submissions",
                           json={"email": "buyer@example.com"}))
    await _ok(await c.post(f"/v1/forms/{form['id']}/rotate-key", headers=h))
    await _ok(await c.delete(f"/v1/forms/{deal_form['id']}", headers=h))

    # webhooks, and what deliveries do to their endpoint: failing, recovering, refused for good (410)
    hook = await _ok(await c.post("/v1/webhooks", headers=h,
                                  json={"url": "http://127.0.0.1:9/hook", "events": ["deal.*"]}))
    await _ok(await c.patch(f"/v1/webhooks/{hook['id']}", headers=h, json={"description": "ours"}))
    await _ok(await c.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=h))
    for status in (500, 200, 503, 410):
        delivery = await _ok(await c.post(f"/v1/webhooks/{hook['id']}/test", headers=h))
        await webhooks.record(session, settings, uuid.UUID(acct.org_id), uuid.UUID(delivery["id"]),
                              {"status_code": status})
    await _ok(await c.patch(f"/v1/webhooks/{hook['id']}", headers=h, json={"enabled": True}))
    await _ok(await c.delete(f"/v1/webhooks/{hook['id']}", headers=h))

    # teams: created, membership replaced, renamed, deleted; another one stays
    team = await _ok(await c.post("/v1/teams", headers=h, json={"name": "North", "member_ids": [rep.user_id]}))
    await _ok(await c.patch(f"/v1/teams/{team['id']}", headers=h, json={"member_ids": [heir.user_id]}))
    await _ok(await c.patch(f"/v1/teams/{team['id']}", headers=h, json={"name": "North-East"}))
    await _ok(await c.post("/v1/teams", headers=h, json={"name": "South", "manager_id": heir.user_id}))
    await _ok(await c.delete(f"/v1/teams/{team['id']}", headers=h))

    # documents: requested (numbered), paid in two parts, voided; the template itself has no events
    template = await _ok(await c.post("/v1/document-templates", headers=h, json={
        "name": "Invoice", "kind": "invoice", "number_prefix": "INV", "body_html": "<p>{{ document.number }}</p>"}))
    billed = await _ok(await c.post("/v1/deals", headers=h, json={"title": "Billed", "value": {"amount": "100"}}))
    document = await _ok(await c.post(f"/v1/deals/{billed['id']}/documents", headers=h,
                                      json={"template_id": template["id"]}))
    for amount in ("40.00", "60.00"):
        await _ok(await c.post(f"/v1/documents/{document['id']}/payments", headers=h,
                               json={"amount": {"amount": amount}, "method": "bank_transfer"}))
    await _ok(await c.post(f"/v1/documents/{document['id']}/void", headers=h))
    # files: attached, deleted, restored
    from tests.test_files import PDF, upload

    filed = await _ok(await upload(c, h, "deal", deals[0]["id"], PDF), 201)
    await _ok(await c.delete(f"/v1/files/{filed['id']}", headers=h))
    await _ok(await c.post(f"/v1/files/{filed['id']}/restore", headers=h))
    # the catalogue: products through every path, and line items on a deal (each a deal.updated)
    product = await _ok(await c.post("/v1/products", headers=h, json={
        "name": "Seat", "prices": [{"amount": "10.00", "currency": "EUR"}]}))
    await _ok(await c.patch(f"/v1/products/{product['id']}", headers=h, json={"tax_rate": "19"}))
    await _ok(await c.delete(f"/v1/products/{product['id']}", headers=h))
    await _ok(await c.post(f"/v1/products/{product['id']}/restore", headers=h))
    await _ok(await c.put("/v1/products/by-external-id/erp/products-1", headers=h, json={"name": "Kit"}))
    await _ok(await c.put("/v1/products/by-external-id/erp/products-1", headers=h, json={"name": "Kit 2"}))
    made = await _ok(await c.post("/v1/products/batch", headers=h, json={"items": [{"name": "Cable"}]}))
    await _ok(await c.post("/v1/products/batch", headers=h, json={
        "mode": "update", "items": [{"id": made["results"][0]["id"], "active": False}]}))
    item = await _ok(await c.post(f"/v1/deals/{deals[2]['id']}/line-items", headers=h,
                                  json={"product_id": product["id"], "quantity": 2}))
    await _ok(await c.patch(f"/v1/deals/{deals[2]['id']}/line-items/{item['id']}", headers=h, json={"quantity": 3}))
    await _ok(await c.delete(f"/v1/deals/{deals[2]['id']}/line-items/{item['id']}", headers=h))
    # calls: a known number (the form's lead), a stranger's missed call (a lead and its call-back task)
    for caller, status in (("+4930901820", "answered"), ("+4915100000999", "missed")):
        await _ok(await c.post("/v1/calls", headers=h, json={
            "direction": "inbound", "from": caller, "to": "+4930000000", "started_at": "2026-12-04T10:00:00Z",
            "duration_seconds": 30, "status": status}))

    # a leaving rep hands everything over
    await _ok(await c.post(f"/v1/users/{rep.user_id}/deactivate", headers=h, json={"reassign_to": heir.user_id}))


def _versioned_tables() -> list:
    return [t for t in Base.metadata.sorted_tables
            if {"org_id", "id", "version"} <= set(t.c.keys()) and t.name not in NOT_EVENTED
            and t is not Event.__table__]


async def test_every_version_of_every_record_has_its_event(client, session, settings):
    acct = await signup(client)
    await _write_everything(client, acct, session, settings)
    org = uuid.UUID(acct.org_id)

    seen: dict[uuid.UUID, set[int]] = defaultdict(set)
    for object_id, version in (await session.execute(
            select(Event.object_id, Event.version).where(Event.org_id == org, Event.version.is_not(None)))).all():
        seen[object_id].add(version)

    tables = _versioned_tables()
    assert {"contacts", "companies", "leads", "deals", "activities", "pipelines", "forms",
            "webhook_endpoints"} <= {t.name for t in tables}
    wrong = []
    for table in tables:
        rows = (await session.execute(text(f"SELECT id, version FROM {table.name} WHERE org_id = :org"),
                                      {"org": org})).all()
        assert rows, f"the script wrote no {table.name}"
        for record_id, version in rows:
            if seen[record_id] != set(range(1, version + 1)):
                wrong.append((table.name, str(record_id), version, sorted(seen[record_id])))
    assert not wrong, "\n".join(f"{t} {i}: at version {v}, events name versions {e}" for t, i, v, e in wrong)
