"""Lead capture from websites: admin forms, the public endpoint, dedupe, routing, abuse protection, SLA."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from starlette.requests import Request

from app.api.ratelimit import client_ip
from app.domain.events.models import Event
from app.domain.forms import sla
from app.main import create_app
from tests.factories import signup


async def _form(client, acct, **body):
    r = await client.post("/v1/forms", headers=acct.headers, json={"name": "Demo request", **body})
    assert r.status_code == 201, r.text
    return r.json()


def _url(form):
    return f"/v1/public/forms/{form['public_key']}/submissions"


async def test_json_submission_creates_assigned_lead_with_call_task(client, session):
    acct = await signup(client)
    form = await _form(client, acct, sla_minutes=15)
    r = await client.post(_url(form) + "?utm_source=google", json={
        "first_name": "Ana", "last_name": "Silva", "email": "Ana@Example.com", "phone": "+351 912 345 678",
        "budget": "10k", "note": "Call me <script>alert(1)</script>", "utm_campaign": "spring", "gclid": "g-123",
        "page_url": "https://www.example.com/pricing?utm_medium=cpc"},
        headers={"User-Agent": "Mozilla/5.0 test", "Referer": "https://www.example.com/pricing"})
    assert r.status_code == 202 and r.json()["status"] == "accepted"
    leads = (await client.get("/v1/leads", headers=acct.headers)).json()["data"]
    assert len(leads) == 1
    lead = leads[0]
    assert (lead["email"], lead["phone"], lead["source"], lead["form_id"]) == \
        ("ana@example.com", "+351912345678", "web_form", form["id"])
    assert lead["owner_id"] == acct.user_id and lead["utm"] == {"source": "google", "campaign": "spring",
                                                                  "medium": "cpc"}
    acts = (await client.get("/v1/activities", headers=acct.headers, params={"lead_id": lead["id"]})).json()["data"]
    call = next(a for a in acts if a["type"] == "call")
    note = next(a for a in acts if a["type"] == "note")
    assert call["assignee_id"] == acct.user_id and call["priority"] == "high" and call["done_at"] is None
    due = datetime.fromisoformat(call["due_at"])
    assert timedelta(minutes=14) < due - datetime.now(UTC) <= timedelta(minutes=15, seconds=5)
    assert "budget: 10k" in note["body"] and "<script>" not in note["body"] and "alert(1)" in note["body"]
    subs = (await client.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers)).json()["data"]
    assert subs[0]["id"] == r.json()["id"] and subs[0]["matched"] == "none" and subs[0]["lead_id"] == lead["id"]
    assert (subs[0]["gclid"], subs[0]["user_agent"], subs[0]["referrer"]) == \
        ("g-123", "Mozilla/5.0 test", "https://www.example.com/pricing")
    assert "<script>" not in str(subs[0]["fields"])
    types = set(await session.scalars(select(Event.type).where(Event.org_id == uuid.UUID(acct.org_id))))
    assert {"form.submitted", "lead.created", "activity.created"} <= types
    timeline = (await client.get(f"/v1/leads/{lead['id']}/timeline", headers=acct.headers)).json()["data"]
    assert "form_submission" in {e["kind"] for e in timeline}


async def test_urlencoded_and_multipart_and_redirect(client):
    acct = await signup(client)
    form = await _form(client, acct, redirect_url="https://www.example.com/thanks")
    r = await client.post(_url(form), data={"email": "a@example.com", "first_name": "A"},
                          headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "https://www.example.com/thanks"
    r = await client.post(_url(form), files={"email": (None, "b@example.com"), "first_name": (None, "B")},
                          headers={"Accept": "application/json"})
    assert r.status_code == 202
    plain = await _form(client, acct, name="No redirect")
    r = await client.post(_url(plain), data={"email": "c@example.com"}, headers={"Accept": "text/html"})
    assert r.status_code == 200 and "Thank you" in r.text
    emails = {lead["email"] for lead in (await client.get("/v1/leads", headers=acct.headers)).json()["data"]}
    assert emails == {"a@example.com", "b@example.com", "c@example.com"}


async def test_honeypot_fakes_success_creates_nothing_and_is_kept_as_spam(client, session):
    acct = await signup(client)
    form = await _form(client, acct)
    r = await client.post(_url(form), json={"email": "bot@example.com", "_hp": "gotcha"})
    assert r.status_code == 202 and r.json()["status"] == "accepted"
    assert (await client.get("/v1/leads", headers=acct.headers)).json()["data"] == []
    assert (await client.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers)).json()["data"] == []
    spam = (await client.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers,
                             params={"status": "spam"})).json()["data"]
    assert [(s["id"], s["status"], s["spam_reason"], s["fields"]["email"]) for s in spam] == [
        (r.json()["id"], "spam", "honeypot", "bot@example.com")]


async def test_min_fill_time(client):
    acct = await signup(client)
    form = await _form(client, acct, min_fill_seconds=3)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert (await client.post(_url(form), json={"email": "fast@example.com", "_ts": str(now_ms)})).status_code == 202
    assert (await client.post(_url(form), json={"email": "slow@example.com", "_ts": str(now_ms - 5000)})).status_code == 202
    emails = {lead["email"] for lead in (await client.get("/v1/leads", headers=acct.headers)).json()["data"]}
    assert emails == {"slow@example.com"}
    missing = await client.post(_url(form), json={"email": "no-ts@example.com"})
    assert missing.status_code == 202
    spam = (await client.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers,
                             params={"status": "spam"})).json()["data"]
    assert sorted((s["fields"]["email"], s["spam_reason"]) for s in spam) == [
        ("fast@example.com", "too_fast"), ("no-ts@example.com", "too_fast")]
    assert missing.json()["id"] in {s["id"] for s in spam}  # the answer's id is the kept submission's
    counted = (await client.get(f"/v1/forms/{form['id']}", headers=acct.headers)).json()
    assert counted["spam_count"] == 2 and counted["last_spam_at"] is not None


async def test_unknown_disabled_and_rotated_keys_are_404(client):
    acct = await signup(client)
    form = await _form(client, acct)
    assert (await client.post("/v1/public/forms/pk_doesnotexist1/submissions", json={"email": "x@y.io"})).status_code == 404
    rotated = (await client.post(f"/v1/forms/{form['id']}/rotate-key", headers=acct.headers)).json()
    assert rotated["public_key"] != form["public_key"]
    assert (await client.post(_url(form), json={"email": "x@y.io"})).status_code == 404
    assert (await client.post(_url(rotated), json={"email": "x@y.io"})).status_code == 202
    await client.patch(f"/v1/forms/{form['id']}", headers=acct.headers, json={"enabled": False})
    r = await client.post(_url(rotated), json={"email": "x@y.io"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_bad_input_is_a_clear_error(client):
    acct = await signup(client)
    form = await _form(client, acct)
    url = _url(form)
    assert (await client.post(url, content=b"{nope", headers={"Content-Type": "application/json"})).status_code == 400
    assert (await client.post(url, json=[1, 2])).status_code == 422
    assert (await client.post(url, json={"email": "x" * 6000})).status_code == 422
    assert (await client.post(url, json={f"f{i}": "v" for i in range(60)})).status_code == 422
    assert (await client.post(url, json={"nested": {"a": 1}})).status_code == 422
    assert (await client.post(url, json={})).status_code == 422
    assert (await client.post(url, content=b"x", headers={"Content-Type": "text/plain"})).status_code == 415
    big = await client.post(url, content=b"{" + b" " * 70_000 + b"}", headers={"Content-Type": "application/json"})
    assert big.status_code == 413


async def test_dedupe_into_existing_contact_and_open_lead(client):
    acct = await signup(client)
    rep = await acct.invite("member")
    contact = (await client.post("/v1/contacts", headers=rep.headers,
                                 json={"first_name": "Known", "email": "known@example.com"})).json()
    form = await _form(client, acct)
    r = await client.post(_url(form), json={"email": "KNOWN@example.com", "note": "again"})
    assert r.status_code == 202
    assert (await client.get("/v1/leads", headers=acct.headers)).json()["data"] == []  # no duplicate
    acts = (await client.get("/v1/activities", headers=acct.headers,
                             params={"contact_id": contact["id"], "type": "call"})).json()["data"]
    assert len(acts) == 1 and acts[0]["assignee_id"] == rep.user_id  # the contact's owner calls back
    tl = (await client.get(f"/v1/contacts/{contact['id']}/timeline", headers=acct.headers)).json()["data"]
    assert "form_submission" in {e["kind"] for e in tl}
    # an open lead absorbs a second submission by phone
    await client.post(_url(form), json={"first_name": "Jo", "phone": "+14155550123"})
    await client.post(_url(form), json={"last_name": "Park", "phone": "+1 (415) 555-0123", "company_name": "Park"})
    leads = (await client.get("/v1/leads", headers=acct.headers)).json()["data"]
    assert len(leads) == 1 and (leads[0]["first_name"], leads[0]["last_name"]) == ("Jo", "Park")
    subs = (await client.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers)).json()["data"]
    assert [s["matched"] for s in subs] == ["lead", "none", "contact"]


async def test_creates_deal(client):
    acct = await signup(client)
    pipeline = (await client.get("/v1/pipelines", headers=acct.headers)).json()["data"][0]
    assert (await client.post("/v1/forms", headers=acct.headers, json={"name": "x", "creates": "deal"})).status_code == 422
    form = await _form(client, acct, creates="deal", pipeline_id=pipeline["id"])
    await client.post(_url(form), json={"email": "deal@example.com", "first_name": "Dee"})
    deals = (await client.get("/v1/deals", headers=acct.headers)).json()["data"]
    assert len(deals) == 1 and deals[0]["stage_id"] == pipeline["stages"][0]["id"]
    contact = (await client.get(f"/v1/contacts/{deals[0]['contact_id']}", headers=acct.headers)).json()
    assert contact["email"] == "deal@example.com" and contact["source"] == "web_form"


async def test_round_robin_skips_unavailable_reps(client):
    acct = await signup(client)
    a, b, c = await acct.invite("member"), await acct.invite("member"), await acct.invite("member")
    form = await _form(client, acct, assignees=[a.user_id, b.user_id, c.user_id])
    await client.patch(f"/v1/users/{b.user_id}", headers=b.headers, json={"out_of_office": True})
    await client.delete(f"/v1/users/{c.user_id}", headers=acct.headers)
    for i in range(4):
        assert (await client.post(_url(form), json={"email": f"rr{i}@example.com"})).status_code == 202
    owners = {lead["owner_id"] for lead in (await client.get("/v1/leads", headers=acct.headers)).json()["data"]}
    assert owners == {a.user_id}


@pytest.mark.parametrize("with_redis", [True, False], ids=["turns in redis", "turns under the form's row lock"])
async def test_concurrent_submissions_are_shared_out_in_turn(settings, database, redis, with_redis):
    """Simultaneous submissions to one form: every one is stored and the reps get equal shares, whether the
    turns come from Redis (no lock held) or, with Redis unreachable, from the form's own counter."""
    app = create_app(settings, db=database, redis=redis if with_redis else None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
        acct = await signup(c)
        a, b = await acct.invite("member"), await acct.invite("member")
        form = await _form(c, acct, assignees=[a.user_id, b.user_id])
        tag = uuid.uuid4().hex[:8]
        answers = await asyncio.gather(*(c.post(_url(form), json={"email": f"cc{i}-{tag}@example.com"})
                                         for i in range(8)))
        assert [r.status_code for r in answers] == [202] * 8
        leads = (await c.get("/v1/leads", headers=acct.headers, params={"limit": 50})).json()["data"]
    owners = [lead["owner_id"] for lead in leads]
    assert len(owners) == 8 and owners.count(a.user_id) == owners.count(b.user_id) == 4


async def test_idempotency_key_replays(client):
    acct = await signup(client)
    form = await _form(client, acct)
    first = await client.post(_url(form), json={"email": "i@example.com"}, headers={"Idempotency-Key": "k1"})
    again = await client.post(_url(form), json={"email": "i@example.com"}, headers={"Idempotency-Key": "k1"})
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    assert len((await client.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers)).json()["data"]) == 1


