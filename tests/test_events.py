"""Every write leaves its event rows (the outbox) in the same transaction, in the envelope of API.md
"Events"; a failed request leaves neither events nor half a change."""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.companies.models import Company
from app.domain.contacts.models import Contact
from app.domain.deals.models import Deal, StageMove
from app.domain.events.models import Event
from app.domain.leads.models import Lead
from tests.factories import Account, signup, unique_email


class Outbox:
    """The org's event rows, read through the test's `session`; `new()` returns those not seen yet."""

    def __init__(self, session: AsyncSession, org_id: str) -> None:
        self.session, self.org_id, self.seen = session, UUID(org_id), set()

    async def all(self) -> list[Event]:
        rows = await self.session.scalars(select(Event).where(Event.org_id == self.org_id)
                                          .order_by(Event.occurred_at, Event.id)
                                          .execution_options(populate_existing=True))
        return list(rows)

    async def new(self) -> list[Event]:
        fresh = [e for e in await self.all() if e.id not in self.seen]
        self.seen.update(e.id for e in fresh)
        for e in fresh:
            check_envelope(e)
        return fresh

    async def one(self, type_: str) -> Event:
        fresh = await self.new()
        assert [e.type for e in fresh] == [type_], [e.type for e in fresh]
        return fresh[0]


def check_envelope(e: Event) -> None:
    """`{id, type, object_type, object_id, action, occurred_at, actor: {type, id}, version, data: {object, previous?}}`"""
    assert e.id and e.occurred_at is not None
    object_type, _, action = e.type.partition(".")
    assert (e.object_type, e.action) == (object_type, action), e.type
    assert isinstance(e.actor, dict) and set(e.actor) == {"type", "id"}
    assert e.actor["type"] in ("user", "api_key", "form", "system")
    assert isinstance(e.version, int) and e.version >= 1
    assert isinstance(e.data, dict)
    if e.type != "lead.converted":
        assert "object" in e.data and e.data["object"]["id"] == str(e.object_id), e.type
        assert set(e.data) <= {"object", "previous"}, e.type


def types(events: list[Event]) -> Counter[str]:
    return Counter(e.type for e in events)


def by_type(events: list[Event]) -> dict[str, Event]:
    assert len({e.type for e in events}) == len(events)
    return {e.type: e for e in events}


def user(account: Account) -> dict[str, str]:
    return {"type": "user", "id": account.user_id}


def etag(r: httpx.Response) -> int:
    return int(r.headers["etag"].strip('"'))


async def start(client: httpx.AsyncClient, session: AsyncSession) -> tuple[Account, Outbox]:
    owner = await signup(client)
    outbox = Outbox(session, owner.org_id)
    signup_events = await outbox.new()
    # The default pipeline comes with the organisation; the system wrote it.
    assert [(e.type, e.actor) for e in signup_events if e.object_type == "pipeline"] == \
        [("pipeline.created", {"type": "system", "id": None})]
    return owner, outbox


async def test_contact_created_updated_deleted_restored(client, session):
    owner, outbox = await start(client, session)
    h = owner.headers

    r = await client.post("/v1/contacts", headers=h, json={"first_name": "Ada", "last_name": "Lovelace",
                                                           "email": "ada@example.com", "tags": ["vip"]})
    assert r.status_code == 201
    contact = r.json()
    e = await outbox.one("contact.created")
    assert (e.object_type, str(e.object_id), e.action, e.actor) == ("contact", contact["id"], "created", user(owner))
    assert e.version == contact["version"] == etag(r) == 1
    assert e.data == {"object": contact}  # no `previous` on create

    r = await client.patch(f"/v1/contacts/{contact['id']}", headers=h,
                           json={"first_name": "Augusta", "title": "Countess", "email": "ada@example.com",
                                 "tags": ["vip", "math"]})
    assert r.status_code == 200
    e = await outbox.one("contact.updated")
    assert e.version == r.json()["version"] == etag(r) == 2
    assert e.data["object"] == r.json()
    # Only what changed, with its old value: the email was sent again but did not change.
    assert e.data["previous"] == {"first_name": "Ada", "title": None, "tags": ["vip"]}

    r = await client.patch(f"/v1/contacts/{contact['id']}", headers=h, json={"custom_fields": {}})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert await outbox.new() == []  # nothing changed, nothing to tell

    assert (await client.delete(f"/v1/contacts/{contact['id']}", headers=h)).status_code == 204
    gone = (await client.get(f"/v1/contacts/{contact['id']}", headers=h, params={"include_deleted": True})).json()
    e = await outbox.one("contact.deleted")
    assert e.version == gone["version"] == 3 and e.data["object"]["deleted_at"] is not None
    assert e.actor == user(owner)

    r = await client.post(f"/v1/contacts/{contact['id']}/restore", headers=h)
    assert r.status_code == 200
    e = await outbox.one("contact.restored")
    assert e.version == r.json()["version"] == 4 and e.data["object"]["deleted_at"] is None

    # A member's write names the member.
    member = await owner.invite("member")
    await outbox.new()
    r = await client.patch(f"/v1/contacts/{contact['id']}", headers=member.headers, json={"title": None})
    assert r.status_code == 200
    e = await outbox.one("contact.updated")
    assert e.actor == user(member) and e.data["previous"] == {"title": "Countess"}


