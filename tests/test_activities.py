"""Activities: tasks and reminders, completion, the "my open tasks" and overdue lists, response time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.factories import signup


def _iso(dt: datetime) -> str:
    return dt.isoformat()


async def test_task_defaults_and_completion(client):
    acct = await signup(client)
    lead = (await client.post("/v1/leads", headers=acct.headers, json={"first_name": "Jo"})).json()
    r = await client.post("/v1/activities", headers=acct.headers,
                          json={"type": "call", "subject": "Call back", "lead_id": lead["id"],
                                "due_at": _iso(datetime.now(UTC) + timedelta(minutes=15)), "priority": "high"})
    assert r.status_code == 201
    task = r.json()
    assert task["assignee_id"] == acct.user_id and task["done_at"] is None
    done = await client.post(f"/v1/activities/{task['id']}/complete", headers=acct.headers)
    assert done.status_code == 200 and done.json()["done_at"] is not None and done.json()["version"] == 2
    again = await client.post(f"/v1/activities/{task['id']}/complete", headers=acct.headers)
    assert again.json()["version"] == 2  # completing twice changes nothing
    lead_after = (await client.get(f"/v1/leads/{lead['id']}", headers=acct.headers)).json()
    assert lead_after["first_response_at"] == done.json()["done_at"]
    reopened = await client.patch(f"/v1/activities/{task['id']}", headers=acct.headers, json={"done_at": None})
    assert reopened.json()["done_at"] is None


async def test_my_open_tasks_due_before_and_overdue(client):
    acct = await signup(client)
    rep = await acct.invite("member")
    now = datetime.now(UTC)

    async def task(subject, due, assignee=None, done=False):
        body = {"type": "task", "subject": subject, "due_at": _iso(due)}
        if assignee:
            body["assignee_id"] = assignee
        t = (await client.post("/v1/activities", headers=acct.headers, json=body)).json()
        if done:
            await client.post(f"/v1/activities/{t['id']}/complete", headers=acct.headers)
        return t["id"]

    late = await task("late", now - timedelta(hours=2))
    soon = await task("soon", now + timedelta(hours=1))
    later = await task("later", now + timedelta(days=3))
    await task("done late", now - timedelta(hours=1), done=True)
    theirs = await task("theirs", now - timedelta(hours=1), assignee=rep.user_id)

    async def subjects(**params):
        r = await client.get("/v1/activities", headers=acct.headers, params=params)
        assert r.status_code == 200, r.text
        return [a["id"] for a in r.json()["data"]]

    mine_due = await subjects(assignee_id=acct.user_id, done="false", due_before=_iso(now + timedelta(days=1)),
                              sort="due_at")
    assert mine_due == [late, soon]
    assert set(await subjects(overdue="true")) == {late, theirs}
    assert set(await subjects(overdue="true", assignee_id=rep.user_id)) == {theirs}
    assert later in await subjects(done="false")
    notes = await client.post("/v1/activities", headers=acct.headers, json={"type": "note", "subject": "n"})
    assert notes.json()["assignee_id"] is None  # notes have no assignee by default
    assert await subjects(type=["note"]) == [notes.json()["id"]]


async def test_links_must_exist_in_org(client):
    a, b = await signup(client), await signup(client)
    theirs = (await client.post("/v1/contacts", headers=b.headers, json={"first_name": "B"})).json()
    for field in ("contact_id", "deal_id", "lead_id", "company_id"):
        r = await client.post("/v1/activities", headers=a.headers,
                              json={"type": "note", "subject": "x", field: theirs["id"]})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", field]
    r = await client.post("/v1/activities", headers=a.headers,
                          json={"type": "task", "subject": "x", "assignee_id": b.user_id})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "assignee_id"]
    bad_type = await client.post("/v1/activities", headers=a.headers, json={"type": "fax", "subject": "x"})
    assert bad_type.status_code == 422


async def test_q_searches_subjects(client):
    acct = await signup(client)
    call = (await client.post("/v1/activities", headers=acct.headers,
                              json={"type": "call", "subject": "Call Müller about the quote"})).json()
    await client.post("/v1/activities", headers=acct.headers, json={"type": "task", "subject": "Send contract"})

    async def ids(q: str) -> set[str]:
        r = await client.get("/v1/activities", headers=acct.headers, params={"q": q})
        assert r.status_code == 200, r.text
        return {a["id"] for a in r.json()["data"]}

    assert await ids("müller") == {call["id"]}
    assert await ids("quo call") == {call["id"]}
    assert await ids("invoice") == set()


async def test_a_reps_day_on_the_phone_me_and_due_after(client):
    """The mobile "today" screen: my open tasks from now to midnight, without the overdue ones, with `me`
    instead of the user id, for a user and for an API key (its creator)."""
    acct = await signup(client)
    rep = await acct.invite("member")
    now = datetime.now(UTC)
    midnight = now + timedelta(hours=5)

    async def task(who, subject, due):
        r = await client.post("/v1/activities", headers=who.headers,
                              json={"type": "task", "subject": subject, "due_at": _iso(due)})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    overdue = await task(rep, "overdue", now - timedelta(hours=1))
    next_ = await task(rep, "next", now + timedelta(hours=1))
    tonight = await task(rep, "tonight", now + timedelta(hours=4))
    await task(rep, "tomorrow", now + timedelta(hours=30))
    owners = await task(acct, "the owner's", now + timedelta(hours=2))
    today = {"assignee_id": "me", "done": "false", "due_after": _iso(now), "due_before": _iso(midnight),
             "sort": "due_at"}

    async def ids(headers, **params):
        r = await client.get("/v1/activities", headers=headers, params=params)
        assert r.status_code == 200, r.text
        return [a["id"] for a in r.json()["data"]]

    assert await ids(rep.headers, **today) == [next_, tonight]
    assert await ids(rep.headers, **{k: v for k, v in today.items() if k != "due_after"}) == [overdue, next_, tonight]
    assert await ids(rep.headers, **{**today, "assignee_id": rep.user_id}) == [next_, tonight]
    key = await acct.api_key(["activities:read"])
    assert await ids(key, **today) == [owners]  # a key's `me` is the user who made it
    assert set(await ids(rep.headers, owner_id="me")) == {overdue, next_, tonight,
                                                          *await ids(rep.headers, assignee_id="me")}
    r = await client.get("/v1/activities", headers=rep.headers, params={"assignee_id": "you"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "assignee_id"]


async def test_me_in_every_user_filter(client):
    acct = await signup(client)
    rep = await acct.invite("member")
    mine = (await client.post("/v1/deals", headers=rep.headers, json={"title": "Rep's deal"})).json()
    await client.post("/v1/deals", headers=acct.headers, json={"title": "Owner's deal"})
    for url in ("/v1/deals", "/v1/deals/export.csv"):
        r = await client.get(url, headers=rep.headers, params={"owner_id": "me"})
        assert r.status_code == 200, r.text
        assert "Rep's deal" in r.text and "Owner's deal" not in r.text
    r = await client.get("/v1/deals", headers=acct.headers, params={"owner_id": "me"})
    assert [d["title"] for d in r.json()["data"]] == ["Owner's deal"]
    r = await client.get("/v1/reports/funnel", headers=rep.headers, params={"owner_id": "me"})
    assert r.status_code == 200, r.text
    assert r.json() == (await client.get("/v1/reports/funnel", headers=rep.headers,
                                         params={"owner_id": rep.user_id})).json()
    r = await client.get("/v1/audit-log", headers=acct.headers, params={"actor_id": "me"})
    assert r.status_code == 200 and r.json()["data"]
    assert {e["actor"]["id"] for e in r.json()["data"]} == {acct.user_id}
    assert mine["owner_id"] == rep.user_id