async def test_cors_is_limited_to_allowed_origins(client):
    acct = await signup(client)
    form = await _form(client, acct, allowed_origins=["https://www.example.com"])
    ok = await client.options(_url(form), headers={"Origin": "https://www.example.com",
                                                   "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == "https://www.example.com"
    assert "access-control-allow-credentials" not in ok.headers
    bad = await client.options(_url(form), headers={"Origin": "https://evil.example",
                                                    "Access-Control-Request-Method": "POST"})
    assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers
    r = await client.post(_url(form), json={"email": "o@example.com"}, headers={"Origin": "https://www.example.com"})
    assert r.status_code == 202 and r.headers["access-control-allow-origin"] == "https://www.example.com"
    r = await client.post(_url(form), json={"email": "o@example.com"}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


async def test_rate_limit_per_form_and_ip(settings, database, redis):
    # a window of a week: five posts cannot straddle two windows, however slow the machine
    strict = settings.model_copy(update={"form_rate_limit": 3, "form_rate_window_seconds": 7 * 86400})
    app = create_app(strict, db=database, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(f"10.9.{uuid.uuid4().int % 250}.7", 1)),
                                 base_url="http://crm.test") as c:
        acct = await signup(c)
        form = await _form(c, acct)
        codes = [(await c.post(_url(form), json={"email": f"r{i}@example.com"})).status_code for i in range(5)]
        assert codes == [202, 202, 202, 429, 429]
        last = await c.post(_url(form), json={"email": "r@example.com"})
        assert last.headers["content-type"] == "application/problem+json"
        assert 0 < int(last.headers["retry-after"]) <= 7 * 86400 and last.headers["ratelimit-remaining"] == "0"


async def test_embed_snippets(client):
    acct = await signup(client)
    form = await _form(client, acct)
    r = await client.get(f"/v1/forms/{form['id']}/embed", headers=acct.headers)
    assert r.status_code == 200
    body = r.json()
    assert f"/v1/public/forms/{form['public_key']}/submissions" in body["html"]
    assert 'name="_hp"' in body["html"] and "fetch(" in body["javascript"]


async def test_admin_only_and_cross_org(client):
    acct, other = await signup(client), await signup(client)
    form = await _form(client, acct)
    member = await acct.invite("member")
    assert (await client.get("/v1/forms", headers=member.headers)).status_code == 403
    assert (await client.post("/v1/forms", headers=member.headers, json={"name": "x"})).status_code == 403
    assert (await client.get(f"/v1/forms/{form['id']}", headers=other.headers)).status_code == 404
    assert (await client.get(f"/v1/forms/{form['id']}/submissions", headers=other.headers)).status_code == 404
    r = await client.post("/v1/forms", headers=acct.headers, json={"name": "x", "assignees": [other.user_id]})
    assert r.status_code == 422
    r = await client.post("/v1/forms", headers=acct.headers, json={"name": "x", "allowed_origins": ["nope"]})
    assert r.status_code == 422


async def test_sla_breach_escalates_once_and_not_when_called_in_time(client, session):
    acct = await signup(client)
    manager = await acct.invite("manager")
    rep = await acct.invite("member", manager_id=manager.user_id)
    form = await _form(client, acct, assignees=[rep.user_id], sla_minutes=15)
    await client.post(_url(form), json={"email": "late@example.com", "first_name": "Late"})
    await client.post(_url(form), json={"email": "ontime@example.com", "first_name": "Quick"})
    calls = (await client.get("/v1/activities", headers=acct.headers, params={"type": "call"})).json()["data"]
    quick = next(c for c in calls if "Quick" in c["subject"])
    assert (await client.post(f"/v1/activities/{quick['id']}/complete", headers=rep.headers)).status_code == 200
    now = datetime.now(UTC)

    async def breaches():  # the sweep is global; look at this organisation only
        return (await session.scalars(select(Event).where(Event.org_id == uuid.UUID(acct.org_id),
                                                          Event.type == "lead.sla_breached"))).all()

    await sla.fire(session, now + timedelta(minutes=14))
    assert await breaches() == []  # not yet due
    await sla.fire(session, now + timedelta(minutes=16))
    assert len(await breaches()) == 1  # only the late one
    await sla.fire(session, now + timedelta(minutes=30))
    found = await breaches()
    assert len(found) == 1 and found[0].data["notify"] == [manager.user_id]  # once
    assert found[0].data["object"]["email"] == "late@example.com"
    escalations = (await client.get("/v1/activities", headers=acct.headers,
                                    params={"assignee_id": manager.user_id})).json()["data"]
    assert len(escalations) == 1 and escalations[0]["subject"].startswith("Escalation")
    leads = {lead["email"]: lead for lead in (await client.get("/v1/leads", headers=acct.headers)).json()["data"]}
    assert leads["ontime@example.com"]["first_response_at"] is not None
    assert leads["late@example.com"]["first_response_at"] is None


async def test_concurrent_submissions_are_spread_fairly(settings, database, redis):
    roomy = settings.model_copy(update={"form_rate_limit": 1000})
    app = create_app(roomy, db=database, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
        await _spread_fairly(c)


async def _spread_fairly(c):
    acct = await signup(c)
    reps = [await acct.invite("member") for _ in range(3)]
    form = await _form(c, acct, assignees=[r.user_id for r in reps])
    results = await asyncio.gather(*[c.post(_url(form), json={"email": f"p{i}-{uuid.uuid4().hex[:6]}@example.com"})
                                     for i in range(50)])
    assert [r.status_code for r in results] == [202] * 50
    owners = [lead["owner_id"] for lead in (await c.get("/v1/leads", headers=acct.headers,
                                                        params={"limit": 200})).json()["data"]]
    counts = sorted(owners.count(r.user_id) for r in reps)
    assert len(owners) == 50 and counts == [16, 17, 17]


def test_x_forwarded_for_only_behind_trusted_proxies():

    def req(peer, xff):
        return Request({"type": "http", "headers": [(b"x-forwarded-for", xff.encode())], "client": (peer, 1)})

    assert client_ip(req("203.0.113.9", "1.2.3.4"), []) == "203.0.113.9"
    assert client_ip(req("10.0.0.2", "1.2.3.4, 10.0.0.1"), ["10.0.0.0/8"]) == "1.2.3.4"
    assert client_ip(req("203.0.113.9", "1.2.3.4"), ["10.0.0.0/8"]) == "203.0.113.9"


async def test_sla_escalation_to_a_deactivated_manager_reaches_the_admins(client, session):
    acct = await signup(client)
    admin = await acct.invite("admin")
    manager = await acct.invite("manager")
    rep = await acct.invite("member", manager_id=manager.user_id)
    form = await _form(client, acct, assignees=[rep.user_id], sla_minutes=15)
    assert (await client.post(_url(form), json={"email": "late@example.com"})).status_code == 202
    r = await client.post(f"/v1/users/{manager.user_id}/deactivate", headers=acct.headers, json={})
    assert r.status_code == 200 and r.json()["active"] is False

    assert await sla.fire(session, datetime.now(UTC) + timedelta(minutes=16)) >= 1
    [breach] = (await session.scalars(select(Event).where(Event.org_id == uuid.UUID(acct.org_id),
                                                          Event.type == "lead.sla_breached"))).all()
    assert sorted(breach.data["notify"]) == sorted([acct.user_id, admin.user_id])  # the active owner and admin
    tasks = (await client.get("/v1/activities", headers=acct.headers, params={"type": "task"})).json()["data"]
    escalation = [t for t in tasks if t["subject"].startswith("Escalation")]
    assert len(escalation) == 1 and escalation[0]["assignee_id"] in (acct.user_id, admin.user_id)