async def test_api_key_writes_name_the_key(client, session):
    owner, outbox = await start(client, session)
    r = await client.post("/v1/api-keys", headers=owner.headers, json={"name": "sync", "scopes": ["contacts:write"]})
    key = r.json()
    await outbox.new()
    h = {"Authorization": f"Bearer {key['secret']}"}

    r = await client.post("/v1/contacts", headers=h, json={"email": "key@example.com"})
    assert r.status_code == 201 and r.json()["owner_id"] == owner.user_id  # owned by the key's creator
    e = await outbox.one("contact.created")
    assert e.actor == {"type": "api_key", "id": key["id"]} and e.version == 1

    r = await client.patch(f"/v1/contacts/{r.json()['id']}", headers=h, json={"last_name": "Key"})
    e = await outbox.one("contact.updated")
    assert e.actor == {"type": "api_key", "id": key["id"]} and e.version == r.json()["version"] == 2


async def test_deal_moves_write_stage_changed_won_and_lost(client, session):
    owner, outbox = await start(client, session)
    h = owner.headers
    pipeline = (await client.get("/v1/pipelines", headers=h)).json()["data"][0]
    stage = {s["name"]: s["id"] for s in pipeline["stages"]}

    r = await client.post("/v1/deals", headers=h, json={"title": "Big one", "value": {"amount": "100.00"}})
    deal = r.json()
    e = await outbox.one("deal.created")
    assert e.version == deal["version"] == 1 and e.data == {"object": deal}
    assert deal["stage_id"] == stage["Qualification"] and deal["status"] == "open"

    # A move: deal.updated and deal.stage_changed, same version, same object.
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": stage["Proposal"]})
    assert r.status_code == 200
    moved = by_type(await outbox.new())
    assert set(moved) == {"deal.updated", "deal.stage_changed"}
    for e in moved.values():
        assert e.version == r.json()["version"] == 2 and e.data["object"] == r.json()
        assert str(e.object_id) == deal["id"] and e.actor == user(owner)
    assert moved["deal.stage_changed"].data["previous"] == {"stage_id": stage["Qualification"]}
    assert moved["deal.updated"].data["previous"]["stage_id"] == stage["Qualification"]
    assert set(moved["deal.updated"].data["previous"]) <= {"stage_id", "stage_entered_at", "forecast_category"}
    assert moved["deal.updated"].data["previous"]["forecast_category"] == "pipeline"  # it follows the stage

    # Not a move: only deal.updated.
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"title": "Bigger one"})
    e = await outbox.one("deal.updated")
    assert e.data["previous"] == {"title": "Big one"} and e.version == 3

    # Into a won stage: deal.won besides.
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": stage["Won"]})
    assert r.status_code == 200 and r.json()["status"] == "won"
    won = by_type(await outbox.new())
    assert set(won) == {"deal.updated", "deal.stage_changed", "deal.won"}
    assert all(e.version == r.json()["version"] == 4 for e in won.values())
    assert won["deal.updated"].data["previous"]["status"] == "open"
    assert won["deal.updated"].data["previous"]["closed_at"] is None
    assert won["deal.stage_changed"].data["previous"] == {"stage_id": stage["Proposal"]}

    # Into a lost stage, with its reason: deal.lost.
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=h,
                           json={"stage_id": stage["Lost"], "lost_reason": "budget"})
    assert r.status_code == 200 and r.json()["status"] == "lost"
    lost = by_type(await outbox.new())
    assert set(lost) == {"deal.updated", "deal.stage_changed", "deal.lost"}
    assert lost["deal.updated"].data["previous"]["status"] == "won"
    assert lost["deal.updated"].data["previous"]["lost_reason"] is None
    assert lost["deal.stage_changed"].data["previous"] == {"stage_id": stage["Won"]}

    # A deal born won says so too.
    r = await client.post("/v1/deals", headers=h, json={"title": "Signed", "stage_id": stage["Won"]})
    assert r.status_code == 201
    born = by_type(await outbox.new())
    assert set(born) == {"deal.created", "deal.won"} and all(e.version == 1 for e in born.values())

    history = (await client.get(f"/v1/deals/{deal['id']}/stage-history", headers=h)).json()["data"]
    assert [m["to_stage_id"] for m in history] == [stage[n] for n in ("Qualification", "Proposal", "Won", "Lost")]


