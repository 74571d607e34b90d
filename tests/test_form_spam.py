"""No dropped form submission is invisible: honeypot, too fast and rate-limited posts are kept as `spam` with
their reason (bounded for floods), counted on the form and purged after CRM_FORM_SPAM_RETENTION_DAYS; invalid
values are kept and shown; an HTML post from a refused origin gets a page, not JSON."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text

from app.main import create_app
from tests.factories import signup


def _url(form: dict) -> str:
    return f"/v1/public/forms/{form['public_key']}/submissions"


async def _spam(client, acct, form) -> list[dict]:
    r = await client.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers, params={"status": "spam"})
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def test_rate_limited_posts_are_kept_but_bounded(settings, app_database, redis):
    strict = settings.model_copy(update={"form_rate_limit": 2, "form_rate_window_seconds": 7 * 86400})
    app = create_app(strict, db=app_database, redis=redis)
    address = (f"10.77.{uuid.uuid4().int % 250}.9", 1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=address),
                                 base_url="http://crm.test") as c:
        acct = await signup(c)
        form = (await c.post("/v1/forms", headers=acct.headers, json={"name": "Flood"})).json()
        codes = [(await c.post(_url(form), json={"email": f"f{i}@example.com"})).status_code for i in range(7)]
        assert codes == [202, 202, 429, 429, 429, 429, 429]
        spam = await _spam(c, acct, form)
        # the first two refused posts are kept (the limit's worth per window), the rest only refused
        assert sorted(s["fields"]["email"] for s in spam) == ["f2@example.com", "f3@example.com"]
        assert {s["spam_reason"] for s in spam} == {"rate_limited"}
        counted = (await c.get(f"/v1/forms/{form['id']}", headers=acct.headers)).json()
        assert counted["spam_count"] == 2
        leads = (await c.get("/v1/leads", headers=acct.headers)).json()["data"]
        assert sorted(lead["email"] for lead in leads) == ["f0@example.com", "f1@example.com"]
        await c.delete(f"/v1/forms/{form['id']}", headers=acct.headers)


async def test_an_invalid_value_is_kept_on_the_submission_and_the_leads_timeline(client):
    acct = await signup(client)
    form = (await client.post("/v1/forms", headers=acct.headers, json={"name": "Typos"})).json()
    r = await client.post(_url(form), json={"first_name": "Ivo", "email": "ivo@@example", "phone": "12"})
    assert r.status_code == 202, r.text
    (sub,) = (await client.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers)).json()["data"]
    assert sub["invalid_fields"] == {"email": {"value": "ivo@@example", "reason": "not a valid email"},
                                     "phone": {"value": "12", "reason": "not a valid phone number"}}
    assert sub["fields"]["email"] == "ivo@@example"
    timeline = (await client.get(f"/v1/leads/{sub['lead_id']}/timeline", headers=acct.headers)).json()["data"]
    bodies = " ".join(str(e) for e in timeline)
    assert "ivo@@example" in bodies and "not a valid email" in bodies


async def test_an_html_post_from_a_refused_origin_gets_a_page(client):
    acct = await signup(client)
    form = (await client.post("/v1/forms", headers=acct.headers,
                              json={"name": "Site", "allowed_origins": ["https://www.example.com"]})).json()
    page = await client.post(_url(form), data={"email": "x@example.com"},
                             headers={"Origin": "https://evil.example", "Accept": "text/html"})
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "allowed origins" in page.text
    as_json = await client.post(_url(form), json={"email": "x@example.com"}, headers={"Origin": "https://evil.example"})
    assert as_json.status_code == 403 and as_json.headers["content-type"] == "application/problem+json"


async def test_spam_is_purged_after_its_retention_and_nothing_else(committed_client, database, settings):
    from app.workers.maintenance import purge_old_spam_submissions

    c = committed_client
    acct = await signup(c)
    form = (await c.post("/v1/forms", headers=acct.headers, json={"name": "Old"})).json()
    old = (await c.post(_url(form), json={"email": "bot1@example.com", "_hp": "x"})).json()["id"]
    new = (await c.post(_url(form), json={"email": "bot2@example.com", "_hp": "x"})).json()["id"]
    kept = (await c.post(_url(form), json={"email": "person@example.com"})).json()["id"]
    async with database.sessions.begin() as s:
        await s.execute(text("UPDATE form_submissions SET received_at = now() - make_interval(days => :days + 1) "
                             "WHERE org_id = :org AND id IN (:old, :kept)"),
                        {"org": uuid.UUID(acct.org_id), "old": uuid.UUID(old), "kept": uuid.UUID(kept),
                         "days": settings.form_spam_retention_days})
    assert await purge_old_spam_submissions({"db": database, "settings": settings}) >= 1
    assert [s["id"] for s in await _spam(c, acct, form)] == [new]
    accepted = (await c.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers)).json()["data"]
    assert [s["id"] for s in accepted] == [kept]  # an accepted submission is never purged as spam
