"""Soft delete is one rule: a deleted record leaves every read path (gets, sub-resources, timelines, lists,
exports, reports) at once, and comes back with it on restore."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from app.domain import kinds
from app.main import create_app
from app.settings import Settings
from tests.factories import signup

STAGES = [{"name": "Open", "probability": 10}, {"name": "Won", "probability": 100, "kind": "won"},
          {"name": "Lost", "probability": 0, "kind": "lost"}]
EXTERNAL = {"source": "erp", "id": "R-1"}


async def _made(client, acct, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(path, headers=acct.headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def _campaign(client, acct) -> dict[str, Any]:
    box = await _made(client, acct, "/v1/mailboxes", {
        "email": "news@acme.example.com", "imap": {"host": "127.0.0.1", "port": 9, "username": "u", "password": "p"},
        "smtp": {"host": "127.0.0.1", "port": 9}})
    template = await _made(client, acct, "/v1/templates", {"name": "T", "body_text": "Hi"})
    segment = await _made(client, acct, "/v1/segments", {"name": "All"})
    return await _made(client, acct, "/v1/campaigns", {"name": "C", "template_id": template["id"],
                                                       "segment_id": segment["id"], "mailbox_id": box["id"]})


async def _file(client, acct) -> dict[str, Any]:
    from tests.test_files import PDF, upload

    contact = await _made(client, acct, "/v1/contacts", {"first_name": "Ana"})
    r = await upload(client, acct.headers, "contact", contact["id"], PDF)
    assert r.status_code == 201, r.text
    return r.json()


# How to make one record of each kind a caller can delete. A kind the registry lists with GET routes under
# /v1/<plural>/{id} needs a maker here: the generic test below fails until it has one.
MAKERS: dict[str, Callable[[Any, Any], Awaitable[dict[str, Any]]]] = {
    "contact": lambda c, a: _made(c, a, "/v1/contacts", {"first_name": "Ana", "external_ids": [EXTERNAL]}),
    "company": lambda c, a: _made(c, a, "/v1/companies", {"name": "Acme", "external_ids": [EXTERNAL]}),
    "lead": lambda c, a: _made(c, a, "/v1/leads", {"first_name": "Jo", "external_ids": [EXTERNAL]}),
    "deal": lambda c, a: _made(c, a, "/v1/deals", {"title": "D", "external_ids": [EXTERNAL]}),
    "activity": lambda c, a: _made(c, a, "/v1/activities", {"type": "note", "subject": "s"}),
    "pipeline": lambda c, a: _made(c, a, "/v1/pipelines", {"name": "Other", "stages": STAGES}),
    "form": lambda c, a: _made(c, a, "/v1/forms", {"name": "Demo request"}),
    "webhook": lambda c, a: _made(c, a, "/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["contact.*"]}),
    "team": lambda c, a: _made(c, a, "/v1/teams", {"name": "North"}),
    "template": lambda c, a: _made(c, a, "/v1/templates", {"name": "T", "body_text": "Hi"}),
    "segment": lambda c, a: _made(c, a, "/v1/segments", {"name": "All"}),
    "campaign": lambda c, a: _campaign(c, a),
    "automation": lambda c, a: _made(c, a, "/v1/automations", {
        "name": "A", "trigger": {"event": "contact.created"}, "actions": [{"type": "add_tag", "tag": "x"}]}),
    "document_template": lambda c, a: _made(c, a, "/v1/document-templates", {
        "name": "Invoice", "kind": "invoice", "number_prefix": "INV", "body_html": "<p>{{ document.number }}</p>"}),
    "file": lambda c, a: _file(c, a),
    "product": lambda c, a: _made(c, a, "/v1/products", {"name": "Seat", "external_ids": [EXTERNAL]}),
    "mailbox": lambda c, a: _made(c, a, "/v1/mailboxes", {
        "email": "sales@acme.example.com", "imap": {"host": "127.0.0.1", "port": 9, "username": "u", "password": "p"},
        "smtp": {"host": "127.0.0.1", "port": 9}}),
}
# Kinds with reads by id but no DELETE route.
UNDELETABLE = {"import": "an import is cancelled, not deleted", "email": "mail is not deleted through the API",
               "sms": "texts are not deleted through the API", "call": "calls are not deleted through the API",
               "document": "documents keep their numbers: they are voided, not deleted"}


def _record_routes() -> dict[str, list[str]]:
    """Every GET route of the app that reads one record by its id (or external id), by the record's kind."""
    app = create_app(Settings(env="test", jwt_secret="x" * 40))
    found: dict[str, list[str]] = {}
    for path, item in app.openapi()["paths"].items():
        m = re.match(r"^/v1/([a-z-]+)/(\{[a-z_]+\}|by-external-id/\{source\}/\{external_id\})(/|$)", path)
        if "get" in item and m and m.group(1) in kinds.BY_PLURAL:
            found.setdefault(kinds.BY_PLURAL[m.group(1)].object_type, []).append(path)
    return found