async def test_lead_converted_carries_lead_contact_company_and_deal(client, session):
    owner, outbox = await start(client, session)
    h = owner.headers
    lead = (await client.post("/v1/leads", headers=h, json={
        "title": "Demo request", "first_name": "Jo", "last_name": "Park", "email": "jo@park.example",
        "company_name": "Park Ltd"})).json()
    await outbox.one("lead.created")

    r = await client.post(f"/v1/leads/{lead['id']}/convert", headers=h,
                          json={"create_deal": True, "value": {"amount": "4800.00"}})
    assert r.status_code == 200, r.text
    result = r.json()
    events = await outbox.new()
    assert types(events) == Counter(["company.created", "contact.created", "deal.created", "lead.updated",
                                     "lead.converted"])
    assert all(e.actor == user(owner) for e in events)
    converted = by_type(events)["lead.converted"]
    assert (converted.object_type, str(converted.object_id)) == ("lead", lead["id"])
    assert set(converted.data) == {"lead", "contact", "company", "deal"}
    assert converted.data == result
    lead_now = await client.get(f"/v1/leads/{lead['id']}", headers=h)
    assert converted.version == lead_now.json()["version"] == etag(lead_now)
    assert result["lead"]["status"] == "converted"
    assert result["lead"]["contact_id"] == result["contact"]["id"]
    assert result["deal"]["contact_id"] == result["contact"]["id"]
    assert result["deal"]["company_id"] == result["company"]["id"] == result["contact"]["company_id"]
    assert by_type(events)["lead.updated"].data["previous"]["status"] == "new"
    for kind in ("contact", "company", "deal"):
        e = by_type(events)[f"{kind}.created"]
        assert str(e.object_id) == result[kind]["id"] and e.data["object"] == result[kind]


async def test_activity_completed(client, session):
    owner, outbox = await start(client, session)
    h = owner.headers
    task = (await client.post("/v1/activities", headers=h, json={"type": "task", "subject": "Call Jo"})).json()
    await outbox.one("activity.created")

    r = await client.post(f"/v1/activities/{task['id']}/complete", headers=h)
    assert r.status_code == 200 and r.json()["done_at"] is not None
    done = by_type(await outbox.new())
    assert set(done) == {"activity.updated", "activity.completed"}
    assert all(e.version == r.json()["version"] == 2 and e.data["object"] == r.json() for e in done.values())
    assert done["activity.updated"].data["previous"] == {"done_at": None}

    r = await client.post(f"/v1/activities/{task['id']}/complete", headers=h)
    assert r.status_code == 200 and r.json()["version"] == 2 and await outbox.new() == []  # harmless repeat

    # Setting done_at by PATCH completes too; logging a done call completes at once.
    other = (await client.post("/v1/activities", headers=h, json={"type": "task", "subject": "Mail Jo"})).json()
    await outbox.one("activity.created")
    r = await client.patch(f"/v1/activities/{other['id']}", headers=h, json={"done_at": "2026-01-02T03:04:05Z"})
    assert set(by_type(await outbox.new())) == {"activity.updated", "activity.completed"}
    r = await client.post("/v1/activities", headers=h,
                          json={"type": "call", "subject": "Talked", "done_at": "2026-01-02T03:04:05Z"})
    assert set(by_type(await outbox.new())) == {"activity.created", "activity.completed"}


