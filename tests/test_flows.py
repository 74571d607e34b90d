"""Writes that race: each test lets real committed requests run into a lock the test holds, so that both
orders a scheduler could pick are forced, and checks that the outcome is one a single request would leave.

A fresh organisation per test: the requests commit for real."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from app.domain import locks
from app.domain.events.models import Event
from app.domain.pipelines import service as pipelines
from tests.concurrency import gate
from tests.factories import signup


async def _sales(c, acct) -> tuple[dict, dict[str, dict]]:
    (pipeline,) = [p for p in (await c.get("/v1/pipelines", headers=acct.headers)).json()["data"] if p["is_default"]]
    return pipeline, {s["name"]: s for s in pipeline["stages"]}


async def _deal(c, acct, **body) -> dict:
    r = await c.post("/v1/deals", headers=acct.headers, json={"title": "Race", **body})
    assert r.status_code == 201, r.text
    return r.json()


async def _live_stages(c, acct, pipeline_id: str) -> dict[str, dict]:
    r = await c.get(f"/v1/pipelines/{pipeline_id}", headers=acct.headers)
    assert r.status_code == 200, r.text
    return {s["id"]: s for s in r.json()["stages"]}


async def test_a_deal_moved_into_a_stage_being_deleted_does_not_stay_there(committed_client, database):
    c = committed_client
    acct = await signup(c)
    pipeline, stages = await _sales(c, acct)
    deal = await _deal(c, acct)
    doomed = stages["Proposal"]["id"]
    async with gate(database) as g:
        # The deletion runs its checks, then queues behind the gate to write the stage.
        await g.hold("SELECT 1 FROM pipeline_stages WHERE org_id = :o AND id = :s FOR NO KEY UPDATE",
                     o=uuid.UUID(acct.org_id), s=uuid.UUID(doomed))
        delete = asyncio.create_task(c.delete(f"/v1/pipelines/{pipeline['id']}/stages/{doomed}",
                                              headers=acct.headers))
        await g.until_queued(1, delete)
        move = asyncio.create_task(c.patch(f"/v1/deals/{deal['id']}", headers=acct.headers,
                                           json={"stage_id": doomed}))
        await g.until_queued(2, move)
    deleted, moved = await delete, await move
    assert deleted.status_code == 204, deleted.text
    assert moved.status_code == 422, moved.text  # the stage was gone by the time the move could look
    after = (await c.get(f"/v1/deals/{deal['id']}", headers=acct.headers)).json()
    assert after["stage_id"] == stages["Qualification"]["id"]
    assert after["stage_id"] in await _live_stages(c, acct, pipeline["id"])


async def test_a_deal_moved_into_a_stage_changing_kind_takes_the_new_kind(committed_client, database):
    c = committed_client
    acct = await signup(c)
    pipeline, stages = await _sales(c, acct)
    deal = await _deal(c, acct)
    stage = stages["Proposal"]["id"]
    async with gate(database) as g:
        await g.hold("SELECT 1 FROM pipeline_stages WHERE org_id = :o AND id = :s FOR NO KEY UPDATE",
                     o=uuid.UUID(acct.org_id), s=uuid.UUID(stage))
        change = asyncio.create_task(c.patch(f"/v1/pipelines/{pipeline['id']}/stages/{stage}", headers=acct.headers,
                                             json={"kind": "won"}))
        await g.until_queued(1, change)
        move = asyncio.create_task(c.patch(f"/v1/deals/{deal['id']}", headers=acct.headers,
                                           json={"stage_id": stage}))
        await g.until_queued(2, move)
    changed, moved = await change, await move
    assert changed.status_code == 200, changed.text
    assert moved.status_code == 200, moved.text
    after = (await c.get(f"/v1/deals/{deal['id']}", headers=acct.headers)).json()
    kinds = {s["id"]: s["kind"] for s in (await _live_stages(c, acct, pipeline["id"])).values()}
    assert after["stage_id"] == stage and after["status"] == kinds[stage] == "won"
    assert after["closed_at"] is not None


async def test_a_deal_created_in_a_pipeline_being_deleted_keeps_its_pipeline(committed_client, database):
    c = committed_client
    acct = await signup(c)
    r = await c.post("/v1/pipelines", headers=acct.headers, json={"name": "Partners", "stages": [
        {"name": "Talk", "probability": 20}, {"name": "Won", "probability": 100, "kind": "won"},
        {"name": "Lost", "probability": 0, "kind": "lost"}]})
    assert r.status_code == 201, r.text
    partners = r.json()
    async with gate(database) as g:
        await g.hold("SELECT 1 FROM pipelines WHERE org_id = :o AND id = :p FOR NO KEY UPDATE",
                     o=uuid.UUID(acct.org_id), p=uuid.UUID(partners["id"]))
        delete = asyncio.create_task(c.delete(f"/v1/pipelines/{partners['id']}", headers=acct.headers))
        await g.until_queued(1, delete)
        create = asyncio.create_task(c.post("/v1/deals", headers=acct.headers,
                                            json={"title": "Late", "pipeline_id": partners["id"]}))
        await until_done(create)
    deleted, created = await delete, await create
    assert created.status_code == 201, created.text
    assert deleted.status_code == 409, deleted.text  # the pipeline holds the deal now
    assert (await c.get(f"/v1/pipelines/{partners['id']}", headers=acct.headers)).status_code == 200


async def until_done(task: asyncio.Task) -> None:
    await asyncio.wait_for(asyncio.shield(task), timeout=30)


async def test_simultaneous_submissions_of_one_person_make_one_lead(committed_client, database):
    c = committed_client
    acct = await signup(c)
    r = await c.post("/v1/forms", headers=acct.headers, json={"name": "Contact us"})
    assert r.status_code == 201, r.text
    url = f"/v1/public/forms/{r.json()['public_key']}/submissions"
    email = f"twin-{uuid.uuid4().hex[:8]}@example.com"
    async with gate(database) as g:
        # Every submission looks for a match, then queues here to store itself.
        await g.hold("LOCK TABLE form_submissions IN SHARE MODE")
        posts = [asyncio.create_task(c.post(url, json={"email": email.upper() if i else email, "first_name": "Twin"}))
                 for i in range(3)]
        await g.until_queued(3, *posts)
    answers = await asyncio.gather(*posts)
    assert [a.status_code for a in answers] == [202] * 3
    leads = (await c.get("/v1/leads", headers=acct.headers)).json()["data"]
    assert [lead["email"] for lead in leads] == [email]
    subs = (await c.get(f"/v1/forms/{r.json()['id']}/submissions", headers=acct.headers)).json()["data"]
    assert sorted(s["matched"] for s in subs) == ["lead", "lead", "none"]
    assert {s["lead_id"] for s in subs} == {leads[0]["id"]}


async def test_simultaneous_upserts_of_one_external_id_make_one_record(committed_client, database):
    c = committed_client
    acct = await signup(c)
    url = f"/v1/contacts/by-external-id/erp/{uuid.uuid4().hex[:8]}"
    async with gate(database) as g:
        # Every upsert finds nothing, creates, and queues here to claim the external id.
        await g.hold("LOCK TABLE external_refs IN SHARE MODE")
        puts = [asyncio.create_task(c.put(url, headers=acct.headers, json={"first_name": f"Retry {i}"}))
                for i in range(4)]
        await g.until_queued(4, *puts)
    answers = await asyncio.gather(*puts)
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    contacts = (await c.get("/v1/contacts", headers=acct.headers)).json()["data"]
    assert len(contacts) == 1


@pytest.mark.parametrize("step_down", ["demote", "deactivate"])
async def test_two_owners_removing_each_other_leave_one_owner(committed_client, database, step_down):
    c = committed_client
    first = await signup(c)
    second = await first.invite("owner")

    def remove(actor, target):
        if step_down == "demote":
            return c.patch(f"/v1/users/{target.user_id}", headers=actor.headers, json={"role": "admin"})
        return c.post(f"/v1/users/{target.user_id}/deactivate", headers=actor.headers, json={})

    async with gate(database) as g:
        # Both check that another owner remains, then queue here to write the user.
        await g.hold("SELECT 1 FROM users WHERE org_id = :o FOR NO KEY UPDATE", o=uuid.UUID(first.org_id))
        one = asyncio.create_task(remove(first, second))
        other = asyncio.create_task(remove(second, first))
        await g.until_queued(2, one, other)
    answers = await asyncio.gather(one, other)
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    users = (await c.get("/v1/users", headers=next(
        acct for acct, a in zip((first, second), answers, strict=True) if a.status_code == 200).headers)).json()["data"]
    owners = [u for u in users if u["role"] == "owner" and u["active"]]
    assert len(owners) == 1


async def test_deals_moved_by_a_stage_deletion_get_what_a_single_move_gives(client, session):
    """The set-based move of a stage's deals writes the same fields, history and events as moving each deal
    with PATCH would."""
    acct = await signup(client)
    pipeline, stages = await _sales(client, acct)
    proposal, won = stages["Proposal"]["id"], stages["Won"]["id"]
    by_patch = await _deal(client, acct, stage_id=proposal)
    by_delete = await _deal(client, acct, stage_id=proposal)
    r = await client.patch(f"/v1/deals/{by_patch['id']}", headers=acct.headers, json={"stage_id": won})
    assert r.status_code == 200, r.text
    r = await client.delete(f"/v1/pipelines/{pipeline['id']}/stages/{proposal}", headers=acct.headers,
                            params={"move_deals_to": won})
    assert r.status_code == 204, r.text

    volatile = {"id", "title", "created_at", "updated_at", "closed_at", "stage_entered_at"}
    deals = [(await client.get(f"/v1/deals/{d['id']}", headers=acct.headers)).json() for d in (by_patch, by_delete)]
    assert [{k: v for k, v in d.items() if k not in volatile} for d in deals][0] == \
        [{k: v for k, v in d.items() if k not in volatile} for d in deals][1]
    assert all(d["status"] == "won" and d["closed_at"] for d in deals)
    histories = [(await client.get(f"/v1/deals/{d['id']}/stage-history", headers=acct.headers)).json()["data"]
                 for d in deals]
    assert [[(h["from_stage_id"], h["to_stage_id"], h["moved_by"]) for h in hist] for hist in histories] == \
        [[(None, proposal, {"type": "user", "id": acct.user_id}), (proposal, won, {"type": "user", "id": acct.user_id})]] * 2

    def shape(rows):
        return sorted((e.type, e.version, sorted(e.data.get("previous", {}))) for e in rows if e.version == 2)

    written = [shape(await session.scalars(select(Event).where(Event.org_id == uuid.UUID(acct.org_id),
                                                               Event.object_id == uuid.UUID(d["id"]))))
               for d in deals]
    assert written[0] == written[1]
    assert [t for t, _, _ in written[0]] == ["deal.stage_changed", "deal.updated", "deal.won"]


async def test_a_pipeline_read_before_its_lock_is_read_again_if_it_changed(committed_client, database):
    """A move that holds a pipeline its transaction read earlier works with the stages as they are once held."""
    c = committed_client
    acct = await signup(c)
    pipeline, _ = await _sales(c, acct)
    org, pipeline_id = uuid.UUID(acct.org_id), uuid.UUID(pipeline["id"])
    async with database.sessions() as session, session.begin():
        early = await pipelines.get(session, org, pipeline_id)
        assert len(early.stages) == 5
        r = await c.post(f"/v1/pipelines/{pipeline['id']}/stages", headers=acct.headers,
                         json={"name": "Demo", "probability": 30})
        assert r.status_code == 201, r.text
        held = await locks.pipeline_shared(session, org, pipeline_id=pipeline_id)
        assert held is early and [s.name for s in held.stages][-1] == "Demo" and len(held.stages) == 6
