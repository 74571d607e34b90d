"""Templates: sandboxed Jinja2 over the documented objects, checked on write (422 naming field and line),
previewed for a contact and a deal."""

from __future__ import annotations

from tests.factories import signup


async def _template(client, acct, **body):
    return await client.post("/v1/templates", headers=acct.headers, json={"name": "T", **body})


async def test_preview_fills_the_documented_placeholders_and_escapes_html(client):
    acct = await signup(client)
    company = (await client.post("/v1/companies", headers=acct.headers, json={"name": "Acme <GmbH>"})).json()
    ana = (await client.post("/v1/contacts", headers=acct.headers, json={
        "first_name": "Ana", "email": "ana@client.org", "company_id": company["id"]})).json()
    deal = (await client.post("/v1/deals", headers=acct.headers, json={
        "title": "50 seats", "contact_id": ana["id"], "value": {"amount": "1200.00"}})).json()
    made = await _template(client, acct, subject="Hello {{ contact.first_name }}, {{ deal.title }}",
                           body_html="<p>{{ company.name }} / {{ org.name }} / {{ user.name }}</p>"
                                     "<a href='{{ unsubscribe_url }}'>x</a>",
                           body_text="{{ contact.first_name | upper }}: {{ deal.value.amount }} {{ contact.nope }}.")
    assert made.status_code == 201, made.text
    r = await client.post(f"/v1/templates/{made.json()['id']}/preview", headers=acct.headers,
                          json={"contact_id": ana["id"], "deal_id": deal["id"]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["subject"] == "Hello Ana, 50 seats"
    assert "Acme &lt;GmbH&gt; / Acme / Olga Owner" in out["html"] and "/v1/public/unsubscribe/" in out["html"]
    assert out["text"] == "ANA: 1200.00 ."  # an unknown field renders empty
    other = await signup(client, "Other")
    assert (await client.post(f"/v1/templates/{made.json()['id']}/preview", headers=other.headers,
                              json={"contact_id": ana["id"]})).status_code == 404
    mine = (await client.post("/v1/contacts", headers=other.headers, json={"first_name": "O"})).json()
    assert (await client.post(f"/v1/templates/{made.json()['id']}/preview", headers=acct.headers,
                              json={"contact_id": mine["id"]})).status_code == 422  # another org's contact


async def test_an_invalid_template_is_422_naming_the_field_and_the_line(client):
    acct = await signup(client)
    r = await _template(client, acct, subject="ok", body_html="<p>line one</p>\n<p>{{ contact.first_name </p>")
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["loc"] == ["body", "body_html"] and "line 2" in error["msg"]
    made = (await _template(client, acct, body_text="fine")).json()
    r = await client.patch(f"/v1/templates/{made['id']}", headers=acct.headers, json={"subject": "{% if %}"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "subject"]


async def test_the_sandbox_reaches_the_documented_fields_only(client):
    acct = await signup(client)
    ana = (await client.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})).json()
    for probe in ("{{ contact.__class__ }}", "{{ contact.items() }}", "{{ ''.__class__.__mro__ }}",
                  "{{ contact.keys }}", "{{ cycler.__init__.__globals__ }}"):
        made = await _template(client, acct, body_text=probe)
        if made.status_code == 422:
            continue
        r = await client.post(f"/v1/templates/{made.json()['id']}/preview", headers=acct.headers,
                              json={"contact_id": ana["id"]})
        assert r.status_code == 422 or r.json()["text"] in ("", "None"), (probe, r.text)
        assert "class" not in r.text and "dict" not in r.text and "function" not in r.text


async def test_members_read_templates_and_only_managers_and_admins_write_them(client):
    acct = await signup(client)
    member, manager = await acct.invite("member"), await acct.invite("manager")
    assert (await _template(client, member, body_text="x")).status_code == 403
    made = await _template(client, manager, body_text="x")
    assert made.status_code == 201
    assert (await client.get(f"/v1/templates/{made.json()['id']}", headers=member.headers)).status_code == 200


async def test_narrow_keys_cannot_read_records_through_mail_and_campaign_routes(client):
    """A credential never reads a kind it holds no read scope for, whichever area's route it goes through."""
    acct = await signup(client)
    ana = (await client.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana", "email": "a@x.org"})).json()
    template = (await _template(client, acct, body_text="{{ contact.email }}")).json()
    segment = (await client.post("/v1/segments", headers=acct.headers, json={"name": "All"})).json()
    box = (await client.post("/v1/mailboxes", headers=acct.headers, json={
        "email": "s@acme.example.com", "imap": {"host": "127.0.0.1", "port": 9, "username": "u", "password": "p"},
        "smtp": {"host": "127.0.0.1", "port": 9}})).json()
    campaigns = await acct.api_key(["campaigns:write"])
    r = await client.post(f"/v1/templates/{template['id']}/preview", headers=campaigns, json={"contact_id": ana["id"]})
    assert r.status_code == 403 and "contacts:read" in r.json()["detail"]
    assert (await client.get(f"/v1/segments/{segment['id']}/count", headers=campaigns)).status_code == 403
    campaign = (await client.post("/v1/campaigns", headers=campaigns, json={
        "name": "C", "template_id": template["id"], "segment_id": segment["id"], "mailbox_id": box["id"]}))
    assert campaign.status_code == 201, campaign.text
    assert (await client.post(f"/v1/campaigns/{campaign.json()['id']}/send", headers=campaigns)).status_code == 403
    mail = await acct.api_key(["mail:write"])
    r = await client.post("/v1/emails", headers=mail, json={"mailbox_id": box["id"], "to": ["a@x.org"], "text": "x",
                                                          "contact_id": ana["id"]})
    assert r.status_code == 403 and "contacts:read" in r.json()["detail"]
    wide = await acct.api_key(["campaigns:write", "contacts:read", "companies:read"])
    r = await client.post(f"/v1/templates/{template['id']}/preview", headers=wide, json={"contact_id": ana["id"]})
    assert r.status_code == 200 and r.json()["text"] == "a@x.org"
    assert (await client.get(f"/v1/segments/{segment['id']}/count", headers=wide)).json() == {"count": 1}