async def test_stage_changes_are_pipeline_updates(client, session):
    owner, outbox = await start(client, session)
    h = owner.headers
    pipeline = (await client.get("/v1/pipelines", headers=h)).json()["data"][0]

    r = await client.post(f"/v1/pipelines/{pipeline['id']}/stages", headers=h,
                          json={"name": "Demo", "probability": 25, "position": 1})
    assert r.status_code == 201
    e = await outbox.one("pipeline.updated")
    now = (await client.get(f"/v1/pipelines/{pipeline['id']}", headers=h))
    assert e.version == now.json()["version"] == etag(now) > pipeline["version"]
    assert e.data["object"] == now.json()
    assert [s["name"] for s in e.data["object"]["stages"]][:2] == ["Qualification", "Demo"]
    assert e.data["previous"]["stages"] == pipeline["stages"]
    assert e.actor == user(owner)

    r = await client.post(f"/v1/pipelines/{pipeline['id']}/stages/reorder", headers=h,
                          json={"stage_ids": [s["id"] for s in reversed(now.json()["stages"])]})
    assert r.status_code == 200
    e = await outbox.one("pipeline.updated")
    assert e.version == r.json()["version"] and e.data["previous"]["stages"] == now.json()["stages"]

    r = await client.patch(f"/v1/pipelines/{pipeline['id']}", headers=h, json={"name": "Renamed"})
    e = await outbox.one("pipeline.updated")
    assert e.data["previous"] == {"name": "Sales"} and e.version == r.json()["version"]


# --- failures leave nothing -------------------------------------------------------------------------------


async def test_failed_writes_leave_no_event_and_no_partial_change(client, session):
    owner, outbox = await start(client, session)
    h = owner.headers
    r = await client.post("/v1/custom-fields", headers=h,
                          json={"object": "contact", "key": "score", "label": "Score", "type": "number"})
    assert r.status_code == 201
    await outbox.new()

    # A contact with an invalid custom field value.
    r = await client.post("/v1/contacts", headers=h, json={"first_name": "Bad", "custom_fields": {"score": "high"}})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "custom_fields", "score"]
    assert await outbox.new() == []
    assert (await client.get("/v1/contacts", headers=h)).json()["data"] == []

    # A PATCH whose valid half must not stick either.
    contact = (await client.post("/v1/contacts", headers=h, json={"first_name": "Good"})).json()
    await outbox.one("contact.created")
    r = await client.patch(f"/v1/contacts/{contact['id']}", headers=h,
                           json={"first_name": "Changed", "custom_fields": {"score": "high"}})
    assert r.status_code == 422 and await outbox.new() == []
    assert (await client.get(f"/v1/contacts/{contact['id']}", headers=h)).json() == contact

    # A move into a lost stage without a reason, together with a title change.
    pipeline = (await client.get("/v1/pipelines", headers=h)).json()["data"][0]
    lost = next(s["id"] for s in pipeline["stages"] if s["kind"] == "lost")
    deal = (await client.post("/v1/deals", headers=h, json={"title": "Keep me"})).json()
    await outbox.new()
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"title": "Renamed", "stage_id": lost})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "lost_reason"]
    assert await outbox.new() == []
    assert (await client.get(f"/v1/deals/{deal['id']}", headers=h)).json() == deal
    history = (await client.get(f"/v1/deals/{deal['id']}/stage-history", headers=h)).json()["data"]
    assert len(history) == 1  # only the creation

    # A conversion that fails at its last step (an unknown pipeline) creates no contact or company.
    lead = (await client.post("/v1/leads", headers=h, json={"first_name": "Lee", "company_name": "Lee Corp",
                                                            "email": "lee@example.com"})).json()
    await outbox.new()
    r = await client.post(f"/v1/leads/{lead['id']}/convert", headers=h,
                          json={"create_deal": True, "pipeline_id": "00000000-0000-7000-8000-000000000000"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "pipeline_id"]
    assert await outbox.new() == []
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=h)).json() == lead
    assert (await client.get("/v1/companies", headers=h)).json()["data"] == []
    assert [c["id"] for c in (await client.get("/v1/contacts", headers=h)).json()["data"]] == [contact["id"]]


