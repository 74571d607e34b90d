"""People leave: deactivation hands open leads, open deals, contacts and open tasks to a colleague."""

from __future__ import annotations

from sqlalchemy import select

from app.domain.events.models import Event
from tests.factories import signup


async def test_deactivate_with_reassign_moves_open_work(client, session):
    acct = await signup(client)
    leaver = await acct.invite("member")
    heir = await acct.invite("member")
    h = leaver.headers
    contact = (await client.post("/v1/contacts", headers=h, json={"first_name": "C"})).json()
    open_lead = (await client.post("/v1/leads", headers=h, json={"first_name": "L"})).json()
    dq_lead = (await client.post("/v1/leads", headers=h, json={"first_name": "Q", "status": "disqualified"})).json()
    open_deal = (await client.post("/v1/deals", headers=h, json={"title": "open"})).json()
    won_stage = [s for s in (await client.get(f"/v1/pipelines/{open_deal['pipeline_id']}", headers=h)).json()["stages"]
                 if s["kind"] == "won"][0]
    won_deal = (await client.post("/v1/deals", headers=h, json={"title": "won", "stage_id": won_stage["id"]})).json()
    task = (await client.post("/v1/activities", headers=h, json={"type": "task", "subject": "t"})).json()
    done = (await client.post("/v1/activities", headers=h, json={"type": "task", "subject": "d"})).json()
    await client.post(f"/v1/activities/{done['id']}/complete", headers=h)

    r = await client.post(f"/v1/users/{leaver.user_id}/deactivate", headers=acct.headers,
                          json={"reassign_to": heir.user_id})
    assert r.status_code == 200

    async def get(path):
        return (await client.get(path, headers=acct.headers)).json()

    assert (await get(f"/v1/contacts/{contact['id']}"))["owner_id"] == heir.user_id
    assert (await get(f"/v1/leads/{open_lead['id']}"))["owner_id"] == heir.user_id
    assert (await get(f"/v1/leads/{dq_lead['id']}"))["owner_id"] == leaver.user_id
    assert (await get(f"/v1/deals/{open_deal['id']}"))["owner_id"] == heir.user_id
    assert (await get(f"/v1/deals/{won_deal['id']}"))["owner_id"] == leaver.user_id
    assert (await get(f"/v1/activities/{task['id']}"))["assignee_id"] == heir.user_id
    assert (await get(f"/v1/activities/{done['id']}"))["assignee_id"] == leaver.user_id
    moved = (await session.scalars(select(Event).where(
        Event.org_id == acct.org_id, Event.type.in_(["contact.updated", "lead.updated", "deal.updated",
                                                     "activity.updated"]),
        Event.actor["id"].astext == acct.user_id))).all()
    assert {(e.type, str(e.object_id)) for e in moved} == {
        ("contact.updated", contact["id"]), ("lead.updated", open_lead["id"]), ("deal.updated", open_deal["id"]),
        ("activity.updated", task["id"])}
    assert all(e.data["previous"] for e in moved)


async def test_out_of_office_flag(client):
    acct = await signup(client)
    rep = await acct.invite("member")
    r = await client.patch(f"/v1/users/{rep.user_id}", headers=rep.headers, json={"out_of_office": True})
    assert r.json()["out_of_office"] is True
