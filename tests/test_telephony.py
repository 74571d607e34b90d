"""Telephony: the provider's settings (admins, secrets sealed and masked), calls matched by their E.164 number
(local formats read in the org's region) onto contacts and leads with their activities and call-back tasks, new
leads for unknown callers round-robin, the one-statement screen pop, click-to-call through a real worker to a
real HTTP receiver, and the provider's signed call events (refused unsigned, stored once)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid

import pytest
from sqlalchemy import select

from app.domain.events.models import Event
from app.domain.telephony.models import CallOrigination, TelephonySettings
from app.domain.webhooks import signing
from tests.factories import signup
from tests.servers import Receiver
from tests.test_round_trips import count_statements
from tests.workers import eventually, running_worker

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STARTED = "2026-12-04T10:15:00+01:00"


async def _ok(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json()


async def _configure(client, acct, **extra) -> dict:
    return await _ok(await client.put("/v1/settings/telephony", headers=acct.headers, json={
        "originate_url": "https://pbx.example.com/originate", "auth_header": "Bearer pbx_live_42",
        "webhook_secret": SECRET, **extra}))


def _call(**extra) -> dict:
    return {"direction": "inbound", "from": "+4915112345678", "to": "+4930901820", "started_at": STARTED,
            "duration_seconds": 65, "status": "answered", **extra}


async def _activity(client, acct, activity_id: str) -> dict:
    return await _ok(await client.get(f"/v1/activities/{activity_id}", headers=acct.headers))


async def test_the_settings_are_admin_only_sealed_and_shown_masked(client):
    acct = await signup(client)
    h = acct.headers
    missing = await client.get("/v1/settings/telephony", headers=h)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    rep = await acct.invite("member")
    saved = await _configure(client, acct, assignees=[rep.user_id])
    assert saved["auth_header"] == saved["webhook_secret"] == "********"
    assert saved["assignees"] == [rep.user_id] and saved["originate_url"] == "https://pbx.example.com/originate"
    assert saved["webhook_path"] == f"/v1/public/telephony/{acct.org_id}/calls"
    got = await client.get("/v1/settings/telephony", headers=h)
    assert got.json() == saved and "pbx_live_42" not in got.text and SECRET not in got.text
    # the mask keeps a stored secret; a stale If-Match is refused; null clears
    kept = await _ok(await client.put("/v1/settings/telephony", headers={**h, "If-Match": got.headers["ETag"]},
                                      json={"auth_header": "********", "webhook_secret": "********"}))
    assert kept["auth_header"] == kept["webhook_secret"] == "********" and kept["originate_url"] is None
    stale = await client.put("/v1/settings/telephony", headers={**h, "If-Match": got.headers["ETag"]}, json={})
    assert stale.status_code == 412
    cleared = await _ok(await client.put("/v1/settings/telephony", headers=h, json={}))
    assert cleared["auth_header"] is None and cleared["webhook_secret"] is None
    r = await client.put("/v1/settings/telephony", headers=h, json={"webhook_secret": "********"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "webhook_secret"]
    other = await signup(client, "Other")
    for body, loc in (({"originate_url": "ftp://pbx.example.com"}, "originate_url"),
                      ({"originate_url": "https://user:pw@pbx.example.com"}, "originate_url"),
                      ({"webhook_secret": "not base64!"}, "webhook_secret"),
                      ({"webhook_secret": "whsec_c2hvcnQ="}, "webhook_secret"),
                      ({"auth_header": "Bearer x\r\nX-Injected: 1"}, "auth_header"),
                      ({"assignees": [other.user_id]}, "assignees"),
                      ({"assignees": ["nope"]}, "assignees"),
                      ({"surprise": 1}, "surprise")):
        r = await client.put("/v1/settings/telephony", headers=h, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["loc"][:2] == ["body", loc], (body, r.json())
    assert (await client.get("/v1/settings/telephony", headers=rep.headers)).status_code == 403
    assert (await client.put("/v1/settings/telephony", headers=rep.headers, json={})).status_code == 403
    assert (await client.get("/v1/settings/telephony")).status_code == 401


async def _call_events(session, acct) -> list:
    return list(await session.scalars(select(Event).where(
        Event.org_id == uuid.UUID(acct.org_id), Event.object_type == "call").order_by(Event.id)))


async def test_a_call_is_matched_by_its_number_in_the_orgs_region_and_logged_on_the_timeline(client, session):
    acct = await signup(client)
    h = acct.headers
    await client.patch("/v1/org", headers=h, json={"default_phone_region": "DE"})
    rep = await acct.invite("member")
    contact = await _ok(await client.post("/v1/contacts", headers=h, json={
        "first_name": "Ana", "phone": "+49 30 1234567", "owner_id": rep.user_id}), 201)
    lead = await _ok(await client.post("/v1/leads", headers=h, json={
        "first_name": "Leo", "phone": "0151 7654321", "owner_id": rep.user_id}), 201)
    # inbound, the caller's number in a local format
    call = await _ok(await client.post("/v1/calls", headers=h, json=_call(
        **{"from": "030 1234567", "to": "200", "user_id": rep.user_id,
           "recording_url": "https://pbx.example.com/r/1.mp3"})), 201)
    assert call["contact_id"] == contact["id"] and call["lead_id"] is None and call["task_id"] is None
    assert call["from"] == "+49301234567" and call["to"] == "200"  # an extension stays as given
    assert call["status"] == "answered" and call["duration_seconds"] == 65 and call["user_id"] == rep.user_id
    activity = await _activity(client, acct, call["activity_id"])
    assert activity["type"] == "call" and activity["done_at"] and activity["contact_id"] == contact["id"]
    assert activity["owner_id"] == activity["assignee_id"] == rep.user_id
    assert "+49301234567" in activity["subject"] and "1:05" in activity["subject"]
    assert "https://pbx.example.com/r/1.mp3" in activity["body"]
    timeline = (await client.get(f"/v1/contacts/{contact['id']}/timeline", headers=h)).json()["data"]
    assert call["activity_id"] in [e["object_id"] for e in timeline]
    # outbound: the customer's number is `to`; an open lead matches when no contact does
    out = await _ok(await client.post("/v1/calls", headers=h, json=_call(
        direction="outbound", **{"from": "+4930901820", "to": "+49 151 7654321"})), 201)
    assert out["lead_id"] == lead["id"] and out["contact_id"] is None
    assert (await _activity(client, acct, out["activity_id"]))["lead_id"] == lead["id"]
    # the answered outbound call is the lead's first response
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=h)).json()["first_response_at"]
    got = await _ok(await client.get(f"/v1/calls/{call['id']}", headers=h))
    assert got == call
    listed = (await client.get("/v1/calls", headers=h, params={"contact_id": contact["id"]})).json()["data"]
    assert [c["id"] for c in listed] == [call["id"]]
    assert [c["id"] for c in (await client.get("/v1/calls", headers=h, params={"user_id": rep.user_id})).json()[
        "data"]] == [call["id"]]
    mine = (await client.get("/v1/calls", headers=rep.headers, params={"user_id": "me"})).json()["data"]
    assert [c["id"] for c in mine] == [call["id"]]
    assert (await client.get("/v1/calls", headers=h, params={"status": "missed"})).json()["data"] == []
    written = await _call_events(session, acct)
    assert [(e.type, e.object_id, e.data["object"]["activity_id"]) for e in written] == [
        ("call.created", uuid.UUID(call["id"]), call["activity_id"]),
        ("call.created", uuid.UUID(out["id"]), out["activity_id"])]


async def test_local_formats_are_read_in_each_orgs_own_region(client):
    london, berlin = await signup(client, "London"), await signup(client, "Berlin")
    await client.patch("/v1/org", headers=london.headers, json={"default_phone_region": "GB"})
    await client.patch("/v1/org", headers=berlin.headers, json={"default_phone_region": "DE"})
    uk = await _ok(await client.post("/v1/contacts", headers=london.headers, json={
        "first_name": "Uma", "phone": "+44 20 7946 0018"}), 201)
    de = await _ok(await client.post("/v1/contacts", headers=berlin.headers, json={
        "first_name": "Dirk", "phone": "+49 20 79460018"}), 201)
    r1 = await _ok(await client.post("/v1/calls", headers=london.headers, json=_call(**{"from": "020 7946 0018"})), 201)
    r2 = await _ok(await client.post("/v1/calls", headers=berlin.headers, json=_call(**{"from": "020 79460018"})), 201)
    assert r1["contact_id"] == uk["id"] and r1["from"] == "+442079460018"
    assert r2["contact_id"] == de["id"] and r2["from"] == "+492079460018"
    card = await _ok(await client.get("/v1/calls/lookup", headers=london.headers, params={"phone": "020 7946 0018"}))
    assert card["contact"]["id"] == uk["id"]
    card = await _ok(await client.get("/v1/calls/lookup", headers=berlin.headers, params={"phone": "020 79460018"}))
    assert card["contact"]["id"] == de["id"]
    # the region changes: the next lookup reads the number in the new one
    await client.patch("/v1/org", headers=berlin.headers, json={"default_phone_region": "GB"})
    card = await _ok(await client.get("/v1/calls/lookup", headers=berlin.headers, params={"phone": "020 79460018"}))
    assert card["contact"] is None


async def test_an_unknown_caller_becomes_a_lead_round_robin_with_a_call_back_task(client):
    acct = await signup(client)
    h = acct.headers
    reps = [await acct.invite("member") for _ in range(3)]
    away = reps[2]
    await client.patch(f"/v1/users/{away.user_id}", headers=h, json={"out_of_office": True})
    await _configure(client, acct, assignees=[r.user_id for r in reps])
    owners, leads = [], []
    for i in range(4):
        call = await _ok(await client.post("/v1/calls", headers=h, json=_call(**{"from": f"+49151000000{i}"})), 201)
        lead = await _ok(await client.get(f"/v1/leads/{call['lead_id']}", headers=h))
        assert lead["source"] == "phone" and lead["phone"] == f"+49151000000{i}" and lead["status"] == "new"
        task = await _activity(client, acct, call["task_id"])
        assert task["type"] == "task" and task["done_at"] is None and task["due_at"]
        assert task["lead_id"] == lead["id"] and task["assignee_id"] == lead["owner_id"]
        logged = await _activity(client, acct, call["activity_id"])
        assert logged["type"] == "call" and logged["done_at"] and logged["lead_id"] == lead["id"]
        owners.append(lead["owner_id"])
        leads.append(lead["id"])
    assert owners == [reps[0].user_id, reps[1].user_id, reps[0].user_id, reps[1].user_id]  # the away one skipped
    # the same number again: the lead it made, no second lead and no new call-back task
    again = await _ok(await client.post("/v1/calls", headers=h, json=_call(**{"from": "+491510000000"})), 201)
    assert again["lead_id"] == leads[0] and again["task_id"] is None
    phone_leads = (await client.get("/v1/leads", headers=h, params={"source": "phone"})).json()["data"]
    assert len(phone_leads) == 4
    # an unknown number called out to makes no lead
    out = await _ok(await client.post("/v1/calls", headers=h, json=_call(
        direction="outbound", **{"from": "+4930901820", "to": "+4915199999999"})), 201)
    assert out["lead_id"] is None and out["contact_id"] is None and out["task_id"] is None


async def test_without_assignees_the_caller_goes_to_the_user_who_took_it_else_an_admin(client):
    acct = await signup(client)
    rep = await acct.invite("member")
    taken = await _ok(await client.post("/v1/calls", headers=acct.headers, json=_call(user_id=rep.user_id)), 201)
    assert (await client.get(f"/v1/leads/{taken['lead_id']}", headers=acct.headers)).json()["owner_id"] == rep.user_id
    key = await acct.api_key(["calls:write"])
    nobody = await _ok(await client.post("/v1/calls", headers=key, json=_call(**{"from": "+4915100000077"})), 201)
    assert (await client.get(f"/v1/leads/{nobody['lead_id']}", headers=acct.headers)).json()["owner_id"] == \
        acct.user_id


async def test_a_missed_call_opens_a_call_back_task_for_the_owner_and_is_no_response(client):
    acct = await signup(client)
    h = acct.headers
    rep = await acct.invite("member")
    contact = await _ok(await client.post("/v1/contacts", headers=h, json={
        "first_name": "Ana", "phone": "+4915112345678", "owner_id": rep.user_id}), 201)
    missed = await _ok(await client.post("/v1/calls", headers=h, json=_call(status="missed", duration_seconds=0)),
                       201)
    assert missed["contact_id"] == contact["id"] and missed["task_id"]
    task = await _activity(client, acct, missed["task_id"])
    assert task["type"] == "task" and task["assignee_id"] == task["owner_id"] == rep.user_id
    assert task["contact_id"] == contact["id"] and task["done_at"] is None and "+4915112345678" in task["subject"]
    logged = await _activity(client, acct, missed["activity_id"])
    assert logged["type"] == "call" and logged["done_at"] and "missed" in logged["subject"]
    assert logged["id"] != task["id"]
    # an unknown caller who hung up: a new lead with one call-back task, and no response time yet
    stranger = await _ok(await client.post("/v1/calls", headers=h, json=_call(
        status="missed", duration_seconds=0, **{"from": "+4915100000123"})), 201)
    lead = await _ok(await client.get(f"/v1/leads/{stranger['lead_id']}", headers=h))
    assert lead["first_response_at"] is None
    tasks = (await client.get("/v1/activities", headers=h, params={
        "lead_id": lead["id"], "type": "task"})).json()["data"]
    assert [t["id"] for t in tasks] == [stranger["task_id"]]
    # an answered call from them counts as the response
    await _ok(await client.post("/v1/calls", headers=h, json=_call(**{"from": "+4915100000123"})), 201)
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=h)).json()["first_response_at"]


async def test_lookup_answers_the_callers_card_with_nulls_when_unknown(client, database):
    acct = await signup(client)
    h = acct.headers
    await client.patch("/v1/org", headers=h, json={"default_phone_region": "DE"})
    company = await _ok(await client.post("/v1/companies", headers=h, json={"name": "Acme GmbH"}), 201)
    contact = await _ok(await client.post("/v1/contacts", headers=h, json={
        "first_name": "Ana", "phone": "+49 30 1234567", "company_id": company["id"]}), 201)
    lead = await _ok(await client.post("/v1/leads", headers=h, json={"first_name": "Ana", "phone": "+49301234567"}),
                     201)
    older = await _ok(await client.post("/v1/deals", headers=h, json={"title": "Old", "contact_id": contact["id"]}),
                      201)
    newer = await _ok(await client.post("/v1/deals", headers=h, json={"title": "Co", "company_id": company["id"]}),
                      201)
    pipeline = (await client.get(f"/v1/pipelines/{older['pipeline_id']}", headers=h)).json()
    won = next(s for s in pipeline["stages"] if s["kind"] == "won")
    closed = await _ok(await client.post("/v1/deals", headers=h, json={"title": "Won", "contact_id": contact["id"]}),
                       201)
    await _ok(await client.patch(f"/v1/deals/{closed['id']}", headers=h, json={"stage_id": won["id"]}))
    await _ok(await client.post("/v1/deals", headers=h, json={"title": "Other"}), 201)
    card = await _ok(await client.get("/v1/calls/lookup", headers=h, params={"phone": "030 1234567"}))
    assert card["contact"] == (await client.get(f"/v1/contacts/{contact['id']}", headers=h)).json()
    assert card["company"] == (await client.get(f"/v1/companies/{company['id']}", headers=h)).json()
    assert card["lead"] == (await client.get(f"/v1/leads/{lead['id']}", headers=h)).json()
    assert [d["id"] for d in card["open_deals"]] == [newer["id"], older["id"]]
    assert card["open_deals"][0] == (await client.get(f"/v1/deals/{newer['id']}", headers=h)).json()
    # a company's own number finds it (and its deals) when no contact has the number
    await client.patch(f"/v1/companies/{company['id']}", headers=h, json={"phone": "+49 30 999999"})
    by_company = await _ok(await client.get("/v1/calls/lookup", headers=h, params={"phone": "+4930999999"}))
    assert by_company["contact"] is None and by_company["company"]["id"] == company["id"]
    assert [d["id"] for d in by_company["open_deals"]] == [newer["id"]]
    unknown = await _ok(await client.get("/v1/calls/lookup", headers=h, params={"phone": "+4989111111"}))
    assert unknown == {"contact": None, "lead": None, "company": None, "open_deals": []}
    other = await signup(client, "Other")
    theirs = await _ok(await client.get("/v1/calls/lookup", headers=other.headers, params={"phone": "+49301234567"}))
    assert theirs == unknown
    for phone in ("+0 12345", "-"):
        r = await client.get("/v1/calls/lookup", headers=h, params={"phone": phone})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "phone"], r.text
    assert (await client.get("/v1/calls/lookup", headers=h)).status_code == 422
    narrow = await acct.api_key(["calls:read", "contacts:read"])
    r = await client.get("/v1/calls/lookup", headers=narrow, params={"phone": "+49301234567"})
    assert r.status_code == 403 and "leads:read" in r.json()["detail"]

    # one statement after the credential's two (the org's region comes along in it)
    key = await acct.api_key(["*"])
    await client.get("/v1/me", headers=key)  # the key's first use writes last_used_at
    for phone in ("+49301234567", "030 1234567"):
        with count_statements(database) as seen:
            r = await client.get("/v1/calls/lookup", headers=key, params={"phone": phone})
        assert r.status_code == 200 and r.json()["contact"]["id"] == contact["id"]
        assert len(seen) == 3, seen


async def test_lookup_applies_record_visibility(client):
    acct = await signup(client)
    h = acct.headers
    await client.patch("/v1/org", headers=h, json={"record_visibility": "own"})
    rep, other_rep = await acct.invite("member"), await acct.invite("member")
    contact = await _ok(await client.post("/v1/contacts", headers=h, json={
        "first_name": "Ana", "phone": "+4915112345678", "owner_id": other_rep.user_id}), 201)
    await _ok(await client.post("/v1/deals", headers=h, json={
        "title": "Mine", "contact_id": contact["id"], "owner_id": rep.user_id}), 201)
    hidden = await _ok(await client.get("/v1/calls/lookup", headers=rep.headers, params={"phone": "+4915112345678"}))
    assert hidden["contact"] is None and hidden["open_deals"] == []
    seen = await _ok(await client.get("/v1/calls/lookup", headers=other_rep.headers,
                                      params={"phone": "+4915112345678"}))
    assert seen["contact"]["id"] == contact["id"] and seen["open_deals"] == []
    # calls are seen as their activities are: the one who took it, and the record's owner
    call = await _ok(await client.post("/v1/calls", headers=rep.headers, json=_call()), 201)
    assert call["contact_id"] == contact["id"] and call["user_id"] == rep.user_id
    assert (await client.get(f"/v1/calls/{call['id']}", headers=rep.headers)).status_code == 200
    outsider = await acct.invite("member")
    assert (await client.get(f"/v1/calls/{call['id']}", headers=outsider.headers)).status_code == 404
    assert (await client.get("/v1/calls", headers=outsider.headers)).json()["data"] == []


async def test_bad_call_input_and_other_orgs_records(client):
    acct, other = await signup(client), await signup(client, "Other")
    h = acct.headers
    theirs = await _ok(await client.post("/v1/calls", headers=other.headers, json=_call()), 201)
    for body, loc in ((_call(direction="sideways"), "direction"), (_call(status="lost"), "status"),
                      (_call(duration_seconds=-1), "duration_seconds"), (_call(**{"from": "not a phone"}), "from"),
                      (_call(direction="outbound", to="x"), "to"), (_call(started_at="2026-12-04T10:15:00"),
                                                                     "started_at"),
                      (_call(user_id=other.user_id), "user_id"), (_call(recording_url="ftp://x"), "recording_url"),
                      (_call(surprise=1), "surprise"), ({"direction": "inbound"}, "from")):
        r = await client.post("/v1/calls", headers=h, json=body)
        assert r.status_code == 422, (body, r.text)
        assert loc in [e["loc"][1] for e in r.json()["errors"]], (body, r.json())
    assert (await client.get(f"/v1/calls/{theirs['id']}", headers=h)).status_code == 404
    assert (await client.get(f"/v1/calls/{uuid.uuid4()}", headers=h)).status_code == 404
    assert (await client.get("/v1/calls", headers=h)).json()["data"] == []
    assert (await client.get("/v1/calls", headers=h, params={"contact_id": theirs["contact_id"] or str(uuid.uuid4())})
            ).json()["data"] == []
    viewer = await acct.invite("viewer")
    assert (await client.post("/v1/calls", headers=viewer.headers, json=_call())).status_code == 403
    reader = await acct.api_key(["calls:read"])
    assert (await client.post("/v1/calls", headers=reader, json=_call())).status_code == 403
    assert (await client.get("/v1/calls", headers=reader)).status_code == 200
    assert (await client.post("/v1/calls", json=_call())).status_code == 401
    assert (await client.get("/v1/calls", headers=h, params={"surprise": 1})).status_code == 422


def _signed(body: dict, secret: str = SECRET, message_id: str | None = None, at: int | None = None) -> tuple:
    raw = json.dumps(body).encode()
    headers = signing.headers(secret, message_id or f"msg_{uuid.uuid4().hex}", at or int(time.time()), raw)
    return raw, headers


async def test_the_providers_signed_events_are_stored_once_and_unsigned_ones_refused(client, session):
    acct = await signup(client)
    h = acct.headers
    await _configure(client, acct)
    path = f"/v1/public/telephony/{acct.org_id}/calls"
    raw, headers = _signed(_call(status="missed", duration_seconds=0))
    first = await client.post(path, content=raw, headers=headers)
    assert first.status_code == 201, first.text
    stored = first.json()
    assert stored["lead_id"] and stored["status"] == "missed"
    replay = await client.post(path, content=raw, headers=headers)
    assert replay.status_code == 200 and replay.json()["id"] == stored["id"]
    assert [c["id"] for c in (await client.get("/v1/calls", headers=h)).json()["data"]] == [stored["id"]]
    assert [(e.type, e.actor["type"]) for e in await _call_events(session, acct)] == [("call.created", "system")]

    refused = []
    wrong_secret = signing.new_secret()
    other = await signup(client, "Other")
    for target, (body, hdrs) in (
            (path, _signed(_call(), secret=wrong_secret)),
            (path, _signed(_call(), at=int(time.time()) - 600)),  # stale
            (path, _signed(_call(), at=int(time.time()) + 600)),
            (path, (raw, {k: v for k, v in headers.items() if k != "webhook-signature"})),
            (path, (raw.replace(b"missed", b"busy!!"), headers)),  # the body changed under the signature
            (path, (raw, {})),
            (f"/v1/public/telephony/{uuid.uuid4()}/calls", _signed(_call())),  # no such org
            (f"/v1/public/telephony/{other.org_id}/calls", _signed(_call()))):  # no telephony settings
        r = await client.post(target, content=body, headers=hdrs)
        refused.append(r)
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json", (target, r.text)
    assert len({r.json()["detail"] for r in refused}) == 1  # an org's existence is never told
    assert len((await client.get("/v1/calls", headers=h)).json()["data"]) == 1
    # signed but invalid: 422, nothing stored
    body, hdrs = _signed(_call(direction="sideways"))
    r = await client.post(path, content=body, headers=hdrs)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "direction"]
    body, hdrs = _signed(_call(), secret=SECRET)
    r = await client.post(path, content=b"{" + body, headers=signing.headers(SECRET, "m1", int(time.time()),
                                                                               b"{" + body))
    assert r.status_code in (400, 422)
    assert len((await client.get("/v1/calls", headers=h)).json()["data"]) == 1


async def test_a_persons_calls_are_in_their_export_and_lose_the_number_on_erasure(client, session):
    acct = await signup(client)
    h = acct.headers
    ana = await _ok(await client.post("/v1/contacts", headers=h, json={"first_name": "Ana", "phone": "+4915112345678"}),
                    201)
    call = await _ok(await client.post("/v1/calls", headers=h, json=_call(
        recording_url="https://pbx.example.com/r/ana.mp3")), 201)
    export = await _ok(await client.get(f"/v1/contacts/{ana['id']}/export", headers=h))
    assert [c["id"] for c in export["calls"]] == [call["id"]] and export["calls"][0] == call
    assert [e["type"] for e in export["events"] if e["object_type"] == "call"] == ["call.created"]
    erased = await _ok(await client.post(f"/v1/contacts/{ana['id']}/erase", headers=h), 202)
    assert erased["counts"]["calls"] == 1
    after = await _ok(await client.get(f"/v1/calls/{call['id']}", headers=h))
    assert (after["from"], after["to"], after["recording_url"]) == ("", "+4930901820", None)
    assert (after["status"], after["duration_seconds"]) == ("answered", 65)
    payloads = json.dumps([e.data for e in await _call_events(session, acct)])
    assert "15112345678" not in payloads and "ana.mp3" not in payloads


@pytest.fixture
def provider():
    r = Receiver()
    yield r
    r.stop()


async def test_click_to_call_goes_to_the_provider_through_a_worker(api, fast_settings, provider):
    acct = await signup(api)
    h = acct.headers
    rep = await acct.invite("member")
    r = await api.post("/v1/calls/originate", headers=h, json={"to": "+4915112345678"})
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    await api.patch("/v1/org", headers=h, json={"default_phone_region": "DE"})
    await _configure(api, acct, originate_url=provider.url)
    for body in ({"to": "not a phone"}, {"to": "+4915112345678", "user_id": str(uuid.uuid4())}, {},
                 {"to": "+4915112345678", "extra": 1}):
        assert (await api.post("/v1/calls/originate", headers=h, json=body)).status_code == 422, body
    async with running_worker(fast_settings):
        queued = await _ok(await api.post("/v1/calls/originate", headers=rep.headers, json={"to": "0151 12345678"}),
                           202)
        assert queued["status"] == "queued" and queued["to"] == "+4915112345678" and queued["user_id"] == rep.user_id
        await eventually(lambda: _true(len(provider.requests) >= 1))
    [request] = provider.requests
    assert request["method"] == "POST" and request["headers"]["authorization"] == "Bearer pbx_live_42"
    sent = json.loads(request["body"])
    assert sent["id"] == queued["id"] and sent["to"] == "+4915112345678"
    assert sent["user"]["id"] == rep.user_id and sent["user"]["email"] == rep.email


async def test_a_busy_provider_is_asked_again(api, fast_settings):
    provider = Receiver(statuses=[503, 502, 200])
    try:
        acct = await signup(api)
        await _configure(api, acct, originate_url=provider.url)
        async with running_worker(fast_settings.model_copy(update={"mail_retry_schedule": [0.2, 0.2, 0.2]})):
            queued = await _ok(await api.post("/v1/calls/originate", headers=acct.headers,
                                              json={"to": "+4915112345678"}), 202)
            await eventually(lambda: _true(len(provider.requests) >= 3))
        assert [json.loads(r["body"])["id"] for r in provider.requests] == [queued["id"]] * 3
    finally:
        provider.stop()


async def test_a_provider_on_an_internal_address_is_refused_not_called(api, fast_settings, provider, database):
    acct = await signup(api)
    await _configure(api, acct, originate_url=provider.url)  # 127.0.0.1: only where private networks are allowed
    queued = await _ok(await api.post("/v1/calls/originate", headers=acct.headers, json={"to": "+4915112345678"}),
                       202)

    async def failed():
        async with database.sessions() as s:
            row = await s.get(CallOrigination, (uuid.UUID(acct.org_id), uuid.UUID(queued["id"])))
            return row if row is not None and row.status == "failed" else None

    async with running_worker(fast_settings.model_copy(update={"allow_private_networks": False})):
        done = await eventually(failed)
    assert "non-public address" in done.error and done.attempts == 1 and provider.requests == []


async def test_the_secrets_are_sealed_at_rest_and_a_key_rotation_reseals_them(api, settings, database,
                                                                             redis_server, tmp_path):
    from cryptography.fernet import Fernet
    from pydantic import SecretStr

    from app.domain.sealing import Unsealable, _keys, unseal
    from tests.servers import crm_command, crm_env

    acct = await signup(api)
    await _configure(api, acct)

    async def stored() -> str:
        async with database.sessions() as s:
            return await s.scalar(select(TelephonySettings.sealed_secrets).where(
                TelephonySettings.org_id == uuid.UUID(acct.org_id)))

    sealed = await stored()
    assert "pbx_live_42" not in sealed and SECRET not in sealed
    assert unseal(settings, sealed) == {"auth_header": "Bearer pbx_live_42", "webhook_secret": SECRET}
    new, old = Fernet.generate_key().decode(), _keys(settings)[0]
    env = crm_env(settings.migration_url, redis_server.url, tmp_path, CRM_SECRET_KEYS=f"{new},{old}",
                  CRM_ENV="test", CRM_JWT_SECRET=settings.jwt_key())
    ran = await asyncio.to_thread(subprocess.run, [*crm_command(), "reseal"], env=env, capture_output=True,
                                  text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert json.loads(ran.stdout)["telephony_settings"] >= 1
    rotated = settings.model_copy(update={"secret_keys": [SecretStr(new)]})
    assert unseal(rotated, await stored())["webhook_secret"] == SECRET  # the new key alone opens it
    with pytest.raises(Unsealable):
        unseal(settings, await stored())


async def _true(value):
    return value


async def test_lookup_card_json_equals_each_records_own_dump(client, session):
    """The card written in one pass is, byte for byte once parsed, what each record's own dump wrote: money and
    decimals, timestamps with time zone, nulls, custom fields (numbers with fractions, dates, lists), tags."""
    from app.domain import kinds
    from app.domain.auth.principal import Principal
    from app.domain.telephony import lookup as screen_pop

    acct = await signup(client)
    h = acct.headers
    for obj in ("contact", "company", "lead", "deal"):
        r = await client.post("/v1/custom-fields", headers=h, json={"object": obj, "key": "score", "label": "Score",
                                                                    "type": "number"})
        assert r.status_code == 201, r.text
    company = await _ok(await client.post("/v1/companies", headers=h, json={
        "name": "Acme GmbH", "custom_fields": {"score": 1.25}}), 201)
    contact = await _ok(await client.post("/v1/contacts", headers=h, json={
        "first_name": "Ana", "last_name": "Müller", "phone": "+49 30 1234567", "company_id": company["id"],
        "tags": ["vip", "ünicode"], "custom_fields": {"score": 0.1}}), 201)
    await _ok(await client.post("/v1/leads", headers=h, json={"first_name": "Ana", "phone": "+49301234567",
                                                              "custom_fields": {"score": 3}}), 201)
    for i, amount in enumerate(("0.10", "1234567.89", "5")):
        await _ok(await client.post("/v1/deals", headers=h, json={
            "title": f"D{i} – €", "contact_id": contact["id"], "value": {"amount": amount, "currency": "EUR"},
            "expected_close_date": "2027-01-31" if i else None, "custom_fields": {"score": -2.5} if i else {}}), 201)
    await _ok(await client.post("/v1/deals", headers=h, json={"title": "Yen", "company_id": company["id"],
                                                              "value": {"amount": "1200", "currency": "JPY"}}), 201)
    card = await _ok(await client.get("/v1/calls/lookup", headers=h, params={"phone": "+49301234567"}))
    assert card["contact"]["tags"] == ["vip", "ünicode"] and len(card["open_deals"]) == 4
    for record in card["open_deals"]:
        assert record == (await client.get(f"/v1/deals/{record['id']}", headers=h)).json()
    assert card["contact"] == (await client.get(f"/v1/contacts/{contact['id']}", headers=h)).json()
    assert card["company"] == (await client.get(f"/v1/companies/{company['id']}", headers=h)).json()
    # the old writer: each record's own dump (Kind.dump), then orjson
    who = Principal.for_user(uuid.UUID(acct.org_id), uuid.UUID(acct.user_id), "owner")
    old = json.loads(json.dumps(await screen_pop.lookup(session, who, "+49301234567")))
    new = json.loads(await screen_pop.lookup_json(session, who, "+49301234567"))
    assert new == old == card
    assert kinds.sees_all(who)