async def _count(s: AsyncSession, sql: str, **params: Any) -> Any:
    return (await s.execute(text(sql), params)).scalar_one()


async def test_rolled_back_request_leaves_nothing_for_other_connections(committed_client, database):
    c = committed_client
    owner = await signup(c, "Committed events")  # a unique email: committed data stays
    h = owner.headers
    org = UUID(owner.org_id)
    assert (await c.post("/v1/custom-fields", headers=h, json={
        "object": "contact", "key": "score", "label": "Score", "type": "number"})).status_code == 201
    email = unique_email("lead")
    lead = (await c.post("/v1/leads", headers=h, json={"first_name": "Lee", "company_name": "Lee Corp",
                                                       "email": email})).json()
    deal = (await c.post("/v1/deals", headers=h, json={"title": "Keep me"})).json()
    pipeline = (await c.get("/v1/pipelines", headers=h)).json()["data"][0]
    lost = next(s["id"] for s in pipeline["stages"] if s["kind"] == "lost")

    async with database.sessions() as s:
        before = dict((await s.execute(text("SELECT type, count(*) FROM events WHERE org_id = :o GROUP BY type"),
                                      {"o": org})).all())
        # Each committed write's events come from the very transaction that wrote the row.
        for table, row_id, type_ in ((Lead.__tablename__, lead["id"], "lead.created"),
                                     (Deal.__tablename__, deal["id"], "deal.created")):
            same_tx = await _count(s, f"""
                SELECT count(*) FROM events e JOIN {table} r ON r.org_id = e.org_id AND r.id = e.object_id
                WHERE e.org_id = :o AND e.object_id = :id AND e.type = :t
                  AND (e.txid::text::bigint % 4294967296) = r.xmin::text::bigint""", o=org, id=UUID(row_id), t=type_)
            assert same_tx == 1, table
    assert before["lead.created"] == 1 and before["deal.created"] == 1

    failures = [
        c.post("/v1/contacts", headers=h, json={"email": unique_email(), "custom_fields": {"score": "x"}}),
        c.patch(f"/v1/deals/{deal['id']}", headers=h, json={"title": "Renamed", "stage_id": lost}),
        c.post(f"/v1/leads/{lead['id']}/convert", headers=h,
               json={"create_deal": True, "pipeline_id": "00000000-0000-7000-8000-000000000000"}),
    ]
    for request in failures:
        assert (await request).status_code == 422

    async with database.sessions() as s:  # a fresh connection: only committed data
        after = dict((await s.execute(text("SELECT type, count(*) FROM events WHERE org_id = :o GROUP BY type"),
                                     {"o": org})).all())
        assert after == before
        for model, expected in ((Contact, 0), (Company, 0), (Deal, 1), (StageMove, 1), (Lead, 1)):
            n = await s.scalar(select(func.count()).select_from(model).where(model.org_id == org))
            assert n == expected, model.__name__
        row = (await s.execute(select(Deal.title, Deal.stage_id, Deal.version).where(Deal.org_id == org))).one()
        assert tuple(row) == ("Keep me", UUID(deal["stage_id"]), 1)
        assert await s.scalar(select(Lead.status).where(Lead.org_id == org)) == "new"

    # And the API agrees.
    assert (await c.get(f"/v1/deals/{deal['id']}", headers=h)).json() == deal
    assert (await c.get(f"/v1/leads/{lead['id']}", headers=h)).json() == lead