ROUTES = _record_routes()


def test_every_kind_with_record_routes_is_covered():
    assert {"contact", "company", "lead", "deal", "activity", "pipeline", "form", "webhook"} <= set(ROUTES)
    assert "/v1/deals/{record_id}/stage-history" in ROUTES["deal"]
    assert "/v1/contacts/{record_id}/timeline" in ROUTES["contact"]
    missing = [t for t in ROUTES if kinds.named(t).soft_delete and t not in MAKERS and t not in UNDELETABLE]
    assert not missing, f"add a maker for {missing} so their record routes are checked after a delete"


def _concrete(path: str, record: dict[str, Any]) -> str:
    path = path.replace("{source}", EXTERNAL["source"]).replace("{external_id}", EXTERNAL["id"])
    return re.sub(r"\{[a-z_]+\}", record["id"], path, count=1)


@pytest.mark.parametrize("object_type", [t for t in MAKERS if t in ROUTES])
async def test_a_deleted_record_answers_404_on_every_route_that_reads_it(client, object_type):
    acct = await signup(client)
    record = await MAKERS[object_type](client, acct)
    paths = [_concrete(p, record) for p in ROUTES[object_type]]
    for path in paths:
        r = await client.get(path, headers=acct.headers)
        if "by-external-id" in path and not kinds.named(object_type).external_ids:
            continue  # nothing to find by external id for this kind
        assert r.status_code == 200, (path, r.status_code, r.text)
    plural = kinds.named(object_type).plural
    assert (await client.delete(f"/v1/{plural}/{record['id']}", headers=acct.headers)).status_code == 204
    for path in paths:
        r = await client.get(path, headers=acct.headers)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"


async def test_a_deleted_deals_stage_history_is_404_and_back_on_restore(client):
    acct = await signup(client)
    deal = await _made(client, acct, "/v1/deals", {"title": "D"})
    assert (await client.get(f"/v1/deals/{deal['id']}/stage-history", headers=acct.headers)).status_code == 200
    assert (await client.delete(f"/v1/deals/{deal['id']}", headers=acct.headers)).status_code == 204
    assert (await client.get(f"/v1/deals/{deal['id']}", headers=acct.headers)).status_code == 404
    assert (await client.get(f"/v1/deals/{deal['id']}/stage-history", headers=acct.headers)).status_code == 404
    assert (await client.get(f"/v1/deals/{deal['id']}/timeline", headers=acct.headers)).status_code == 404
    assert (await client.post(f"/v1/deals/{deal['id']}/restore", headers=acct.headers)).status_code == 200
    r = await client.get(f"/v1/deals/{deal['id']}/stage-history", headers=acct.headers)
    assert r.status_code == 200 and len(r.json()["data"]) == 1


async def test_a_deleted_forms_submissions_are_404(client):
    acct = await signup(client)
    form = await _made(client, acct, "/v1/forms", {"name": "Demo request"})
    assert (await client.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers)).status_code == 200
    assert (await client.delete(f"/v1/forms/{form['id']}", headers=acct.headers)).status_code == 204
    assert (await client.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers)).status_code == 404


