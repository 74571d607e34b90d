"""Notifications: made by the event consumer (task assigned, reminder due), read at /v1/me/notifications.

In the transactional tests the consumer is called by hand (`dispatch` on the test's session); the end-to-end
test commits through the API and lets a real arq worker hand the events over and fire the reminder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.events.dispatch import dispatch
from app.domain.events.models import Event
from app.domain.notifications import service as notifications
from app.domain.reminders.service import fire_due
from tests.factories import signup
from tests.workers import eventually, running_worker

SYSTEM = {"type": "system", "id": None}
ROW_KEYS = {"id", "kind", "title", "object_type", "object_id", "created_at", "read_at"}


def _iso(dt: datetime) -> str:
    return dt.isoformat()


async def _events(session: AsyncSession, org_id: str, type_: str, object_id: str | None = None) -> list[Event]:
    stmt = select(Event).where(Event.org_id == UUID(org_id), Event.type == type_)
    if object_id is not None:
        stmt = stmt.where(Event.object_id == UUID(object_id))
    return list(await session.scalars(stmt.order_by(Event.id).execution_options(populate_existing=True)))


async def _dispatch_all(session: AsyncSession, org_id: str, type_: str, object_id: str | None = None) -> None:
    found = await _events(session, org_id, type_, object_id)
    assert found, f"no {type_} event"
    for e in found:
        await dispatch(session, e.org_id, e.id)


async def _task(client, who, **body) -> dict:
    payload = {"type": "task", "subject": "Call Ana back", **body}
    r = await client.post("/v1/activities", headers=who.headers, json=payload)
    assert r.status_code == 201, r.text
    return r.json()


async def _mine(client, who, **params) -> list[dict]:
    r = await client.get("/v1/me/notifications", headers=who.headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def _team(client):
    owner = await signup(client)
    admin = await owner.invite("admin")
    member = await owner.invite("member")
    return owner, admin, member


# --- made by the consumer, read through the API -----------------------------------------------------------------


async def test_assigned_task_notifies_the_assignee_once(client, session):
    _, admin, member = await _team(client)
    task = await _task(client, admin, subject="Call Ana back", assignee_id=member.user_id,
                       due_at=_iso(datetime.now(UTC) + timedelta(days=1)))
    assert await _mine(client, member) == []  # nothing before the consumer ran

    [created] = await _events(session, admin.org_id, "activity.created", task["id"])
    assert await dispatch(session, created.org_id, created.id) == []  # no webhooks, one notification

    rows = await _mine(client, member)
    assert len(rows) == 1
    n = rows[0]
    assert set(n) == ROW_KEYS
    assert n["kind"] == "task_assigned" and n["object_type"] == "activity" and n["object_id"] == task["id"]
    assert "Call Ana back" in n["title"] and n["read_at"] is None and n["created_at"]
    assert await _mine(client, member, unread="true") == rows
    assert await _mine(client, member, unread="false") == []
    assert await _mine(client, admin) == []  # the one who assigned it is not told

    # the same event again: the relay may hand it over twice; nothing more appears
    assert await dispatch(session, created.org_id, created.id) is None
    assert await notifications.from_event(session, created) == 0  # even past the dispatched mark
    assert await _mine(client, member) == rows

    # the notification is an event too, for pushing elsewhere; consuming it tells no one
    [told] = await _events(session, admin.org_id, "notification.created")
    assert str(told.object_id) == n["id"] and told.object_type == "notification" and told.actor == SYSTEM
    assert told.data["object"]["user_id"] == member.user_id and told.data["object"]["kind"] == "task_assigned"
    assert told.data["object"]["object_id"] == task["id"]
    await dispatch(session, told.org_id, told.id)
    assert await _mine(client, member) == rows
    assert len(await _events(session, admin.org_id, "notification.created")) == 1


async def test_assigning_a_task_to_oneself_tells_no_one(client, session):
    owner, admin, member = await _team(client)
    await _task(client, admin, subject="mine, explicitly", assignee_id=admin.user_id)
    await _task(client, member, subject="mine, by default")
    await _task(client, admin, subject="already done", type="call", assignee_id=member.user_id,
                done_at=_iso(datetime.now(UTC)))  # a logged call is nothing to do
    theirs = await _task(client, admin, subject="theirs", assignee_id=member.user_id)
    await _dispatch_all(session, owner.org_id, "activity.created")

    assert [n["object_id"] for n in await _mine(client, member)] == [theirs["id"]]
    assert await _mine(client, admin) == []
    assert await _mine(client, owner) == []
    assert len(await _events(session, owner.org_id, "notification.created")) == 1


async def test_reassigning_a_task_notifies_the_new_assignee(client, session):
    _, admin, member = await _team(client)
    task = await _task(client, admin, subject="Send the quote")
    r = await client.patch(f"/v1/activities/{task['id']}", headers=admin.headers,
                           json={"assignee_id": member.user_id})
    assert r.status_code == 200, r.text
    r = await client.patch(f"/v1/activities/{task['id']}", headers=admin.headers, json={"subject": "Send quote v2"})
    assert r.status_code == 200, r.text
    await _dispatch_all(session, admin.org_id, "activity.created")
    await _dispatch_all(session, admin.org_id, "activity.updated")

    rows = await _mine(client, member)
    assert [(n["kind"], n["object_id"]) for n in rows] == [("task_assigned", task["id"])]  # not for the rename
    assert await _mine(client, admin) == []


async def test_read_one_and_read_all(client, session):
    owner, admin, member = await _team(client)
    stranger = await signup(client, "Elsewhere")
    tasks = [await _task(client, admin, subject=f"Task {i}", assignee_id=member.user_id) for i in range(3)]
    await _task(client, member, subject="for the admin", assignee_id=admin.user_id)
    await _dispatch_all(session, owner.org_id, "activity.created")
    rows = await _mine(client, member)
    assert sorted(n["object_id"] for n in rows) == sorted(t["id"] for t in tasks)
    [admins] = await _mine(client, admin)
    first = rows[0]

    page1 = (await client.get("/v1/me/notifications", headers=member.headers, params={"limit": 2})).json()
    assert len(page1["data"]) == 2 and page1["next_cursor"]
    page2 = (await client.get("/v1/me/notifications", headers=member.headers,
                              params={"limit": 2, "cursor": page1["next_cursor"]})).json()
    assert len(page2["data"]) == 1 and page2["next_cursor"] is None
    assert {n["id"] for n in page1["data"] + page2["data"]} == {n["id"] for n in rows}

    r = await client.post(f"/v1/me/notifications/{first['id']}/read", headers=member.headers)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == first["id"] and r.json()["read_at"] is not None
    read_at = r.json()["read_at"]
    again = await client.post(f"/v1/me/notifications/{first['id']}/read", headers=member.headers)
    assert again.status_code == 200 and again.json()["read_at"] == read_at  # reading twice keeps the first time
    assert {n["id"] for n in await _mine(client, member, unread="true")} == {n["id"] for n in rows[1:]}
    assert [(n["id"], n["read_at"]) for n in await _mine(client, member, unread="false")] == [(first["id"], read_at)]

    # someone else's notification does not exist for you, in the same org or another
    for other in (admin, owner, stranger):
        r = await client.post(f"/v1/me/notifications/{rows[1]['id']}/read", headers=other.headers)
        assert r.status_code == 404, r.text
    r = await client.post(f"/v1/me/notifications/{admins['id']}/read", headers=member.headers)
    assert r.status_code == 404
    assert {n["id"] for n in await _mine(client, member, unread="true")} == {n["id"] for n in rows[1:]}
    assert (await _mine(client, admin, unread="true"))[0]["id"] == admins["id"]

    # read-all is yours only
    r = await client.post("/v1/me/notifications/read-all", headers=admin.headers)
    assert r.status_code == 204
    assert len(await _mine(client, member, unread="true")) == 2
    r = await client.post("/v1/me/notifications/read-all", headers=member.headers)
    assert r.status_code == 204
    assert await _mine(client, member, unread="true") == []
    after = await _mine(client, member)
    assert len(after) == 3 and all(n["read_at"] is not None for n in after)
    assert next(n for n in after if n["id"] == first["id"])["read_at"] == read_at
    assert await _mine(client, admin, unread="true") == []
    assert (await _mine(client, admin))[0]["read_at"] is not None


async def test_notifications_are_for_users_only(client, session):
    owner, _, member = await _team(client)
    await _task(client, owner, assignee_id=member.user_id)
    await _dispatch_all(session, owner.org_id, "activity.created")
    [n] = await _mine(client, member)
    key = await owner.api_key(["*"])

    for method, path in (("GET", "/v1/me/notifications"), ("POST", f"/v1/me/notifications/{n['id']}/read"),
                         ("POST", "/v1/me/notifications/read-all")):
        r = await client.request(method, path, headers=key)
        assert r.status_code == 403, (path, r.text)
        r = await client.request(method, path)
        assert r.status_code == 401, (path, r.text)
        r = await client.request(method, path, headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401, (path, r.text)
    assert (await _mine(client, member, unread="true"))[0]["id"] == n["id"]  # nothing was marked read


async def test_reminder_due_notifies_the_assignee(client, session):
    _, admin, member = await _team(client)
    t0 = datetime.now(UTC)
    theirs = await _task(client, admin, subject="Renewal call", assignee_id=member.user_id,
                         due_at=_iso(t0 + timedelta(hours=1)))
    own = await _task(client, admin, subject="Own follow-up", remind_at=_iso(t0 + timedelta(minutes=30)))
    note = await _task(client, member, type="note", subject="Check the contract", remind_at=_iso(t0))
    assert note["assignee_id"] is None  # nobody assigned: the reminder goes to its owner
    await _dispatch_all(session, admin.org_id, "activity.created")
    assert [n["kind"] for n in await _mine(client, member)] == ["task_assigned"]

    session.expire_all()
    await fire_due(session, t0 + timedelta(hours=2))
    due = await _events(session, admin.org_id, "activity.due")
    assert sorted(str(e.object_id) for e in due) == sorted([theirs["id"], own["id"], note["id"]])
    await _dispatch_all(session, admin.org_id, "activity.due")
    await _dispatch_all(session, admin.org_id, "activity.due")  # twice: still once each

    rows = await _mine(client, member)
    assert sorted((n["kind"], n["object_id"]) for n in rows) == sorted([
        ("reminder_due", theirs["id"]), ("task_assigned", theirs["id"]), ("reminder_due", note["id"])])
    reminder = next(n for n in rows if n["kind"] == "reminder_due" and n["object_id"] == theirs["id"])
    assert "Renewal call" in reminder["title"] and reminder["object_type"] == "activity"
    # a reminder is the system speaking: the one who set it for themself hears it too
    assert [(n["kind"], n["object_id"]) for n in await _mine(client, admin)] == [("reminder_due", own["id"])]


# --- end to end: committed writes, a real worker ----------------------------------------------------------------

async def test_worker_tells_the_assignee_of_the_task_and_its_reminder(api, fast_settings, database):
    owner = await signup(api)  # committed: the factories use unique e-mails
    member = await owner.invite("member")
    task = await _task(api, owner, subject="Overdue call", assignee_id=member.user_id,
                       due_at=_iso(datetime.now(UTC) - timedelta(minutes=5)))

    async def both():
        rows = await _mine(api, member)
        kinds = sorted(n["kind"] for n in rows if n["object_id"] == task["id"])
        return kinds == ["reminder_due", "task_assigned"] and rows

    async def all_dispatched():
        async with database.sessions() as s:
            types = (await s.execute(select(Event.type, Event.dispatched_at).where(
                Event.org_id == UUID(owner.org_id)))).all()
        told = [t for t, _ in types if t == "notification.created"]
        return len(told) == 2 and all(d is not None for _, d in types) and types

    async with running_worker(fast_settings):
        rows = await eventually(both)
        types = await eventually(all_dispatched)  # the follow-ups (notification.created) were consumed too
    assert len(rows) == 2 and all(n["object_type"] == "activity" and n["read_at"] is None for n in rows)
    assert {t for t, _ in types} >= {"activity.created", "activity.due", "activity.overdue", "notification.created"}
    assert await _mine(api, owner) == []
    unread = await _mine(api, member, unread="true")
    assert sorted(n["kind"] for n in unread) == ["reminder_due", "task_assigned"]
    r = await api.post("/v1/me/notifications/read-all", headers=member.headers)
    assert r.status_code == 204
    assert await _mine(api, member, unread="true") == []