async def test_a_commits_events_are_handed_over_as_one_job_and_all_get_dispatched(settings, database, redis):
    """Moving a deal to a won stage writes several events in one transaction: the relay gets one job for all
    of them (not one per event), and the worker dispatches every one."""
    from app.main import create_app
    from app.workers import queue
    from tests.factories import signup
    from tests.workers import FAST, eventually, running_worker

    app = create_app(settings, db=database, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
        acct = await signup(c)
        deal = (await c.post("/v1/deals", headers=acct.headers, json={"title": "Big"})).json()
        pipeline = (await c.get(f"/v1/pipelines/{deal['pipeline_id']}", headers=acct.headers)).json()
        won = next(s for s in pipeline["stages"] if s["kind"] == "won")
        r = await c.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"stage_id": won["id"]})
        assert r.status_code == 200, r.text
    async with database.sessions() as s:
        moved = list(await s.scalars(select(Event).where(Event.org_id == UUID(acct.org_id),
                                                         Event.object_id == UUID(deal["id"]),
                                                         Event.version == r.json()["version"]).order_by(Event.id)))
    assert len(moved) >= 3  # updated, stage_changed, won
    async with database.sessions() as s:
        commits = await s.scalar(select(func.count(func.distinct(Event.txid))).where(
            Event.org_id == UUID(acct.org_id)))

    async def handed_over():  # the hand-over runs after the response
        jobs = [j for j in await redis.queued_jobs() if j.function == queue.DISPATCH and j.args[0] == acct.org_id]
        return jobs if jobs and any(str(moved[0].id) in j.args or j.job_id.endswith(
            f":{int(moved[0].occurred_at.timestamp() / queue.DISPATCH_WINDOW)}") for j in jobs) else None

    jobs = await eventually(handed_over)
    # one job per org and moment, never one per event: at most one per commit, however many events it wrote
    assert all(j.job_id.startswith(f"{queue.DISPATCH}:{acct.org_id}:") for j in jobs)
    assert len(jobs) <= commits
    assert not [j for j in jobs if set(j.args[1:]) & {str(e.id) for e in moved[1:]}
                and str(moved[0].id) not in j.args]  # a commit's events are never split between jobs
    async with running_worker(settings.model_copy(update=FAST)):
        async def dispatched():
            async with database.sessions() as s:
                left = await s.scalar(select(func.count()).select_from(Event).where(
                    Event.id.in_([e.id for e in moved]), Event.dispatched_at.is_(None)))
            return left == 0 or None
        assert await eventually(dispatched)