async def test_a_deleted_leads_entries_leave_its_contacts_timeline(client):
    acct = await signup(client)
    h = acct.headers
    lead = await _made(client, acct, "/v1/leads", {"first_name": "Jo", "email": "jo@park.io"})
    call = await _made(client, acct, "/v1/activities", {"type": "call", "subject": "Intro", "lead_id": lead["id"]})
    converted = await client.post(f"/v1/leads/{lead['id']}/convert", headers=h, json={})
    assert converted.status_code == 200, converted.text
    contact_id = converted.json()["contact"]["id"]
    note = await _made(client, acct, "/v1/activities", {"type": "note", "subject": "Own", "contact_id": contact_id})

    def ids(r: Any) -> set[str]:
        assert r.status_code == 200, r.text
        return {e["id"] for e in r.json()["data"]}

    assert ids(await client.get(f"/v1/contacts/{contact_id}/timeline", headers=h)) == {call["id"], note["id"]}
    assert (await client.delete(f"/v1/leads/{lead['id']}", headers=h)).status_code == 204
    assert ids(await client.get(f"/v1/contacts/{contact_id}/timeline", headers=h)) == {note["id"]}
    assert (await client.get(f"/v1/leads/{lead['id']}/timeline", headers=h)).status_code == 404
    assert (await client.post(f"/v1/leads/{lead['id']}/restore", headers=h)).status_code == 200
    assert ids(await client.get(f"/v1/contacts/{contact_id}/timeline", headers=h)) == {call["id"], note["id"]}


async def test_a_deleted_deal_leaves_lists_exports_and_reports(client):
    acct = await signup(client)
    h = acct.headers
    deal = await _made(client, acct, "/v1/deals", {"title": "Gone", "value": {"amount": "100.00", "currency": "EUR"}})
    funnel = (await client.get("/v1/reports/funnel", headers=h)).json()
    assert funnel["totals"]["deals"] == 1
    assert (await client.delete(f"/v1/deals/{deal['id']}", headers=h)).status_code == 204
    assert (await client.get("/v1/deals", headers=h)).json()["data"] == []
    export = await client.get("/v1/deals/export.csv", headers=h)
    assert export.status_code == 200 and "Gone" not in export.text
    assert (await client.get("/v1/reports/funnel", headers=h)).json()["totals"]["deals"] == 0


@pytest.mark.parametrize(("parent", "child", "link"), [
    ("deals", "activities", "deal_id"), ("leads", "activities", "lead_id"), ("contacts", "activities", "contact_id"),
    ("companies", "activities", "company_id"), ("contacts", "deals", "contact_id"), ("companies", "deals", "company_id"),
    ("companies", "contacts", "company_id"),
])
async def test_a_deleted_records_sub_lists_are_empty(client, parent, child, link):
    acct = await signup(client)
    h = acct.headers
    bodies = {"deals": {"title": "D"}, "leads": {"first_name": "Jo"}, "contacts": {"first_name": "Ana"},
              "companies": {"name": "Acme"}, "activities": {"type": "note", "subject": "s"}}
    owner = await _made(client, acct, f"/v1/{parent}", bodies[parent])
    item = await _made(client, acct, f"/v1/{child}", {**bodies[child], link: owner["id"]})
    listed = await client.get(f"/v1/{child}", headers=h, params={link: owner["id"]})
    assert [r["id"] for r in listed.json()["data"]] == [item["id"]]
    assert (await client.delete(f"/v1/{parent}/{owner['id']}", headers=h)).status_code == 204
    listed = await client.get(f"/v1/{child}", headers=h, params={link: owner["id"]})
    assert listed.status_code == 200 and listed.json()["data"] == []
    export = await client.get(f"/v1/{child}/export.csv", headers=h, params={link: owner["id"]})
    assert export.status_code == 200 and item["id"] not in export.text
    assert (await client.get(f"/v1/{child}/{item['id']}", headers=h)).status_code == 200  # a record of its own
