"""Documents: templates checked like email templates, numbers without gaps or repeats under concurrent requests,
PDFs rendered by a real worker (their text read back with pypdf), signed public links, payments up to `paid`
(`document.paid` once), the deal's and contact's timelines, visibility, tenancy and bad input."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pypdf
from sqlalchemy import text

from app.main import create_app
from tests.factories import signup
from tests.servers import Receiver
from tests.workers import eventually, running_worker

INVOICE = """<html><body>
<h1>Invoice {{ document.number }}</h1>
<p>To: {{ contact.first_name }} {{ contact.last_name }}, {{ company.name }}</p>
<p>For: {{ deal.title }}</p>
<p>Total: {{ document.total.amount }} {{ document.total.currency }}</p>
<p>Due: {{ document.due_date }}</p>
<p>From: {{ user.name }}, {{ org.name }}</p>
</body></html>"""
LETTER = "<p>Dear {{ contact.first_name }},</p><p>our reference {{ document.number }}.</p>"


async def _ok(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json() if r.content else {}


async def _template(api, acct, kind: str = "invoice", prefix: str = "INV", body: str = INVOICE) -> dict:
    return await _ok(await api.post("/v1/document-templates", headers=acct.headers, json={
        "name": f"{kind} template", "kind": kind, "number_prefix": prefix, "body_html": body}), 201)


async def _deal(api, acct, title: str = "Acme: 50 seats", amount: str = "1200.00") -> tuple[dict, dict]:
    h = acct.headers
    company = await _ok(await api.post("/v1/companies", headers=h, json={"name": "Acme GmbH"}), 201)
    contact = await _ok(await api.post("/v1/contacts", headers=h, json={
        "first_name": "Ana", "last_name": "Álvarez", "company_id": company["id"]}), 201)
    deal = await _ok(await api.post("/v1/deals", headers=h, json={
        "title": title, "value": {"amount": amount, "currency": "EUR"}, "contact_id": contact["id"],
        "company_id": company["id"]}), 201)
    return deal, contact


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


async def _ready(api, acct, doc_id: str, status: str = "ready") -> dict:
    async def done():
        r = (await api.get(f"/v1/documents/{doc_id}", headers=acct.headers)).json()
        return r if r["status"] == status else None

    return await eventually(done)


async def test_templates_are_checked_like_email_templates_and_admin_written(api):
    acct = await signup(api)
    h = acct.headers
    template = await _template(api, acct)
    assert template["kind"] == "invoice" and template["number_prefix"] == "INV"
    bad = await api.post("/v1/document-templates", headers=h, json={
        "name": "Broken", "kind": "quote", "number_prefix": "Q", "body_html": "<p>ok</p>\n<p>{{ deal.title </p>"})
    assert bad.status_code == 422, bad.text
    [error] = bad.json()["errors"]
    assert error["loc"] == ["body", "body_html"] and "line 2" in error["msg"]
    patched = await api.patch(f"/v1/document-templates/{template['id']}", headers=h,
                              json={"body_html": "{% if %}"})
    assert patched.status_code == 422 and "line 1" in patched.json()["errors"][0]["msg"]
    for body in ({"name": "x", "kind": "receipt", "number_prefix": "R", "body_html": "x"},
                 {"name": "x", "kind": "quote", "number_prefix": "has space", "body_html": "x"},
                 {"name": "x", "kind": "quote", "number_prefix": "Q", "body_html": "x", "surprise": 1},
                 {"name": "x", "kind": "quote", "number_prefix": "Q"}):
        assert (await api.post("/v1/document-templates", headers=h, json=body)).status_code == 422, body
    assert (await api.patch(f"/v1/document-templates/{template['id']}", headers=h,
                            json={"kind": "quote"})).status_code == 422  # the kind stays
    renamed = await _ok(await api.patch(f"/v1/document-templates/{template['id']}", headers=h,
                                        json={"name": "Invoice DE"}))
    assert renamed["name"] == "Invoice DE" and renamed["version"] == template["version"] + 1
    member = await acct.invite("member")
    assert (await api.get(f"/v1/document-templates/{template['id']}", headers=member.headers)).status_code == 200
    assert (await api.post("/v1/document-templates", headers=member.headers, json={
        "name": "x", "kind": "quote", "number_prefix": "Q", "body_html": "x"})).status_code == 403
    listed = (await api.get("/v1/document-templates", headers=h, params={"kind": "invoice"})).json()["data"]
    assert [t["id"] for t in listed] == [template["id"]]


async def test_twenty_concurrent_requests_get_numbers_without_gaps_or_repeats(api):
    acct = await signup(api)
    template = await _template(api, acct, prefix="RE")
    deal, _ = await _deal(api, acct)

    async def request() -> httpx.Response:
        return await api.post(f"/v1/deals/{deal['id']}/documents", headers=acct.headers,
                              json={"template_id": template["id"]})

    answers = await asyncio.gather(*(request() for _ in range(20)))
    assert all(r.status_code == 202 for r in answers), [r.text for r in answers if r.status_code != 202]
    year = datetime.now(UTC).year
    numbers = sorted(r.json()["number"] for r in answers)
    assert numbers == [f"RE-{year}-{n:05d}" for n in range(1, 21)]
    # another kind counts on its own; another org too
    quote = await _template(api, acct, kind="quote", prefix="Q")
    first_quote = await _ok(await api.post(f"/v1/deals/{deal['id']}/documents", headers=acct.headers,
                                           json={"template_id": quote["id"]}), 202)
    assert first_quote["number"] == f"Q-{year}-00001" and first_quote["status"] == "pending"
    other = await signup(api, "Other")
    their_template = await _template(api, other, prefix="RE")
    their_deal, _ = await _deal(api, other)
    theirs = await _ok(await api.post(f"/v1/deals/{their_deal['id']}/documents", headers=other.headers,
                                      json={"template_id": their_template["id"]}), 202)
    assert theirs["number"] == f"RE-{year}-00001"


async def test_a_worker_renders_the_deal_into_a_pdf_on_the_timeline(api, fast_settings):
    acct = await signup(api)
    h = acct.headers
    template = await _template(api, acct)
    deal, contact = await _deal(api, acct, title="Acme: 50 seats", amount="1234.50")
    accepted = await _ok(await api.post(f"/v1/deals/{deal['id']}/documents", headers=h, json={
        "template_id": template["id"], "due_date": "2026-12-31"}), 202)
    doc_id = accepted["id"]
    pending = await _ok(await api.get(f"/v1/documents/{doc_id}", headers=h))
    assert pending["status"] == "pending" and pending["total"] == {"amount": "1234.50", "currency": "EUR"}
    assert pending["payment_status"] == "unpaid" and pending["paid_amount"] == "0.00"
    assert pending["deal_id"] == deal["id"] and pending["contact_id"] == contact["id"]
    assert pending["due_date"] == "2026-12-31" and pending["kind"] == "invoice"
    waiting = await api.get(f"/v1/documents/{doc_id}/file", headers=h)
    assert waiting.status_code == 409 and waiting.headers["content-type"] == "application/problem+json"
    # the total is the deal's when requested: a later change of the deal changes no document
    await _ok(await api.patch(f"/v1/deals/{deal['id']}", headers=h, json={"value": {"amount": "99.00"}}))
    async with running_worker(fast_settings):
        ready = await _ready(api, acct, doc_id)
    assert ready["error"] is None and ready["file_size"] > 0
    r = await api.get(f"/v1/documents/{doc_id}/file", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    text = _pdf_text(r.content)
    for expected in (accepted["number"], "Acme: 50 seats", "1234.50 EUR", "Ana", "Álvarez", "Acme GmbH",
                     "2026-12-31", "Olga Owner"):
        assert expected in text, (expected, text)
    assert "99.00" not in text
    for record in (f"/v1/deals/{deal['id']}", f"/v1/contacts/{contact['id']}",
                   f"/v1/companies/{deal['company_id']}"):
        timeline = (await api.get(f"{record}/timeline", headers=h)).json()["data"]
        [entry] = [e for e in timeline if e["kind"] == "document"]
        assert entry["object_type"] == "document" and entry["object_id"] == doc_id, record
        assert entry["data"]["number"] == accepted["number"] and entry["data"]["status"] == "ready"
        assert accepted["number"] in entry["summary"]
    narrow = await acct.api_key(["deals:read", "activities:read"])  # no documents:read: no document entries
    timeline = (await api.get(f"/v1/deals/{deal['id']}/timeline", headers=narrow)).json()["data"]
    assert [e for e in timeline if e["kind"] == "document"] == []
    listed = (await api.get("/v1/documents", headers=h, params={"deal_id": deal["id"], "kind": "invoice"})).json()
    assert [d["id"] for d in listed["data"]] == [doc_id] and listed["next_cursor"] is None
    assert (await api.get("/v1/documents", headers=h, params={"kind": "quote"})).json()["data"] == []
    by_contact = (await api.get("/v1/documents", headers=h, params={"contact_id": contact["id"]})).json()["data"]
    assert [d["id"] for d in by_contact] == [doc_id]
    feed = (await api.get("/v1/changes", headers=h, params={"types": "document"})).json()["data"]
    assert [e["type"] for e in feed] == ["document.created", "document.ready"]
    export = (await api.get(f"/v1/contacts/{contact['id']}/export", headers=h)).json()
    assert [d["id"] for d in export["documents"]] == [doc_id]


async def test_a_letter_to_a_contact_and_a_failed_render_that_keeps_its_number(api, fast_settings):
    acct = await signup(api)
    h = acct.headers
    letter = await _template(api, acct, kind="letter", prefix="L", body=LETTER)
    broken = await _template(api, acct, kind="letter", prefix="L", body="<p>{{ contact.first_name() }}</p>")
    invoice = await _template(api, acct)
    contact = await _ok(await api.post("/v1/contacts", headers=h, json={"first_name": "Bea"}), 201)
    wrong = await api.post(f"/v1/contacts/{contact['id']}/documents", headers=h, json={"template_id": invoice["id"]})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["loc"] == ["body", "template_id"]
    good = await _ok(await api.post(f"/v1/contacts/{contact['id']}/documents", headers=h,
                                    json={"template_id": letter["id"]}), 202)
    bad = await _ok(await api.post(f"/v1/contacts/{contact['id']}/documents", headers=h,
                                   json={"template_id": broken["id"]}), 202)
    year = datetime.now(UTC).year
    assert (good["number"], bad["number"]) == (f"L-{year}-00001", f"L-{year}-00002")
    async with running_worker(fast_settings):
        done = await _ready(api, acct, good["id"])
        failed = await _ready(api, acct, bad["id"], "failed")
    assert done["total"] is None and done["paid_amount"] is None and done["payment_status"] is None
    assert "cannot call" in failed["error"] and failed["number"] == bad["number"]
    text = _pdf_text((await api.get(f"/v1/documents/{good['id']}/file", headers=h)).content)
    assert "Dear Bea" in text and good["number"] in text
    r = await api.get(f"/v1/documents/{bad['id']}/file", headers=h)
    assert r.status_code == 409 and "cannot call" in r.json()["detail"]
    assert (await api.post(f"/v1/documents/{good['id']}/payments", headers=h, json={
        "amount": {"amount": "1.00", "currency": "EUR"}, "method": "cash"})).status_code == 409
    timeline = (await api.get(f"/v1/contacts/{contact['id']}/timeline", headers=h)).json()["data"]
    assert {e["object_id"] for e in timeline if e["kind"] == "document"} == {good["id"], bad["id"]}
    feed = (await api.get("/v1/changes", headers=h, params={"types": "document"})).json()["data"]
    assert sorted(e["type"] for e in feed) == ["document.created", "document.created", "document.failed",
                                               "document.ready"]


async def test_a_shared_link_opens_the_pdf_without_auth_until_it_expires(api, fast_settings, app_database, redis):
    acct = await signup(api)
    template = await _template(api, acct)
    deal, _ = await _deal(api, acct)
    doc = await _ok(await api.post(f"/v1/deals/{deal['id']}/documents", headers=acct.headers,
                                   json={"template_id": template["id"]}), 202)
    assert (await api.post(f"/v1/documents/{doc['id']}/share", headers=acct.headers)).status_code == 409
    async with running_worker(fast_settings):
        await _ready(api, acct, doc["id"])
    link = await _ok(await api.post(f"/v1/documents/{doc['id']}/share", headers=acct.headers))
    expires = datetime.fromisoformat(link["expires_at"])
    assert 7 * 86400 - 120 < (expires - datetime.now(UTC)).total_seconds() <= 7 * 86400
    url = urlsplit(link["url"])
    path = url.path + (f"?{url.query}" if url.query else "")
    assert path.startswith("/v1/public/documents/")
    opened = await api.get(path)  # no credentials
    assert opened.status_code == 200 and opened.headers["content-type"] == "application/pdf"
    assert doc["number"] in _pdf_text(opened.content)
    token = path.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for wrong in (tampered, token[:20], "not-a-token", token + "x"):
        r = await api.get(f"/v1/public/documents/{wrong}")
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", wrong
    # the same link a moment after it expired (the clock moved by the offset setting, no waiting)
    later = fast_settings.model_copy(update={"clock_offset_seconds": 7 * 86400 + 1})
    app = create_app(later, db=app_database, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as future:
        assert (await future.get(path)).status_code == 404
    shorter = fast_settings.model_copy(update={"document_link_ttl_seconds": 60, "clock_offset_seconds": 0})
    app = create_app(shorter, db=app_database, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as short:
        brief = (await short.post(f"/v1/documents/{doc['id']}/share", headers=acct.headers)).json()
        assert (datetime.fromisoformat(brief["expires_at"]) - datetime.now(UTC)).total_seconds() <= 60
        assert (await short.get(urlsplit(brief["url"]).path)).status_code == 200
    # voiding the document closes its links
    await _ok(await api.post(f"/v1/documents/{doc['id']}/void", headers=acct.headers))
    assert (await api.get(path)).status_code == 404


async def test_payments_go_from_partially_paid_to_paid_and_document_paid_is_written_once(api):
    acct = await signup(api)
    h = acct.headers
    template = await _template(api, acct)
    deal, _ = await _deal(api, acct, amount="1000.00")
    doc = await _ok(await api.post(f"/v1/deals/{deal['id']}/documents", headers=h,
                                   json={"template_id": template["id"]}), 202)
    url = f"/v1/documents/{doc['id']}/payments"
    first = await _ok(await api.post(url, headers=h, json={
        "amount": {"amount": "400.00", "currency": "EUR"}, "paid_at": "2026-12-01T10:00:00+01:00",
        "method": "bank_transfer", "reference": "SEPA 1"}), 201)
    assert first["amount"] == {"amount": "400.00", "currency": "EUR"} and first["document_id"] == doc["id"]
    assert first["paid_at"].startswith("2026-12-01T09:00:00")
    after = await _ok(await api.get(f"/v1/documents/{doc['id']}", headers=h))
    assert (after["payment_status"], after["paid_amount"]) == ("partially_paid", "400.00")
    await _ok(await api.post(url, headers=h, json={"amount": {"amount": "600.00"}, "method": "card"}), 201)
    paid = await _ok(await api.get(f"/v1/documents/{doc['id']}", headers=h))
    assert (paid["payment_status"], paid["paid_amount"]) == ("paid", "1000.00")
    await _ok(await api.post(url, headers=h, json={"amount": {"amount": "5.00"}, "method": "cash"}), 201)  # over
    listed = (await api.get(url, headers=h)).json()["data"]
    assert [p["amount"]["amount"] for p in listed] == ["400.00", "600.00", "5.00"]
    final = await _ok(await api.get(f"/v1/documents/{doc['id']}", headers=h))
    assert (final["payment_status"], final["paid_amount"]) == ("paid", "1005.00")
    feed = (await api.get("/v1/changes", headers=h, params={"types": "document"})).json()["data"]
    types = [e["type"] for e in feed]
    assert types.count("document.paid") == 1 and types.count("document.payment_recorded") == 3
    [paid_event] = [e for e in feed if e["type"] == "document.paid"]
    assert paid_event["data"]["object"]["payment_status"] == "paid"
    # bad payments
    for body, loc in (({"amount": {"amount": "1.00", "currency": "USD"}, "method": "card"},
                       ["body", "amount", "currency"]),
                      ({"amount": {"amount": "0.00"}, "method": "card"}, ["body", "amount", "amount"]),
                      ({"amount": {"amount": "-1.00"}, "method": "card"}, None),
                      ({"amount": {"amount": "1.001"}, "method": "card"}, None),
                      ({"amount": {"amount": "1.00"}}, None),
                      ({"amount": {"amount": "1.00"}, "method": "card", "surprise": True}, None)):
        r = await api.post(url, headers=h, json=body)
        assert r.status_code == 422, (body, r.text)
        if loc:
            assert r.json()["errors"][0]["loc"] == loc
    voided = await _ok(await api.post(f"/v1/documents/{doc['id']}/void", headers=h))
    assert voided["payment_status"] == "void" and voided["voided_at"] and voided["number"] == doc["number"]
    assert (await api.post(url, headers=h, json={"amount": {"amount": "1.00"}, "method": "cash"})).status_code == 409


async def test_documents_follow_their_deals_visibility_and_other_orgs_get_404(api):
    acct, other = await signup(api), await signup(api, "Other")
    h = acct.headers
    template = await _template(api, acct)
    letter = await _template(api, acct, kind="letter", prefix="L", body=LETTER)
    deal, contact = await _deal(api, acct)
    doc = await _ok(await api.post(f"/v1/deals/{deal['id']}/documents", headers=h,
                                   json={"template_id": template["id"]}), 202)
    # another org: nothing of ours is there, nor can it be used
    oh = other.headers
    for path in (f"/v1/documents/{doc['id']}", f"/v1/documents/{doc['id']}/file",
                 f"/v1/documents/{doc['id']}/payments", f"/v1/document-templates/{template['id']}"):
        r = await api.get(path, headers=oh)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", path
    assert (await api.get("/v1/documents", headers=oh)).json()["data"] == []
    their_template = await _template(api, other)
    assert (await api.post(f"/v1/deals/{deal['id']}/documents", headers=oh,
                           json={"template_id": their_template["id"]})).status_code == 404
    assert (await api.post(f"/v1/contacts/{contact['id']}/documents", headers=oh,
                           json={"template_id": their_template["id"]})).status_code == 404
    r = await api.post(f"/v1/deals/{deal['id']}/documents", headers=h, json={"template_id": their_template["id"]})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "template_id"]
    for path in (f"/v1/documents/{doc['id']}/payments", f"/v1/documents/{doc['id']}/share",
                 f"/v1/documents/{doc['id']}/void"):
        body = {"amount": {"amount": "1.00"}, "method": "cash"} if path.endswith("payments") else None
        assert (await api.post(path, headers=oh, json=body)).status_code == 404, path
    # bad input
    for body in ({}, {"template_id": "nope"}, {"template_id": template["id"], "due_date": "tomorrow"},
                 {"template_id": template["id"], "number": "X-1"}):
        assert (await api.post(f"/v1/deals/{deal['id']}/documents", headers=h, json=body)).status_code == 422, body
    assert (await api.get("/v1/documents", headers=h, params={"kind": "receipt"})).status_code == 422
    assert (await api.get("/v1/documents", headers=h, params={"sort": "number"})).status_code == 422
    assert (await api.get("/v1/documents", headers=h, params={"surprise": "1"})).status_code == 422
    # record visibility `own`: a member sees documents of their own deals only
    await _ok(await api.patch("/v1/org", headers=h, json={"record_visibility": "own"}))
    member = await acct.invite("member")
    mh = member.headers
    assert (await api.get(f"/v1/documents/{doc['id']}", headers=mh)).status_code == 404
    assert (await api.get("/v1/documents", headers=mh)).json()["data"] == []
    assert (await api.post(f"/v1/deals/{deal['id']}/documents", headers=mh,
                           json={"template_id": template["id"]})).status_code == 404
    own_deal = await _ok(await api.post("/v1/deals", headers=mh, json={"title": "Mine"}), 201)
    mine = await _ok(await api.post(f"/v1/deals/{own_deal['id']}/documents", headers=mh,
                                    json={"template_id": template["id"]}), 202)
    assert [d["id"] for d in (await api.get("/v1/documents", headers=mh)).json()["data"]] == [mine["id"]]
    own_contact = await _ok(await api.post("/v1/contacts", headers=mh, json={"first_name": "Cy"}), 201)
    note = await _ok(await api.post(f"/v1/contacts/{own_contact['id']}/documents", headers=mh,
                                    json={"template_id": letter["id"]}), 202)
    assert (await api.get(f"/v1/documents/{note['id']}", headers=mh)).status_code == 200
    # members do not void; viewers do not write
    assert (await api.post(f"/v1/documents/{mine['id']}/void", headers=mh)).status_code == 403
    viewer = await acct.invite("viewer")
    assert (await api.post(f"/v1/deals/{deal['id']}/documents", headers=viewer.headers,
                           json={"template_id": template["id"]})).status_code == 403
    # a key without the documents scope
    key = await acct.api_key(["deals:read"])
    assert (await api.get("/v1/documents", headers=key)).status_code == 403
    assert (await api.get("/v1/documents")).status_code == 401


def test_numbers_are_prefix_year_and_five_digits():
    from app.domain.documents.service import format_number

    assert format_number("INV", 2026, 1) == "INV-2026-00001"
    assert format_number("Q", 2027, 123456) == "Q-2027-123456"
    assert re.fullmatch(r"[A-Z]+-\d{4}-\d{5}", format_number("RE", 2026, 99999))


async def test_a_deal_whose_contact_and_company_were_deleted_still_gets_its_document(api, fast_settings):
    acct = await signup(api)
    h = acct.headers
    template = await _template(api, acct)
    deal, contact = await _deal(api, acct, title="Orphaned deal")
    assert (await api.delete(f"/v1/contacts/{contact['id']}", headers=h)).status_code == 204
    assert (await api.delete(f"/v1/companies/{deal['company_id']}", headers=h)).status_code == 204
    doc = await _ok(await api.post(f"/v1/deals/{deal['id']}/documents", headers=h,
                                   json={"template_id": template["id"]}), 202)
    async with running_worker(fast_settings):
        ready = await _ready(api, acct, doc["id"])
    assert ready["contact_id"] is None and ready["deal_id"] == deal["id"]
    text = _pdf_text((await api.get(f"/v1/documents/{doc['id']}/file", headers=h)).content)
    assert "Orphaned deal" in text and "Álvarez" not in text and "Acme GmbH" not in text


async def test_a_document_loads_nothing_from_the_network_or_the_servers_files(api, fast_settings):
    receiver = Receiver()
    try:
        acct = await signup(api)
        body = (f'<link rel="stylesheet" href="{receiver.url}/style.css"><img src="{receiver.url}/logo.png">'
                '<img src="file:///etc/passwd"><p>{{ document.number }}</p>'
                '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">')
        template = await _template(api, acct, body=body)
        deal, _ = await _deal(api, acct)
        doc = await _ok(await api.post(f"/v1/deals/{deal['id']}/documents", headers=acct.headers,
                                       json={"template_id": template["id"]}), 202)
        async with running_worker(fast_settings):
            await _ready(api, acct, doc["id"])
        assert receiver.requests == []
        text = _pdf_text((await api.get(f"/v1/documents/{doc['id']}/file", headers=acct.headers)).content)
        assert doc["number"] in text and "root:" not in text
    finally:
        receiver.stop()


async def test_a_render_that_never_finishes_fails_after_its_attempts_and_keeps_its_number(api, fast_settings,
                                                                                          database):
    acct = await signup(api)
    template = await _template(api, acct)
    deal, _ = await _deal(api, acct)
    doc = await _ok(await api.post(f"/v1/deals/{deal['id']}/documents", headers=acct.headers,
                                   json={"template_id": template["id"]}), 202)
    async with database.across_orgs() as session:  # three workers died while rendering it
        await session.execute(text("UPDATE documents SET render_attempts = 3 WHERE id = :id"), {"id": doc["id"]})
    async with running_worker(fast_settings):
        failed = await _ready(api, acct, doc["id"], "failed")
    assert "did not finish in 3 attempts" in failed["error"] and failed["number"] == doc["number"]


async def test_erasing_a_contact_erases_its_letters_and_keeps_its_deals_invoices(api, fast_settings):
    acct = await signup(api)
    h = acct.headers
    deal, contact = await _deal(api, acct)
    invoice_template, letter_template = await _template(api, acct), await _template(api, acct, "letter", "LET", LETTER)
    async with running_worker(fast_settings):
        invoice = await _ok(await api.post(f"/v1/deals/{deal['id']}/documents", headers=h,
                                           json={"template_id": invoice_template["id"]}), 202)
        letter = await _ok(await api.post(f"/v1/contacts/{contact['id']}/documents", headers=h,
                                          json={"template_id": letter_template["id"]}), 202)
        await _ready(api, acct, invoice["id"])
        await _ready(api, acct, letter["id"])
    assert "Ana" in _pdf_text((await api.get(f"/v1/documents/{letter['id']}/file", headers=h)).content)
    erased = await _ok(await api.post(f"/v1/contacts/{contact['id']}/erase", headers=h), 202)
    assert erased["counts"]["letters"] == 1 and erased["counts"]["documents_kept"] == 1
    gone = await _ok(await api.get(f"/v1/documents/{letter['id']}", headers=h))
    assert gone["number"] == letter["number"] and gone["voided_at"] is not None  # the number stays taken
    assert (await api.get(f"/v1/documents/{letter['id']}/file", headers=h)).status_code in (404, 409)
    kept = await api.get(f"/v1/documents/{invoice['id']}/file", headers=h)
    assert kept.status_code == 200 and "Acme" in _pdf_text(kept.content)


async def test_a_deal_with_line_items_is_billed_its_value_with_tax(api):
    acct = await signup(api)
    h = acct.headers
    deal, _ = await _deal(api, acct, amount="1.00")
    await _ok(await api.post(f"/v1/deals/{deal['id']}/line-items", headers=h, json={
        "name": "Seat", "quantity": "3", "unit_price": {"amount": "33.33", "currency": "EUR"}, "discount_percent": "10",
        "tax_rate": "19"}), 201)
    after = await _ok(await api.get(f"/v1/deals/{deal['id']}", headers=h))
    # 3 × 33.33 × 0.9 = 89.991 → 89.99; × 1.19 = 107.0881 → 107.09
    assert after["value"]["amount"] == "89.99" and after["value_with_tax"]["amount"] == "107.09"
    invoice = await _ok(await api.post(f"/v1/deals/{deal['id']}/documents", headers=h,
                                       json={"template_id": (await _template(api, acct))["id"]}), 202)
    document = await _ok(await api.get(f"/v1/documents/{invoice['id']}", headers=h))
    assert document["total"] == {"amount": "107.09", "currency": "EUR"}