async def test_a_dispatch_takes_every_waiting_event_of_the_org_once_and_no_other_orgs(settings, database, redis):
    """Under load the worker's first dispatch job takes the org's other waiting events with its own (one
    statement per consumer for the lot), the later jobs find nothing left, and two dispatches running at the
    same time never take the same event: every contact gets exactly one automation run and every event one
    webhook delivery. Another org's waiting events are left to that org's own jobs."""
    import asyncio

    from app.domain.events import dispatch as dispatcher
    from app.main import create_app

    app = create_app(settings, db=database, redis=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
        acct, other = await signup(c), await signup(c)
        for a in (acct, other):
            r = await c.post("/v1/webhooks", headers=a.headers, json={"url": "https://hooks.example.org/crm",
                                                                        "events": ["contact.*"]})
            assert r.status_code == 201, r.text
            r = await c.post("/v1/automations", headers=a.headers, json={
                "name": "Call back", "trigger": {"event": "contact.created"},
                "actions": [{"type": "create_task", "subject": "Call back", "due": {"in_minutes": 15}}]})
            assert r.status_code == 201, r.text
        for i in range(30):
            for a in (acct, other):
                r = await c.post("/v1/contacts", headers=a.headers, json={"first_name": "Wait", "last_name": str(i)})
                assert r.status_code == 201, r.text
    org, other_org = UUID(acct.org_id), UUID(other.org_id)
    async with database.sessions() as s:
        waiting = list(await s.scalars(select(Event.id).where(Event.org_id == org, Event.dispatched_at.is_(None))
                                       .order_by(Event.occurred_at, Event.id)))
    assert len(waiting) >= 30

    async def one_job(event_id: UUID) -> tuple[int, int]:
        async with database.for_org(org) as session:
            done = await dispatcher.dispatch_many(session, org, [event_id])
            return len(done.deliveries), len(dispatcher.committed_runs(session))

    # the jobs of the first, a middle and the last commit, at once
    results = await asyncio.gather(*(one_job(waiting[i]) for i in (0, len(waiting) // 2, -1)))
    assert sum(d for d, _ in results) == 30 and sum(r for _, r in results) == 30
    async with database.sessions() as s:
        left = await s.scalar(select(func.count()).select_from(Event).where(
            Event.org_id == org, Event.dispatched_at.is_(None), Event.type == "contact.created"))
        per_event = await s.execute(text(
            "SELECT event_id, count(*) FROM webhook_deliveries WHERE org_id = :o GROUP BY event_id"), {"o": org})
        runs = await s.execute(text(
            "SELECT object_id, count(*) FROM automation_runs WHERE org_id = :o GROUP BY object_id"), {"o": org})
        other_left = await s.scalar(select(func.count()).select_from(Event).where(
            Event.org_id == other_org, Event.dispatched_at.is_(None)))
        other_made = await s.scalar(text("SELECT count(*) FROM webhook_deliveries WHERE org_id = :o"), {"o": other_org})
    assert left == 0
    assert sorted(n for _, n in per_event) == [1] * 30
    assert sorted(n for _, n in runs) == [1] * 30
    assert other_left >= 30 and other_made == 0
    async with database.for_org(org) as session:  # a job for an event already taken does nothing
        assert await dispatcher.dispatch_many(session, org, [waiting[0]]) == ([], 0)
        assert dispatcher.committed_runs(session) == []
    for o in (org, other_org):
        await _leave_nothing_queued(database, o)


async def test_a_dispatch_of_many_events_for_many_rules_fits_the_drivers_parameter_limit(settings, database):
    """500 waiting events, each matching 8 rules: 4,000 runs (and as many webhook deliveries) written by one
    dispatch, past the 32,767 parameters one statement may carry."""
    from app.domain.events import dispatch as dispatcher
    from app.main import create_app

    app = create_app(settings, db=database, redis=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
        acct = await signup(c)
        for i in range(8):
            r = await c.post("/v1/automations", headers=acct.headers, json={
                "name": f"Call back {i}", "trigger": {"event": "contact.created"},
                "actions": [{"type": "add_tag", "tag": f"t{i}"}]})
            assert r.status_code == 201, r.text
            r = await c.post("/v1/webhooks", headers=acct.headers, json={
                "url": f"https://hooks.example.org/{i}", "events": ["contact.created"]})
            assert r.status_code == 201, r.text
    org = UUID(acct.org_id)
    contacts = await _many_contact_events(database, org, 500)
    deliveries, runs, taken = 0, 0, []
    while not taken or taken[-1] == dispatcher.DRAIN_LIMIT:
        async with database.for_org(org) as session:
            done = await dispatcher.dispatch_many(session, org, contacts[:1])
            runs += len(dispatcher.committed_runs(session))
        deliveries += len(done.deliveries)
        taken.append(done.events)
    assert max(taken) == dispatcher.DRAIN_LIMIT  # never more than the limit in one transaction
    assert deliveries == 4000 and runs == 4000
    await _leave_nothing_queued(database, org)


async def _many_contact_events(database, org: UUID, n: int) -> list[UUID]:
    """`n` contact.created events waiting, written behind the API's back (fast)."""
    async with database.sessions() as s:
        ids = [r[0] for r in (await s.execute(text("""
            INSERT INTO events (org_id, id, type, object_type, object_id, action, actor, version, data)
            SELECT :org, gen_random_uuid(), 'contact.created', 'contact', gen_random_uuid(), 'created',
                   '{"type": "system", "id": null}', 1, '{"object": {}}'
            FROM generate_series(1, :n) RETURNING id"""), {"org": org, "n": n})).all()]
        await s.commit()
    return ids


async def _leave_nothing_queued(database, org: UUID) -> None:
    """The database lives for the whole session: runs, deliveries and events left waiting here would be work
    for the workers of later tests (their sweeps take every org's)."""
    async with database.sessions() as s:
        for statement in ("UPDATE automations SET enabled = false WHERE org_id = :o",
                          "UPDATE webhook_endpoints SET enabled = false WHERE org_id = :o",
                          "DELETE FROM automation_runs WHERE org_id = :o AND status = 'queued'",
                          "DELETE FROM webhook_deliveries WHERE org_id = :o AND status = 'pending'",
                          "UPDATE events SET dispatched_at = now() WHERE org_id = :o AND dispatched_at IS NULL"):
            await s.execute(text(statement), {"o": org})
        await s.commit()
